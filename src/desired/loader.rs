//! Loads a state root (or individual files) from disk into a
//! [`DesiredState`]. Only unreadable roots are errors; everything about a
//! file's content is a finding.

use super::incremental::LoadCache;
use super::{Artifacts, DesiredState, Origin};
use crate::descriptor::Descriptor;
use crate::descriptor::semantic::{self, ChartMemo, Context};
use crate::descriptor::types::DnsLabel;
use crate::spec::cluster::RawClusterFile;
use crate::spec::settings::{RawSettings, Settings, cross_checks};
use crate::validate::findings::{Finding, Pos, Severity};
use crate::validate::schema::SchemaKind;
use crate::validate::yaml::Document;
use crate::validate::{parse_document, read_document, typed};
use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read the state root {path}: {source}")]
    Root {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot list {path}: {source}")]
    List {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} does not exist")]
    Missing { path: PathBuf },
}

pub(super) const SETTINGS_FILES: [&str; 2] = ["smo.yaml", "smo.yml"];

pub use crate::hdar::reference::REF_KEY;

/// Namespaces a project must not be: a project is the namespace of its
/// graphs' releases, and smo creates, labels and prunes what it deploys
/// there — these belong to Kubernetes (`kube-system`, `kube-public`,
/// `kube-node-lease`, and `default`, which unrelated workloads share) and
/// to Karmada's own control plane (`karmada-system`, and
/// `karmada-cluster`, where Karmada keeps its member clusters' state).
pub const RESERVED_PROJECTS: [&str; 6] = [
    "default",
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "karmada-system",
    "karmada-cluster",
];

pub(super) fn is_yaml(p: &Path) -> bool {
    matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
}

/// A descriptor file: YAML, or JSON as the original SMO's API took it (JSON
/// is read by the same YAML reader, with positions).
pub(super) fn is_descriptor_file(p: &Path) -> bool {
    is_yaml(p) || p.extension().and_then(|e| e.to_str()) == Some("json")
}

fn is_hidden(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

/// Visible entries of a directory, sorted by name; a missing directory is empty.
pub(super) fn entries(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let read = match std::fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(LoadError::List {
                path: dir.to_owned(),
                source,
            });
        }
    };
    let mut out: Vec<PathBuf> = read
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| !is_hidden(p))
        .collect();
    out.sort();
    Ok(out)
}

fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

fn file_error(shown: &str, message: String) -> Finding {
    Finding::new(
        shown,
        Pos { line: 1, column: 1 },
        "",
        Severity::Error,
        message,
    )
}

/// One descriptor file's raw outcome.
#[derive(Clone)]
pub(super) struct Loaded {
    pub(super) id: Option<String>,
    pub(super) id_pos: Pos,
    /// Position of each `services[i].id`, for cross-graph checks.
    pub(super) service_pos: Vec<Pos>,
    pub(super) descriptor: Option<std::sync::Arc<Descriptor>>,
    pub(super) findings: Vec<Finding>,
    /// The artifact, when the file is an `hdaGraphRef` that was fetched.
    pub(super) origin: Option<Origin>,
    /// Whether the file is an `hdaGraphRef` (fetched or not).
    pub(super) reference: bool,
}

pub(super) fn load_descriptor(
    path: &Path,
    shown: &str,
    root: Option<&Path>,
    known: Option<&BTreeSet<String>>,
    artifacts: Option<&dyn Artifacts>,
    charts: Option<&ChartMemo>,
) -> Loaded {
    let ctx = Context {
        file: shown,
        dir: path.parent(),
        root,
        known_clusters: known,
        charts,
    };
    judge_descriptor(read_document(path, shown), &ctx, artifacts)
}

impl Loaded {
    /// Valid and plain (not an `hdaGraphRef`): its outcome depends only on
    /// its bytes, the described clusters and its local charts.
    pub(super) fn cacheable(&self) -> bool {
        self.descriptor.is_some() && !self.reference && self.origin.is_none()
    }

    /// The chart paths (relative to the file) its services name.
    pub(super) fn local_charts(&self) -> impl Iterator<Item = &str> {
        self.descriptor
            .iter()
            .flat_map(|d| &d.hda_graph.services)
            .map(|s| s.artifact.oci_image.as_str())
            .filter(|i| !i.contains("://") && !Path::new(i).is_absolute())
    }

    pub(super) fn failed(findings: Vec<Finding>) -> Loaded {
        Loaded {
            id: None,
            id_pos: Pos { line: 1, column: 1 },
            service_pos: Vec::new(),
            descriptor: None,
            findings,
            origin: None,
            reference: false,
        }
    }
}

/// A descriptor's outcome from its document (or the findings of reading
/// it); `ctx.file` is the path shown.
pub(super) fn judge_descriptor(
    read: Result<Option<Document>, Vec<Finding>>,
    ctx: &Context<'_>,
    artifacts: Option<&dyn Artifacts>,
) -> Loaded {
    let shown = ctx.file;
    let mut loaded = Loaded::failed(Vec::new());
    let doc = match read {
        Err(f) => {
            loaded.findings = f;
            return loaded;
        }
        Ok(None) => {
            loaded.findings.push(file_error(
                shown,
                "file is empty; a descriptor starts with `hdaGraph:`".into(),
            ));
            return loaded;
        }
        Ok(Some(doc)) => doc,
    };
    if doc.value.get(REF_KEY).is_some() {
        let mut loaded = super::reference::judge(&doc, ctx, artifacts);
        loaded.reference = true;
        return loaded;
    }
    let mut doc = doc;
    let translated = crate::descriptor::compat::normalise(&mut doc, shown);
    loaded.id = doc
        .value
        .pointer("/hdaGraph/id")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    loaded.id_pos = doc.position("/hdaGraph/id");
    let (descriptor, mut found) = typed::<Descriptor>(SchemaKind::Hdag, &doc, shown);
    found.extend(translated);
    // Semantic checks run even when the schema found errors, so that every
    // mistake of a file is reported in one go.
    found.extend(semantic::check(&doc, ctx));
    let ok = !found.iter().any(Finding::is_error);
    loaded.descriptor = descriptor.filter(|_| ok).map(std::sync::Arc::new);
    if let Some(d) = &loaded.descriptor {
        loaded.service_pos = (0..d.hda_graph.services.len())
            .map(|i| doc.position(&format!("/hdaGraph/services/{i}/id")))
            .collect();
    }
    loaded.findings = found;
    loaded
}

pub(super) fn load_settings(path: &Path, shown: &str) -> (Option<Settings>, Vec<Finding>) {
    judge_settings(read_document(path, shown), shown)
}

fn judge_settings(
    read: Result<Option<Document>, Vec<Finding>>,
    shown: &str,
) -> (Option<Settings>, Vec<Finding>) {
    match read {
        Err(f) => (None, f),
        Ok(None) => (Some(Settings::default()), Vec::new()),
        Ok(Some(doc)) => {
            let (raw, mut found) = typed::<RawSettings>(SchemaKind::Settings, &doc, shown);
            found.extend(cross_checks(&doc, shown));
            let Some(raw) = raw else { return (None, found) };
            let (settings, more) = raw.validate(&doc, shown);
            found.extend(more);
            let ok = !found.iter().any(Finding::is_error);
            (ok.then_some(settings), found)
        }
    }
}

pub(super) fn load_cluster(
    path: &Path,
    shown: &str,
) -> (Option<crate::spec::cluster::ClusterMeta>, Vec<Finding>) {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    judge_cluster(read_document(path, shown), stem, shown)
}

/// A cluster file's outcome; `stem` is its file name without extension.
fn judge_cluster(
    read: Result<Option<Document>, Vec<Finding>>,
    stem: &str,
    shown: &str,
) -> (Option<crate::spec::cluster::ClusterMeta>, Vec<Finding>) {
    match read {
        Err(f) => (None, f),
        Ok(None) => (
            None,
            vec![file_error(
                shown,
                "file is empty; a cluster file starts with `cluster:`".into(),
            )],
        ),
        Ok(Some(doc)) => {
            let (raw, mut found) = typed::<RawClusterFile>(SchemaKind::Cluster, &doc, shown);
            let Some(raw) = raw else { return (None, found) };
            let (meta, more) = raw.validate(stem, &doc, shown);
            found.extend(more);
            (meta, found)
        }
    }
}

/// Validates one descriptor given as text, as [`load_files`] does a file
/// that lies outside any state root, without the checks that need the
/// disk: a local chart path is only checked not to leave its directory,
/// and cluster pins are not compared with cluster files. `shown` names the
/// file in findings.
pub fn load_descriptor_text(text: &str, shown: &str) -> DesiredState {
    load_descriptor_text_with(text, shown, None)
}

/// [`load_descriptor_text`], fetching what an `hdaGraphRef` names through
/// `artifacts`.
pub fn load_descriptor_text_with(
    text: &str,
    shown: &str,
    artifacts: Option<&dyn Artifacts>,
) -> DesiredState {
    let ctx = Context {
        file: shown,
        ..Context::default()
    };
    let loaded = judge_descriptor(parse_document(text, shown), &ctx, artifacts);
    let mut state = DesiredState {
        settings_valid: true,
        ..DesiredState::default()
    };
    finish(
        &mut state,
        vec![(String::new(), String::new(), shown.to_owned(), loaded)],
    );
    state
}

/// Validates one cluster file given as text, as a state root's
/// `clusters/<stem>.yaml` is; `shown` names the file in findings.
pub fn load_cluster_text(
    text: &str,
    stem: &str,
    shown: &str,
) -> (Option<crate::spec::cluster::ClusterMeta>, Vec<Finding>) {
    judge_cluster(parse_document(text, shown), stem, shown)
}

/// Validates settings given as text, as a state root's `smo.yaml` is:
/// the settings when they have no errors, and every finding.
pub fn load_settings_text(text: &str, shown: &str) -> (Option<Settings>, Vec<Finding>) {
    judge_settings(parse_document(text, shown), shown)
}

/// Loads a whole state root.
pub fn load_root(root: &Path) -> Result<DesiredState, LoadError> {
    load_root_with(root, None)
}

/// [`load_root`], fetching the HDAR artifacts that `hdaGraphRef` files
/// name through `artifacts` (without it, such a file is an error).
pub fn load_root_with(
    root: &Path,
    artifacts: Option<&dyn Artifacts>,
) -> Result<DesiredState, LoadError> {
    load_root_inner(root, artifacts, None)
}

/// [`load_root_with`], keeping the outcome of every descriptor file whose
/// bytes did not change since the previous load with the same `cache` (see
/// [`super::incremental`]).
pub fn load_root_cached(
    root: &Path,
    artifacts: Option<&dyn Artifacts>,
    cache: &LoadCache,
) -> Result<DesiredState, LoadError> {
    cache.begin();
    let state = load_root_inner(root, artifacts, Some(cache));
    cache.end();
    state
}

fn load_root_inner(
    root: &Path,
    artifacts: Option<&dyn Artifacts>,
    cache: Option<&LoadCache>,
) -> Result<DesiredState, LoadError> {
    let root = root.canonicalize().map_err(|source| LoadError::Root {
        path: root.to_owned(),
        source,
    })?;
    if !root.is_dir() {
        return Err(LoadError::Root {
            path: root,
            source: io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
        });
    }
    let mut state = DesiredState {
        settings_valid: true,
        ..DesiredState::default()
    };

    for name in SETTINGS_FILES {
        let path = root.join(name);
        if path.is_file() {
            let (settings, found) = load_settings(&path, name);
            state.findings.extend(found);
            match settings {
                Some(s) => state.settings = s,
                None => state.settings_valid = false,
            }
            break;
        }
    }

    let clusters_dir = root.join("clusters");
    // Every cluster file present counts, loaded or not (a link leaving the
    // root, a dangling link): what does not load is broken, not gone.
    let mut unloaded: BTreeSet<PathBuf> = entries(&clusters_dir)?
        .into_iter()
        .filter(|p| is_yaml(p) && !p.is_dir())
        .collect();
    let listed = yaml_files(&root, &clusters_dir, &mut state.findings)?;
    for path in unloaded.iter().filter(|p| !p.is_file()) {
        state.findings.push(file_error(
            &relative(&root, path),
            "cannot be read (a link to nothing?); the cluster keeps its last good state until the file is fixed or removed".into(),
        ));
    }
    for (path, shown) in listed {
        let (meta, found) = load_cluster(&path, &shown);
        state.findings.extend(found);
        if let Some(m) = meta {
            unloaded.remove(&path);
            state.clusters.insert(m.name.clone(), m);
        }
    }
    state.broken_clusters = unloaded
        .iter()
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    // A pin to a cluster whose file is broken is not a pin to an unknown one.
    let known: BTreeSet<String> = state
        .clusters
        .keys()
        .chain(&state.broken_clusters)
        .cloned()
        .collect();

    let mut loaded: Vec<Entry> = Vec::new();
    let charts = ChartMemo::default();
    for project_dir in entries(&root.join("projects"))? {
        if project_dir.is_file() {
            if is_descriptor_file(&project_dir) {
                let shown = relative(&root, &project_dir);
                state.findings.push(Finding::new(&shown, Pos { line: 1, column: 1 }, "", Severity::Warning,
                    "ignored: descriptors belong in projects/<project>/, the project names the namespace"));
            }
            continue;
        }
        let project = project_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for (path, shown) in
            files_where(&root, &project_dir, is_descriptor_file, &mut state.findings)?
        {
            let ctx = Context {
                file: &shown,
                dir: path.parent(),
                root: Some(&root),
                known_clusters: Some(&known),
                charts: Some(&charts),
            };
            let mut l = cache
                .and_then(|c| c.descriptor(&path, &ctx, artifacts))
                .unwrap_or_else(|| judge_descriptor(read_document(&path, &shown), &ctx, artifacts));
            if !DnsLabel::is_valid(&project) {
                l.findings.push(file_error(&shown, format!(
                    "project directory `{project}` is not a DNS-1123 label; it names a Kubernetes namespace: use lowercase letters, digits and '-'"
                )));
                l.descriptor = None;
            } else if RESERVED_PROJECTS.contains(&project.as_str()) {
                l.findings.push(file_error(&shown, format!(
                    "project directory `{project}` names a system namespace, which smo must not deploy into or prune; move the descriptor to a project directory of its own (reserved: {})",
                    RESERVED_PROJECTS.join(", ")
                )));
                l.descriptor = None;
            }
            loaded.push((String::new(), project.clone(), shown, l));
        }
    }
    finish(&mut state, loaded);
    Ok(state)
}

/// The YAML files of `dir` with their shown paths; a file that is a link
/// leaving the root is reported instead of listed.
fn yaml_files(
    root: &Path,
    dir: &Path,
    findings: &mut Vec<Finding>,
) -> Result<Vec<(PathBuf, String)>, LoadError> {
    files_where(root, dir, is_yaml, findings)
}

/// The files of `dir` that `wanted` accepts, as [`yaml_files`].
fn files_where(
    root: &Path,
    dir: &Path,
    wanted: fn(&Path) -> bool,
    findings: &mut Vec<Finding>,
) -> Result<Vec<(PathBuf, String)>, LoadError> {
    let mut out = Vec::new();
    for path in entries(dir)? {
        if !(path.is_file() && wanted(&path)) {
            continue;
        }
        let shown = relative(root, &path);
        match escapes(root, &path, &shown) {
            Some(f) => findings.push(f),
            None => out.push((path, shown)),
        }
    }
    Ok(out)
}

/// A symlinked file that resolves outside the root is not read.
fn escapes(root: &Path, path: &Path, shown: &str) -> Option<Finding> {
    match path.canonicalize() {
        Ok(real) if real.starts_with(root) => None,
        _ => Some(file_error(
            shown,
            "file is a link that leaves the state root; it is ignored".into(),
        )),
    }
}

pub(super) use super::crossfile::{Entry, finish};

pub use super::files::{FileKind, load_files, load_files_with};

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(path: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
    }

    #[test]
    fn a_descriptor_given_as_text_is_judged_as_its_file_is() {
        for name in [
            "invalid/three-mistakes.yaml",
            "invalid/dependency-cycle.yaml",
            "invalid/duplicate-yaml-key.yaml",
            "invalid/two-documents.yaml",
            "valid/every-field.yaml",
        ] {
            let path = repo("tests/fixtures").join(name);
            let on_disk = load_files(std::slice::from_ref(&path)).unwrap();
            let text = std::fs::read_to_string(&path).unwrap();
            let from_text = load_descriptor_text(&text, &path.display().to_string());
            assert_eq!(from_text.findings, on_disk.findings, "{name}");
            assert_eq!(
                from_text.valid_graphs().count(),
                on_disk.valid_graphs().count(),
                "{name}"
            );
        }
    }

    #[test]
    fn cluster_and_settings_given_as_text_are_judged_as_in_a_state_root() {
        let root = repo("state-example");
        let state = load_root(&root).unwrap();
        let text = std::fs::read_to_string(root.join("clusters/lyon-gpu.yaml")).unwrap();
        let (meta, findings) = load_cluster_text(&text, "lyon-gpu", "clusters/lyon-gpu.yaml");
        assert_eq!(findings, []);
        assert_eq!(meta.as_ref(), state.clusters.get("lyon-gpu"));
        let (_, findings) = load_cluster_text(&text, "other", "clusters/other.yaml");
        assert!(
            findings.iter().any(Finding::is_error),
            "the name is checked"
        );

        let text = std::fs::read_to_string(root.join("smo.yaml")).unwrap();
        let (settings, findings) = load_settings_text(&text, "smo.yaml");
        assert_eq!(findings, []);
        assert_eq!(settings, Some(state.settings));
    }
}
