//! Translates a validated graph and the observed clusters into the
//! placement engine's problem and options. Pure.
//!
//! Rules:
//! - edges come from `connectionPoints` (caller → callee) and from latency
//!   entries naming a connection point; the latency class is the entry's
//!   `qos` (best-effort when none is given);
//! - co-location groups are the connected components of `coLocation`
//!   references inside the graph (references into other graphs are
//!   reported and ignored: the other graph is placed on its own);
//! - pins are `deployment.intent.clusters`, or with `useStaticPlacement`
//!   the clusters the descriptor names (`clustersAffinity` in the values);
//!   with `useStaticPlacement` a service that names none is left to its
//!   chart and is not part of the problem (edges and co-location with it
//!   are dropped);
//! - replicas are the scaling minimum (the scaler raises them later);
//! - strategy and weights: the graph's `hdaGraphIntent.placement` over
//!   `smo.yaml`.

use crate::descriptor::model::{Qos, Strategy};
use crate::desired::Graph;
use crate::observe::clusters::ClusterFacts;
use crate::placement::{
    Cluster, Edge, GraphFlags, LatencyClass, LatencyEntry, LatencyMatrix, PlacementOptions,
    PlacementProblem, Service, StrategyKind, Weights,
};
use crate::spec::settings::{Settings, merge_weights};
use std::collections::BTreeMap;

/// Current placement of one graph: service id → clusters.
pub type Current = BTreeMap<String, Vec<String>>;

/// The engine's view of the clusters (shared by every graph of a fleet).
pub fn clusters(facts: &[ClusterFacts]) -> (Vec<Cluster>, LatencyMatrix) {
    let clusters = facts
        .iter()
        .map(|f| Cluster {
            name: f.name.clone(),
            ready: f.ready,
            schedulable: f.schedulable,
            free_cpu: f.free_cpu,
            // Quantities are whole bytes and devices; fractions are noise.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            free_memory_bytes: f.free_memory.max(0.0) as u64,
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            free_gpu: f.free_gpu.max(0.0).floor() as u32,
            // Unknown carbon intensity or cost counts as zero: such a
            // cluster is neither favoured nor penalised by that term.
            carbon_intensity: f.carbon_intensity.unwrap_or(0.0),
            cost_per_cpu_hour: f.cost_per_cpu_hour.unwrap_or(0.0),
            location: {
                let l = &f.location;
                let parts: Vec<&str> = [&l.region, &l.zone, &l.site]
                    .into_iter()
                    .flatten()
                    .map(String::as_str)
                    .collect();
                (!parts.is_empty()).then(|| parts.join("/"))
            },
        })
        .collect();
    let entries = facts
        .iter()
        .flat_map(|f| {
            f.latency_ms
                .iter()
                .filter(move |(to, _)| f.name < **to)
                .map(move |(to, ms)| LatencyEntry {
                    from: f.name.clone(),
                    to: to.clone(),
                    ms: *ms,
                })
        })
        .collect();
    (clusters, LatencyMatrix { entries })
}

fn class(q: Qos) -> LatencyClass {
    match q {
        Qos::UltraLow => LatencyClass::Ultralow,
        Qos::Low => LatencyClass::Low,
        Qos::BestEffort => LatencyClass::BestEffort,
    }
}

/// Builds one graph's problem. Returns notes worth showing the operator.
pub fn problem(
    graph: &Graph,
    clusters: &[Cluster],
    latency: &LatencyMatrix,
    current: Option<&Current>,
    settings: &Settings,
) -> (PlacementProblem, PlacementOptions, Vec<String>) {
    let mut notes = Vec::new();
    let hda = &graph.descriptor.hda_graph;
    // With `useStaticPlacement`, a service that names no clusters is left
    // to its chart (as the original SMO did): it is not placed at all.
    let placed: Vec<(&crate::descriptor::model::Service, _)> = hda
        .services
        .iter()
        .zip(&graph.resources)
        .filter(|(s, _)| !hda.chart_decides(s))
        .collect();
    let index: BTreeMap<&str, usize> = placed
        .iter()
        .enumerate()
        .map(|(i, (s, _))| (s.id.as_str(), i))
        .collect();
    let static_placement = hda.hda_graph_intent.use_static_placement.0;

    let services = placed
        .iter()
        .map(|&(s, r)| {
            let pinned = if static_placement {
                s.named_clusters().unwrap_or_default()
            } else {
                s.deployment
                    .intent
                    .clusters
                    .as_ref()
                    .map(|c| c.iter().map(|n| n.to_string()).collect())
                    .unwrap_or_default()
            };
            let replicas = s
                .deployment
                .intent
                .scaling
                .as_ref()
                .and_then(|sc| sc.min_replicas)
                .map_or(settings.scaling.min_replicas, |m| m.0);
            Service {
                id: s.id.to_string(),
                cpu: r.cpu_cores,
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                memory_bytes: r.memory_bytes as u64,
                gpu: r.gpu,
                replicas,
                pinned,
                current: current
                    .and_then(|c| c.get(s.id.as_str()))
                    .cloned()
                    .unwrap_or_default(),
            }
        })
        .collect();

    let mut edges: BTreeMap<(usize, usize), LatencyClass> = BTreeMap::new();
    for (i, (s, _)) in placed.iter().enumerate() {
        let intent = &s.deployment.intent;
        for cp in &intent.connection_points {
            if let Some(&j) = index.get(cp.as_str()) {
                edges.entry((i, j)).or_insert(LatencyClass::BestEffort);
            }
        }
        for l in &intent.network.latencies {
            if let Some(&j) = l.target().and_then(|t| index.get(t)) {
                // The strictest class named for a pair wins.
                let e = edges.entry((i, j)).or_insert(LatencyClass::BestEffort);
                *e = (*e).min(class(l.qos));
            }
        }
    }
    let edges = edges
        .into_iter()
        .map(|((caller, callee), latency)| Edge {
            caller,
            callee,
            latency,
            traffic: 1.0,
        })
        .collect();

    // Co-location groups: connected components (union-find over indices).
    let mut parent: Vec<usize> = (0..placed.len()).collect();
    fn root(p: &mut [usize], mut i: usize) -> usize {
        while p[i] != i {
            p[i] = p[p[i]];
            i = p[i];
        }
        i
    }
    for (i, (s, _)) in placed.iter().enumerate() {
        for co in &s.deployment.intent.co_location {
            if let Some(other) = co.other_graph(hda.id.as_str()) {
                notes.push(format!(
                    "{}: co-location with `{}` of graph `{other}` is not enforced; graphs are placed separately",
                    s.id,
                    co.id()
                ));
                continue;
            }
            if let Some(&j) = index.get(co.id()) {
                let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                parent[a.max(b)] = a.min(b);
            }
        }
    }
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..placed.len() {
        let r = root(&mut parent, i);
        groups.entry(r).or_default().push(i);
    }
    let co_location = groups.into_values().filter(|g| g.len() > 1).collect();

    let intent = &hda.hda_graph_intent;
    let flags = GraphFlags {
        high_availability: intent.high_availability.enabled.0,
        high_performance: intent.high_performance.on(),
        energy_efficiency: intent.energy_efficiency.on(),
    };
    let p = &settings.placement;
    let graph_placement = intent.placement.clone().unwrap_or_default();
    let w = merge_weights(p.weights, &graph_placement.weights);
    let strategy = match graph_placement.strategy.unwrap_or(p.strategy) {
        Strategy::Milp => StrategyKind::Milp,
        Strategy::FirstFit => StrategyKind::FirstFit,
    };
    let options = PlacementOptions {
        strategy,
        weights: Weights {
            movement: w.movement,
            traffic: w.traffic,
            energy: w.energy,
            cost: w.cost,
            balance: w.balance,
        },
        time_limit_s: p.time_limit.as_secs_f64(),
        mip_gap: p.mip_gap,
        low_latency_ms: p.low_latency_ms,
    };
    let problem = PlacementProblem {
        services,
        edges,
        co_location,
        clusters: clusters.to_vec(),
        latency: latency.clone(),
        flags,
    };
    (problem, options, notes)
}
