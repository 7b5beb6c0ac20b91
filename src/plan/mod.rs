//! Planning: from the desired state and the observed clusters to a
//! placement of every valid graph, with explanations. Pure; `smo plan`
//! prints it and the daemon will act on it.
//!
//! Graphs are placed as a fleet ([`place_fleet`]): graphs with pinned
//! services reserve their clusters first, flexible graphs are moved only to
//! make room for a graph that cannot be placed otherwise, and the plan does
//! not depend on file order.

pub mod dot;
pub mod problem;
pub mod report;
pub mod shape;

use crate::desired::DesiredState;
use crate::observe::clusters::ClusterFacts;
use crate::placement::{
    FleetGraph, FleetModel, PlacementOptions, ServicePlacement, place_fleet_models,
};
use crate::spec::settings::Settings;
use report::{CurrentPlacement, GraphPlan, PlanReport};

/// The reason shown for a service that `useStaticPlacement` leaves to its
/// chart.
pub const CHART_DECIDES: &str = "static (chart decides)";

/// Adds the services the charts place (static placement, no clusters
/// named), in descriptor order; a graph made only of them is `static`.
fn chart_decides(g: &crate::desired::Graph, settings: &Settings, plan: &mut GraphPlan) {
    let hda = &g.descriptor.hda_graph;
    if hda.services.iter().all(|s| hda.chart_decides(s)) {
        plan.status = "static".into();
        plan.strategy = "static".into();
        plan.objective = None;
        plan.solve = None;
        plan.error = None;
    }
    let mut placed = std::mem::take(&mut plan.services).into_iter();
    for (s, r) in hda.services.iter().zip(&g.resources) {
        if !hda.chart_decides(s) {
            plan.services.extend(placed.next());
            continue;
        }
        plan.services.push(ServicePlacement {
            id: s.id.to_string(),
            clusters: Vec::new(),
            replicas: s
                .deployment
                .intent
                .scaling
                .as_ref()
                .and_then(|sc| sc.min_replicas)
                .map_or(settings.scaling.min_replicas, |m| m.0),
            cpu: r.cpu_cores,
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            memory_bytes: r.memory_bytes as u64,
            gpu: r.gpu,
            reason: CHART_DECIDES.into(),
            rejected: Vec::new(),
        });
    }
    plan.services.extend(placed);
}

/// Places every valid graph of `state` on `facts`.
pub fn plan(
    state: &DesiredState,
    facts: &[ClusterFacts],
    current: &CurrentPlacement,
) -> PlanReport {
    plan_with_models(state, facts, current).0
}

/// A placed graph's model, for `smo plan --export-mps`.
pub struct GraphModel {
    /// `project/graph`.
    pub graph: String,
    pub model: FleetModel,
    pub options: PlacementOptions,
}

/// [`plan`], with the model each placed graph's answer came from.
pub fn plan_with_models(
    state: &DesiredState,
    facts: &[ClusterFacts],
    current: &CurrentPlacement,
) -> (PlanReport, Vec<GraphModel>) {
    let (clusters, latency) = problem::clusters(facts);
    let mut graphs: Vec<&crate::desired::Graph> = state.valid_graphs().collect();
    graphs.sort_by(|a, b| (&a.project, a.id()).cmp(&(&b.project, b.id())));

    let mut notes = Vec::new();
    let fleet: Vec<FleetGraph> = graphs
        .iter()
        .map(|g| {
            let key = (g.project.clone(), g.id().to_owned());
            let (problem, options, n) =
                problem::problem(g, &clusters, &latency, current.get(&key), &state.settings);
            notes.push(n);
            FleetGraph {
                name: crate::keys::GraphKey::new(&g.project, g.id()).to_string(),
                problem,
                options,
            }
        })
        .collect();
    let mut models = Vec::new();
    let results: Vec<_> = place_fleet_models(&clusters, &fleet)
        .into_iter()
        .zip(&fleet)
        .map(|((answer, model), f)| {
            if let Some(model) = model {
                models.push(GraphModel {
                    graph: f.name.clone(),
                    model,
                    options: f.options,
                });
            }
            answer
        })
        .collect();

    let mut plans: Vec<GraphPlan> = Vec::new();
    for ((g, f), (result, notes)) in graphs
        .iter()
        .zip(&fleet)
        .zip(results.into_iter().zip(notes))
    {
        let mut plan = GraphPlan {
            project: g.project.clone(),
            graph: g.id().to_owned(),
            strategy: f.options.strategy.to_string(),
            status: "placed".into(),
            services: Vec::new(),
            objective: None,
            solve: None,
            error: None,
            warnings: notes,
        };
        match result {
            Ok(outcome) => {
                plan.strategy = outcome.strategy.to_string();
                plan.services = outcome.services;
                plan.objective = Some(outcome.objective);
                plan.solve = Some(outcome.solve);
                plan.warnings.extend(outcome.warnings);
            }
            Err(e) => {
                plan.status = "infeasible".into();
                plan.error = Some(e.to_string());
            }
        }
        chart_decides(g, &state.settings, &mut plan);
        plans.push(plan);
    }
    // Invalid graphs appear with their status; their findings are listed.
    for entry in state.graphs.iter().filter(|e| e.graph.is_none()) {
        plans.push(GraphPlan {
            project: entry.project.clone(),
            graph: entry.id.clone().unwrap_or_else(|| entry.file.clone()),
            strategy: String::new(),
            status: "invalid".into(),
            services: Vec::new(),
            objective: None,
            solve: None,
            error: Some(format!("{} has errors; see findings", entry.file)),
            warnings: Vec::new(),
        });
    }
    let report = PlanReport {
        graphs: plans,
        findings: state.findings.clone(),
    };
    (report, models)
}
