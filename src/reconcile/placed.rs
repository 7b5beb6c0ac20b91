//! A graph's placement in a reconcile: the recorded one is kept while its
//! inputs, its revision and the clusters it uses hold (a NotReady cluster
//! only past the failover grace period); otherwise the placement model is
//! solved again (off the async workers).

use super::batch::Batch;
use super::engine::World;
use super::error::{Reason, StepError};
use crate::desired::Graph;
use crate::placement::place;
use crate::plan::problem;
use crate::release::Placement;
use crate::store::Kind;
use crate::store::records::GraphRecord;
use serde_json::Value;
use std::time::Duration;

/// Whether the recorded placement is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keep {
    /// Kept; look again after `recheck` (a grace period running).
    Yes { recheck: Option<Duration> },
    /// Recomputed, and why.
    No(&'static str),
}

/// Keeps the recorded placement while its inputs are unchanged, every
/// service has clusters, and every cluster it uses is known and ready (or
/// NotReady for less than the grace period: then look again when it ends).
pub fn keep_placement(
    world: &World,
    graph: &Graph,
    rec: &GraphRecord,
    inputs_hash: &str,
    revision: Option<&str>,
    grace: Duration,
    now: u64,
) -> Keep {
    if rec.placement.is_empty() {
        return Keep::No("first placement");
    }
    if rec.placement_inputs_hash.as_deref() != Some(inputs_hash) {
        return Keep::No("placement inputs changed");
    }
    if rec.placement_revision.as_deref() != revision {
        return Keep::No("hdaGraphIntent.placement.revision changed");
    }
    let hda = &graph.descriptor.hda_graph;
    if hda
        .services
        .iter()
        .filter(|s| !hda.chart_decides(s))
        .any(|s| rec.placement.get(s.id.as_str()).is_none_or(Vec::is_empty))
    {
        return Keep::No("a service has no placement");
    }
    let mut recheck: Option<Duration> = None;
    for cluster in rec.placement.values().flatten() {
        let Some(facts) = world.clusters.iter().find(|c| &c.name == cluster) else {
            return Keep::No("a cluster in use left the inventory");
        };
        if !facts.schedulable {
            return Keep::No("a cluster in use was cordoned");
        }
        if !facts.ready {
            let since = world.not_ready_since.get(cluster).copied().unwrap_or(now);
            let elapsed = Duration::from_secs(now.saturating_sub(since));
            if elapsed >= grace {
                return Keep::No("failover: a cluster in use is NotReady past the grace period");
            }
            let left = grace - elapsed + Duration::from_secs(1);
            recheck = Some(recheck.map_or(left, |r| r.min(left)));
        }
    }
    Keep::Yes { recheck }
}

/// `hdaGraphIntent.placement.revision` as recorded (changing it forces a
/// fresh placement).
pub fn placement_revision(graph: &Graph) -> Option<String> {
    graph
        .descriptor
        .hda_graph
        .hda_graph_intent
        .placement
        .as_ref()
        .and_then(|p| p.revision.as_ref())
        .map(|r| match r {
            crate::descriptor::model::Revision::Int(i) => i.to_string(),
            crate::descriptor::model::Revision::Text(t) => t.clone(),
        })
}

/// Hash of what placement depends on in the descriptor: service ids,
/// resources and intents, and the graph intent. Values and charts are not
/// placement inputs.
pub fn placement_inputs_hash(graph: &Graph) -> String {
    graph
        .memo
        .placement_inputs_hash
        .get_or_init(|| compute_placement_inputs_hash(graph))
        .clone()
}

fn compute_placement_inputs_hash(graph: &Graph) -> String {
    let hda = &graph.descriptor.hda_graph;
    let services: Vec<Value> = hda
        .services
        .iter()
        .zip(&graph.resources)
        .map(|(s, r)| {
            serde_json::json!({
                "id": s.id.as_str(),
                "intent": serde_json::to_value(&s.deployment.intent).unwrap_or(Value::Null),
                "cpu": r.cpu_cores, "memory": r.memory_bytes, "gpu": r.gpu,
            })
        })
        .collect();
    crate::digest::json_sha256(&serde_json::json!({
        "services": services,
        "intent": serde_json::to_value(&hda.hda_graph_intent).unwrap_or(Value::Null),
    }))
}

fn describe(p: &Placement) -> String {
    p.iter()
        .map(|(s, c)| format!("{s}→{}", c.join("+")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The placement to use this pass, with the time to look again when a
/// grace period is running; a new placement is recorded in the batch.
pub async fn resolve(
    world: &World,
    graph: &Graph,
    batch: &mut Batch,
    metrics: &crate::metrics::Metrics,
    now: u64,
) -> Result<(Placement, Option<Duration>), StepError> {
    let hda = &graph.descriptor.hda_graph;
    if hda.services.iter().all(|s| hda.chart_decides(s)) {
        // Static placement with no cluster named anywhere: the charts
        // decide, there is nothing to solve.
        let rec = batch
            .graph
            .as_mut()
            .expect("the engine creates the record first");
        rec.placement.clear();
        rec.placement_inputs_hash = None;
        return Ok((Placement::new(), None));
    }
    let inputs_hash = placement_inputs_hash(graph);
    let revision = placement_revision(graph);
    let requested = world.replace.get(&batch.key).cloned();
    if let Some(why) = &requested {
        batch.event(
            None,
            Kind::ReplacementRequested,
            format!("by the scaler: {why}"),
        );
    }
    let rec = batch
        .graph
        .as_mut()
        .expect("the engine creates the record first");
    let keep = match requested {
        Some(_) => Keep::No("the scaler cannot serve the load where the graph runs"),
        None => keep_placement(
            world,
            graph,
            rec,
            &inputs_hash,
            revision.as_deref(),
            world.desired.settings.placement.failover_grace,
            now,
        ),
    };
    let reason = match keep {
        Keep::Yes { recheck } => return Ok((rec.placement.clone(), recheck)),
        Keep::No(reason) => reason,
    };
    let started = std::time::Instant::now();
    let placed = solve(world, graph, rec.placement.clone()).await;
    metrics.observe(
        crate::metrics::Family::SolverDuration,
        &["placement"],
        started.elapsed().as_secs_f64(),
    );
    let p = placed?;
    let event = if rec.placement.is_empty() {
        Some((Kind::Placed, describe(&p)))
    } else if rec.placement != p {
        Some((
            Kind::Replaced,
            format!("re-placed ({reason}): {}", describe(&p)),
        ))
    } else {
        None
    };
    rec.placement = p.clone();
    rec.placement_inputs_hash = Some(inputs_hash);
    rec.placement_revision = revision;
    if let Some((kind, message)) = event {
        batch.event(None, kind, message);
    }
    Ok((p, None))
}

/// Places one graph on `facts`, movement measured from `current` (a
/// MILP: call it off the async workers). Shared with `smo diff`, so that
/// it predicts what the daemon would do.
pub fn place_graph(
    graph: &Graph,
    facts: &[crate::observe::clusters::ClusterFacts],
    current: &Placement,
    settings: &crate::spec::settings::Settings,
) -> Result<Placement, String> {
    let (clusters, latency) = problem::clusters(facts);
    let (problem, options, _notes) =
        problem::problem(graph, &clusters, &latency, Some(current), settings);
    let outcome = place(&problem, &options).map_err(|e| e.to_string())?;
    Ok(outcome
        .services
        .into_iter()
        .map(|s| (s.id, s.clusters))
        .collect())
}

/// Places one graph on the current clusters, off the async workers.
async fn solve(world: &World, graph: &Graph, current: Placement) -> Result<Placement, StepError> {
    let facts = world.clusters.clone();
    let graph = graph.clone();
    let settings = world.desired.settings.clone();
    let failed =
        |e: String| StepError::terminal(Reason::Placement, format!("placement failed: {e}"));
    tokio::task::spawn_blocking(move || place_graph(&graph, &facts, &current, &settings))
        .await
        .map_err(|e| StepError::transient(Reason::Internal, format!("placement task failed: {e}")))?
        .map_err(failed)
}
