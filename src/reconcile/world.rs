//! The world a reconcile reads besides the store: the desired state of one
//! snapshot, the clusters as last observed, and the daemon's requests
//! (re-placements). One consistent value, changed only through its
//! methods and replaced as a whole under the daemon's lock, so a
//! reconcile never sees half of a change.

use crate::desired::{DesiredState, GraphEntry};
use crate::keys::GraphKey;
use crate::observe::clusters::ClusterFacts;
use crate::provenance::{Cause, Commit};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

/// Everything a reconcile reads besides the store: one consistent view,
/// replaced as a whole when a snapshot or the inventory changes.
#[derive(Debug, Clone)]
pub struct World {
    pub revision: String,
    /// The revision's commit, for a Git source.
    pub commit: Option<Commit>,
    pub root: PathBuf,
    pub desired: Arc<DesiredState>,
    pub clusters: Vec<ClusterFacts>,
    /// Cluster → unix seconds since it has been NotReady.
    pub not_ready_since: BTreeMap<String, u64>,
    /// Why removals are held back (the prune guard), if they are.
    pub prune_blocked: Option<String>,
    /// Graphs the scaler asked to re-place (key → why): the scaling model
    /// has no answer where they are.
    pub replace: BTreeMap<GraphKey, String>,
    /// Local charts resolved during this snapshot (a new snapshot starts
    /// afresh: its charts may have changed).
    pub charts: Arc<crate::release::ChartMemo>,
}

impl World {
    /// The revision in force and its commit.
    pub fn cause(&self) -> Cause {
        Cause {
            revision: self.revision.clone(),
            commit: self.commit.clone(),
        }
    }

    /// Moves to a new snapshot: its revision, root and desired state, the
    /// prune guard's verdict on it, and the clusters re-merged with its
    /// metadata (when an inventory is known).
    pub fn switch_to(
        &mut self,
        revision: &str,
        commit: Option<Commit>,
        root: &std::path::Path,
        desired: DesiredState,
        clusters: Option<Vec<ClusterFacts>>,
        prune_blocked: Option<String>,
    ) {
        if let Some(clusters) = clusters {
            self.clusters = clusters;
        }
        revision.clone_into(&mut self.revision);
        self.commit = commit;
        root.clone_into(&mut self.root);
        self.desired = Arc::new(desired);
        self.charts = Arc::default();
        self.prune_blocked = prune_blocked;
    }

    /// Takes a fresh reading of the clusters: when each became not ready
    /// is kept (`now` for the ones that just did). Returns the clusters
    /// whose readiness changed (new ones included) and whether the set of
    /// names changed.
    pub fn observe_clusters(&mut self, facts: Vec<ClusterFacts>, now: u64) -> (Vec<String>, bool) {
        let before: BTreeMap<String, bool> = self
            .clusters
            .iter()
            .map(|c| (c.name.clone(), c.ready))
            .collect();
        let mut changed = Vec::new();
        for c in &facts {
            if before.get(&c.name) != Some(&c.ready) {
                changed.push(c.name.clone());
            }
            if c.ready {
                self.not_ready_since.remove(&c.name);
            } else {
                self.not_ready_since.entry(c.name.clone()).or_insert(now);
            }
        }
        let names_changed = {
            let old: BTreeSet<&String> = before.keys().collect();
            let new: BTreeSet<&String> = facts.iter().map(|c| &c.name).collect();
            old != new
        };
        self.clusters = facts;
        (changed, names_changed)
    }

    /// The scaler found no answer where the graph is: re-place it.
    pub fn request_replacement(&mut self, key: &GraphKey, why: &str) {
        self.replace.insert(key.clone(), why.to_owned());
    }

    /// The graph was reconciled (and re-placed if that was asked).
    pub fn replacement_done(&mut self, key: &GraphKey) {
        self.replace.remove(key);
    }

    /// The graph whose service is released as `release` in `namespace` (a
    /// release is named after its service, in its project's namespace;
    /// release names are unique within a project).
    pub fn graph_of_release(&self, namespace: &str, release: &str) -> Option<GraphKey> {
        self.desired
            .graphs
            .iter()
            .filter(|e| e.project == namespace)
            .find_map(|e| {
                let services = &e.graph.as_ref()?.descriptor.hda_graph.services;
                if services.iter().any(|s| s.id.as_str() == release) {
                    Some(GraphKey::new(&e.project, e.id.clone()?))
                } else {
                    None
                }
            })
    }

    /// The descriptor file declaring `key`, valid or not.
    pub fn entry(&self, key: &GraphKey) -> Option<&GraphEntry> {
        self.desired
            .graphs
            .iter()
            .find(|e| e.project == key.project && e.id.as_deref() == Some(key.graph.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> World {
        World {
            commit: None,
            revision: "r1".into(),
            root: PathBuf::from("/state"),
            desired: Arc::new(DesiredState::default()),
            clusters: Vec::new(),
            not_ready_since: BTreeMap::new(),
            prune_blocked: None,
            replace: BTreeMap::new(),
            charts: Arc::default(),
        }
    }

    fn cluster(name: &str, ready: bool) -> ClusterFacts {
        ClusterFacts {
            name: name.into(),
            ready,
            schedulable: true,
            free_cpu: 1.0,
            free_memory: 1.0,
            free_gpu: 0.0,
            allocatable_cpu: 1.0,
            allocatable_memory: 1.0,
            carbon_intensity: None,
            cost_per_cpu_hour: None,
            location: Default::default(),
            latency_ms: BTreeMap::new(),
        }
    }

    #[test]
    fn readings_report_readiness_changes_and_keep_when_a_cluster_went_down() {
        let mut w = world();
        let first = w.observe_clusters(vec![cluster("a", true), cluster("b", false)], 10);
        assert_eq!(first, (vec!["a".to_owned(), "b".to_owned()], true));
        assert_eq!(w.not_ready_since, BTreeMap::from([("b".to_owned(), 10)]));
        // Still down: the first time is kept; nothing changed.
        let same = w.observe_clusters(vec![cluster("a", true), cluster("b", false)], 20);
        assert_eq!(same, (Vec::new(), false));
        assert_eq!(w.not_ready_since["b"], 10);
        // b recovers, a goes away.
        let next = w.observe_clusters(vec![cluster("b", true)], 30);
        assert_eq!(next, (vec!["b".to_owned()], true));
        assert!(w.not_ready_since.is_empty());
        assert_eq!(w.clusters.len(), 1);
    }

    #[test]
    fn a_replacement_is_requested_until_the_graph_is_reconciled() {
        let mut w = world();
        let k = GraphKey::new("p", "g");
        w.request_replacement(&k, "no room on edge-1");
        assert_eq!(w.replace[&k], "no room on edge-1");
        w.replacement_done(&k);
        assert!(w.replace.is_empty());
    }
}
