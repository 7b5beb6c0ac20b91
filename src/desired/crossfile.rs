//! The cross-file checks of a load, run over every file's outcome (never
//! cached, see [`super::incremental`]): duplicate graph identities and
//! service ids shared by two graphs of a project (their Helm releases would
//! clash) are errors on every file involved; then intents are translated
//! and findings sorted.

use super::loader::Loaded;
use super::{DesiredState, Graph, GraphEntry};
use crate::desired::intent::translate;
use crate::validate::findings::{self, Finding, Severity};
use std::collections::HashMap;

/// One loaded descriptor: the state root it belongs to (empty for the root
/// being loaded), its project, its shown path and its outcome.
pub(crate) type Entry = (String, String, String, Loaded);

/// Marks duplicate identities, translates intents, sorts findings. Graph
/// identity is `(project, id)` within one state root; a file outside any
/// `projects/<project>/` folder has no identity to collide with.
pub(crate) fn finish(state: &mut DesiredState, loaded: Vec<Entry>) {
    let verdicts = cross_checks(&loaded);
    for ((_, project, shown, mut l), (found, drop)) in loaded.into_iter().zip(verdicts) {
        l.findings.extend(found);
        if drop {
            l.descriptor = None;
        }
        let origin = l.origin;
        state.references += usize::from(l.reference);
        let graph = l.descriptor.map(|descriptor| {
            let resources = descriptor
                .hda_graph
                .services
                .iter()
                .map(|s| translate(s, &state.settings.intents))
                .collect();
            Graph {
                project: project.clone(),
                file: shown.clone(),
                descriptor,
                resources,
                origin,
                memo: super::Memo::default(),
            }
        });
        state.findings.extend(l.findings);
        state.graphs.push(GraphEntry {
            project,
            id: l.id,
            file: shown,
            graph,
        });
    }
    findings::sort(&mut state.findings);
}

/// Per entry, in order: the cross-file errors found on it and whether they
/// keep its graph from being applied. Keys borrow from the entries: a load
/// of thousands of services allocates nothing per lookup.
fn cross_checks(loaded: &[Entry]) -> Vec<(Vec<Finding>, bool)> {
    type Key<'a> = (&'a str, &'a str, &'a str);
    let mut by_identity: HashMap<Key<'_>, Vec<&str>> = HashMap::new();
    // Releases are named after services in the project's namespace: two
    // graphs of one project with a service of the same id would share (and
    // fight over, and uninstall) one release.
    let mut by_service: HashMap<Key<'_>, Vec<(&str, &str)>> = HashMap::new();
    for (scope, project, shown, l) in loaded {
        if project.is_empty() {
            continue;
        }
        if let Some(id) = &l.id {
            by_identity
                .entry((scope, project, id))
                .or_default()
                .push(shown);
        }
        if let Some(d) = &l.descriptor {
            for s in &d.hda_graph.services {
                by_service
                    .entry((scope, project, s.id.as_str()))
                    .or_default()
                    .push((shown, d.hda_graph.id.as_str()));
            }
        }
    }
    loaded
        .iter()
        .map(|(scope, project, shown, l)| {
            let mut found = Vec::new();
            let mut drop = false;
            if let Some(d) = &l.descriptor {
                for (i, s) in d.hda_graph.services.iter().enumerate() {
                    let others: Vec<String> = by_service
                        .get(&(scope.as_str(), project.as_str(), s.id.as_str()))
                        .map_or(&[][..], Vec::as_slice)
                        .iter()
                        // Two files of one graph are reported as a
                        // duplicate identity instead.
                        .filter(|(file, graph)| file != shown && *graph != d.hda_graph.id.as_str())
                        .map(|(file, graph)| format!("graph `{graph}` ({file})"))
                        .collect();
                    if !others.is_empty() {
                        drop = true;
                        let pos = l.service_pos.get(i).copied().unwrap_or(l.id_pos);
                        found.push(Finding::new(shown, pos, format!("/hdaGraph/services/{i}/id"), Severity::Error, format!(
                            "service `{}` is also a service of {} in project `{project}`; a service's Helm release is named after it in the project's namespace, so ids must be unique within a project (neither graph is applied)",
                            s.id,
                            others.join(", ")
                        )));
                    }
                }
            }
            if let Some(id) = l.id.as_deref().filter(|_| !project.is_empty()) {
                let files = by_identity
                    .get(&(scope.as_str(), project.as_str(), id))
                    .map_or(&[][..], Vec::as_slice);
                if files.len() > 1 {
                    let others: Vec<&str> =
                        files.iter().copied().filter(|f| f != shown).collect();
                    found.push(Finding::new(shown, l.id_pos, "/hdaGraph/id", Severity::Error, format!(
                        "graph `{id}` of project `{project}` is also declared in {}; declare each graph once (neither file is applied)",
                        others.join(", ")
                    )));
                    drop = true;
                }
            }
            (found, drop)
        })
        .collect()
}
