//! The one place that talks to the Karmada API server (kube-rs).
//!
//! What `smo` does there, and nothing else: read the member clusters'
//! inventory, server-side apply the objects it owns outside any chart
//! (namespaces, generated PropagationPolicies, PrometheusRules…), read and
//! delete objects, list its own objects for pruning, write replica counts
//! through the `scale` subresource and read Deployment readiness.
//!
//! Invariants:
//! - Every object `smo` applies carries [`MANAGED_BY_LABEL`]`=smo` and the
//!   owner labels ([`Owner::labels`]); pruning finds objects by those
//!   labels only, so an object without them is never deleted by `smo`.
//! - Applies use the field manager [`FIELD_MANAGER`] with `force`: `smo`
//!   is the authority on the fields it sets. Replica counts use their own
//!   manager ([`SCALER_FIELD_MANAGER`]) so that chart applies and the
//!   scaler stay distinguishable in `managedFields`.
//! - apiVersion/kind are resolved through discovery, once per handle and
//!   kind; unknown kinds are not cached (a CRD may be installed later).
//! - Object bodies never reach a log or an error (Secrets): spans and
//!   errors carry identities (apiVersion, kind, namespace, name) only.
//!
//! Failures come back classified ([`KarmadaError::is_transient`]); whether
//! to retry is the caller's policy.
//!
//! This file holds the handle, discovery and the writes; the labels and
//! owners live in `labels`, the errors in `error`, the inventory in
//! `inventory`, Deployment readiness in `readiness` and the listing of
//! everything `smo` labelled in `listing`.

mod error;
mod inventory;
mod labels;
mod listing;
mod readiness;
mod releases;
mod watch;

pub use error::KarmadaError;
pub use labels::{
    GRAPH_LABEL, INPUTS_LABEL, MANAGED_BY, MANAGED_BY_LABEL, Owner, PROJECT_LABEL, inputs_label,
    label_value,
};
pub use listing::{Managed, ManagedRelease};
pub use watch::Signal;

use error::classify;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Field manager of everything `smo` applies.
pub const FIELD_MANAGER: &str = "smo";
/// Field manager of replica counts written by the scaler.
pub const SCALER_FIELD_MANAGER: &str = "smo-scaler";

/// kube's default read timeout is about five minutes, sized for watches.
/// This handle never watches: every call is one short request, and a hung
/// API server must fail the reconcile (as `Unreachable`, retried) rather
/// than stall it.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// The watch caches' client waits longer than a watch call lasts
/// (kube-runtime asks the server for 290 s), so a quiet watch is never cut
/// as a hung request.
const WATCH_READ_TIMEOUT: Duration = Duration::from_secs(330);

/// Identity of one object on Karmada. `namespace` is `None` for
/// cluster-scoped kinds; it is ignored for them if given.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {} {ns}/{}", self.api_version, self.kind, self.name),
            None => write!(f, "{} {} {}", self.api_version, self.kind, self.name),
        }
    }
}

/// A resolved kind: its REST resource and scope.
#[derive(Debug, Clone)]
struct Kind {
    resource: ApiResource,
    namespaced: bool,
}

/// A cheap-to-clone handle on the Karmada API server (clones share the
/// connection pool and the discovery cache).
#[derive(Clone)]
pub struct Karmada {
    client: kube::Client,
    kinds: Arc<Mutex<HashMap<(String, String), Kind>>>,
    /// The client the watch caches would use (no short read timeout).
    watch_client: kube::Client,
    /// `None`: every read goes to the API server (the CLI, `--once`).
    watches: Option<Arc<watch::Watches>>,
    /// Checked before every write.
    fence: crate::ha::Fence,
}

impl fmt::Debug for Karmada {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Karmada")
            .field("default_namespace", &self.client.default_namespace())
            .finish_non_exhaustive()
    }
}

fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.split_once('/').unwrap_or(("", api_version))
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

impl Karmada {
    /// Connects with a kubeconfig file and context; `None` for both is
    /// kube's inference (`KUBECONFIG`, `~/.kube/config`, in-cluster). No
    /// request is made: an unreachable server shows on the first call.
    pub async fn connect(
        kubeconfig: Option<&Path>,
        context: Option<&str>,
    ) -> Result<Self, KarmadaError> {
        let options = KubeConfigOptions {
            context: context.map(str::to_owned),
            ..KubeConfigOptions::default()
        };
        let shown = |p: Option<&Path>| {
            p.map_or_else(
                || "the default kubeconfig".to_owned(),
                |p| p.display().to_string(),
            )
        };
        let kerr = |what: String| {
            move |e: kube::config::KubeconfigError| KarmadaError::Kubeconfig {
                what,
                source: Box::new(e),
            }
        };
        let mut config = match (kubeconfig, context) {
            (Some(path), _) => {
                let kc = Kubeconfig::read_from(path).map_err(kerr(shown(Some(path))))?;
                kube::Config::from_custom_kubeconfig(kc, &options)
                    .await
                    .map_err(kerr(format!(
                        "{}, context {}",
                        path.display(),
                        context.unwrap_or("(current)")
                    )))?
            }
            (None, Some(ctx)) => kube::Config::from_kubeconfig(&options)
                .await
                .map_err(kerr(format!("{}, context {ctx}", shown(None))))?,
            (None, None) => kube::Config::infer()
                .await
                .map_err(|e| KarmadaError::Kubeconfig {
                    what: "inferred from KUBECONFIG, ~/.kube/config or the pod".into(),
                    source: Box::new(e),
                })?,
        };
        let mut watch_config = config.clone();
        watch_config.read_timeout = Some(WATCH_READ_TIMEOUT);
        config.read_timeout = Some(READ_TIMEOUT);
        let build = |config: kube::Config| {
            kube::Client::try_from(config).map_err(|e| KarmadaError::Kubeconfig {
                what: format!("building a client for {}", shown(kubeconfig)),
                source: Box::new(e),
            })
        };
        Ok(Karmada {
            client: build(config)?,
            watch_client: build(watch_config)?,
            kinds: Arc::new(Mutex::new(HashMap::new())),
            watches: None,
            fence: crate::ha::Fence::open(),
        })
    }

    /// This handle (and its clones) writes only while `fence` admits it.
    #[must_use]
    pub fn with_fence(mut self, fence: crate::ha::Fence) -> Self {
        self.fence = fence;
        self
    }

    /// The client for calls of smo's own outside the reconcile (the leader
    /// Lease), with the same credentials and read timeout.
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    fn may_write(&self, operation: &'static str) -> Result<(), KarmadaError> {
        self.fence
            .check()
            .map_err(|source| KarmadaError::NotLeader { operation, source })
    }

    /// This handle (and its clones) with watch caches: reads through
    /// [`Karmada::get_cached`] and [`Karmada::inventory_cached`] are answered
    /// from memory, and every change after a watch's initial list is sent
    /// to `signals`. Must be called inside a tokio runtime.
    #[must_use]
    pub fn with_watches(mut self, signals: tokio::sync::mpsc::Sender<Signal>) -> Self {
        self.watches = Some(Arc::new(watch::Watches::new(
            self.watch_client.clone(),
            signals,
        )));
        self
    }

    /// The object from the watch cache when it holds it (`true`: it came
    /// from memory, and may lag a write made a moment ago); otherwise read
    /// from the API server, as [`Karmada::get`].
    pub async fn get_cached(
        &self,
        r: &ObjectRef,
    ) -> Result<(Option<Arc<Value>>, bool), KarmadaError> {
        if let Some(w) = &self.watches {
            let kind = match self.resolve(&r.api_version, &r.kind).await {
                Ok(k) => k,
                Err(KarmadaError::UnknownKind { .. }) => return Ok((None, false)),
                Err(e) => return Err(e),
            };
            let namespace = if kind.namespaced {
                r.namespace.as_deref()
            } else {
                None
            };
            if let Some(v) = w.lookup(&kind.resource, namespace, &r.name) {
                return Ok((Some(v), true));
            }
        }
        Ok((self.get(r).await?.map(Arc::new), false))
    }

    /// The resourceVersion of the object in the watch cache, when a synced
    /// cache holds it; `None` otherwise (never read from the API server).
    pub async fn cached_version(&self, r: &ObjectRef) -> Option<String> {
        let w = self.watches.as_ref()?;
        let kind = self.resolve(&r.api_version, &r.kind).await.ok()?;
        let namespace = if kind.namespaced {
            r.namespace.as_deref()
        } else {
            None
        };
        w.version(&kind.resource, namespace, &r.name)
    }

    /// Starts watching the kinds of these manifest objects (a no-op
    /// without watch caches, or for kinds not served).
    pub async fn watch_kinds(&self, objects: &[Value]) {
        let Some(w) = &self.watches else { return };
        let mut seen = std::collections::BTreeSet::new();
        for o in objects {
            let (Some(api_version), Some(kind)) = (o["apiVersion"].as_str(), o["kind"].as_str())
            else {
                continue;
            };
            if seen.insert((api_version, kind))
                && let Ok(k) = self.resolve(api_version, kind).await
            {
                w.ensure(&k.resource);
            }
        }
    }

    /// How many objects the watch caches hold, by kind (empty without
    /// caches).
    pub fn cache_sizes(&self) -> Vec<(String, usize)> {
        self.watches.as_ref().map(|w| w.sizes()).unwrap_or_default()
    }

    /// Resolves apiVersion + kind to a resource through discovery, cached.
    async fn resolve(&self, api_version: &str, kind: &str) -> Result<Kind, KarmadaError> {
        let key = (api_version.to_owned(), kind.to_owned());
        if let Some(k) = self.cache().get(&key) {
            return Ok(k.clone());
        }
        let (group, version) = split_api_version(api_version);
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let unknown = || KarmadaError::UnknownKind {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
        };
        let (resource, caps) = match kube::discovery::pinned_kind(&self.client, &gvk).await {
            Ok(found) => found,
            Err(kube::Error::Discovery(_)) => return Err(unknown()),
            Err(kube::Error::Api(s)) if s.code == 404 => return Err(unknown()),
            Err(e) => return Err(classify("discovery", &format!("{api_version} {kind}"), e)),
        };
        let resolved = Kind {
            resource,
            namespaced: caps.scope == kube::discovery::Scope::Namespaced,
        };
        self.cache().insert(key, resolved.clone());
        Ok(resolved)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Kind>> {
        // The map is only ever inserted into whole entries: a panic while
        // it was held cannot leave it inconsistent.
        self.kinds.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn api(&self, kind: &Kind, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace {
            Some(ns) if kind.namespaced => {
                Api::namespaced_with(self.client.clone(), ns, &kind.resource)
            }
            _ => Api::all_with(self.client.clone(), &kind.resource),
        }
    }

    /// The API for one object: its namespace for namespaced kinds (required),
    /// none for cluster-scoped kinds (a given namespace is ignored).
    async fn api_for(&self, r: &ObjectRef) -> Result<Api<DynamicObject>, KarmadaError> {
        let kind = self.resolve(&r.api_version, &r.kind).await?;
        if kind.namespaced && r.namespace.as_deref().is_none_or(str::is_empty) {
            return Err(KarmadaError::Invalid {
                object: r.to_string(),
                reason: format!("{} is namespaced but no namespace was given", r.kind),
            });
        }
        Ok(self.api(&kind, r.namespace.as_deref()))
    }

    /// Server-side applies a Namespace labelled as `smo`'s (managed-by and
    /// project labels; no graph label: graphs of a project share it).
    #[tracing::instrument(name = "karmada.ensure_namespace", skip_all, fields(namespace = name))]
    pub async fn ensure_namespace(&self, name: &str) -> Result<(), KarmadaError> {
        self.may_write("apply")?;
        let kind = self.resolve("v1", "Namespace").await?;
        let body = json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": name,
                "labels": {MANAGED_BY_LABEL: MANAGED_BY, PROJECT_LABEL: label_value(name)},
            },
        });
        self.api(&kind, None)
            .patch(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
            .map_err(|e| classify("apply", &format!("v1 Namespace {name}"), e))?;
        Ok(())
    }

    /// Server-side applies any object (field manager `smo`, forced), with
    /// the owner's labels added. A namespaced object without
    /// `metadata.namespace` goes to the owner's project namespace (a
    /// project is a namespace); a cluster-scoped one has its namespace
    /// removed. Server-set metadata in `obj` (resourceVersion,
    /// managedFields…) is dropped so a live object can be re-applied.
    #[tracing::instrument(
        name = "karmada.apply",
        skip_all,
        fields(
            api_version = obj["apiVersion"].as_str().unwrap_or_default(),
            kind = obj["kind"].as_str().unwrap_or_default(),
            name = str_at(obj, "/metadata/name").unwrap_or_default(),
            project = %owner.project,
            graph = %owner.graph,
        )
    )]
    pub async fn apply(&self, obj: &Value, owner: &Owner) -> Result<(), KarmadaError> {
        self.may_write("apply")?;
        let (Some(api_version), Some(kind), Some(name)) = (
            str_at(obj, "/apiVersion"),
            str_at(obj, "/kind"),
            str_at(obj, "/metadata/name"),
        ) else {
            return Err(KarmadaError::Invalid {
                object: format!(
                    "{} {} {}",
                    obj["apiVersion"].as_str().unwrap_or("(no apiVersion)"),
                    obj["kind"].as_str().unwrap_or("(no kind)"),
                    str_at(obj, "/metadata/name").unwrap_or("(no name)")
                ),
                reason: "apiVersion, kind and metadata.name are required".into(),
            });
        };
        let resolved = self.resolve(api_version, kind).await?;
        let mut body = obj.clone();
        let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut) else {
            // metadata.name was found above, so metadata is a map.
            return Err(KarmadaError::Invalid {
                object: format!("{api_version} {kind} {name}"),
                reason: "metadata is not a map".into(),
            });
        };
        for server_set in [
            "resourceVersion",
            "uid",
            "generation",
            "creationTimestamp",
            "managedFields",
            "selfLink",
        ] {
            meta.remove(server_set);
        }
        let namespace = if resolved.namespaced {
            let ns = meta
                .get("namespace")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .unwrap_or(&owner.project)
                .to_owned();
            meta.insert("namespace".into(), json!(ns));
            Some(ns)
        } else {
            meta.remove("namespace");
            None
        };
        if !meta.get("labels").is_some_and(Value::is_object) {
            meta.insert("labels".into(), json!({}));
        }
        if let Some(labels) = meta.get_mut("labels").and_then(Value::as_object_mut) {
            for (k, v) in owner.labels() {
                labels.insert(k, Value::String(v));
            }
        }
        let identity = ObjectRef {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            namespace: namespace.clone(),
            name: name.to_owned(),
        };
        self.api(&resolved, namespace.as_deref())
            .patch(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
            .map_err(|e| classify("apply", &identity.to_string(), e))?;
        tracing::debug!("applied");
        Ok(())
    }

    /// The live object, or `None` when it (or its kind) does not exist.
    #[tracing::instrument(name = "karmada.get", skip_all, fields(object = %r))]
    pub async fn get(&self, r: &ObjectRef) -> Result<Option<Value>, KarmadaError> {
        let api = match self.api_for(r).await {
            Ok(api) => api,
            Err(KarmadaError::UnknownKind { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let found = api
            .get_opt(&r.name)
            .await
            .map_err(|e| classify("get", &r.to_string(), e))?;
        found
            .map(|o| {
                serde_json::to_value(o).map_err(|e| KarmadaError::Decode {
                    what: r.to_string(),
                    reason: e.to_string(),
                })
            })
            .transpose()
    }

    /// Deletes an object (dependents in the background, as kubectl does).
    /// An absent object, or a kind no longer served, is already deleted.
    #[tracing::instrument(name = "karmada.delete", skip_all, fields(object = %r))]
    pub async fn delete(&self, r: &ObjectRef) -> Result<(), KarmadaError> {
        self.may_write("delete")?;
        let api = match self.api_for(r).await {
            Ok(api) => api,
            Err(KarmadaError::UnknownKind { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        match api.delete(&r.name, &DeleteParams::background()).await {
            Ok(_) => {
                tracing::debug!("deleted");
                Ok(())
            }
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(classify("delete", &r.to_string(), e)),
        }
    }

    /// Sets the replicas of an `apps/v1` workload (Deployment, StatefulSet)
    /// through its `scale` subresource, with field manager `smo-scaler`.
    ///
    /// A merge patch of `spec.replicas` rather than an apply: every
    /// Kubernetes version accepts it on `scale`, and it still records
    /// `smo-scaler` as the manager of the field.
    #[tracing::instrument(
        name = "karmada.scale",
        skip_all,
        fields(namespace = namespace, kind = kind, name = name, replicas = replicas)
    )]
    pub async fn scale(
        &self,
        namespace: &str,
        kind: &str,
        name: &str,
        replicas: u32,
    ) -> Result<(), KarmadaError> {
        self.may_write("scale")?;
        let resolved = self.resolve("apps/v1", kind).await?;
        let identity = format!("apps/v1 {kind} {namespace}/{name}");
        let params = PatchParams {
            field_manager: Some(SCALER_FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        self.api(&resolved, Some(namespace))
            .patch_scale(
                name,
                &params,
                &Patch::Merge(json!({"spec": {"replicas": replicas}})),
            )
            .await
            .map_err(|e| classify("scale", &identity, e))?;
        tracing::debug!("scaled");
        Ok(())
    }

    /// The labels of a Helm release's newest record (helm keeps each
    /// revision in a Secret labelled `owner=helm`, `name=<release>`,
    /// `version=<revision>`, plus the labels given with `--labels`), or
    /// `None` when the release does not exist. Only labels are read: the
    /// release's content never leaves this function.
    #[tracing::instrument(name = "karmada.release_labels", skip_all, fields(namespace = namespace, release = release))]
    pub async fn release_labels(
        &self,
        namespace: &str,
        release: &str,
    ) -> Result<Option<BTreeMap<String, String>>, KarmadaError> {
        if let Some(w) = &self.watches {
            let watch = w.releases();
            let cached = watch.synced().and_then(|i| i.newest(namespace, release));
            // Only a settled record is taken from memory. A pending status
            // is acted on (rolled back) and no record at all lets smo
            // install: both may be a cache a moment behind (smo's own call,
            // someone else's install), so the API server says them.
            if let Some(labels) = cached
                && !labels
                    .get("status")
                    .is_some_and(|s| s.starts_with("pending"))
            {
                return Ok(Some(labels));
            }
        }
        let api: Api<k8s_openapi::api::core::v1::Secret> =
            Api::namespaced(self.client.clone(), namespace);
        let selector = format!("owner=helm,name={}", label_value(release));
        let list = api
            .list_metadata(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| {
                classify(
                    "list",
                    &format!("v1 Secret {namespace} (release {release})"),
                    e,
                )
            })?;
        let newest = list
            .items
            .into_iter()
            .filter_map(|s| s.metadata.labels)
            .max_by_key(|l| {
                l.get("version")
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            });
        Ok(newest)
    }
}
