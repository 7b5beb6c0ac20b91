//! A metadata-only watch of helm's release records (Secrets labelled
//! `owner=helm`, in every namespace): the labels of each release's
//! revisions held in memory, so that reading a release's status or
//! sweeping smo's releases asks the API server nothing while the watch is
//! synced. The bodies (the compressed releases) are never fetched.
//!
//! Invariants, as for the other watch caches: the index answers only while
//! synced (listed, and no error since); a relist replaces it whole at its
//! end. Unlike them it signals nothing: every upgrade writes a record, so a
//! signal would start a drift check after each of smo's own upgrades, and a
//! drift that an upgrade cannot correct (a field another manager owns)
//! would become an upgrade loop; what a release change does to its objects
//! is signalled by their own watches.

use super::watch::Outage;
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::{WatchStreamExt, watcher};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::task::AbortHandle;

/// helm's mark on its release records.
const SELECTOR: &str = "owner=helm";

/// The watch of helm's release records and its index.
#[derive(Debug, Default)]
pub(crate) struct ReleaseWatch {
    index: Mutex<Index>,
    synced: AtomicBool,
}

impl ReleaseWatch {
    /// Starts the watch (all namespaces, metadata only).
    pub(super) fn spawn(client: kube::Client) -> (Arc<ReleaseWatch>, AbortHandle) {
        let watch = Arc::new(ReleaseWatch::default());
        // Metadata-only requests: the records' bodies are whole releases.
        let api: Api<PartialObjectMeta<Secret>> = Api::all(client);
        let stream = watcher(api, watcher::Config::default().labels(SELECTOR)).default_backoff();
        let task = tokio::spawn(tracing::Instrument::instrument(
            follow(stream, Arc::clone(&watch)),
            tracing::info_span!(parent: None, "watch", kind = "Secret (helm releases)"),
        ));
        (watch, task.abort_handle())
    }

    fn index(&self) -> MutexGuard<'_, Index> {
        // Every update leaves the index whole.
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The index, while the watch is synced; `None`: ask the API server.
    pub(crate) fn synced(&self) -> Option<MutexGuard<'_, Index>> {
        self.synced.load(Ordering::Acquire).then(|| self.index())
    }

    pub(crate) fn len(&self) -> usize {
        self.index().len()
    }

    /// An event after an interruption: the watch went on from where it
    /// was (a gap would have made kube relist), so a listed index is whole.
    fn resumed(&self, index: &Index) {
        if index.listed_once {
            self.synced.store(true, Ordering::Release);
        }
    }
}

fn record(o: PartialObjectMeta<Secret>) -> Record {
    Record {
        namespace: o.metadata.namespace.unwrap_or_default(),
        secret: o.metadata.name.unwrap_or_default(),
        labels: o.metadata.labels.unwrap_or_default(),
    }
}

async fn follow<S>(stream: S, watch: Arc<ReleaseWatch>)
where
    S: futures_util::Stream<
            Item = Result<watcher::Event<PartialObjectMeta<Secret>>, watcher::Error>,
        >,
{
    let mut stream = std::pin::pin!(stream);
    let mut outage = Outage::default();
    while let Some(item) = stream.next().await {
        let event = match item {
            Ok(e) => {
                outage.delivered();
                e
            }
            Err(e) => {
                watch.synced.store(false, Ordering::Release);
                outage.failed(&e);
                continue;
            }
        };
        let mut index = watch.index();
        match event {
            watcher::Event::Init => index.relist_started(),
            watcher::Event::InitApply(o) => index.relisted(record(o)),
            watcher::Event::InitDone => {
                index.relist_done();
                watch.synced.store(true, Ordering::Release);
                tracing::debug!(records = index.len(), "listed");
            }
            watcher::Event::Apply(o) => {
                watch.resumed(&index);
                index.applied(record(o));
            }
            watcher::Event::Delete(o) => {
                watch.resumed(&index);
                index.deleted(&record(o));
            }
        }
    }
}

pub(crate) type Labels = BTreeMap<String, String>;

/// One release record: the Secret's name and labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub namespace: String,
    pub secret: String,
    pub labels: Labels,
}

impl Record {
    fn release(&self) -> Option<&str> {
        self.labels.get("name").map(String::as_str)
    }
}

/// A record's revision (helm's `version` label; 0 when unreadable).
fn revision_of(labels: &Labels) -> u64 {
    labels
        .get("version")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// (namespace, release) → Secret name → labels.
type ByRelease = HashMap<(String, String), HashMap<String, Labels>>;

/// The release records seen by one watch.
#[derive(Debug, Default)]
pub(crate) struct Index {
    releases: ByRelease,
    relisting: Option<ByRelease>,
    listed_once: bool,
}

fn insert(map: &mut ByRelease, r: Record) {
    let Some(release) = r.release().map(str::to_owned) else {
        return;
    };
    map.entry((r.namespace, release))
        .or_default()
        .insert(r.secret, r.labels);
}

/// The labels of the newest revision among a release's records.
fn newest(records: &HashMap<String, Labels>) -> Option<&Labels> {
    records.values().max_by_key(|l| revision_of(l))
}

impl Index {
    /// A relist starts: the records it brings replace the index at its end.
    pub(crate) fn relist_started(&mut self) {
        self.relisting = Some(ByRelease::new());
    }

    pub(crate) fn relisted(&mut self, r: Record) {
        insert(self.relisting.get_or_insert_with(ByRelease::new), r);
    }

    /// The relist ended: its records replace the index.
    pub(crate) fn relist_done(&mut self) {
        self.releases = self.relisting.take().unwrap_or_default();
        self.listed_once = true;
    }

    /// A record was added or changed after the list.
    pub(crate) fn applied(&mut self, r: Record) {
        insert(&mut self.releases, r);
    }

    /// A record was deleted after the list.
    pub(crate) fn deleted(&mut self, r: &Record) {
        let Some(release) = r.release() else { return };
        let key = (r.namespace.clone(), release.to_owned());
        if let Some(records) = self.releases.get_mut(&key) {
            records.remove(&r.secret);
            if records.is_empty() {
                self.releases.remove(&key);
            }
        }
    }

    /// The labels of the newest revision of a release (`None`: no record).
    pub(crate) fn newest(&self, namespace: &str, release: &str) -> Option<Labels> {
        self.releases
            .get(&(namespace.to_owned(), release.to_owned()))
            .and_then(newest)
            .cloned()
    }

    /// Every release whose newest revision's labels match `select`, with
    /// that revision and its labels.
    pub(crate) fn newest_matching(
        &self,
        select: impl Fn(&Labels) -> bool,
    ) -> Vec<(String, String, u64, Labels)> {
        let mut out: Vec<(String, String, u64, Labels)> = self
            .releases
            .iter()
            .filter_map(|((namespace, release), records)| {
                let labels = newest(records)?;
                let revision = revision_of(labels);
                select(labels)
                    .then(|| (namespace.clone(), release.clone(), revision, labels.clone()))
            })
            .collect();
        out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        out
    }

    /// How many release records the index holds.
    pub(crate) fn len(&self) -> usize {
        self.releases.values().map(HashMap::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(ns: &str, release: &str, version: u64, status: &str) -> Record {
        let labels: Labels = [
            ("owner", "helm".to_owned()),
            ("name", release.to_owned()),
            ("version", version.to_string()),
            ("status", status.to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        Record {
            namespace: ns.into(),
            secret: format!("sh.helm.release.v1.{release}.v{version}"),
            labels,
        }
    }

    fn status(i: &Index, ns: &str, release: &str) -> Option<String> {
        i.newest(ns, release).map(|l| l["status"].clone())
    }

    #[test]
    fn the_newest_revision_answers_and_deletes_fall_back() {
        let mut i = Index::default();
        i.relist_started();
        i.relisted(record("p", "web", 1, "superseded"));
        i.relisted(record("p", "web", 2, "deployed"));
        i.relisted(record("q", "web", 7, "failed"));
        i.relist_done();
        assert_eq!(status(&i, "p", "web").as_deref(), Some("deployed"));
        assert_eq!(status(&i, "q", "web").as_deref(), Some("failed"));
        // Revision 10 is newer than 9 (numbers, not strings).
        i.applied(record("p", "web", 9, "superseded"));
        i.applied(record("p", "web", 10, "pending-upgrade"));
        assert_eq!(status(&i, "p", "web").as_deref(), Some("pending-upgrade"));
        i.deleted(&record("p", "web", 10, "pending-upgrade"));
        assert_eq!(status(&i, "p", "web").as_deref(), Some("superseded"));
        for v in [1, 2, 9] {
            i.deleted(&record("p", "web", v, ""));
        }
        assert_eq!(i.newest("p", "web"), None);
        assert_eq!(i.len(), 1);
    }

    #[test]
    fn a_relist_replaces_what_the_watch_had_seen() {
        let mut i = Index::default();
        i.relist_started();
        i.relisted(record("p", "a", 1, "deployed"));
        i.relisted(record("p", "c", 1, "deployed"));
        i.relist_done();
        // While relisting, the previous index still answers.
        i.relist_started();
        i.relisted(record("p", "a", 2, "pending-upgrade"));
        i.relisted(record("p", "d", 1, "deployed"));
        assert_eq!(status(&i, "p", "c").as_deref(), Some("deployed"));
        i.relist_done();
        assert_eq!(status(&i, "p", "a").as_deref(), Some("pending-upgrade"));
        assert_eq!(status(&i, "p", "c"), None, "gone while the watch was down");
        assert_eq!(status(&i, "p", "d").as_deref(), Some("deployed"));
    }

    #[test]
    fn only_matching_releases_are_listed_with_their_revision() {
        let mut i = Index::default();
        i.relist_started();
        let mut mine = record("p", "a", 3, "deployed");
        mine.labels.insert("smo".into(), "yes".into());
        i.relisted(mine);
        i.relisted(record("p", "a", 2, "superseded"));
        i.relisted(record("p", "b", 1, "deployed"));
        i.relist_done();
        let found = i.newest_matching(|l| l.contains_key("smo"));
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].1.as_str(), found[0].2), ("a", 3));
    }
}
