//! The desired state: a state root on disk loaded into validated graphs,
//! settings and cluster metadata, with every finding.
//!
//! Layout (DESIGN.md): `smo.yaml`, `clusters/*.yaml`,
//! `projects/<project>/*.yaml|*.yml` (one descriptor per file; sub-folders
//! such as `charts/` are not scanned). Hidden and non-YAML files are ignored.
//! One broken file never prevents loading the others: each graph is either
//! valid or carries its findings. Two files declaring the same
//! `(project, hdaGraph.id)` are an error on both and neither is used.

pub mod intent;
pub mod loader;

use crate::descriptor::Descriptor;
use crate::spec::cluster::ClusterMeta;
use crate::spec::settings::Settings;
use crate::validate::Finding;
use intent::Resources;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// A validated graph with its translated resources (same order as
/// `descriptor.hda_graph.services`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Graph {
    pub project: String,
    /// Path relative to the state root.
    pub file: String,
    pub descriptor: Descriptor,
    pub resources: Vec<Resources>,
}

impl Graph {
    pub fn id(&self) -> &str {
        self.descriptor.hda_graph.id.as_str()
    }
}

/// One descriptor file's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GraphEntry {
    pub project: String,
    /// The graph id when the file declares one (even if it is invalid), so
    /// that a later reconcile can keep that graph's last good state.
    pub id: Option<String>,
    pub file: String,
    pub graph: Option<Graph>,
}

/// Everything loaded from a state root.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DesiredState {
    pub settings: Settings,
    /// False when `smo.yaml` has errors; `settings` then holds defaults and
    /// a daemon must not act on them.
    pub settings_valid: bool,
    pub clusters: BTreeMap<String, ClusterMeta>,
    /// Clusters whose file `clusters/<name>.yaml` exists but does not load
    /// (unreadable, not YAML, empty, invalid), named by the file's stem.
    /// Such a cluster is held at its last good state, never removed: only a
    /// file that is gone removes a cluster.
    pub broken_clusters: BTreeSet<String>,
    pub graphs: Vec<GraphEntry>,
    /// Every finding of every file, sorted.
    pub findings: Vec<Finding>,
}

impl DesiredState {
    pub fn valid_graphs(&self) -> impl Iterator<Item = &Graph> {
        self.graphs.iter().filter_map(|g| g.graph.as_ref())
    }

    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(Finding::is_error)
    }
}
