//! Watch caches: one kube-runtime reflector per kind `smo` reads back from
//! Karmada, so that a drift or readiness check is a memory lookup and an
//! out-of-band change is noticed the moment it happens rather than at the
//! next resync.
//!
//! What is watched:
//! - the kinds of the objects in the release manifests smo recorded, all
//!   namespaces, only objects labelled `app.kubernetes.io/managed-by=Helm`
//!   (helm stamps that label, and the release annotations, on everything a
//!   release creates);
//! - Karmada `Cluster`s (inventory and readiness), when asked.
//!
//! Invariants:
//! - A cache is an optimisation, never a second source of truth: a kind
//!   answers from memory only while its watch is synced (listed, and no
//!   error since); otherwise, and for any object the cache does not hold,
//!   the caller reads the API server (see `Karmada::get_cached`).
//! - Objects are trimmed to what smo compares: `managedFields` and the
//!   last-applied annotation are dropped; `status` is kept only for
//!   workloads (readiness) and clusters (inventory).
//! - Every change after the initial list is signalled ([`Signal`]): the
//!   daemon maps it to a graph and enqueues it. Watches restart with
//!   kube-runtime's backoff and relist on `410 Gone` by themselves.

use super::releases::Labels;
use futures_util::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::reflector::{self, ObjectRef as StoreRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

/// Helm's mark on every object a release created.
const HELM_SELECTOR: &str = "app.kubernetes.io/managed-by=Helm";
const RELEASE_NAME: &str = "meta.helm.sh/release-name";
const RELEASE_NAMESPACE: &str = "meta.helm.sh/release-namespace";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Something changed on Karmada after the initial list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Signal {
    /// An object of helm release `name` in `namespace` changed or went.
    Release { namespace: String, name: String },
    /// A member cluster changed (or the clusters were listed again).
    Clusters,
}

/// One watched kind: its cache and whether it can be trusted.
struct Watched {
    cache: Cache,
    resource: ApiResource,
    synced: Arc<AtomicBool>,
}

/// What a watch keeps.
enum Cache {
    /// kube-runtime's reflector store (label and cluster watches).
    Objects(Store<DynamicObject>),
    /// The objects of release manifests as compact JSON text, with their
    /// resourceVersion (see [`Compact`]).
    Values(Arc<Values>),
}

impl Cache {
    fn len(&self) -> usize {
        match self {
            Cache::Objects(store) => store.len(),
            Cache::Values(values) => values.len(),
        }
    }

    fn objects(&self) -> Option<&Store<DynamicObject>> {
        match self {
            Cache::Objects(store) => Some(store),
            Cache::Values(_) => None,
        }
    }
}

/// A cached object as its compact JSON text and its resourceVersion. A tree
/// of JSON values costs several times its text in memory (a map node per
/// object in it: 2,000 Deployments held tens of MiB), and a resync needs the
/// version alone while a release is known to be in sync; a full comparison
/// parses the text.
struct Compact {
    version: Option<String>,
    json: Box<str>,
}

impl Compact {
    fn of(o: &DynamicObject) -> Option<Arc<Compact>> {
        let json = serde_json::to_string(o).ok()?.into_boxed_str();
        let version = o.metadata.resource_version.clone();
        Some(Arc::new(Compact { version, json }))
    }

    fn value(&self) -> Option<Arc<Value>> {
        serde_json::from_str(&self.json).ok().map(Arc::new)
    }
}

/// Objects by namespace and name; replaced whole when a (re)list
/// completes, as a reflector's store is.
#[derive(Default)]
struct Values(std::sync::RwLock<HashMap<SeenKey, Arc<Compact>>>);

impl Values {
    fn len(&self) -> usize {
        self.0.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    fn get(&self, namespace: Option<&str>, name: &str) -> Option<Arc<Compact>> {
        let key = (namespace.map(str::to_owned), name.to_owned());
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<SeenKey, Arc<Compact>>> {
        self.0.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// The watch caches of one Karmada handle (shared by its clones). Dropping
/// the last handle stops every watch.
pub(crate) struct Watches {
    client: kube::Client,
    signals: mpsc::Sender<Signal>,
    kinds: Mutex<HashMap<(String, String), Arc<Watched>>>,
    /// Watches by label selector: (apiVersion, kind, selector).
    labelled: Mutex<HashMap<(String, String, String), Arc<Watched>>>,
    clusters: OnceLock<Arc<Watched>>,
    releases: OnceLock<Arc<super::releases::ReleaseWatch>>,
    tasks: Mutex<Vec<AbortHandle>>,
}

impl Drop for Watches {
    fn drop(&mut self) {
        for t in self
            .tasks
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            t.abort();
        }
    }
}

impl Watches {
    /// `client` should have a read timeout longer than a watch call's
    /// (kube-runtime asks the server for 290 s).
    pub(crate) fn new(client: kube::Client, signals: mpsc::Sender<Signal>) -> Watches {
        Watches {
            client,
            signals,
            kinds: Mutex::new(HashMap::new()),
            labelled: Mutex::new(HashMap::new()),
            clusters: OnceLock::new(),
            releases: OnceLock::new(),
            tasks: Mutex::new(Vec::new()),
        }
    }

    /// The cached object when its kind's watch is synced and holds it;
    /// `None` means "ask the API server". Starts watching the kind on the
    /// first ask.
    pub(crate) fn lookup(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Arc<Value>> {
        let w = self.watched(resource);
        if !w.synced.load(Ordering::Acquire) {
            return None;
        }
        match &w.cache {
            Cache::Values(values) => values.get(namespace, name)?.value(),
            Cache::Objects(store) => {
                let mut key = StoreRef::new_with(name, resource.clone());
                if let Some(ns) = namespace {
                    key = key.within(ns);
                }
                serde_json::to_value(&*store.get(&key)?).ok().map(Arc::new)
            }
        }
    }

    /// The resourceVersion of the cached object, when its kind's watch is
    /// synced and holds it (without reading the object itself).
    pub(crate) fn version(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<String> {
        let w = self.watched(resource);
        if !w.synced.load(Ordering::Acquire) {
            return None;
        }
        match &w.cache {
            Cache::Values(values) => values.get(namespace, name)?.version.clone(),
            Cache::Objects(_) => None,
        }
    }

    /// Namespace, name and labels of every object of a kind carrying
    /// `selector`, in every namespace, while that selector's watch is
    /// synced; `None` means "list from the API server". The watch starts
    /// on the first ask.
    pub(crate) fn labelled(
        &self,
        resource: &ApiResource,
        selector: &str,
    ) -> Option<Vec<(Option<String>, String, Labels)>> {
        let key = (
            resource.api_version.clone(),
            resource.kind.clone(),
            selector.to_owned(),
        );
        let w = {
            let mut all = self.labelled.lock().unwrap_or_else(|p| p.into_inner());
            match all.get(&key) {
                Some(w) => Arc::clone(w),
                None => {
                    let config = watcher::Config::default().labels(selector);
                    let w = self.spawn(resource.clone(), config, Trim::DropStatus, false, false);
                    all.insert(key, Arc::clone(&w));
                    w
                }
            }
        };
        if !w.synced.load(Ordering::Acquire) {
            return None;
        }
        Some(
            w.cache
                .objects()?
                .state()
                .iter()
                .map(|o| {
                    (
                        o.metadata.namespace.clone(),
                        o.metadata.name.clone().unwrap_or_default(),
                        o.metadata.labels.clone().unwrap_or_default(),
                    )
                })
                .collect(),
        )
    }

    /// Starts watching a kind (once; later calls do nothing).
    pub(crate) fn ensure(&self, resource: &ApiResource) {
        self.watched(resource);
    }

    fn watched(&self, resource: &ApiResource) -> Arc<Watched> {
        let key = (resource.api_version.clone(), resource.kind.clone());
        let mut kinds = self.kinds.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = kinds.get(&key) {
            return Arc::clone(w);
        }
        let config = watcher::Config::default().labels(HELM_SELECTOR);
        let w = self.spawn(
            resource.clone(),
            config,
            Trim::for_kind(&resource.kind),
            false,
            true,
        );
        tracing::debug!(api_version = %resource.api_version, kind = %resource.kind, "watching kind");
        kinds.insert(key, Arc::clone(&w));
        w
    }

    /// Starts watching the member clusters (once).
    pub(crate) fn watch_clusters(&self, resource: &ApiResource) {
        self.clusters.get_or_init(|| {
            self.spawn(
                resource.clone(),
                watcher::Config::default(),
                Trim::KeepStatus,
                true,
                false,
            )
        });
    }

    /// helm's release records (started on the first ask).
    pub(crate) fn releases(&self) -> Arc<super::releases::ReleaseWatch> {
        Arc::clone(self.releases.get_or_init(|| {
            let (watch, task) = super::releases::ReleaseWatch::spawn(self.client.clone());
            self.tasks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(task);
            watch
        }))
    }

    /// Every cached cluster, when the clusters' watch is synced.
    pub(crate) fn clusters(&self) -> Option<Vec<Arc<DynamicObject>>> {
        let w = self.clusters.get()?;
        let store = w.cache.objects()?;
        w.synced.load(Ordering::Acquire).then(|| store.state())
    }

    /// How many objects the caches hold, by kind (for metrics and tests).
    pub(crate) fn sizes(&self) -> Vec<(String, usize)> {
        let kinds = self.kinds.lock().unwrap_or_else(|p| p.into_inner());
        let labelled = self.labelled.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<(String, usize)> = kinds
            .values()
            .chain(labelled.values())
            .chain(self.clusters.get())
            .map(|w| (w.resource.kind.clone(), w.cache.len()))
            .chain(
                self.releases
                    .get()
                    .map(|r| ("Secret (helm)".to_owned(), r.len())),
            )
            .collect();
        out.sort();
        out
    }

    fn spawn(
        &self,
        resource: ApiResource,
        config: watcher::Config,
        trim: Trim,
        clusters: bool,
        as_values: bool,
    ) -> Arc<Watched> {
        let synced = Arc::new(AtomicBool::new(false));
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &resource);
        let stream = watcher(api, config)
            .default_backoff()
            .modify(move |o: &mut DynamicObject| trim.apply(o));
        let (flag, signals, kind) = (
            Arc::clone(&synced),
            self.signals.clone(),
            resource.kind.clone(),
        );
        // Not a child of whatever reconcile first needed the kind.
        let span = tracing::info_span!(parent: None, "watch", kind = %kind);
        let (cache, task) = if as_values {
            let values = Arc::new(Values::default());
            let follow = follow(stream, flag, signals, clusters, Some(Arc::clone(&values)));
            let task = tokio::spawn(tracing::Instrument::instrument(follow, span));
            (Cache::Values(values), task)
        } else {
            let writer = reflector::store::Writer::new(resource.clone());
            let store = writer.as_reader();
            let follow = follow(stream.reflect(writer), flag, signals, clusters, None);
            let task = tokio::spawn(tracing::Instrument::instrument(follow, span));
            (Cache::Objects(store), task)
        };
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(task.abort_handle());
        Arc::new(Watched {
            cache,
            resource,
            synced,
        })
    }
}

/// Drives one reflector: keeps `synced` true between a complete list and
/// the next error, and signals every change after the first list —
/// including what changed while the watch was down, found by comparing a
/// relist with what the watch had seen.
async fn follow<S>(
    stream: S,
    synced: Arc<AtomicBool>,
    signals: mpsc::Sender<Signal>,
    clusters: bool,
    values: Option<Arc<Values>>,
) where
    S: futures_util::Stream<Item = Result<watcher::Event<DynamicObject>, watcher::Error>>,
{
    let mut stream = std::pin::pin!(stream);
    let mut seen = Seen::default();
    let mut outage = Outage::default();
    // A (re)list in progress, for `values`.
    let mut listing: HashMap<SeenKey, Arc<Compact>> = HashMap::new();
    while let Some(item) = stream.next().await {
        if item.is_ok() {
            outage.delivered();
        }
        if let (Some(values), Ok(event)) = (&values, &item) {
            keep(values, &mut listing, event);
        }
        let changed: Vec<Signal> = match item {
            Ok(watcher::Event::Init) => {
                seen.relisting.clear();
                Vec::new()
            }
            Ok(watcher::Event::InitApply(o)) => {
                seen.relisting.insert(Seen::key(&o), Seen::entry(&o));
                Vec::new()
            }
            Ok(watcher::Event::InitDone) => {
                synced.store(true, Ordering::Release);
                tracing::debug!("listed");
                let changed = seen.listed();
                if clusters {
                    vec![Signal::Clusters]
                } else {
                    changed
                }
            }
            Ok(watcher::Event::Apply(o)) => {
                synced.store(true, Ordering::Release);
                seen.known.insert(Seen::key(&o), Seen::entry(&o));
                signal_of(&o, clusters).into_iter().collect()
            }
            Ok(watcher::Event::Delete(o)) => {
                synced.store(true, Ordering::Release);
                seen.known.remove(&Seen::key(&o));
                signal_of(&o, clusters).into_iter().collect()
            }
            Err(e) => {
                // Until the watch is back, callers read the API server.
                synced.store(false, Ordering::Release);
                outage.failed(&e);
                Vec::new()
            }
        };
        for s in changed {
            if signals.send(s).await.is_err() {
                return;
            }
        }
    }
}

/// Applies a watch event to a value cache, as a reflector applies it to
/// its store: a list is gathered aside and replaces the cache when done.
fn keep(
    values: &Values,
    listing: &mut HashMap<SeenKey, Arc<Compact>>,
    event: &watcher::Event<DynamicObject>,
) {
    match event {
        watcher::Event::Init => listing.clear(),
        watcher::Event::InitApply(o) => {
            if let Some(v) = Compact::of(o) {
                listing.insert(Seen::key(o), v);
            }
        }
        watcher::Event::InitDone => *values.write() = std::mem::take(listing),
        watcher::Event::Apply(o) => {
            let mut map = values.write();
            match Compact::of(o) {
                Some(v) => map.insert(Seen::key(o), v),
                None => map.remove(&Seen::key(o)),
            };
        }
        watcher::Event::Delete(o) => {
            values.write().remove(&Seen::key(o));
        }
    }
}

/// Failed attempts since a watch last delivered: the first is a warning,
/// the retries of one outage are debug lines, and the next event (a quiet
/// kind has none until something changes) logs the end.
#[derive(Default)]
pub(super) struct Outage {
    failures: u64,
}

impl Outage {
    pub(super) fn delivered(&mut self) {
        if self.failures > 0 {
            tracing::info!(failed_attempts = self.failures, "watch resumed");
            self.failures = 0;
        }
    }

    pub(super) fn failed(&mut self, e: &watcher::Error) {
        if self.failures == 0 {
            tracing::warn!(error = %e, "watch interrupted; reading the API server until it is back");
        } else {
            tracing::debug!(error = %e, attempt = self.failures + 1, "watch still interrupted");
        }
        self.failures += 1;
    }
}

fn signal_of(o: &DynamicObject, clusters: bool) -> Option<Signal> {
    if clusters {
        Some(Signal::Clusters)
    } else {
        release_of(o)
    }
}

type SeenKey = (Option<String>, String);
type SeenEntry = (Option<String>, Option<Signal>);

/// What a watch has seen (object → resourceVersion and release), so that a
/// relist after an interruption signals what changed meanwhile.
#[derive(Default)]
struct Seen {
    listed_once: bool,
    known: HashMap<SeenKey, SeenEntry>,
    relisting: HashMap<SeenKey, SeenEntry>,
}

impl Seen {
    fn key(o: &DynamicObject) -> SeenKey {
        (
            o.metadata.namespace.clone(),
            o.metadata.name.clone().unwrap_or_default(),
        )
    }

    fn entry(o: &DynamicObject) -> SeenEntry {
        (o.metadata.resource_version.clone(), release_of(o))
    }

    /// A list completed: the releases of objects added, changed or gone
    /// since the previous one, de-duplicated. On the first list, every
    /// release listed: a change made between a release's install and the
    /// moment its kind was first listed is seen by no event.
    fn listed(&mut self) -> Vec<Signal> {
        let fresh = std::mem::take(&mut self.relisting);
        let first = !self.listed_once;
        let changed = fresh
            .iter()
            .filter(|(k, (rv, _))| first || self.known.get(*k).map(|(old, _)| old) != Some(rv))
            .filter_map(|(_, (_, s))| s.clone());
        let gone = self
            .known
            .iter()
            .filter(|(k, _)| !fresh.contains_key(*k))
            .filter_map(|(_, (_, s))| s.clone());
        let mut unique = std::collections::HashSet::new();
        let out: Vec<Signal> = changed
            .chain(gone)
            .filter(|s| unique.insert(s.clone()))
            .collect();
        self.listed_once = true;
        self.known = fresh;
        out
    }
}

/// The helm release an object belongs to, from helm's annotations.
fn release_of(o: &DynamicObject) -> Option<Signal> {
    let a = o.metadata.annotations.as_ref()?;
    let name = a.get(RELEASE_NAME)?.clone();
    let namespace = a
        .get(RELEASE_NAMESPACE)
        .cloned()
        .or_else(|| o.metadata.namespace.clone())?;
    Some(Signal::Release { namespace, name })
}

/// What a cache keeps of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trim {
    KeepStatus,
    DropStatus,
}

impl Trim {
    /// Workloads keep their status: readiness is read from it.
    fn for_kind(kind: &str) -> Trim {
        match kind {
            "Deployment" | "StatefulSet" | "DaemonSet" => Trim::KeepStatus,
            _ => Trim::DropStatus,
        }
    }

    fn apply(self, o: &mut DynamicObject) {
        o.metadata.managed_fields = None;
        if let Some(a) = o.metadata.annotations.as_mut() {
            a.remove(LAST_APPLIED);
        }
        if self == Trim::DropStatus
            && let Some(map) = o.data.as_object_mut()
        {
            map.remove("status");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(v: Value) -> DynamicObject {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn trimming_drops_what_smo_never_compares() {
        let mut o = object(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "namespace": "p",
                "managedFields": [{"manager": "helm"}],
                "annotations": {LAST_APPLIED: "{}", RELEASE_NAME: "svc"}},
            "data": {"k": "v"},
            "status": {"x": 1},
        }));
        Trim::for_kind("ConfigMap").apply(&mut o);
        assert!(o.metadata.managed_fields.is_none());
        let a = o.metadata.annotations.as_ref().unwrap();
        assert!(!a.contains_key(LAST_APPLIED));
        assert_eq!(a[RELEASE_NAME], "svc");
        assert!(o.data.get("status").is_none());
        assert_eq!(o.data["data"]["k"], "v");
    }

    #[test]
    fn a_cached_object_reads_back_as_the_object_with_its_version() {
        let o = object(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "a", "namespace": "p", "resourceVersion": "42",
                "labels": {"app": "a"}},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "c"}]}}},
        }));
        let c = Compact::of(&o).unwrap();
        assert_eq!(c.version.as_deref(), Some("42"));
        assert_eq!(*c.value().unwrap(), serde_json::to_value(&o).unwrap());
    }

    #[test]
    fn workloads_keep_their_status_for_readiness() {
        let mut o = object(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "a", "namespace": "p"},
            "spec": {"replicas": 2},
            "status": {"readyReplicas": 2},
        }));
        Trim::for_kind("Deployment").apply(&mut o);
        assert_eq!(o.data["status"]["readyReplicas"], 2);
    }

    fn marked(name: &str, rv: &str, release: &str) -> DynamicObject {
        object(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "p", "resourceVersion": rv,
                "annotations": {RELEASE_NAME: release, RELEASE_NAMESPACE: "p"}},
        }))
    }

    fn relist(seen: &mut Seen, objects: &[DynamicObject]) -> Vec<Signal> {
        seen.relisting.clear();
        for o in objects {
            seen.relisting.insert(Seen::key(o), Seen::entry(o));
        }
        seen.listed()
    }

    fn release(name: &str) -> Signal {
        Signal::Release {
            namespace: "p".into(),
            name: name.into(),
        }
    }

    #[test]
    fn a_relist_signals_what_changed_while_the_watch_was_down() {
        let mut seen = Seen::default();
        let first = [
            marked("a", "1", "ra"),
            marked("b", "2", "rb"),
            marked("c", "3", "rc"),
        ];
        let mut got = relist(&mut seen, &first);
        got.sort_by_key(|s| format!("{s:?}"));
        assert_eq!(
            got,
            vec![release("ra"), release("rb"), release("rc")],
            "the first list signals every release"
        );
        // b changed, c went, d came; a is as it was.
        let second = [
            marked("a", "1", "ra"),
            marked("b", "7", "rb"),
            marked("d", "8", "rd"),
        ];
        let mut got = relist(&mut seen, &second);
        got.sort_by_key(|s| format!("{s:?}"));
        assert_eq!(got, vec![release("rb"), release("rc"), release("rd")]);
        assert_eq!(relist(&mut seen, &second), vec![], "nothing changed since");
    }

    #[test]
    fn a_change_names_its_release_from_helms_annotations() {
        let o = object(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "p",
                "annotations": {RELEASE_NAME: "front", RELEASE_NAMESPACE: "proj"}},
        }));
        assert_eq!(
            release_of(&o),
            Some(Signal::Release {
                namespace: "proj".into(),
                name: "front".into()
            })
        );
        let unmarked = object(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "p"},
        }));
        assert_eq!(release_of(&unmarked), None);
    }
}
