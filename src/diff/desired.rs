//! The desired side of `smo diff` before rendering: which graphs are
//! declared or held, and where each graph runs, decided as the daemon
//! decides it (`reconcile::placed`): the placement it runs with is kept
//! while every service has clusters that are known, ready and
//! schedulable (and, when the store says so, while the placement inputs
//! and revision are unchanged); otherwise the graph is placed again,
//! alone, with that placement as the current one (`smo diff` then makes
//! room for a graph that does not fit, as the daemon does). Pure apart
//! from the solver.

use super::Desired;
use crate::desired::{DesiredState, Graph};
use crate::keys::GraphKey;
use crate::observe::clusters::ClusterFacts;
use crate::release::Placement;
use crate::spec::settings::Settings;

/// Where a graph runs now, as the observed side tells.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Running {
    pub placement: Placement,
    /// Whether the placement inputs (and revision) are those the placement
    /// was made for; `None` when the observed side cannot tell (live).
    pub inputs_unchanged: Option<bool>,
}

/// The declared graphs and the held ones, with an empty service list (the
/// CLI fills it once rendered).
pub fn skeleton(state: &DesiredState) -> Desired {
    let mut d = Desired::default();
    for e in &state.graphs {
        match (&e.graph, &e.id) {
            (Some(g), _) => {
                d.declared.insert(GraphKey::new(&g.project, g.id()));
            }
            (None, Some(id)) => {
                d.held_graphs.insert(
                    GraphKey::new(&e.project, id),
                    format!("{} has errors", e.file),
                );
            }
            (None, None) => {
                d.held_projects.insert(
                    e.project.clone(),
                    format!("{} declares no readable graph", e.file),
                );
            }
        }
    }
    d
}

/// Whether `running` may be kept for `graph` on these clusters.
fn keep(graph: &Graph, running: &Running, facts: &[ClusterFacts]) -> bool {
    if running.placement.is_empty() || running.inputs_unchanged == Some(false) {
        return false;
    }
    let hda = &graph.descriptor.hda_graph;
    let placed = hda
        .services
        .iter()
        .filter(|s| !hda.chart_decides(s))
        .all(|s| {
            running
                .placement
                .get(s.id.as_str())
                .is_some_and(|c| !c.is_empty())
        });
    placed
        && running.placement.values().flatten().all(|c| {
            facts
                .iter()
                .any(|f| &f.name == c && f.ready && f.schedulable)
        })
}

/// The placement the daemon would install `graph` with, or why it cannot
/// be placed.
pub fn placement(
    graph: &Graph,
    facts: &[ClusterFacts],
    settings: &Settings,
    running: Option<&Running>,
) -> Result<Placement, String> {
    let hda = &graph.descriptor.hda_graph;
    if hda.services.iter().all(|s| hda.chart_decides(s)) {
        return Ok(Placement::new());
    }
    if let Some(r) = running.filter(|r| keep(graph, r, facts)) {
        return Ok(r.placement.clone());
    }
    let current = running.map(|r| r.placement.clone()).unwrap_or_default();
    crate::reconcile::placed::place_graph(graph, facts, &current, settings)
        .map_err(|e| e.to_string())
}

/// Where the services of a live graph run, from their releases' values
/// (`clustersAffinity`, under `voChartOverwrite` for WoT charts).
pub fn from_values<'a>(
    releases: impl Iterator<Item = (&'a str, &'a serde_json::Value)>,
) -> Placement {
    releases
        .filter_map(|(service, values)| {
            let list = values
                .get("clustersAffinity")
                .or_else(|| values.pointer("/voChartOverwrite/clustersAffinity"))?
                .as_array()?;
            let clusters: Vec<String> = list
                .iter()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect();
            Some((service.to_owned(), clusters))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn state() -> DesiredState {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("state-example");
        crate::desired::loader::load_root(&root).unwrap()
    }

    fn facts(state: &DesiredState) -> Vec<ClusterFacts> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("state-example");
        let inventory = crate::spec::inventory::load(&root.join("inventory.yaml")).unwrap();
        crate::observe::clusters::merge(&inventory, &state.clusters).0
    }

    fn demo2(state: &DesiredState) -> &Graph {
        state.valid_graphs().find(|g| g.project == "demo2").unwrap()
    }

    #[test]
    fn a_running_placement_on_ready_clusters_is_kept() {
        let s = state();
        let f = facts(&s);
        let g = demo2(&s);
        // Not where the model would put it, but valid: kept.
        let running = Running {
            placement: [
                ("web-frontend".to_owned(), vec!["athens-core".to_owned()]),
                ("ml-inference".to_owned(), vec!["lyon-gpu".to_owned()]),
            ]
            .into(),
            inputs_unchanged: None,
        };
        let p = placement(g, &f, &s.settings, Some(&running)).unwrap();
        assert_eq!(p, running.placement);
        // Changed inputs, or a cluster that left: placed again.
        let changed = Running {
            inputs_unchanged: Some(false),
            ..running.clone()
        };
        let fresh = placement(g, &f, &s.settings, Some(&changed)).unwrap();
        assert_eq!(fresh["ml-inference"], ["lyon-gpu"]);
        let mut gone = running.clone();
        gone.placement
            .insert("web-frontend".into(), vec!["nowhere".into()]);
        let again = placement(g, &f, &s.settings, Some(&gone)).unwrap();
        assert!(!again["web-frontend"].contains(&"nowhere".to_owned()));
    }

    #[test]
    fn static_graphs_have_no_placement_and_values_tell_where_services_run() {
        let s = state();
        let athens = s.valid_graphs().find(|g| g.project == "athens").unwrap();
        assert!(
            placement(athens, &facts(&s), &s.settings, None)
                .unwrap()
                .is_empty()
        );
        let (a, b, c) = (
            json!({"clustersAffinity": ["x"]}),
            json!({"voChartOverwrite": {"clustersAffinity": ["y", "z"]}}),
            json!({"other": 1}),
        );
        let p = from_values([("a", &a), ("b", &b), ("c", &c)].into_iter());
        assert_eq!(p["a"], ["x"]);
        assert_eq!(p["b"], ["y", "z"]);
        assert!(!p.contains_key("c"));
    }

    #[test]
    fn invalid_and_unreadable_files_hold_their_graph_or_project() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("projects/p");
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("bad.yaml"), "hdaGraph:\n  id: g\n  services: 3\n").unwrap();
        std::fs::write(p.join("broken.yaml"), "a: [\n").unwrap();
        let state = crate::desired::loader::load_root(dir.path()).unwrap();
        let d = skeleton(&state);
        assert!(d.declared.is_empty());
        assert!(
            d.held_graphs.contains_key(&GraphKey::new("p", "g")),
            "{d:?}"
        );
        assert!(d.held_projects.contains_key("p"), "{d:?}");
    }
}
