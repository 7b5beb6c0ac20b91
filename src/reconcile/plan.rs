//! The pure planner: for one graph, from what is desired, what the store
//! recorded and what was observed live, exactly one next action per
//! service (Flux helm-controller's classify-then-act). Every decision of
//! the reconciler is a row here — re-arming a trigger, drift correction or
//! report, the dependency gate, suspension, removal — so that the
//! executors only carry actions out and a table test covers each class.
//!
//! Planning is in two stages because some facts are worth reading only
//! for some services: [`readiness_wanted`] names the dependencies whose
//! readiness the engine must observe, then [`plan`] decides.

use super::error::StepError;
use super::triggers::Evaluation;
use crate::spec::settings::DriftMode;
use crate::store::records::{FiredEvent, ServicePhase, ServiceRecord, TriggerState};
use std::collections::{BTreeMap, BTreeSet};

/// What is desired of one service this pass.
#[derive(Debug, Clone)]
pub struct DesiredService<'a> {
    pub id: &'a str,
    /// The release inputs' hash: a different one upgrades.
    pub hash: &'a str,
    pub dependencies: Vec<&'a str>,
    pub trigger: Option<Trigger<'a>>,
    /// `artifact.adopt`: a release of this name that smo did not install
    /// may be taken over.
    pub adopt: bool,
}

/// An event-triggered service's trigger, evaluated against its recorded
/// events.
#[derive(Debug, Clone)]
pub struct Trigger<'a> {
    pub evaluation: Evaluation,
    pub undeploy_on_resolve: bool,
    /// Every event id of the trigger, in descriptor order.
    pub events: Vec<&'a str>,
    /// The fired events recorded for this service.
    pub recorded: Vec<FiredEvent>,
}

/// What is desired of the graph this pass.
#[derive(Debug, Clone)]
pub struct DesiredGraph<'a> {
    pub suspended: bool,
    pub drift: DriftMode,
    /// In descriptor order.
    pub services: Vec<DesiredService<'a>>,
}

/// A dependency's readiness, read live from the workloads of its release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Why not (a workload missing or with too few ready replicas).
    NotReady(String),
    /// It could not be read.
    Unknown(StepError),
}

/// Who owns an existing release of a service's name, judged from the
/// labels of helm's newest record of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// No such release.
    Absent,
    /// Installed by smo for this graph.
    Ours,
    /// Installed by smo for another graph (`project/graph`).
    OtherGraph(String),
    /// Not installed by smo.
    Foreign,
    /// It could not be read.
    Unknown(StepError),
}

/// Live facts read before planning.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Drift of installed services, when this pass checks it: the fields
    /// the recorded manifest sets that differ live (`Kind/name/pointer`),
    /// or why they could not be read.
    pub drift: BTreeMap<String, Result<Vec<String>, StepError>>,
    /// Readiness of the services named by [`readiness_wanted`].
    pub readiness: BTreeMap<String, Readiness>,
    /// Ownership of the releases named by [`ownership_wanted`].
    pub releases: BTreeMap<String, Ownership>,
}

/// Why a release is uninstalled while its service stays desired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UninstallReason {
    /// The graph is suspended (the record is kept).
    Suspended,
    /// The alert resolved and the trigger has `undeployOnResolve`.
    Resolved,
}

/// The one next step of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Not installed: `helm upgrade --install`.
    Install,
    /// Installed with other inputs, or the last attempt failed.
    Upgrade,
    /// In sync by hash but drifted live, and drift mode is `correct`.
    CorrectDrift(Vec<String>),
    /// Drifted live, and drift mode is `warn`: nothing is touched.
    ReportDrift(Vec<String>),
    /// Installed but must not run now.
    Uninstall(UninstallReason),
    /// Suspended and nothing installed: nothing to do.
    StaySuspended,
    /// Event-triggered and not fired yet.
    WaitForTrigger { pending: Vec<String> },
    /// Would install or upgrade, but a dependency is not deployed and
    /// ready.
    WaitForDependency { dependency: String, why: String },
    /// Installed with these inputs, no drift seen.
    InSync,
    /// A release of the service's name exists and is not smo's to touch
    /// (no `artifact.adopt`): the service is Blocked, nothing is changed.
    Hold(String),
    /// A fact the decision needs could not be observed.
    Fail(StepError),
}

impl Action {
    /// Whether the action changes anything outside smo.
    pub fn has_effect(&self) -> bool {
        matches!(
            self,
            Action::Install | Action::Upgrade | Action::CorrectDrift(_) | Action::Uninstall(_)
        )
    }

    /// Whether the service runs (or will, once the action succeeded).
    fn leaves_deployed(&self) -> bool {
        matches!(
            self,
            Action::Upgrade | Action::CorrectDrift(_) | Action::ReportDrift(_) | Action::InSync
        )
    }
}

/// The plan of one service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServicePlan {
    pub id: String,
    pub action: Action,
    /// The trigger state to record (default for services without one).
    pub trigger: TriggerState,
    /// Services of this graph whose action this pass must succeed before
    /// this one runs (dependencies being upgraded).
    pub after: Vec<String>,
    /// With `Uninstall(Resolved)`: the recorded events to clear, and the
    /// trigger state to record, once the uninstall succeeded.
    pub rearm: Option<(Vec<FiredEvent>, TriggerState)>,
    /// The drift observed this pass, to record (`None`: not checked).
    pub drift: Option<Vec<String>>,
}

/// The plan of one graph.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// In dependency order (dependencies first).
    pub services: Vec<ServicePlan>,
    /// Recorded services that left the descriptor: uninstall and forget.
    pub remove: Vec<String>,
    /// Services whose scaler record must go (their `scaling` block was
    /// removed, or the service was): helm's replicas apply again.
    pub forget_scales: Vec<String>,
}

/// Services in dependency order (dependencies first), stable otherwise.
/// Validation rejects cycles; a cycle that slipped through keeps the
/// remaining services in descriptor order rather than dropping them.
pub fn dependency_order<'a>(services: &[(&'a str, Vec<&'a str>)]) -> Vec<&'a str> {
    let mut done: Vec<&str> = Vec::with_capacity(services.len());
    let mut left: Vec<&(&str, Vec<&str>)> = services.iter().collect();
    while !left.is_empty() {
        let before = left.len();
        left.retain(|(id, deps)| {
            let ready = deps
                .iter()
                .all(|d| done.contains(d) || !services.iter().any(|(s, _)| s == d));
            if ready {
                done.push(id);
            }
            !ready
        });
        if left.len() == before {
            done.extend(left.iter().map(|(id, _)| *id));
            break;
        }
    }
    done
}

fn installed(rec: Option<&ServiceRecord>) -> bool {
    rec.is_some_and(|r| r.release_revision.is_some())
}

/// The trigger state a service shows, from its evaluation.
fn trigger_state(t: &Trigger<'_>, installed: bool) -> TriggerState {
    let by = t.evaluation.by.as_ref().filter(|_| t.evaluation.fired);
    TriggerState {
        armed: !t.evaluation.fired && !installed,
        fired_at: by.map(|b| b.fired_at),
        alert: by.map(|b| b.alert.clone()),
        pending: t.evaluation.pending.clone(),
    }
}

/// The first stage's class, before live facts: what a service would do.
fn classify(
    g: &DesiredGraph<'_>,
    s: &DesiredService<'_>,
    rec: Option<&ServiceRecord>,
) -> (
    Action,
    TriggerState,
    Option<(Vec<FiredEvent>, TriggerState)>,
) {
    let installed = installed(rec);
    let trigger = s
        .trigger
        .as_ref()
        .map(|t| trigger_state(t, installed))
        .unwrap_or_default();
    if g.suspended {
        let action = if installed {
            Action::Uninstall(UninstallReason::Suspended)
        } else {
            Action::StaySuspended
        };
        return (action, trigger, None);
    }
    if let Some(t) = &s.trigger {
        let e = &t.evaluation;
        if t.undeploy_on_resolve && installed && e.fired && !e.holds {
            // Re-arm: clear the events whose alert resolved; the ones
            // still firing keep counting (Alertmanager will not send them
            // again as new firings), so the next firing can deploy again.
            let cleared: Vec<FiredEvent> = t
                .recorded
                .iter()
                .filter(|f| f.counts() && f.resolved_at.is_some())
                .cloned()
                .collect();
            let still: BTreeSet<&str> = t
                .recorded
                .iter()
                .filter(|f| f.counts() && f.resolved_at.is_none())
                .map(|f| f.event.as_str())
                .collect();
            let rearmed = TriggerState {
                armed: true,
                fired_at: None,
                alert: None,
                pending: t
                    .events
                    .iter()
                    .filter(|e| !still.contains(**e))
                    .map(|e| (*e).to_owned())
                    .collect(),
            };
            return (
                Action::Uninstall(UninstallReason::Resolved),
                trigger,
                Some((cleared, rearmed)),
            );
        }
        if !e.fired && !installed {
            let pending = e.pending.clone();
            return (Action::WaitForTrigger { pending }, trigger, None);
        }
    }
    let action = match rec {
        Some(r) if installed => {
            if r.phase == ServicePhase::Failed
                || !crate::release::same_inputs(r.input_hash.as_deref(), s.hash)
            {
                Action::Upgrade
            } else {
                Action::InSync
            }
        }
        _ => Action::Install,
    };
    (action, trigger, None)
}

/// The dependencies whose readiness [`plan`] needs: those of services that
/// would install or upgrade.
pub fn readiness_wanted(
    g: &DesiredGraph<'_>,
    recorded: &BTreeMap<String, ServiceRecord>,
) -> BTreeSet<String> {
    g.services
        .iter()
        .filter(|s| {
            matches!(
                classify(g, s, recorded.get(s.id)).0,
                Action::Install | Action::Upgrade
            )
        })
        .flat_map(|s| s.dependencies.iter().map(|d| (*d).to_owned()))
        .collect()
}

/// The services whose release's ownership [`plan`] needs: those about to
/// install (the store knows no release of theirs, so one found live may
/// not be smo's).
pub fn ownership_wanted(
    g: &DesiredGraph<'_>,
    recorded: &BTreeMap<String, ServiceRecord>,
) -> BTreeSet<String> {
    g.services
        .iter()
        .filter(|s| classify(g, s, recorded.get(s.id)).0 == Action::Install)
        .map(|s| s.id.to_owned())
        .collect()
}

/// Plans one graph. `recorded` holds the service records by id, `scaled`
/// the services that have a `scaling` block now, `scale_records` those the
/// scaler has a decision for.
pub fn plan(
    g: &DesiredGraph<'_>,
    recorded: &BTreeMap<String, ServiceRecord>,
    observed: &Observed,
    scaled: &BTreeSet<&str>,
    scale_records: &BTreeSet<String>,
) -> Plan {
    let order_in: Vec<(&str, Vec<&str>)> = g
        .services
        .iter()
        .map(|s| (s.id, s.dependencies.clone()))
        .collect();
    let mut planned: BTreeMap<&str, Action> = BTreeMap::new();
    let mut services = Vec::with_capacity(g.services.len());
    for id in dependency_order(&order_in) {
        let s = g.services.iter().find(|s| s.id == id).expect("listed");
        let (mut action, trigger, rearm) = classify(g, s, recorded.get(id));
        let mut after = Vec::new();
        if action == Action::Install
            && let Some(held) = ownership_hold(s, observed)
        {
            action = held;
        }
        match &action {
            Action::Install | Action::Upgrade => {
                if let Some((dependency, why)) = gate(s, &planned, observed, &mut after) {
                    action = Action::WaitForDependency { dependency, why };
                    after.clear();
                }
            }
            Action::InSync => {
                action = match observed.drift.get(id) {
                    None => Action::InSync,
                    Some(Ok(paths)) if paths.is_empty() => Action::InSync,
                    Some(Ok(paths)) => match g.drift {
                        DriftMode::Correct => Action::CorrectDrift(paths.clone()),
                        DriftMode::Warn => Action::ReportDrift(paths.clone()),
                    },
                    Some(Err(e)) => Action::Fail(e.clone()),
                };
            }
            _ => {}
        }
        planned.insert(id, action.clone());
        let drift = match observed.drift.get(id) {
            Some(Ok(paths)) => Some(paths.clone()),
            _ => None,
        };
        services.push(ServicePlan {
            id: id.to_owned(),
            action,
            trigger,
            after,
            rearm,
            drift,
        });
    }
    let desired: BTreeSet<&str> = g.services.iter().map(|s| s.id).collect();
    let remove = recorded
        .keys()
        .filter(|k| !desired.contains(k.as_str()))
        .cloned()
        .collect();
    let forget_scales = scale_records
        .iter()
        .filter(|s| !scaled.contains(s.as_str()))
        .cloned()
        .collect();
    Plan {
        services,
        remove,
        forget_scales,
    }
}

/// Ownership before touch: an existing release that smo did not install
/// for this graph is left alone unless the descriptor adopts it.
fn ownership_hold(s: &DesiredService<'_>, observed: &Observed) -> Option<Action> {
    match observed.releases.get(s.id)? {
        Ownership::Absent | Ownership::Ours => None,
        Ownership::Unknown(e) => Some(Action::Fail(e.clone())),
        _ if s.adopt => None,
        Ownership::Foreign => Some(Action::Hold(format!(
            "release {} exists and is not managed by smo; set artifact.adopt: true to let smo take it over, or remove the release",
            s.id
        ))),
        Ownership::OtherGraph(other) => Some(Action::Hold(format!(
            "release {} belongs to graph {other}; service ids must be unique within a project",
            s.id
        ))),
    }
}

/// What happens to the release of a service that leaves the desired state
/// (its descriptor entry, or its whole graph, is gone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    Uninstall,
    /// Nothing to uninstall, or not smo's to uninstall for this graph:
    /// the record goes, the release stays (why).
    Forget(String),
}

/// Ownership before touch on removal. A release whose helm record now
/// names another graph was adopted there: it is forgotten, not
/// uninstalled. A release without smo's marks is uninstalled: the store's
/// record is the evidence that smo installed it (before releases carried
/// marks). An absent one is simply forgotten.
pub fn removal(release: &str, ownership: &Ownership) -> Result<Removal, StepError> {
    match ownership {
        Ownership::Ours | Ownership::Foreign => Ok(Removal::Uninstall),
        Ownership::Absent => Ok(Removal::Forget(format!(
            "release {release} is already gone"
        ))),
        Ownership::OtherGraph(other) => Ok(Removal::Forget(format!(
            "release {release} now belongs to graph {other}; it is left installed"
        ))),
        Ownership::Unknown(e) => Err(e.clone()),
    }
}

/// The dependency gate: the first dependency that is not deployed and
/// ready, with why. Dependencies upgraded in this pass go to `after`.
fn gate(
    s: &DesiredService<'_>,
    planned: &BTreeMap<&str, Action>,
    observed: &Observed,
    after: &mut Vec<String>,
) -> Option<(String, String)> {
    for dep in &s.dependencies {
        // A dependency that is not a service of the graph was reported by
        // validation; it cannot hold the service back.
        let Some(action) = planned.get(dep) else {
            continue;
        };
        if !action.leaves_deployed() {
            return Some(((*dep).to_owned(), format!("{dep} is not deployed")));
        }
        match observed.readiness.get(*dep) {
            Some(Readiness::Ready) => {}
            Some(Readiness::NotReady(why)) => {
                return Some(((*dep).to_owned(), format!("{dep} is not ready: {why}")));
            }
            Some(Readiness::Unknown(e)) => {
                return Some(((*dep).to_owned(), format!("{dep}: {e}")));
            }
            None => {
                return Some((
                    (*dep).to_owned(),
                    format!("{dep}'s readiness was not observed"),
                ));
            }
        }
        if action.has_effect() {
            after.push((*dep).to_owned());
        }
    }
    None
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
