//! What the last drift checks found in sync, so that a resync compares
//! again only what changed since: an object whose resourceVersion is the
//! one it had when its release's recorded manifest last matched it is
//! still in sync (the API server changes the version with every write).
//!
//! An entry is for one recorded manifest (its text's hash) and one setting
//! of `ignore_replicas`; any other manifest, any object at another version
//! or not known to the caches, and the check is done in full. Only clean
//! results are kept: drift is always compared, and reported, afresh.

use crate::adapters::karmada::ObjectRef;
use crate::keys::GraphKey;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Mutex;

/// Clean drift checks by graph, then service; manifests are told apart
/// by a hash keyed at random for this process (no text can be made to
/// collide with another on purpose).
#[derive(Debug, Default)]
pub struct CleanMemo(
    Mutex<HashMap<GraphKey, HashMap<String, Clean>>>,
    std::hash::RandomState,
);

/// A release found in sync: its manifest, and each object's version then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clean {
    pub manifest: u64,
    pub ignore_replicas: bool,
    pub objects: Vec<(ObjectRef, String)>,
}

impl CleanMemo {
    /// The hash of a recorded manifest's text.
    pub fn manifest_hash(&self, text: &str) -> u64 {
        self.1.hash_one(text)
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<GraphKey, HashMap<String, Clean>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The versions to compare with, when this manifest was last clean.
    pub fn get(
        &self,
        graph: &GraphKey,
        service: &str,
        manifest: u64,
        ignore_replicas: bool,
    ) -> Option<Vec<(ObjectRef, String)>> {
        let map = self.map();
        let c = map.get(graph)?.get(service)?;
        (c.manifest == manifest && c.ignore_replicas == ignore_replicas).then(|| c.objects.clone())
    }

    /// Records a check: clean (`Some`) or not (`None`, forgotten).
    pub fn put(&self, graph: &GraphKey, service: &str, clean: Option<Clean>) {
        let mut map = self.map();
        match clean {
            Some(c) => {
                map.entry(graph.clone())
                    .or_default()
                    .insert(service.to_owned(), c);
            }
            None => {
                if let Some(services) = map.get_mut(graph) {
                    services.remove(service);
                }
            }
        }
    }

    /// Keeps only these services of the graph (the others left it).
    pub fn retain(&self, graph: &GraphKey, keep: impl Fn(&str) -> bool) {
        let mut map = self.map();
        if let Some(services) = map.get_mut(graph) {
            services.retain(|s, _| keep(s));
            if services.is_empty() {
                map.remove(graph);
            }
        }
    }

    /// Entries held (for tests and metrics).
    pub fn len(&self) -> usize {
        self.map().values().map(HashMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
