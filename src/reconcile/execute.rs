//! Carries out a graph's plan: each service's action in dependency order
//! through its executor, then the removals and the pruning of owned
//! objects no longer wanted. Records what happened through
//! [`status::record_service`]; decides nothing the plan did not.

use super::actions::journal::{IntentLog, Journal};
use super::actions::{HelmOps, KarmadaOps, adopt, install, uninstall};
use super::batch::Batch;
use super::error::{Reason, StepError};
use super::plan::{Action, Plan};
use super::status;
use crate::adapters::karmada::Owner;
use crate::release::{Placement, ReleaseInput};
use crate::store::Kind;
use crate::store::records::{FiredEvent, ServicePhase, ServiceRecord};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tracing::Instrument;

/// What executing a plan needs besides the plan.
pub struct Context<'a, H, K, L> {
    pub helm: &'a H,
    pub karmada: &'a K,
    /// Where write-ahead intents are committed.
    pub log: &'a L,
    pub owner: &'a Owner,
    pub generate_policy: bool,
    pub placement: &'a Placement,
    pub inputs: &'a BTreeMap<&'a str, &'a ReleaseInput>,
    /// How long to wait before looking at a blocking dependency again.
    pub dependency_poll: Duration,
    pub now: u64,
}

/// How the execution went: the worst failure and the earliest requeue.
#[derive(Debug, Default)]
pub struct Executed {
    pub worst: Option<StepError>,
    pub requeue: Option<Duration>,
}

impl Executed {
    fn fail(&mut self, e: StepError) {
        self.worst = Some(StepError::worse(self.worst.take(), e));
    }
}

/// The span of one service's helm and API calls (inside the graph's
/// `reconcile` span, so log lines carry project, graph, revision and
/// service).
fn service_span(id: &str) -> tracing::Span {
    tracing::info_span!("service", service = %id)
}

pub async fn run<H: HelmOps, K: KarmadaOps, L: IntentLog>(
    cx: &Context<'_, H, K, L>,
    plan: &Plan,
    batch: &mut Batch,
) -> Executed {
    let mut done = Executed::default();
    let mut journal = Journal::new(cx.log, &cx.owner.project, &cx.owner.graph, cx.now);
    let mut failed: BTreeSet<&str> = BTreeSet::new();
    let mut namespace_ready = false;
    for p in &plan.services {
        let id = p.id.as_str();
        // A prerequisite that failed in this pass holds the service.
        let mut p = p.clone();
        if let Some(dep) = p.after.iter().find(|d| failed.contains(d.as_str())) {
            p.action = Action::WaitForDependency {
                dependency: dep.clone(),
                why: format!("{dep} failed in this pass"),
            };
        }
        let rec = batch
            .services
            .entry(id.to_owned())
            .or_insert_with(|| ServiceRecord::new(&cx.owner.project, &cx.owner.graph, id, cx.now));
        rec.clusters = cx.placement.get(id).cloned().unwrap_or_default();
        rec.replicas = batch
            .scales
            .get(id)
            .map(|s| s.per_cluster.clone())
            .unwrap_or_default();
        let replicas = batch.scales.get(id).map(|s| s.replicas);
        let result = match &p.action {
            Action::Install | Action::Upgrade | Action::CorrectDrift(_) => {
                let ns = if namespace_ready {
                    Ok(())
                } else {
                    cx.karmada
                        .ensure_namespace(&cx.owner.project)
                        .await
                        .map_err(StepError::from)
                };
                namespace_ready |= ns.is_ok();
                match ns {
                    Err(e) => Err(e),
                    Ok(()) => {
                        let icx = install::Context {
                            owner: cx.owner,
                            generate_policy: cx.generate_policy,
                            replicas,
                        };
                        install::run(
                            cx.helm,
                            cx.karmada,
                            &mut journal,
                            cx.inputs[id],
                            rec,
                            icx,
                            &mut batch.owned,
                        )
                        .instrument(service_span(id))
                        .await
                    }
                }
            }
            Action::Uninstall(_) => {
                uninstall::run(cx.helm, rec)
                    .instrument(service_span(id))
                    .await
            }
            Action::Fail(e) => Err(e.clone()),
            Action::Hold(why) => Err(StepError::terminal(Reason::Ownership, why.clone())),
            Action::WaitForDependency { .. } => {
                done.requeue = Some(
                    done.requeue
                        .map_or(cx.dependency_poll, |r| r.min(cx.dependency_poll)),
                );
                Ok(())
            }
            // In sync by the inputs its label names: taken as it is.
            Action::InSync if crate::release::inputs_from_a_label(rec.input_hash.as_deref()) => {
                match cx.inputs.get(id) {
                    Some(input) => {
                        adopt::run(cx.helm, cx.karmada, input, rec)
                            .instrument(service_span(id))
                            .await
                    }
                    None => Ok(()),
                }
            }
            Action::ReportDrift(_)
            | Action::InSync
            | Action::StaySuspended
            | Action::WaitForTrigger { .. } => Ok(()),
        };
        if result.is_ok()
            && let Some((cleared, _)) = &p.rearm
        {
            batch
                .rearm
                .extend(cleared.iter().cloned().map(|mut f: FiredEvent| {
                    f.cleared_at = Some(cx.now);
                    f
                }));
        }
        let notes = status::record_service(rec, &p, &result);
        for (kind, message) in notes {
            batch.event(Some(id), kind, message);
        }
        if let Err(e) = result {
            tracing::warn!(service = %id, error = %e, "service step failed");
            failed.insert(id);
            done.fail(e);
        }
    }
    batch.intents_done.append(&mut journal.begun);
    remove_services(cx, plan, batch, &mut done).await;
    prune_policies(cx, batch, &mut done).await;
    done
}

/// Services that left the descriptor: uninstalled, then forgotten.
async fn remove_services<H: HelmOps, K: KarmadaOps, L>(
    cx: &Context<'_, H, K, L>,
    plan: &Plan,
    batch: &mut Batch,
    done: &mut Executed,
) {
    for id in &plan.remove {
        let Some(mut rec) = batch.services.remove(id) else {
            continue;
        };
        match uninstall::remove(cx.helm, cx.karmada, cx.owner, &mut rec)
            .instrument(service_span(id))
            .await
        {
            Ok(forgotten) => {
                batch.deleted_services.push(id.clone());
                let message = forgotten.map_or_else(
                    || "uninstalled: no longer in the descriptor".to_owned(),
                    |why| format!("no longer in the descriptor; {why}"),
                );
                batch.event(Some(id), Kind::Uninstalled, message);
            }
            Err(e) => {
                rec.phase = ServicePhase::Failed;
                rec.last_error = Some(e.message.clone());
                batch.services.insert(id.clone(), rec);
                done.fail(e);
            }
        }
    }
    for id in &plan.forget_scales {
        batch.scales.remove(id);
        batch.forget_scales.push(id.clone());
    }
}

/// Generated PropagationPolicies of services that no longer have a
/// release (removed, suspended, re-armed) are deleted.
async fn prune_policies<H: HelmOps, K: KarmadaOps, L>(
    cx: &Context<'_, H, K, L>,
    batch: &mut Batch,
    done: &mut Executed,
) {
    let wanted: BTreeSet<String> = batch
        .services
        .values()
        .filter(|s| s.release_revision.is_some())
        .map(|s| s.service.clone())
        .collect();
    if let Err(e) = batch
        .owned
        .prune(cx.karmada, |o| {
            o.kind == "PropagationPolicy" && !wanted.contains(&o.name)
        })
        .await
    {
        done.fail(e);
    }
}
