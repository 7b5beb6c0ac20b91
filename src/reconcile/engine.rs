//! Reconciles one graph: observe (store, desired state, clusters), decide
//! (placement, release inputs, one step per service), act (helm, Karmada),
//! record (one batch of store writes at the end, success or failure).
//!
//! The engine is told only which key to reconcile, never why: every
//! decision comes from the full desired and observed state, so running it
//! again after a crash is the recovery.

use super::decide::{self, Desired, Recorded, Step};
use super::rulesync::RuleSync;
use super::triggers;
use crate::adapters::helm::{Helm, HelmError};
use crate::adapters::karmada::{Karmada, KarmadaError, ObjectRef, Owner};
use crate::adapters::manifest;
use crate::desired::{DesiredState, Graph};
use crate::observe::clusters::ClusterFacts;
use crate::placement::place;
use crate::plan::problem;
use crate::release::{self, Placement, ReleaseInput};
use crate::spec::settings::DriftMode;
use crate::store::records::{
    Condition, ConditionKind, FiredEvent, GraphRecord, NewEvent, OwnedObject, ScaleRecord,
    ServicePhase, ServiceRecord, TriggerState, service_key,
};
use crate::store::{Store, StoreError};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// Everything a reconcile reads besides the store: one consistent view,
/// replaced as a whole when a snapshot or the inventory changes.
#[derive(Debug, Clone)]
pub struct World {
    pub revision: String,
    pub root: PathBuf,
    pub desired: Arc<DesiredState>,
    pub clusters: Vec<ClusterFacts>,
    /// Cluster → unix seconds since it has been NotReady.
    pub not_ready_since: BTreeMap<String, u64>,
    /// Why removals are held back (the prune guard), if they are.
    pub prune_blocked: Option<String>,
    /// Graphs the scaler asked to re-place (key → why): the scaling model
    /// has no answer where they are.
    pub replace: BTreeMap<String, String>,
}

/// How a reconcile ended, for the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Converged (or waiting for something only a change can bring: an
    /// event trigger, an edit of an invalid descriptor).
    Done,
    /// Come back later without counting a failure (a dependency not ready
    /// yet, a failover grace period running).
    RequeueAfter(Duration),
    /// A transient failure: retry with backoff.
    Retry(String),
    /// A terminal failure: wait for a change of the inputs.
    Stalled(String),
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("state store: {0}")]
    Store(#[from] StoreError),
    #[error("store task failed: {0}")]
    Join(String),
}

/// The reconciler's effects, injected from the top.
#[derive(Clone)]
pub struct Engine {
    pub helm: Helm,
    pub karmada: Karmada,
    pub store: Arc<Store>,
    /// How long to wait before looking at a blocking dependency again.
    pub dependency_poll: Duration,
    /// Where the alert rules of event-triggered services go.
    pub rules: RuleSync,
    /// Grafana dashboards of the graphs (a no-op when not configured).
    pub dashboards: super::dashsync::DashboardSync,
    pub metrics: Arc<crate::metrics::Metrics>,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub fn split_key(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or((key, ""))
}

/// A failure of one step: transient ones are retried by the queue.
#[derive(Debug, Clone)]
struct StepError {
    transient: bool,
    message: String,
}

impl From<HelmError> for StepError {
    fn from(e: HelmError) -> Self {
        StepError {
            transient: e.is_transient(),
            message: e.to_string(),
        }
    }
}

impl From<KarmadaError> for StepError {
    fn from(e: KarmadaError) -> Self {
        StepError {
            transient: e.is_transient(),
            message: e.to_string(),
        }
    }
}

/// Records of one graph, changed in memory and written in one batch.
struct Records {
    graph: GraphRecord,
    services: BTreeMap<String, ServiceRecord>,
    deleted_services: Vec<String>,
    owned: Vec<OwnedObject>,
    deleted_owned: Vec<OwnedObject>,
    events: Vec<(Option<String>, String, String)>,
    /// Fired trigger events as read; `rearm` holds the ones to clear, each
    /// written only if the webhook did not change it meanwhile.
    triggers: Vec<FiredEvent>,
    rearm: Vec<FiredEvent>,
    /// The scaler's decisions, by service.
    scales: BTreeMap<String, ScaleRecord>,
    /// As loaded: unchanged records are not written back (a no-op pass
    /// over hundreds of graphs would otherwise be hundreds of commits).
    original: (
        Option<GraphRecord>,
        BTreeMap<String, ServiceRecord>,
        Vec<OwnedObject>,
    ),
}

impl Records {
    fn event(&mut self, service: Option<&str>, kind: &str, message: impl Into<String>) {
        self.events
            .push((service.map(str::to_owned), kind.to_owned(), message.into()));
    }
}

impl Engine {
    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, EngineError> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| EngineError::Join(e.to_string()))?
            .map_err(EngineError::from)
    }

    /// Reconciles `key` (`project/graph`). `drift_check` is set on resyncs.
    #[tracing::instrument(
        name = "reconcile",
        skip_all,
        fields(
            project = %split_key(key).0,
            graph = %split_key(key).1,
            revision = %world.revision,
        )
    )]
    pub async fn reconcile(
        &self,
        world: &World,
        key: &str,
        drift_check: bool,
    ) -> Result<Outcome, EngineError> {
        let (project, graph_id) = split_key(key);
        let (p, g) = (project.to_owned(), graph_id.to_owned());
        let (record, services, owned, fired, scales) = self
            .db(move |s| {
                Ok((
                    s.graph(&format!("{p}/{g}"))?,
                    s.services_of(&p, &g)?,
                    s.owned_objects_of(&p, &g)?,
                    s.triggers_of(&p, &g)?,
                    s.scales_of(&p, &g)?,
                ))
            })
            .await?;
        let entry = world
            .desired
            .graphs
            .iter()
            .find(|e| e.project == project && e.id.as_deref() == Some(graph_id));

        let Some(entry) = entry else {
            return match record {
                None => Ok(Outcome::Done),
                Some(_) if world.prune_blocked.is_some() => Ok(Outcome::Done),
                Some(rec) => self.remove_graph(key, rec, services, owned).await,
            };
        };
        let services: BTreeMap<String, ServiceRecord> = services
            .into_iter()
            .map(|s| (s.service.clone(), s))
            .collect();
        let original = (record.clone(), services.clone(), owned.clone());
        let mut recs = Records {
            graph: record.unwrap_or_else(|| new_graph_record(project, graph_id, &entry.file)),
            services,
            deleted_services: Vec::new(),
            owned,
            deleted_owned: Vec::new(),
            events: Vec::new(),
            triggers: fired,
            rearm: Vec::new(),
            scales: scales.into_iter().map(|r| (r.service.clone(), r)).collect(),
            original,
        };
        recs.graph.file.clone_from(&entry.file);
        recs.graph.last_attempted_revision = Some(world.revision.clone());

        let outcome = match &entry.graph {
            None => {
                // Invalid: keep the last good state untouched; terminal
                // until the file changes.
                let errors: Vec<String> = world
                    .desired
                    .findings
                    .iter()
                    .filter(|f| {
                        f.file == entry.file
                            && f.severity == crate::validate::findings::Severity::Error
                    })
                    .map(ToString::to_string)
                    .collect();
                let message = format!(
                    "{} is invalid; the last good state is kept: {}",
                    entry.file,
                    errors.join("; ")
                );
                Outcome::Stalled(message)
            }
            Some(graph) => self.apply(world, graph, &mut recs, drift_check).await,
        };
        self.finish(world, recs, &outcome).await?;
        Ok(outcome)
    }

    /// The graph is in the desired state: place, then one step per service.
    async fn apply(
        &self,
        world: &World,
        graph: &Graph,
        recs: &mut Records,
        drift_check: bool,
    ) -> Outcome {
        let hda = &graph.descriptor.hda_graph;
        let settings = &world.desired.settings;
        let suspended = hda.suspend;
        recs.graph.suspended = suspended;

        // Placement: keep the recorded one while it holds.
        let mut requeue: Option<Duration> = None;
        let inputs_hash = placement_inputs_hash(graph);
        let revision = hda
            .hda_graph_intent
            .placement
            .as_ref()
            .and_then(|p| p.revision.as_ref())
            .map(|r| match r {
                crate::descriptor::model::Revision::Int(i) => i.to_string(),
                crate::descriptor::model::Revision::Text(t) => t.clone(),
            });
        let key = format!("{}/{}", graph.project, graph.id());
        let requested = world.replace.get(&key);
        if let Some(why) = requested {
            recs.event(
                None,
                "ReplacementRequested",
                format!("by the scaler: {why}"),
            );
        }
        let keep = match requested {
            Some(_) => Keep::No("the scaler cannot serve the load where the graph runs"),
            None => keep_placement(
                world,
                graph,
                &recs.graph,
                &inputs_hash,
                revision.as_deref(),
                settings.placement.failover_grace,
            ),
        };
        let placement = match keep {
            Keep::Yes { recheck } => {
                requeue = recheck;
                recs.graph.placement.clone()
            }
            Keep::No(reason) => {
                let current = recs.graph.placement.clone();
                let started = std::time::Instant::now();
                let placed = place_graph(world, graph, current).await;
                self.metrics.observe(
                    crate::metrics::Family::SolverDuration,
                    &["placement"],
                    started.elapsed().as_secs_f64(),
                );
                match placed {
                    Ok(p) => {
                        if !recs.graph.placement.is_empty() && recs.graph.placement != p {
                            recs.event(
                                None,
                                "Replaced",
                                format!("re-placed ({reason}): {}", describe(&p)),
                            );
                        } else if recs.graph.placement.is_empty() {
                            recs.event(None, "Placed", describe(&p));
                        }
                        recs.graph.placement = p.clone();
                        recs.graph.placement_inputs_hash = Some(inputs_hash);
                        recs.graph.placement_revision = revision;
                        p
                    }
                    Err(e) => return Outcome::Stalled(format!("placement failed: {e}")),
                }
            }
        };

        let inputs = {
            let (graph, placement, root) = (graph.clone(), placement.clone(), world.root.clone());
            match tokio::task::spawn_blocking(move || release::inputs(&graph, &placement, &root))
                .await
            {
                Ok(Ok(i)) => i,
                Ok(Err(e)) => return Outcome::Stalled(e.to_string()),
                Err(e) => return Outcome::Retry(format!("chart task failed: {e}")),
            }
        };
        let inputs: BTreeMap<&str, &ReleaseInput> =
            inputs.iter().map(|i| (i.service.as_str(), i)).collect();

        let order_in: Vec<(&str, Vec<&str>)> = hda
            .services
            .iter()
            .map(|s| {
                (
                    s.id.as_str(),
                    s.dependencies().iter().map(String::as_str).collect(),
                )
            })
            .collect();
        let order = decide::dependency_order(&order_in);
        let owner = Owner {
            project: graph.project.clone(),
            graph: graph.id().to_owned(),
        };

        let mut worst: Option<StepError> = None;
        let mut namespace_ready = false;
        let mut deployed_now: BTreeSet<String> = BTreeSet::new();
        // Drift of every installed service, read concurrently: one GET per
        // object, and a graph can have many (the loop below only consumes).
        let mut drift_found = if drift_check {
            // The scaler owns the replicas of scaled services.
            let scaled: BTreeSet<String> = hda
                .services
                .iter()
                .filter(|s| s.deployment.intent.scaling.is_some())
                .map(|s| s.id.to_string())
                .chain(recs.scales.keys().cloned())
                .collect();
            self.drift_all(recs.services.values(), &scaled).await
        } else {
            BTreeMap::new()
        };
        for id in order {
            let service = hda
                .services
                .iter()
                .find(|s| s.id.as_str() == id)
                .expect("listed");
            let input = inputs[id];
            let rec = recs
                .services
                .entry(id.to_owned())
                .or_insert_with(|| new_service_record(&graph.project, graph.id(), id));
            rec.clusters = placement.get(id).cloned().unwrap_or_default();
            rec.replicas = recs
                .scales
                .get(id)
                .map(|s| s.per_cluster.clone())
                .unwrap_or_default();
            let replicas = recs.scales.get(id).map(|s| s.replicas);

            // What the recorded alerts mean for an event-triggered service.
            let mut fired = false;
            if let Some(trigger) = service.event_trigger() {
                let mine: Vec<FiredEvent> = recs
                    .triggers
                    .iter()
                    .filter(|f| f.service == id)
                    .cloned()
                    .collect();
                let eval = triggers::evaluate(trigger, &mine);
                let installed = rec.release_revision.is_some();
                fired = eval.fired;
                // Fired: when and by which alert the condition was met;
                // waiting: which events are still awaited.
                let by = eval.by.as_ref().filter(|_| eval.fired);
                rec.trigger = TriggerState {
                    armed: !eval.fired && !installed,
                    fired_at: by.map(|b| b.fired_at),
                    alert: by.map(|b| b.alert.clone()),
                    pending: eval.pending.clone(),
                };
                if trigger.undeploy_on_resolve
                    && installed
                    && eval.fired
                    && !eval.holds
                    && !suspended
                {
                    // The alert resolved: uninstall and wait for the next
                    // firing (the extension `undeployOnResolve`).
                    match self.uninstall(rec).await {
                        Ok(()) => {
                            let at = now();
                            recs.rearm
                                .extend(mine.into_iter().filter(FiredEvent::counts).map(
                                    |mut f| {
                                        f.cleared_at = Some(at);
                                        f
                                    },
                                ));
                            rec.trigger = TriggerState {
                                armed: true,
                                fired_at: None,
                                alert: None,
                                pending: trigger.events.iter().map(|e| e.id.to_string()).collect(),
                            };
                            set_phase(rec, ServicePhase::WaitingForTrigger, None);
                            recs.events.push((
                                Some(id.to_owned()),
                                "Rearmed".into(),
                                "the alert resolved: uninstalled (undeployOnResolve); waiting for the trigger again".into(),
                            ));
                        }
                        Err(e) => {
                            set_phase(rec, ServicePhase::Failed, Some(e.message.clone()));
                            recs.events.push((
                                Some(id.to_owned()),
                                "Failed".into(),
                                e.message.clone(),
                            ));
                            worst = Some(worse(worst.take(), e));
                        }
                    }
                    continue;
                }
            } else {
                rec.trigger = TriggerState::default();
            }
            let desired = Desired {
                hash: &input.hash,
                event_triggered: service.event_trigger().is_some(),
                fired,
            };
            let recorded = Recorded {
                hash: rec.input_hash.as_deref(),
                installed: rec.release_revision.is_some(),
                failed: rec.phase == ServicePhase::Failed,
            };
            let step = decide::step(Some(&desired), Some(&recorded), suspended);
            let result: Result<(), StepError> = match step {
                Step::WaitForTrigger => {
                    set_phase(rec, ServicePhase::WaitingForTrigger, None);
                    Ok(())
                }
                Step::Suspend => {
                    let r = if rec.release_revision.is_some() {
                        self.uninstall(rec).await
                    } else {
                        Ok(())
                    };
                    if r.is_ok() {
                        set_phase(rec, ServicePhase::Suspended, None);
                    }
                    r
                }
                Step::InSync => {
                    deployed_now.insert(id.to_owned());
                    if drift_check {
                        match drift_found.remove(id).unwrap_or_else(|| Ok(Vec::new())) {
                            Ok(paths) if paths.is_empty() => Ok(()),
                            Ok(paths) => {
                                let what = paths.join(", ");
                                match settings.drift {
                                    DriftMode::Warn => {
                                        rec.last_error = Some(format!("drifted: {what}"));
                                        recs.graph
                                            .conditions
                                            .retain(|c| c.kind != ConditionKind::Drifted);
                                        recs.graph.conditions.push(condition(
                                            ConditionKind::Drifted,
                                            true,
                                            "Drifted",
                                            format!("{id}: {what}"),
                                        ));
                                        recs.events.push((
                                            Some(id.to_owned()),
                                            "Drifted".into(),
                                            what,
                                        ));
                                        Ok(())
                                    }
                                    DriftMode::Correct => {
                                        recs.events.push((
                                            Some(id.to_owned()),
                                            "DriftCorrected".into(),
                                            what,
                                        ));
                                        self.install(
                                            input,
                                            rec,
                                            &owner,
                                            settings.generate_propagation_policy,
                                            replicas,
                                            &mut recs.owned,
                                            &mut recs.deleted_owned,
                                        )
                                        .instrument(service_span(id))
                                        .await
                                    }
                                }
                            }
                            Err(e) => Err(e),
                        }
                    } else {
                        Ok(())
                    }
                }
                Step::Install | Step::Upgrade => {
                    // Dependencies first: deployed and ready.
                    let mut blocked = None;
                    for dep in service.dependencies() {
                        if !deployed_now.contains(dep) {
                            blocked = Some(format!("{dep} is not deployed"));
                            break;
                        }
                        match self.karmada.deployment_ready(&graph.project, dep).await {
                            Ok(Some(false)) => {
                                blocked = Some(format!("{dep}'s Deployment is not ready"));
                                break;
                            }
                            Ok(_) => {}
                            Err(e) => {
                                blocked = Some(format!("{dep}: {e}"));
                                break;
                            }
                        }
                    }
                    if let Some(why) = blocked {
                        rec.blocked_by = Some(why.clone());
                        set_phase(rec, ServicePhase::BlockedByDependency, Some(why));
                        requeue = Some(
                            requeue.map_or(self.dependency_poll, |r| r.min(self.dependency_poll)),
                        );
                        Ok(())
                    } else {
                        rec.blocked_by = None;
                        if !namespace_ready {
                            if let Err(e) = self.karmada.ensure_namespace(&graph.project).await {
                                let e = StepError::from(e);
                                worst = Some(worse(worst.take(), e.clone()));
                                set_phase(rec, ServicePhase::Failed, Some(e.message));
                                continue;
                            }
                            namespace_ready = true;
                        }
                        let r = self
                            .install(
                                input,
                                rec,
                                &owner,
                                settings.generate_propagation_policy,
                                replicas,
                                &mut recs.owned,
                                &mut recs.deleted_owned,
                            )
                            .instrument(service_span(id))
                            .await;
                        if r.is_ok() {
                            deployed_now.insert(id.to_owned());
                            let revision = rec.release_revision.unwrap_or(0);
                            let (kind, message) = match (&rec.trigger, step) {
                                (
                                    TriggerState {
                                        alert: Some(alert),
                                        fired_at: Some(at),
                                        ..
                                    },
                                    Step::Install,
                                ) => (
                                    "Triggered",
                                    format!(
                                        "alert {alert} fired at {at}: installed revision {revision}"
                                    ),
                                ),
                                (_, Step::Install) => ("Installed", format!("revision {revision}")),
                                _ => ("Upgraded", format!("revision {revision}")),
                            };
                            recs.events
                                .push((Some(id.to_owned()), kind.into(), message));
                        }
                        r
                    }
                }
                Step::Remove => unreachable!("desired services are never removed"),
            };
            if let Err(e) = result {
                tracing::warn!(service = %id, error = %e.message, "service step failed");
                set_phase(rec, ServicePhase::Failed, Some(e.message.clone()));
                recs.events
                    .push((Some(id.to_owned()), "Failed".into(), e.message.clone()));
                worst = Some(worse(worst.take(), e));
            }
        }

        // Alert rules of the services still waiting for their trigger (a
        // service deployed by its trigger, suspended or removed has none).
        let armed = hda.services.iter().filter_map(|s| {
            let trigger = s.event_trigger()?;
            let rec = recs.services.get(s.id.as_str())?;
            (!suspended && rec.phase == ServicePhase::WaitingForTrigger)
                .then_some((s.id.as_str(), trigger))
        });
        let group = crate::rules::group(&graph.project, hda, armed, &self.rules.severity);
        match self
            .rules
            .sync(
                &self.karmada,
                &owner,
                &group,
                &mut recs.owned,
                &mut recs.deleted_owned,
            )
            .await
        {
            Ok(Some(what)) => recs.event(None, "RulesUpdated", what),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "alert rules not synced");
                recs.event(None, "RulesFailed", e.to_string());
                worst = Some(worse(
                    worst.take(),
                    StepError {
                        transient: e.is_transient(),
                        message: e.to_string(),
                    },
                ));
            }
        }

        // Dashboards: published while the graph exists; those of removed
        // services deleted. A Grafana outage retries the graph; a refusal
        // (token, rights) is reported without holding the graph back.
        if self.dashboards.enabled() {
            let ids: Vec<String> = hda.services.iter().map(|s| s.id.to_string()).collect();
            let result = self
                .dashboards
                .publish_graph(&graph.project, graph.id(), &ids, &recs.graph.dashboards)
                .await;
            let result = match result {
                Ok(urls) => {
                    let stale: Vec<String> = recs
                        .graph
                        .dashboards
                        .keys()
                        .filter(|u| !urls.contains_key(*u))
                        .cloned()
                        .collect();
                    let deleted = self.dashboards.delete(&graph.project, &stale).await;
                    recs.graph.dashboards = urls;
                    recs.graph.dashboards.extend(
                        stale
                            .into_iter()
                            .filter(|_| deleted.is_err())
                            .map(|u| (u, String::new())),
                    );
                    deleted
                }
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, "dashboards not published");
                recs.event(None, "DashboardsFailed", e.to_string());
                if e.is_transient() {
                    worst = Some(worse(
                        worst.take(),
                        StepError {
                            transient: true,
                            message: e.to_string(),
                        },
                    ));
                }
            }
        }

        // Services that left the descriptor.
        let gone: Vec<String> = recs
            .services
            .keys()
            .filter(|k| !inputs.contains_key(k.as_str()))
            .cloned()
            .collect();
        for id in gone {
            let mut rec = recs.services.remove(&id).expect("listed");
            match self.uninstall(&mut rec).await {
                Ok(()) => {
                    recs.deleted_services.push(id.clone());
                    recs.event(
                        Some(&id),
                        "Removed",
                        "uninstalled: no longer in the descriptor",
                    );
                }
                Err(e) => {
                    worst = Some(worse(worst.take(), e.clone()));
                    set_phase(&mut rec, ServicePhase::Failed, Some(e.message));
                    recs.services.insert(id, rec);
                }
            }
        }

        // Owned objects no longer wanted (a service removed, or its chart
        // now carries its own PropagationPolicy).
        let wanted: BTreeSet<String> = recs
            .services
            .values()
            .filter(|s| s.release_revision.is_some())
            .map(|s| s.service.clone())
            .collect();
        let (keep, drop): (Vec<OwnedObject>, Vec<OwnedObject>) = std::mem::take(&mut recs.owned)
            .into_iter()
            .partition(|o| o.kind != "PropagationPolicy" || wanted.contains(&o.name));
        recs.owned = keep;
        for o in drop {
            match self.karmada.delete(&object_ref(&o)).await {
                Ok(()) => recs.deleted_owned.push(o),
                Err(e) => {
                    worst = Some(worse(worst.take(), StepError::from(e)));
                    recs.owned.push(o);
                }
            }
        }

        match (worst, requeue) {
            (Some(e), _) if e.transient => Outcome::Retry(e.message),
            (Some(e), _) => Outcome::Stalled(e.message),
            (None, Some(after)) => Outcome::RequeueAfter(after),
            (None, None) => Outcome::Done,
        }
    }
}

impl Engine {
    // The two owned-object lists are the batch this reconcile writes at
    // its end; bundling them with the rest into a struct would only rename
    // the same eight inputs.
    #[allow(clippy::too_many_arguments)]
    /// `helm upgrade --install` after recovering a stuck release; records
    /// the revision, hash and manifest; applies a generated
    /// PropagationPolicy when the chart carries none.
    async fn install(
        &self,
        input: &ReleaseInput,
        rec: &mut ServiceRecord,
        owner: &Owner,
        generate_policy: bool,
        replicas: Option<u32>,
        owned: &mut Vec<OwnedObject>,
        deleted: &mut Vec<OwnedObject>,
    ) -> Result<(), StepError> {
        self.recover_stuck(&input.release, &input.namespace).await?;
        let status = self.helm.upgrade_install(&input.spec()).await?;
        let text = self
            .helm
            .get_manifest(&input.release, &input.namespace)
            .await?;
        rec.release_revision = Some(status.revision);
        rec.input_hash = Some(input.hash.clone());
        rec.manifest = Some(text.clone());
        set_phase(rec, ServicePhase::Deployed, None);

        let objects = manifest::parse(&text).map_err(|e| StepError {
            transient: false,
            message: format!(
                "the release manifest of {} cannot be read: {e}",
                input.release
            ),
        })?;
        // The scaler's replicas win over the chart's: re-asserted after
        // every upgrade, through the scale subresource and its own field
        // manager, so helm never silently reverts them.
        if let Some(n) = replicas {
            for o in objects.iter().filter(|o| o["kind"] == "Deployment") {
                if let Some(name) = o["metadata"]["name"].as_str() {
                    self.karmada
                        .scale(&input.namespace, "Deployment", name, n)
                        .await?;
                }
            }
        }
        let has_policy = objects.iter().any(|o| {
            matches!(
                o["kind"].as_str(),
                Some("PropagationPolicy" | "ClusterPropagationPolicy")
            )
        });
        let ours = |o: &OwnedObject| o.kind == "PropagationPolicy" && o.name == input.release;
        if generate_policy && !has_policy {
            let policy = super::propagation::policy(
                &input.release,
                &input.namespace,
                &rec.clusters,
                &objects,
            );
            self.karmada.apply(&policy, owner).await?;
            if !owned.iter().any(ours) {
                owned.push(OwnedObject {
                    project: owner.project.clone(),
                    graph: owner.graph.clone(),
                    api_version: super::propagation::API_VERSION.into(),
                    kind: "PropagationPolicy".into(),
                    namespace: Some(input.namespace.clone()),
                    name: input.release.clone(),
                });
            }
        } else if let Some(pos) = owned.iter().position(ours) {
            // The chart brings its own policy now: ours must go.
            let o = owned.remove(pos);
            self.karmada.delete(&object_ref(&o)).await?;
            deleted.push(o);
        }
        Ok(())
    }

    /// A release left `pending-*` by a crash blocks every later operation:
    /// roll it back to its last deployed revision, or uninstall it when it
    /// never deployed.
    async fn recover_stuck(&self, release: &str, namespace: &str) -> Result<(), StepError> {
        let Some(status) = self.helm.status(release, namespace).await? else {
            return Ok(());
        };
        if !status.is_pending() {
            return Ok(());
        }
        let history = self.helm.history(release, namespace).await?;
        let last_good = history
            .iter()
            .rev()
            .find(|h| matches!(h.status.as_str(), "deployed" | "superseded"))
            .map(|h| h.revision);
        tracing::warn!(release = %release, status = %status.status, to = ?last_good, "recovering a stuck release");
        match last_good {
            Some(rev) => self.helm.rollback(release, namespace, rev).await?,
            None => self.helm.uninstall(release, namespace).await?,
        }
        Ok(())
    }

    async fn uninstall(&self, rec: &mut ServiceRecord) -> Result<(), StepError> {
        self.helm.uninstall(&rec.release, &rec.namespace).await?;
        rec.release_revision = None;
        rec.input_hash = None;
        rec.manifest = None;
        Ok(())
    }

    /// Paths of fields the release manifest sets that differ live; a
    /// missing object is drift too.
    /// [`Self::drift`] of every installed service, concurrently.
    async fn drift_all<'a>(
        &self,
        records: impl Iterator<Item = &'a ServiceRecord>,
        scaled: &BTreeSet<String>,
    ) -> BTreeMap<String, Result<Vec<String>, StepError>> {
        let mut set = tokio::task::JoinSet::new();
        for rec in records.filter(|r| r.release_revision.is_some() && r.manifest.is_some()) {
            let (engine, rec) = (self.clone(), rec.clone());
            let ignore_replicas = scaled.contains(&rec.service);
            set.spawn(async move {
                (
                    rec.service.clone(),
                    engine.drift(&rec, ignore_replicas).await,
                )
            });
        }
        let mut out = BTreeMap::new();
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((service, result)) => {
                    out.insert(service, result);
                }
                Err(e) => tracing::warn!(error = %e, "drift check task failed"),
            }
        }
        out
    }

    async fn drift(
        &self,
        rec: &ServiceRecord,
        ignore_replicas: bool,
    ) -> Result<Vec<String>, StepError> {
        let Some(text) = &rec.manifest else {
            return Ok(Vec::new());
        };
        let objects = manifest::parse(text).map_err(|e| StepError {
            transient: false,
            message: format!("stored manifest of {} unreadable: {e}", rec.release),
        })?;
        let mut out = Vec::new();
        for o in &objects {
            let Some(r) = manifest::object_ref(o, &rec.namespace) else {
                continue;
            };
            let label = format!("{}/{}", r.kind, r.name);
            match self.karmada.get(&r).await? {
                None => out.push(format!("{label} is missing")),
                Some(live) => out.extend(
                    manifest::drift(o, &live)
                        .into_iter()
                        .filter(|p| !(ignore_replicas && p == "/spec/replicas"))
                        .map(|p| format!("{label}{p}")),
                ),
            }
        }
        Ok(out)
    }

    /// The graph left the desired state: uninstall everything, prune what
    /// smo applied, forget it.
    async fn remove_graph(
        &self,
        key: &str,
        record: GraphRecord,
        services: Vec<ServiceRecord>,
        owned: Vec<OwnedObject>,
    ) -> Result<Outcome, EngineError> {
        let mut failure: Option<StepError> = None;
        if let Err(e) = self.rules.remove(&record.project, &record.graph).await {
            failure = Some(StepError {
                transient: e.is_transient(),
                message: e.to_string(),
            });
        }
        let uids: Vec<String> = record.dashboards.keys().cloned().collect();
        if let Err(e) = self.dashboards.delete(&record.project, &uids).await {
            failure = Some(worse(
                failure.take(),
                StepError {
                    transient: e.is_transient(),
                    message: e.to_string(),
                },
            ));
        }
        for mut s in services {
            if let Err(e) = self.uninstall(&mut s).await {
                failure = Some(worse(failure.take(), e));
            }
        }
        for o in &owned {
            if let Err(e) = self.karmada.delete(&object_ref(o)).await {
                failure = Some(worse(failure.take(), e.into()));
            }
        }
        if let Some(e) = failure {
            // Keep the record: the next attempt retries what is left.
            let (p, g) = (record.project.clone(), record.graph.clone());
            let message = e.message.clone();
            self.db(move |s| {
                s.append_event(new_event(&p, &g, None, "RemoveFailed", &message))?;
                Ok(())
            })
            .await?;
            return Ok(if e.transient {
                Outcome::Retry(e.message)
            } else {
                Outcome::Stalled(e.message)
            });
        }
        let (k, p, g) = (key.to_owned(), record.project.clone(), record.graph.clone());
        self.db(move |s| {
            s.write(|tx| {
                tx.delete_graph(&k)?;
                tx.append_event(new_event(
                    &p,
                    &g,
                    None,
                    "Removed",
                    "the graph left the desired state; uninstalled and pruned",
                ))?;
                Ok(())
            })
        })
        .await?;
        Ok(Outcome::Done)
    }

    /// Status, written once at the end of every reconcile.
    async fn finish(
        &self,
        world: &World,
        mut recs: Records,
        outcome: &Outcome,
    ) -> Result<(), EngineError> {
        let at = now();
        let g = &mut recs.graph;
        let services: Vec<&ServiceRecord> = recs.services.values().collect();
        let blocked = services
            .iter()
            .find_map(|s| s.blocked_by.as_ref().map(|b| format!("{}: {b}", s.service)));
        let waiting: Vec<String> = services
            .iter()
            .filter(|s| s.phase == ServicePhase::WaitingForTrigger)
            .map(|s| {
                if s.trigger.pending.is_empty() {
                    s.service.clone()
                } else {
                    format!(
                        "{} (waiting for {})",
                        s.service,
                        s.trigger.pending.join(", ")
                    )
                }
            })
            .collect();
        let (ready, reason, message) = match outcome {
            Outcome::Done if g.suspended => {
                (false, "Suspended", "the graph is suspended".to_owned())
            }
            Outcome::Done => (true, "Converged", format!("revision {}", world.revision)),
            Outcome::RequeueAfter(_) => (
                false,
                "Progressing",
                blocked
                    .clone()
                    .unwrap_or_else(|| "waiting for a cluster's failover grace period".into()),
            ),
            Outcome::Retry(e) => (false, "RetryingAfterError", e.clone()),
            Outcome::Stalled(e) => (false, "Stalled", e.clone()),
        };
        let mut conditions = vec![
            condition(ConditionKind::Ready, ready, reason, message.clone()),
            condition(
                ConditionKind::Reconciling,
                matches!(outcome, Outcome::RequeueAfter(_) | Outcome::Retry(_)),
                reason,
                message.clone(),
            ),
            condition(
                ConditionKind::Stalled,
                matches!(outcome, Outcome::Stalled(_)),
                reason,
                message.clone(),
            ),
            condition(
                ConditionKind::Suspended,
                g.suspended,
                "Suspended",
                String::new(),
            ),
            condition(
                ConditionKind::WaitingForTrigger,
                !waiting.is_empty(),
                "WaitingForTrigger",
                waiting.join(", "),
            ),
            condition(
                ConditionKind::BlockedByDependency,
                blocked.is_some(),
                "BlockedByDependency",
                blocked.unwrap_or_default(),
            ),
        ];
        // Drift found in warn mode this pass stays visible.
        conditions.extend(
            g.conditions
                .iter()
                .filter(|c| {
                    c.kind == ConditionKind::Drifted && c.status && c.since >= at.saturating_sub(1)
                })
                .cloned(),
        );
        // Keep `since` of conditions whose status did not change.
        for c in &mut conditions {
            if let Some(old) = g
                .conditions
                .iter()
                .find(|o| o.kind == c.kind && o.status == c.status)
            {
                c.since = old.since;
            }
        }
        g.conditions = conditions;
        g.updated_at = at;
        match outcome {
            Outcome::Done | Outcome::RequeueAfter(_) => {
                g.last_error = None;
                g.failures = 0;
                if matches!(outcome, Outcome::Done) {
                    g.last_applied_revision = Some(world.revision.clone());
                }
            }
            Outcome::Retry(e) | Outcome::Stalled(e) => {
                g.last_error = Some(e.clone());
                g.failures = g.failures.saturating_add(1);
            }
        }
        let (orig_graph, orig_services, orig_owned) = recs.original;
        let graph_changed = orig_graph.as_ref().is_none_or(|o| !same_but_time(o, g));
        if !graph_changed && let Some(o) = &orig_graph {
            g.updated_at = o.updated_at;
        }
        let graph = recs.graph;
        let services: Vec<ServiceRecord> = recs
            .services
            .into_values()
            .filter(|s| {
                orig_services
                    .get(&s.service)
                    .is_none_or(|o| !same_service_but_time(o, s))
            })
            .map(|mut s| {
                s.updated_at = at;
                s
            })
            .collect();
        let deleted = recs.deleted_services;
        let owned: Vec<OwnedObject> = recs
            .owned
            .into_iter()
            .filter(|o| !orig_owned.contains(o))
            .collect();
        let deleted_owned = recs.deleted_owned;
        let events = recs.events;
        let rearm = recs.rearm;
        let read_triggers = recs.triggers;
        if !graph_changed
            && rearm.is_empty()
            && services.is_empty()
            && deleted.is_empty()
            && owned.is_empty()
            && deleted_owned.is_empty()
            && events.is_empty()
        {
            return Ok(());
        }
        self.db(move |s| {
            s.write(|tx| {
                tx.put_graph(&graph)?;
                for svc in &services {
                    tx.put_service(svc)?;
                }
                for d in &deleted {
                    tx.delete_service(&service_key(&graph.project, &graph.graph, d))?;
                    tx.delete_triggers_of(&graph.project, &graph.graph, d)?;
                }
                for cleared in &rearm {
                    // Only if the webhook did not record a newer firing
                    // since this reconcile read it.
                    let current = tx.trigger(&cleared.key())?;
                    let as_read = read_triggers.iter().find(|t| t.key() == cleared.key());
                    if current.as_ref() == as_read {
                        tx.put_trigger(cleared)?;
                    }
                }
                for o in &owned {
                    tx.put_owned(o)?;
                }
                for o in &deleted_owned {
                    tx.delete_owned(&o.key())?;
                }
                for (service, kind, message) in &events {
                    tx.append_event(new_event(
                        &graph.project,
                        &graph.graph,
                        service.as_deref(),
                        kind,
                        message,
                    ))?;
                }
                Ok(())
            })
        })
        .await
    }
}

fn same_but_time(a: &GraphRecord, b: &GraphRecord) -> bool {
    let mut b = b.clone();
    b.updated_at = a.updated_at;
    *a == b
}

fn same_service_but_time(a: &ServiceRecord, b: &ServiceRecord) -> bool {
    let mut b = b.clone();
    b.updated_at = a.updated_at;
    *a == b
}

/// The span of one service's helm and API calls (inside the graph's
/// `reconcile` span, so log lines carry project, graph, revision and
/// service).
fn service_span(id: &str) -> tracing::Span {
    tracing::info_span!("service", service = %id)
}

fn set_phase(rec: &mut ServiceRecord, phase: ServicePhase, error: Option<String>) {
    rec.phase = phase;
    rec.last_error = error;
    if phase != ServicePhase::BlockedByDependency {
        rec.blocked_by = None;
    }
}

fn worse(a: Option<StepError>, b: StepError) -> StepError {
    match a {
        // A terminal error outranks a transient one: retrying cannot help.
        Some(a) if !a.transient => a,
        _ => b,
    }
}

fn condition(kind: ConditionKind, status: bool, reason: &str, message: String) -> Condition {
    Condition {
        kind,
        status,
        reason: reason.to_owned(),
        message,
        since: now(),
    }
}

pub(super) fn object_ref(o: &OwnedObject) -> ObjectRef {
    ObjectRef {
        api_version: o.api_version.clone(),
        kind: o.kind.clone(),
        namespace: o.namespace.clone(),
        name: o.name.clone(),
    }
}

fn describe(p: &Placement) -> String {
    p.iter()
        .map(|(s, c)| format!("{s}→{}", c.join("+")))
        .collect::<Vec<_>>()
        .join(", ")
}

enum Keep {
    Yes { recheck: Option<Duration> },
    No(&'static str),
}

/// Keeps the recorded placement while its inputs are unchanged, every
/// service has clusters, and every cluster it uses is known and ready (or
/// NotReady for less than the grace period: then look again when it ends).
fn keep_placement(
    world: &World,
    graph: &Graph,
    rec: &GraphRecord,
    inputs_hash: &str,
    revision: Option<&str>,
    grace: Duration,
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
        .any(|s| rec.placement.get(s.id.as_str()).is_none_or(Vec::is_empty))
    {
        return Keep::No("a service has no placement");
    }
    let now = now();
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

/// Hash of what placement depends on in the descriptor: service ids,
/// resources and intents, and the graph intent. Values and charts are not
/// placement inputs.
pub fn placement_inputs_hash(graph: &Graph) -> String {
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
    let v = serde_json::json!({
        "services": services,
        "intent": serde_json::to_value(&hda.hda_graph_intent).unwrap_or(Value::Null),
    });
    let digest = <sha2::Sha256 as sha2::Digest>::digest(
        crate::release::values::canonical_json(&v).as_bytes(),
    );
    crate::release::values::hex(&digest)
}

/// Places one graph on the current clusters (a MILP: off the async
/// workers).
async fn place_graph(
    world: &World,
    graph: &Graph,
    current: Placement,
) -> Result<Placement, String> {
    let facts = world.clusters.clone();
    let graph = graph.clone();
    let settings = world.desired.settings.clone();
    tokio::task::spawn_blocking(move || {
        let (clusters, latency) = problem::clusters(&facts);
        let (problem, options, _notes) =
            problem::problem(&graph, &clusters, &latency, Some(&current), &settings);
        let outcome = place(&problem, &options).map_err(|e| e.to_string())?;
        Ok(outcome
            .services
            .into_iter()
            .map(|s| (s.id, s.clusters))
            .collect())
    })
    .await
    .map_err(|e| format!("placement task failed: {e}"))?
}

fn new_graph_record(project: &str, graph: &str, file: &str) -> GraphRecord {
    GraphRecord {
        project: project.to_owned(),
        graph: graph.to_owned(),
        file: file.to_owned(),
        desired_hash: String::new(),
        suspended: false,
        last_applied_revision: None,
        last_attempted_revision: None,
        placement: BTreeMap::new(),
        placement_inputs_hash: None,
        placement_revision: None,
        conditions: Vec::new(),
        last_error: None,
        updated_at: now(),
        failures: 0,
        next_retry_at: None,
        dashboards: BTreeMap::new(),
    }
}

fn new_service_record(project: &str, graph: &str, service: &str) -> ServiceRecord {
    ServiceRecord {
        project: project.to_owned(),
        graph: graph.to_owned(),
        service: service.to_owned(),
        namespace: project.to_owned(),
        release: service.to_owned(),
        release_revision: None,
        input_hash: None,
        phase: ServicePhase::Pending,
        clusters: Vec::new(),
        replicas: BTreeMap::new(),
        trigger: Default::default(),
        blocked_by: None,
        last_error: None,
        updated_at: now(),
        manifest: None,
    }
}

fn new_event(
    project: &str,
    graph: &str,
    service: Option<&str>,
    kind: &str,
    message: &str,
) -> NewEvent {
    NewEvent {
        at: now(),
        project: project.to_owned(),
        graph: graph.to_owned(),
        service: service.map(str::to_owned),
        kind: kind.to_owned(),
        message: message.to_owned(),
    }
}
