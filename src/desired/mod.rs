//! The desired state: a state root on disk loaded into validated graphs,
//! settings and cluster metadata, with every finding.
//!
//! Layout (DESIGN.md): `smo.yaml`, `clusters/*.yaml`,
//! `projects/<project>/*.yaml|*.yml` (one descriptor per file; sub-folders
//! such as `charts/` are not scanned). Hidden and non-YAML files are ignored.
//! One broken file never prevents loading the others: each graph is either
//! valid or carries its findings. Two files declaring the same
//! `(project, hdaGraph.id)` are an error on both and neither is used.

mod crossfile;
pub mod files;
pub mod incremental;
pub mod intent;
pub mod loader;
pub mod prune;
mod reference;

use crate::descriptor::Descriptor;
use crate::spec::cluster::ClusterMeta;
use crate::spec::settings::Settings;
use crate::validate::Finding;
use intent::Resources;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// A validated graph with its translated resources (same order as
/// `descriptor.hda_graph.services`).
#[derive(Debug, Clone, Serialize)]
pub struct Graph {
    pub project: String,
    /// Path relative to the state root.
    pub file: String,
    /// Shared with the loader's cache of unchanged files: a daemon holding
    /// thousands of services keeps one copy of each descriptor.
    pub descriptor: std::sync::Arc<Descriptor>,
    pub resources: Vec<Resources>,
    /// Where the descriptor came from when `file` is an `hdaGraphRef`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// Digests of the graph computed once per load rather than on every
    /// reconcile (a resync of 200 graphs spent ~7 % of its CPU on them).
    #[serde(skip)]
    pub memo: Memo,
}

/// Values derived from a [`Graph`] and cached with it (graph equality
/// ignores them: they are functions of the graph).
#[derive(Debug, Clone, Default)]
pub struct Memo {
    pub desired_hash: std::sync::OnceLock<String>,
    pub placement_inputs_hash: std::sync::OnceLock<String>,
}

/// A graph pulled from the HDAR: the artifact its reference resolved to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    /// The reference as written (`oci://host/repo:tag`, `…@sha256:…` or
    /// `… (semver range)`).
    pub reference: String,
    /// `oci://host/repo`.
    pub repository: String,
    /// The manifest digest it resolved to (`sha256:…`).
    pub digest: String,
    /// The tag it resolved through (none for a pinned digest).
    pub tag: Option<String>,
    /// The unpacked artifact; local charts resolve inside it.
    #[serde(skip)]
    pub root: std::path::PathBuf,
    /// The descriptor's path inside `root` (`/`-separated).
    pub descriptor: String,
}

impl Origin {
    /// `oci://host/repo@sha256:…`, as status shows it.
    pub fn pinned(&self) -> String {
        format!("{}@{}", self.repository, self.digest)
    }
}

/// Fetches the artifacts `hdaGraphRef` files name, for the loader (which
/// stays synchronous and knows no registry). `Err` is why the artifact
/// could not be had, as the graph's status shows it.
pub trait Artifacts {
    fn fetch(&self, reference: &crate::hdar::GraphRef) -> Result<Origin, String>;
}

impl Graph {
    /// The state root and the descriptor path (relative to it) that local
    /// chart paths resolve against: the artifact for a pulled graph.
    pub fn chart_base<'a>(&'a self, root: &'a std::path::Path) -> (&'a std::path::Path, &'a str) {
        match &self.origin {
            Some(o) => (o.root.as_path(), o.descriptor.as_str()),
            None => (root, self.file.as_str()),
        }
    }
}

/// Equal graphs: the descriptor compared by pointer first (an unchanged
/// file's descriptor is the very same value from one load to the next).
impl PartialEq for Graph {
    fn eq(&self, other: &Graph) -> bool {
        self.project == other.project
            && self.file == other.file
            && (std::sync::Arc::ptr_eq(&self.descriptor, &other.descriptor)
                || self.descriptor == other.descriptor)
            && self.resources == other.resources
            && self.origin == other.origin
    }
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
    /// How many descriptor files are `hdaGraphRef`s (fetched or not): the
    /// daemon resolves them again on `hdar.interval` when there are any.
    #[serde(skip)]
    pub references: usize,
}

impl DesiredState {
    pub fn valid_graphs(&self) -> impl Iterator<Item = &Graph> {
        self.graphs.iter().filter_map(|g| g.graph.as_ref())
    }

    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(Finding::is_error)
    }

    /// Attributes each descriptor file that declares no graph (it does not
    /// parse, is empty, cannot be read: a half-saved edit) to the graph the
    /// store recorded for that file, so that the graph is held at its last
    /// good state instead of being removed. `recorded` lists `(project,
    /// graph, file)` of the recorded graphs. A graph whose recorded file
    /// is gone, or now declares another graph, is not attributed: that is
    /// positive evidence that it was removed (or renamed). Returns the
    /// graphs attributed.
    pub fn attribute<'a>(
        &mut self,
        recorded: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
    ) -> Vec<(String, String)> {
        let declared: std::collections::BTreeSet<(String, String)> = self
            .graphs
            .iter()
            .filter_map(|e| Some((e.project.clone(), e.id.clone()?)))
            .collect();
        let mut attributed = Vec::new();
        for (project, graph, file) in recorded {
            if declared.contains(&(project.to_owned(), graph.to_owned())) {
                continue;
            }
            if let Some(e) = self
                .graphs
                .iter_mut()
                .find(|e| e.id.is_none() && e.project == project && e.file == file)
            {
                e.id = Some(graph.to_owned());
                attributed.push((project.to_owned(), graph.to_owned()));
            }
        }
        attributed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(project: &str, id: Option<&str>, file: &str) -> GraphEntry {
        GraphEntry {
            project: project.into(),
            id: id.map(str::to_owned),
            file: file.into(),
            graph: None,
        }
    }

    #[test]
    fn a_broken_file_holds_the_graph_it_declared_last_time() {
        let mut d = DesiredState {
            graphs: vec![
                entry("p", None, "projects/p/a.yaml"),
                entry("p", Some("renamed"), "projects/p/b.yaml"),
                entry("q", None, "projects/q/new.yaml"),
            ],
            ..DesiredState::default()
        };
        let recorded = [
            ("p", "a", "projects/p/a.yaml"),
            // b.yaml now declares another graph: b is removed.
            ("p", "b", "projects/p/b.yaml"),
            // c's file is gone.
            ("p", "c", "projects/p/c.yaml"),
        ];
        let attributed = d.attribute(recorded);
        assert_eq!(attributed, [("p".to_owned(), "a".to_owned())]);
        assert_eq!(d.graphs[0].id.as_deref(), Some("a"));
        assert_eq!(d.graphs[2].id, None, "an unknown file stays unattributed");
    }
}
