//! Planning: from the desired state and the observed clusters to a
//! placement of every valid graph, with explanations. Pure; `smo plan`
//! prints it and the daemon will act on it.
//!
//! Graphs are placed in a stable order (project, then graph id), each seeing
//! the capacity the previous ones consumed.

pub mod problem;
pub mod report;

use crate::desired::DesiredState;
use crate::observe::clusters::ClusterFacts;
use crate::placement::{FleetGraph, place_fleet};
use report::{CurrentPlacement, GraphPlan, PlanReport};

/// Places every valid graph of `state` on `facts`.
pub fn plan(
    state: &DesiredState,
    facts: &[ClusterFacts],
    current: &CurrentPlacement,
) -> PlanReport {
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
    let results = place_fleet(&clusters, &fleet);

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
    PlanReport {
        graphs: plans,
        findings: state.findings.clone(),
    }
}
