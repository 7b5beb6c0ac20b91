//! Reconciles one graph, told only which key, never why: observe (the
//! store's records, the desired graph, live facts), plan (pure), execute
//! (one executor per action), summarise (status, once, at the end of
//! every reconcile, success or failure). Running it again after a crash is
//! the recovery.

use super::batch::Batch;
use super::dashsync::DashboardSync;
use super::error::{Reason, StepError};
use super::plan;
use super::rulesync::RuleSync;
use super::status::{self, outcome};
use super::transitions;
use super::{execute, facts, placed, publish, remove};
use crate::adapters::helm::Helm;
use crate::adapters::karmada::{Karmada, Owner};
use crate::desired::Graph;
use crate::keys::GraphKey;
use crate::provenance::Change;
use crate::release::{self, ReleaseInput};
use crate::store::records::GraphRecord;
use crate::store::{Store, StoreError};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

pub use super::placed::placement_inputs_hash;
pub use super::status::Outcome;
pub use super::world::World;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("state store: {0}")]
    Store(#[from] StoreError),
}

impl From<EngineError> for StepError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Store(e) => e.into(),
        }
    }
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
    pub dashboards: DashboardSync,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The back-off after a transient failure.
    pub retry: crate::retry::Policy,
    /// Releases the last drift checks found in sync (see `clean`).
    pub clean: Arc<super::actions::clean::CleanMemo>,
}

/// How a reconcile ended, and when the graph wants to be looked at again
/// (`None`: when something changes, or, after a failure that left no
/// record, at the caller's own back-off).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciled {
    pub outcome: Outcome,
    pub after: Option<Duration>,
    /// Graphs asked to move to make room for this one (see `room`): the
    /// caller reconciles them next.
    pub moved: Vec<GraphKey>,
}

impl Engine {
    /// Reconciles one graph. `drift_check` is set on resyncs.
    #[tracing::instrument(
        name = "reconcile",
        skip_all,
        fields(project = %key.project, graph = %key.graph, revision = %world.revision)
    )]
    pub async fn reconcile(
        &self,
        world: &World,
        key: &GraphKey,
        drift_check: bool,
    ) -> Result<Reconciled, EngineError> {
        let now = crate::clock::now();
        let mut batch = Batch::load(&self.store, key).await?;
        batch.cause = Some(world.cause());
        let Some(entry) = world.entry(key) else {
            if batch.graph.is_none() || world.prune_blocked.is_some() {
                return Ok(Reconciled {
                    outcome: Outcome::Done,
                    after: None,
                    moved: Vec::new(),
                });
            }
            let cx = remove::Context {
                helm: &self.helm,
                karmada: &self.karmada,
                rules: &self.rules,
                dashboards: &self.dashboards,
                store: &self.store,
                now,
                cause: batch.cause.clone(),
            };
            let outcome = remove::run(&cx, batch).await?;
            return Ok(Reconciled {
                outcome,
                after: None,
                moved: Vec::new(),
            });
        };
        let rec = batch
            .graph
            .get_or_insert_with(|| GraphRecord::new(&key.project, &key.graph, &entry.file, now));
        rec.file.clone_from(&entry.file);
        rec.last_attempted_revision = Some(world.revision.clone());
        let outcome = match &entry.graph {
            // Invalid: the last good state is kept; terminal until the
            // file changes.
            None => {
                // A held graph does not move: a move asked of it is
                // dropped, so that it does not keep others waiting.
                if let Some(m) = &batch.move_asked {
                    tracing::warn!(for_graph = %m.for_graph, "the graph is held; the move asked of it is dropped");
                    batch.move_taken = true;
                }
                Outcome::Stalled(facts::invalid(world, entry))
            }
            Some(graph) => self.apply(world, graph, &mut batch, drift_check, now).await,
        };
        let g = batch.graph.as_mut().expect("set above");
        if let Some(graph) = &entry.graph {
            let hash = facts::desired_hash(graph);
            if g.desired_hash != hash {
                g.last_change = Some(Change {
                    cause: world.cause(),
                    file: entry.file.clone(),
                    seen_at: now,
                });
            }
            g.desired_hash = hash;
            g.origin = graph.origin.as_ref().map(crate::desired::Origin::pinned);
        }
        status::summarize(g, &batch.services, &outcome, &world.revision, now);
        let after = status::schedule(g, &outcome, &self.retry, now);
        let g = batch.graph.as_ref().expect("set above");
        let invalid = entry.graph.is_none();
        for (kind, message) in transitions::graph_events(batch.original_graph(), g, invalid) {
            batch.event(None, kind, message);
        }
        let moved = batch
            .moves
            .iter()
            .map(|m| GraphKey::new(&m.project, &m.graph))
            .collect();
        batch.commit(&self.store, now).await?;
        Ok(Reconciled {
            outcome,
            after,
            moved,
        })
    }

    /// The graph is desired and valid: place, plan, execute.
    async fn apply(
        &self,
        world: &World,
        graph: &Graph,
        batch: &mut Batch,
        drift_check: bool,
        now: u64,
    ) -> Outcome {
        let hda = &graph.descriptor.hda_graph;
        batch.graph.as_mut().expect("set by reconcile").suspended = hda.suspend;
        let (placement, recheck) =
            match placed::resolve(world, graph, batch, &self.store, &self.metrics, now).await {
                Ok(p) => p,
                Err(e) => return outcome(Some(e), None),
            };
        let inputs = if let Some(kept) = world.charts.kept_inputs(graph, &placement) {
            kept
        } else {
            let (graph, placement, root) = (graph.clone(), placement.clone(), world.root.clone());
            let charts = Arc::clone(&world.charts);
            match tokio::task::spawn_blocking(move || {
                release::inputs_memo(&graph, &placement, &root, &charts)
            })
            .await
            {
                Ok(Ok(i)) => i,
                Ok(Err(e)) => return outcome(Some(e.into()), None),
                Err(e) => {
                    let e =
                        StepError::transient(Reason::Internal, format!("chart task failed: {e}"));
                    return outcome(Some(e), None);
                }
            }
        };
        tracing::debug!(releases = inputs.len(), "release inputs ready");
        let inputs: BTreeMap<&str, &ReleaseInput> =
            inputs.iter().map(|i| (i.service.as_str(), i)).collect();
        let desired = facts::desired_graph(graph, &inputs, &batch.triggers, world);
        // The scaler owns the replicas of services with a scaling block.
        let scaled: BTreeSet<&str> = hda
            .services
            .iter()
            .filter(|s| s.deployment.intent.scaling.is_some())
            .map(|s| s.id.as_str())
            .collect();
        let owner = Owner {
            project: graph.project.clone(),
            graph: graph.id().to_owned(),
        };
        if drift_check {
            facts::canonicalise_manifests(batch);
        }
        let observed = facts::observe(
            &self.karmada,
            &desired,
            batch,
            drift_check,
            &scaled,
            &owner,
            &self.clean,
        )
        .await;
        let scale_records: BTreeSet<String> = batch.scales.keys().cloned().collect();
        let plan = plan::plan(
            &desired,
            &batch.services,
            &observed,
            &scaled,
            &scale_records,
        );
        tracing::debug!("planned");
        let cx = execute::Context {
            helm: &self.helm,
            karmada: &self.karmada,
            log: &self.store,
            owner: &owner,
            generate_policy: world.desired.settings.generate_propagation_policy,
            placement: &placement,
            inputs: &inputs,
            dependency_poll: self.dependency_poll,
            now,
        };
        let mut done = execute::run(&cx, &plan, batch).await;
        let published = [
            publish::rules(&self.rules, &self.karmada, &owner, graph, batch).await,
            publish::dashboards(&self.dashboards, graph, batch).await,
        ];
        for e in published.into_iter().flatten() {
            done.worst = Some(StepError::worse(done.worst.take(), e));
        }
        let requeue = match (recheck, done.requeue) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        outcome(done.worst, requeue)
    }
}
