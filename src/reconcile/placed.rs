//! A graph's placement in a reconcile: the recorded one is kept while its
//! inputs, its revision and the clusters it uses hold (a NotReady cluster
//! only past the failover grace period); otherwise the placement model is
//! solved again (off the async workers).

use super::batch::Batch;
use super::engine::World;
use super::error::{Reason, StepError};
use super::room::{self, Room};
use crate::desired::Graph;
use crate::placement::{PlacementError, place};
use crate::plan::problem;
use crate::release::Placement;
use crate::store::records::{GraphRecord, MoveRecord};
use crate::store::{Kind, Store};
use serde_json::Value;
use std::sync::Arc;
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
    if leaves_a_service_out(graph, &rec.placement) {
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

/// Whether a service the model places (not left to its chart) has no
/// cluster in `placement`.
fn leaves_a_service_out(graph: &Graph, placement: &Placement) -> bool {
    let hda = &graph.descriptor.hda_graph;
    hda.services
        .iter()
        .filter(|s| !hda.chart_decides(s))
        .any(|s| placement.get(s.id.as_str()).is_none_or(Vec::is_empty))
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
    store: &Arc<Store>,
    metrics: &crate::metrics::Metrics,
    now: u64,
) -> Result<(Placement, Option<Duration>), StepError> {
    let hda = &graph.descriptor.hda_graph;
    // A move asked of this graph is taken now, made or dropped.
    let asked = batch.move_asked.clone();
    batch.move_taken = asked.is_some();
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
    if let Some(m) = asked {
        match move_applies(world, graph, &m, &inputs_hash) {
            Ok(()) => {
                let rec = batch
                    .graph
                    .as_mut()
                    .expect("the engine creates the record first");
                let p = m.placement;
                if rec.placement != p {
                    let message = format!(
                        "re-placed (to make room for {}): {}",
                        m.for_graph,
                        describe(&p)
                    );
                    batch.event(None, Kind::Replaced, message);
                }
                let rec = batch.graph.as_mut().expect("checked above");
                rec.placement = p.clone();
                rec.placement_inputs_hash = Some(inputs_hash);
                rec.placement_revision = revision;
                return Ok((p, None));
            }
            Err(why) => tracing::warn!(
                for_graph = %m.for_graph,
                why,
                "the move asked of this graph is dropped; placing it as usual"
            ),
        }
    }
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
    let current = rec.placement.clone();
    let placed = solve(world, graph, current.clone()).await;
    metrics.observe(
        crate::metrics::Family::SolverDuration,
        &["placement"],
        started.elapsed().as_secs_f64(),
    );
    let (p, moves) = match placed? {
        Ok(p) => (p, Vec::new()),
        Err(e) if room_may_help(&e) => with_room(world, graph, &current, store, now, &e).await?,
        Err(e) => return Err(placement_failed(&e)),
    };
    let rec = batch
        .graph
        .as_mut()
        .expect("the engine creates the record first");
    let making_room = if moves.is_empty() {
        String::new()
    } else {
        let graphs: Vec<String> = moves.iter().map(MoveRecord::key).collect();
        format!("; moving {} to make room", graphs.join(", "))
    };
    let event = if rec.placement.is_empty() {
        Some((Kind::Placed, format!("{}{making_room}", describe(&p))))
    } else if rec.placement != p {
        Some((
            Kind::Replaced,
            format!("re-placed ({reason}): {}{making_room}", describe(&p)),
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
    batch.moves = moves;
    Ok((p, None))
}

/// Whether a move asked of the graph can still be made: planned on the
/// graph's current placement inputs, naming clusters for every service the
/// model places, all of them known, ready and schedulable.
fn move_applies(
    world: &World,
    graph: &Graph,
    m: &MoveRecord,
    inputs_hash: &str,
) -> Result<(), &'static str> {
    if m.inputs_hash != inputs_hash {
        return Err("the graph's placement inputs changed since");
    }
    if leaves_a_service_out(graph, &m.placement) {
        return Err("it leaves a service without a cluster");
    }
    let usable = |name: &String| {
        world
            .clusters
            .iter()
            .any(|c| &c.name == name && c.ready && c.schedulable)
    };
    if !m.placement.values().flatten().all(usable) {
        return Err("a cluster it names is gone, NotReady or cordoned");
    }
    Ok(())
}

/// Whether moving other graphs could make a failed placement possible: the
/// model found no answer on the capacity left (an inconsistent input or a
/// solver failure is not about capacity).
fn room_may_help(e: &PlacementError) -> bool {
    !matches!(
        e,
        PlacementError::InvalidInput(_) | PlacementError::Solver(_)
    )
}

fn placement_failed(e: &PlacementError) -> StepError {
    StepError::terminal(Reason::Placement, format!("placement failed: {e}"))
}

/// The graph failed to place on its own (`failed`): room made by moving
/// flexible graphs, or the failure (held for a retry while earlier moves
/// are pending).
async fn with_room(
    world: &World,
    graph: &Graph,
    current: &Placement,
    store: &Arc<Store>,
    now: u64,
    failed: &PlacementError,
) -> Result<(Placement, Vec<MoveRecord>), StepError> {
    let room = room::make(world, graph, current, store, now)
        .await
        .map_err(|e| StepError::transient(Reason::Internal, format!("reading the store: {e}")))?;
    match room {
        Room::Made { placement, moves } => Ok((placement, moves)),
        Room::None => Err(placement_failed(failed)),
        Room::Pending(graphs) => Err(StepError::transient(
            Reason::Placement,
            format!(
                "placement failed: {failed}; waiting for {} to move before looking for room",
                graphs.join(", ")
            ),
        )),
    }
}

/// Places one graph on `facts`, movement measured from `current` (a
/// MILP: call it off the async workers). Shared with `smo diff`, so that
/// it predicts what the daemon would do.
pub fn place_graph(
    graph: &Graph,
    facts: &[crate::observe::clusters::ClusterFacts],
    current: &Placement,
    settings: &crate::spec::settings::Settings,
) -> Result<Placement, PlacementError> {
    let (clusters, latency) = problem::clusters(facts);
    let (problem, options, _notes) =
        problem::problem(graph, &clusters, &latency, Some(current), settings);
    let outcome = place(&problem, &options)?;
    Ok(outcome
        .services
        .into_iter()
        .map(|s| (s.id, s.clusters))
        .collect())
}

/// Places one graph on the current clusters, off the async workers.
async fn solve(
    world: &World,
    graph: &Graph,
    current: Placement,
) -> Result<Result<Placement, PlacementError>, StepError> {
    let facts = world.clusters.clone();
    let graph = graph.clone();
    let settings = world.desired.settings.clone();
    tokio::task::spawn_blocking(move || place_graph(&graph, &facts, &current, &settings))
        .await
        .map_err(|e| StepError::transient(Reason::Internal, format!("placement task failed: {e}")))
}
