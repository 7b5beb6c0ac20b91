//! The cross-file checks of a load, run over every file's outcome (never
//! cached, see [`super::incremental`]): duplicate graph identities and
//! service ids shared by two graphs of a project (their Helm releases would
//! clash) are errors on every file involved; then intents are translated
//! and findings sorted.

use super::loader::Loaded;
use super::{DesiredState, Graph, GraphEntry};
use crate::desired::intent::translate;
use crate::validate::findings::{self, Finding, Severity};
use std::collections::BTreeMap;

/// One loaded descriptor: the state root it belongs to (empty for the root
/// being loaded), its project, its shown path and its outcome.
pub(crate) type Entry = (String, String, String, Loaded);

/// Marks duplicate identities, translates intents, sorts findings. Graph
/// identity is `(project, id)` within one state root; a file outside any
/// `projects/<project>/` folder has no identity to collide with.
pub(crate) fn finish(state: &mut DesiredState, loaded: Vec<Entry>) {
    let mut by_identity: BTreeMap<(String, String, String), Vec<String>> = BTreeMap::new();
    for (scope, project, shown, l) in &loaded {
        if let Some(id) = l.id.as_ref().filter(|_| !project.is_empty()) {
            by_identity
                .entry((scope.clone(), project.clone(), id.clone()))
                .or_default()
                .push(shown.clone());
        }
    }
    // Releases are named after services in the project's namespace: two
    // graphs of one project with a service of the same id would share (and
    // fight over, and uninstall) one release.
    let mut by_service: BTreeMap<(String, String, String), Vec<(String, String)>> = BTreeMap::new();
    for (scope, project, shown, l) in &loaded {
        if let (Some(d), false) = (&l.descriptor, project.is_empty()) {
            for s in &d.hda_graph.services {
                by_service
                    .entry((scope.clone(), project.clone(), s.id.to_string()))
                    .or_default()
                    .push((shown.clone(), d.hda_graph.id.to_string()));
            }
        }
    }
    for (scope, project, shown, mut l) in loaded {
        if let Some(d) = &l.descriptor {
            let mut clash = false;
            for (i, s) in d.hda_graph.services.iter().enumerate() {
                let key = (scope.clone(), project.clone(), s.id.to_string());
                let others: Vec<String> = by_service
                    .get(&key)
                    .map_or(&[][..], Vec::as_slice)
                    .iter()
                    // Two files of one graph are reported as a duplicate
                    // identity instead.
                    .filter(|(file, graph)| {
                        *file != shown && graph.as_str() != d.hda_graph.id.as_str()
                    })
                    .map(|(file, graph)| format!("graph `{graph}` ({file})"))
                    .collect();
                if !others.is_empty() {
                    clash = true;
                    let pos = l.service_pos.get(i).copied().unwrap_or(l.id_pos);
                    l.findings.push(Finding::new(&shown, pos, format!("/hdaGraph/services/{i}/id"), Severity::Error, format!(
                        "service `{}` is also a service of {} in project `{project}`; a service's Helm release is named after it in the project's namespace, so ids must be unique within a project (neither graph is applied)",
                        s.id,
                        others.join(", ")
                    )));
                }
            }
            if clash {
                l.descriptor = None;
            }
        }
        if let Some(id) = &l.id {
            let files = by_identity
                .get(&(scope, project.clone(), id.clone()))
                .map_or(&[][..], Vec::as_slice);
            if files.len() > 1 {
                let others: Vec<&str> = files
                    .iter()
                    .filter(|f| **f != shown)
                    .map(String::as_str)
                    .collect();
                l.findings.push(Finding::new(&shown, l.id_pos, "/hdaGraph/id", Severity::Error, format!(
                    "graph `{id}` of project `{project}` is also declared in {}; declare each graph once (neither file is applied)",
                    others.join(", ")
                )));
                l.descriptor = None;
            }
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
