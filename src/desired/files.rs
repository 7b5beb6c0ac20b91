//! `smo validate FILE…`: files named on the command line, each judged by
//! its content (a descriptor, a cluster file, `smo.yaml`, an inventory or
//! the daemon configuration) rather than by its place in a state root.

use super::DesiredState;
use super::loader::{
    LoadError, SETTINGS_FILES, entries, finish, is_yaml, load_cluster, load_descriptor,
    load_settings,
};
use crate::validate::read_document;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// What a file given on the command line holds, judged by its top-level key
/// (or name, for `smo.yaml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Descriptor,
    Cluster,
    Settings,
    Inventory,
    Config,
}

fn kind_of(path: &Path) -> FileKind {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if SETTINGS_FILES.contains(&name) {
        return FileKind::Settings;
    }
    let Ok(Some(doc)) = read_document(path, name) else {
        return FileKind::Descriptor;
    };
    let has = |k: &str| doc.value.get(k).is_some();
    if has("hdaGraph") || has(super::loader::REF_KEY) {
        FileKind::Descriptor
    } else if has("cluster") {
        FileKind::Cluster
    } else if has("clusters") {
        FileKind::Inventory
    } else if has("source") {
        FileKind::Config
    } else {
        FileKind::Descriptor
    }
}

/// The state root and project of a file under `<root>/projects/<project>/`.
fn locate(path: &Path) -> (Option<PathBuf>, Option<String>) {
    let Ok(real) = path.canonicalize() else {
        return (None, None);
    };
    let dir = real.parent();
    let project_dir = dir.and_then(Path::parent);
    match project_dir {
        Some(p) if p.file_name().is_some_and(|n| n == "projects") => (
            p.parent().map(Path::to_owned),
            dir.and_then(|d| d.file_name())
                .map(|n| n.to_string_lossy().into_owned()),
        ),
        _ => (dir.map(Path::to_owned), None),
    }
}

/// Loads files named on the command line, each by its kind.
pub fn load_files(paths: &[PathBuf]) -> Result<DesiredState, LoadError> {
    load_files_with(paths, None)
}

/// [`load_files`], fetching what `hdaGraphRef` files name through
/// `artifacts`.
pub fn load_files_with(
    paths: &[PathBuf],
    artifacts: Option<&dyn super::Artifacts>,
) -> Result<DesiredState, LoadError> {
    let mut state = DesiredState {
        settings_valid: true,
        ..DesiredState::default()
    };
    let mut loaded = Vec::new();
    let charts = crate::descriptor::semantic::ChartMemo::default();
    for path in paths {
        if !path.exists() {
            return Err(LoadError::Missing { path: path.clone() });
        }
        let shown = path.display().to_string();
        match kind_of(path) {
            FileKind::Settings => {
                let (s, found) = load_settings(path, &shown);
                state.settings_valid &= s.is_some();
                state.findings.extend(found);
            }
            FileKind::Cluster => state.findings.extend(load_cluster(path, &shown).1),
            FileKind::Inventory => {
                if let Err(found) = crate::spec::inventory::load(path) {
                    state.findings.extend(found);
                }
            }
            FileKind::Config => {
                if let Err(crate::spec::config::ConfigError::Invalid { findings, .. }) =
                    crate::spec::config::load(path)
                {
                    state.findings.extend(findings);
                }
            }
            FileKind::Descriptor => {
                let (root, project) = locate(path);
                let known: Option<BTreeSet<String>> = root.as_ref().and_then(|r| {
                    let names: BTreeSet<String> = entries(&r.join("clusters"))
                        .ok()?
                        .iter()
                        .filter(|p| is_yaml(p))
                        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                        .collect();
                    (!names.is_empty()).then_some(names)
                });
                let l = load_descriptor(
                    path,
                    &shown,
                    root.as_deref(),
                    known.as_ref(),
                    artifacts,
                    Some(&charts),
                );
                let scope = root
                    .as_ref()
                    .map(|r| r.display().to_string())
                    .unwrap_or_default();
                loaded.push((scope, project.unwrap_or_default(), shown, l));
            }
        }
    }
    finish(&mut state, loaded);
    Ok(state)
}
