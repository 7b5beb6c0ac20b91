//! The scaling loop: every `intervals.scaling`, for each deployed service
//! with `deployment.intent.scaling`, read its request rate from Prometheus
//! and its replicas from Karmada, solve the scaling model per cluster
//! ([`crate::scaling`]), hold scale-downs for the stabilisation window, and
//! write the replicas through the scale subresource (field manager
//! `smo-scaler`; the reconciler re-asserts them after every upgrade).
//!
//! What the loop cannot decide it reports instead of guessing: no data
//! counts as rate 0 but is noted as such; an unreachable Prometheus keeps
//! the current replicas; a rate beyond what `maxReplicas` serve scales to
//! the maximum and asks for re-placement of the graph.

use crate::adapters::karmada::{Karmada, ObjectRef};
use crate::adapters::manifest;
use crate::adapters::prometheus::Prometheus;
use crate::desired::Graph;
use crate::locks::RwLockExt;
use crate::metrics::{Family, Metrics};
use crate::observe::clusters::ClusterFacts;
use crate::reconcile::engine::World;
use crate::scaling::query::rate_query;
use crate::scaling::stabilise::{Recommendation, stabilised};
use crate::scaling::{
    ReplacementReason, ScalingError, ScalingOptions, ScalingProblem, ScalingService, scale,
};
use crate::spec::settings::ScalingSettings;
use crate::store::records::{ScaleRecord, ServicePhase, ServiceRecord};
use crate::store::{Store, StoreError};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ScalerError {
    #[error("state store: {0}")]
    Store(#[from] StoreError),
    #[error("scaler task failed: {0}")]
    Join(String),
}

/// One tick's result for the daemon.
#[derive(Debug, Default)]
pub struct TickReport {
    /// Graphs whose scaling record changed (their status is refreshed).
    pub changed: Vec<crate::keys::GraphKey>,
    /// Graphs to re-place, with the reason.
    pub replace: Vec<(crate::keys::GraphKey, String)>,
}

pub struct Scaler {
    pub prometheus: Prometheus,
    pub karmada: Karmada,
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    /// Service key → recent recommendations (the stabilisation window).
    history: HashMap<String, Vec<Recommendation>>,
    /// Graph key → when re-placement was last requested.
    replaced: HashMap<String, std::time::Instant>,
    started: std::time::Instant,
}

/// A scaled service of the desired state with what the store knows of it.
struct Target<'a> {
    graph: &'a Graph,
    index: usize,
    record: ServiceRecord,
}

impl Scaler {
    pub fn new(
        prometheus: Prometheus,
        karmada: Karmada,
        store: Arc<Store>,
        metrics: Arc<Metrics>,
    ) -> Scaler {
        Scaler {
            prometheus,
            karmada,
            store,
            metrics,
            history: HashMap::new(),
            replaced: HashMap::new(),
            started: std::time::Instant::now(),
        }
    }

    /// One pass over every scaled service.
    #[tracing::instrument(name = "scale", skip_all)]
    pub async fn tick(&mut self, world: &World) -> Result<TickReport, ScalerError> {
        let store = Arc::clone(&self.store);
        let (records, previous) = tokio::task::spawn_blocking(move || {
            Ok::<_, StoreError>((store.services()?, store.scales()?))
        })
        .await
        .map_err(|e| ScalerError::Join(e.to_string()))??;
        let records: HashMap<String, ServiceRecord> =
            records.into_iter().map(|r| (r.key(), r)).collect();
        let previous: HashMap<String, ScaleRecord> =
            previous.into_iter().map(|r| (r.key(), r)).collect();
        let settings = &world.desired.settings.scaling;
        let mut report = TickReport::default();
        for entry in &world.desired.graphs {
            let Some(graph) = &entry.graph else { continue };
            if graph.descriptor.hda_graph.suspend {
                continue;
            }
            let targets: Vec<Target> = graph
                .descriptor
                .hda_graph
                .services
                .iter()
                .enumerate()
                .filter(|(_, s)| s.deployment.intent.scaling.is_some())
                .filter_map(|(index, s)| {
                    let key = crate::store::service_key(&graph.project, graph.id(), s.id.as_str());
                    let record = records.get(&key)?;
                    (record.phase == ServicePhase::Deployed && record.release_revision.is_some())
                        .then(|| Target {
                            graph,
                            index,
                            record: record.clone(),
                        })
                })
                .collect();
            if targets.is_empty() {
                continue;
            }
            let graph_key = crate::keys::GraphKey::new(&graph.project, graph.id());
            let out = self
                .scale_graph(&graph_key.to_string(), &targets, &world.clusters, settings)
                .await;
            for rec in out.records {
                let changed = previous
                    .get(&rec.key())
                    .is_none_or(|p| !same_decision(p, &rec));
                if changed {
                    let store = Arc::clone(&self.store);
                    let (r, cause) = (rec.clone(), Some(world.cause()));
                    tokio::task::spawn_blocking(move || store.write(|tx| tx.put_scale(&r, cause)))
                        .await
                        .map_err(|e| ScalerError::Join(e.to_string()))??;
                    if !report.changed.contains(&graph_key) {
                        report.changed.push(graph_key.clone());
                    }
                }
            }
            if let Some(reason) = out.replace {
                report.replace.push((graph_key, reason));
            }
        }
        Ok(report)
    }

    async fn scale_graph(
        &mut self,
        graph_key: &str,
        targets: &[Target<'_>],
        clusters: &[ClusterFacts],
        settings: &ScalingSettings,
    ) -> GraphOutcome {
        let mut rates: Vec<Result<Option<f64>, String>> = Vec::new();
        let mut currents: Vec<u32> = Vec::new();
        let mut deployments: Vec<Vec<String>> = Vec::new();
        for t in targets {
            let query = rate_query(t.graph, t.index, &t.record.namespace, settings);
            let rate = match self.prometheus.query(&query).await {
                Ok(samples) if samples.is_empty() => Ok(None),
                Ok(samples) => Ok(Some(
                    samples
                        .iter()
                        .map(|s| s.value)
                        .filter(|v| v.is_finite())
                        .sum::<f64>()
                        .max(0.0),
                )),
                Err(e) => Err(e.to_string()),
            };
            rates.push(rate);
            let names = deployment_names(&t.record);
            let mut current = None;
            for name in &names {
                let r = ObjectRef {
                    api_version: "apps/v1".into(),
                    kind: "Deployment".into(),
                    namespace: Some(t.record.namespace.clone()),
                    name: name.clone(),
                };
                if let Ok(Some(live)) = self.karmada.get(&r).await {
                    let n = live["spec"]["replicas"].as_u64().unwrap_or(1);
                    current = Some(
                        current
                            .unwrap_or(0)
                            .max(u32::try_from(n).unwrap_or(u32::MAX)),
                    );
                }
            }
            currents.push(current.unwrap_or(1));
            deployments.push(names);
        }

        let now_s = self.started.elapsed().as_secs();
        let window_s = settings.stabilization_window.as_secs();
        let opts = ScalingOptions {
            cpu_weight: settings.cpu_weight,
            change_weight: settings.change_weight,
            ..ScalingOptions::default()
        };
        let plan = plan(targets, &rates, &currents, clusters, settings);
        let solved = {
            let problems = plan.problems.clone();
            let metrics = Arc::clone(&self.metrics);
            tokio::task::spawn_blocking(move || {
                problems
                    .into_iter()
                    .map(|(cluster, p, idx)| {
                        let t = std::time::Instant::now();
                        let r = solve(&p, &opts);
                        metrics.observe(
                            Family::SolverDuration,
                            &["scaling"],
                            t.elapsed().as_secs_f64(),
                        );
                        (cluster, idx, r)
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default()
        };

        let mut recommended: Vec<u32> = currents.clone();
        let mut per_cluster: Vec<BTreeMap<String, u32>> = vec![BTreeMap::new(); targets.len()];
        let mut replace = None;
        let mut notes: Vec<Option<String>> = rates
            .iter()
            .map(|r| match r {
                Ok(Some(_)) => None,
                Ok(None) => Some("no data: the rate query returned nothing (counted as 0)".into()),
                Err(e) => Some(format!("Prometheus unreachable, replicas kept: {e}")),
            })
            .collect();
        let mut first_for: Vec<bool> = vec![true; targets.len()];
        for (cluster, idx, result) in solved {
            match result {
                Ok((decision, unservable)) => {
                    for (k, &i) in idx.iter().enumerate() {
                        let r = decision.replicas[k];
                        per_cluster[i].insert(cluster.clone(), r);
                        recommended[i] = if first_for[i] {
                            r
                        } else {
                            recommended[i].max(r)
                        };
                        first_for[i] = false;
                    }
                    if let Some(reason) = unservable {
                        let text = reason.to_string();
                        self.metrics.inc(Family::ScalingDecisions, &["infeasible"]);
                        let over = match &reason {
                            ReplacementReason::RateAboveMax { service, .. }
                            | ReplacementReason::Capacity { service, .. } => service,
                        };
                        for &i in idx.iter().filter(|&&i| &targets[i].record.service == over) {
                            notes[i] = Some(format!("re-placement requested: {text}"));
                        }
                        replace = Some(format!("on {cluster}: {text}"));
                    }
                }
                Err(e) => {
                    for &i in &idx {
                        notes[i] = Some(format!("replicas kept: {e}"));
                    }
                    if let ScalingError::NeedsReplacement(reason) = &e {
                        self.metrics.inc(Family::ScalingDecisions, &["infeasible"]);
                        replace = Some(format!("on {cluster}: {reason}"));
                    } else {
                        self.metrics.inc(Family::ScalingDecisions, &["error"]);
                    }
                }
            }
        }
        // A graph that cannot be served where it runs is re-placed, but
        // not on every tick while the load lasts: placement moves
        // services, and asking again before the last answer settled would
        // only add churn.
        if replace.is_some() {
            let recent = self
                .replaced
                .get(graph_key)
                .is_some_and(|t| t.elapsed() < REPLACE_AT_MOST_EVERY);
            if recent {
                replace = None;
            } else {
                self.replaced
                    .insert(graph_key.to_owned(), std::time::Instant::now());
            }
        }

        let mut records = Vec::new();
        for (i, t) in targets.iter().enumerate() {
            let key = t.record.key();
            let current = currents[i];
            let unreachable = rates[i].is_err();
            let target = if unreachable {
                current
            } else {
                let history = self.history.entry(key.clone()).or_default();
                let applied = stabilised(current, recommended[i], history, now_s, window_s);
                history.push(Recommendation {
                    at_s: now_s,
                    replicas: recommended[i],
                });
                history.retain(|r| now_s.saturating_sub(r.at_s) <= window_s);
                applied
            };
            let decision = match target.cmp(&current) {
                std::cmp::Ordering::Greater => "up",
                std::cmp::Ordering::Less => "down",
                std::cmp::Ordering::Equal if unreachable => "unreachable",
                std::cmp::Ordering::Equal if matches!(rates[i], Ok(None)) => "no_data",
                std::cmp::Ordering::Equal => "hold",
            };
            self.metrics.inc(Family::ScalingDecisions, &[decision]);
            if target != current {
                for name in &deployments[i] {
                    if let Err(e) = self
                        .karmada
                        .scale(&t.record.namespace, "Deployment", name, target)
                        .await
                    {
                        notes[i] = Some(format!("could not scale {name}: {e}"));
                    }
                }
                tracing::info!(
                    service = %key,
                    from = current,
                    to = target,
                    rate = ?rates[i].as_ref().ok().copied().flatten(),
                    "scaled"
                );
            }
            records.push(ScaleRecord {
                project: t.graph.project.clone(),
                graph: t.graph.id().to_owned(),
                service: t.record.service.clone(),
                replicas: target,
                per_cluster: std::mem::take(&mut per_cluster[i]),
                rate: rates[i].as_ref().ok().copied().flatten(),
                note: notes[i].take(),
                at: crate::daemon::now(),
            });
        }
        GraphOutcome { records, replace }
    }
}

/// How often one graph may be re-placed for its load (placement is a
/// MILP and moves releases; five minutes lets a move settle and the rate
/// window fill again).
const REPLACE_AT_MOST_EVERY: Duration = Duration::from_secs(300);

/// Solves one cluster's problem. A rate beyond what `maxReplicas` serve
/// does not leave the other services unscaled: that service is held at its
/// maximum (its rate capped to what the maximum serves), the rest solved
/// as usual, and the reason returned for re-placement.
fn solve(
    problem: &ScalingProblem,
    opts: &ScalingOptions,
) -> Result<(crate::scaling::ScalingDecision, Option<ReplacementReason>), ScalingError> {
    match scale(problem, opts) {
        Ok(d) => Ok((d, None)),
        Err(ScalingError::NeedsReplacement(reason @ ReplacementReason::RateAboveMax { .. })) => {
            let mut capped = problem.clone();
            for s in &mut capped.services {
                let most = s.alpha * f64::from(s.max_replicas) + s.beta;
                if s.rate > most {
                    s.rate = most;
                }
            }
            scale(&capped, opts).map(|d| (d, Some(reason)))
        }
        Err(e) => Err(e),
    }
}

struct GraphOutcome {
    records: Vec<ScaleRecord>,
    replace: Option<String>,
}

/// The per-cluster scaling problems of one graph: each cluster gets the
/// scaled services placed on it, each with its share of the rate (a
/// service on k clusters serves rate/k on each).
struct Plan {
    /// Cluster, problem, and for each of its services the target index.
    problems: Vec<(String, ScalingProblem, Vec<usize>)>,
}

fn plan(
    targets: &[Target<'_>],
    rates: &[Result<Option<f64>, String>],
    currents: &[u32],
    clusters: &[ClusterFacts],
    settings: &ScalingSettings,
) -> Plan {
    let mut by_cluster: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, t) in targets.iter().enumerate() {
        if rates[i].is_err() {
            continue;
        }
        for c in &t.record.clusters {
            by_cluster.entry(c.clone()).or_default().push(i);
        }
    }
    let mut problems = Vec::new();
    for (cluster, idx) in by_cluster {
        let mut services = Vec::new();
        let mut used = 0.0;
        for &i in &idx {
            let t = &targets[i];
            let s = &t.graph.descriptor.hda_graph.services[t.index];
            let sc = s.deployment.intent.scaling.as_ref().expect("filtered");
            let cpu = t.graph.resources[t.index].cpu_cores;
            let k = t.record.clusters.len().max(1) as f64;
            let rate = rates[i].as_ref().ok().copied().flatten().unwrap_or(0.0) / k;
            let min = sc.min_replicas.map_or(settings.min_replicas, |v| v.0);
            let max = sc
                .max_replicas
                .map_or(settings.max_replicas, |v| v.0)
                .max(min);
            used += cpu * f64::from(currents[i]);
            services.push(ScalingService {
                id: s.id.to_string(),
                cpu,
                min_replicas: min,
                max_replicas: max,
                alpha: sc.alpha,
                beta: sc.beta.unwrap_or(0.0),
                rate,
                current_replicas: currents[i],
            });
        }
        let free = clusters
            .iter()
            .find(|c| c.name == cluster)
            .map_or(0.0, |c| c.free_cpu);
        problems.push((
            cluster,
            ScalingProblem {
                services,
                cpu_capacity: free + used,
            },
            idx,
        ));
    }
    Plan { problems }
}

/// The Deployments of a release (the objects the scaler sizes).
fn deployment_names(rec: &ServiceRecord) -> Vec<String> {
    let Some(text) = &rec.manifest else {
        return Vec::new();
    };
    manifest::parse(text)
        .unwrap_or_default()
        .iter()
        .filter(|o| o["kind"] == "Deployment")
        .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_owned))
        .collect()
}

/// Same decision, ignoring when it was made and small rate changes.
fn same_decision(a: &ScaleRecord, b: &ScaleRecord) -> bool {
    let close = match (a.rate, b.rate) {
        (Some(x), Some(y)) => (x - y).abs() <= 0.05 * x.abs().max(y.abs()).max(1.0),
        (None, None) => true,
        _ => false,
    };
    a.replicas == b.replicas && a.per_cluster == b.per_cluster && a.note == b.note && close
}

/// Runs the scaler every `interval`: changed decisions refresh their
/// graph's status; infeasible ones ask for re-placement.
pub(super) async fn scaling_loop(
    mut scaler: Scaler,
    shared: Arc<super::Shared>,
    queue: crate::reconcile::queue::Queue,
    interval: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => if *shutdown.borrow() { return },
        }
        // A standby decides nothing: the leader scales.
        if !shared.leadership.acting() {
            continue;
        }
        let world = shared.world();
        match scaler.tick(&world).await {
            Ok(report) => {
                if !report.replace.is_empty() {
                    let mut w = shared.world.write_or_recover();
                    for (key, why) in &report.replace {
                        tracing::warn!(key = %key, reason = %why, "scaling infeasible: re-placement requested");
                        w.request_replacement(key, why);
                    }
                }
                for key in report
                    .changed
                    .iter()
                    .chain(report.replace.iter().map(|(k, _)| k))
                {
                    queue.enqueue(key);
                }
            }
            Err(e) => tracing::warn!(error = %e, "scaling pass failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decision_is_unchanged_by_rate_noise_but_not_by_replicas() {
        let r = |replicas, rate| ScaleRecord {
            project: "p".into(),
            graph: "g".into(),
            service: "s".into(),
            replicas,
            per_cluster: BTreeMap::new(),
            rate,
            note: None,
            at: 0,
        };
        assert!(same_decision(&r(2, Some(10.0)), &r(2, Some(10.2))));
        assert!(!same_decision(&r(2, Some(10.0)), &r(3, Some(10.0))));
        assert!(!same_decision(&r(2, Some(10.0)), &r(2, Some(20.0))));
        assert!(!same_decision(&r(2, Some(10.0)), &r(2, None)));
    }
}
