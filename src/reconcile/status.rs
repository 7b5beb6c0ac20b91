//! Status, in one place: what each executed action means for its service
//! record and the journal ([`record_service`]), how a pass ends
//! ([`outcome`]), and the graph's conditions ([`summarize`]). Pure: the
//! engine writes the result once, at the end of every reconcile.

use super::error::StepError;
use super::plan::{Action, ServicePlan, UninstallReason};
use crate::store::Kind;
use crate::store::records::{
    Condition, ConditionKind, GraphRecord, ServicePhase, ServiceRecord, TriggerState,
};
use std::collections::BTreeMap;
use std::time::Duration;

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
    Retry(StepError),
    /// A terminal failure: wait for a change of the inputs.
    Stalled(StepError),
}

impl Outcome {
    /// The label of `smo_reconciles_total{outcome}`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::RequeueAfter(_) => "requeue",
            Outcome::Retry(_) => "retry",
            Outcome::Stalled(_) => "stalled",
        }
    }

    pub fn error(&self) -> Option<&StepError> {
        match self {
            Outcome::Retry(e) | Outcome::Stalled(e) => Some(e),
            _ => None,
        }
    }
}

/// The outcome of a pass from its worst failure and the earliest wanted
/// requeue.
pub fn outcome(worst: Option<StepError>, requeue: Option<Duration>) -> Outcome {
    match (worst, requeue) {
        (Some(e), _) if e.transient => Outcome::Retry(e),
        (Some(e), _) => Outcome::Stalled(e),
        (None, Some(after)) => Outcome::RequeueAfter(after),
        (None, None) => Outcome::Done,
    }
}

/// When the graph is due again, recorded in its record: after a
/// retryable failure the back-off, from the recorded count of consecutive
/// failures (so that it keeps growing across restarts); while waiting, the
/// wait; otherwise never (a change enqueues it). Returns the delay.
pub fn schedule(
    g: &mut GraphRecord,
    outcome: &Outcome,
    retry: &crate::retry::Policy,
    now: u64,
) -> Option<Duration> {
    g.failures = match outcome {
        Outcome::Retry(_) => g.failures.saturating_add(1),
        _ => 0,
    };
    let after = match outcome {
        Outcome::Retry(_) => Some(retry.delay(g.failures, &g.key())),
        Outcome::RequeueAfter(d) => Some(*d),
        Outcome::Done | Outcome::Stalled(_) => None,
    };
    g.next_retry_at = after.map(|d| now.saturating_add(d.as_secs()));
    after
}

/// A journal entry of a service: kind and message.
pub type Note = (Kind, String);

/// Writes what the executed action of `plan` came to into its service
/// record, and returns the journal entries it makes.
pub fn record_service(
    rec: &mut ServiceRecord,
    plan: &ServicePlan,
    result: &Result<(), StepError>,
) -> Vec<Note> {
    rec.trigger = plan.trigger.clone();
    if let Some(paths) = &plan.drift {
        rec.drifted.clone_from(paths);
    }
    let mut notes = Vec::new();
    if let Err(e) = result {
        if let Action::CorrectDrift(paths) = &plan.action {
            rec.drifted.clone_from(paths);
        }
        if matches!(plan.action, Action::Hold(_)) {
            set_phase(rec, ServicePhase::Blocked, Some(e.message.clone()));
            notes.push((Kind::Blocked, e.message.clone()));
        } else {
            set_phase(rec, ServicePhase::Failed, Some(e.message.clone()));
            notes.push((Kind::Failed, e.message.clone()));
        }
        return notes;
    }
    let revision = rec.release_revision.unwrap_or(0);
    match &plan.action {
        Action::Install => {
            set_phase(rec, ServicePhase::Deployed, None);
            notes.push(match &plan.trigger {
                TriggerState {
                    alert: Some(alert),
                    fired_at: Some(at),
                    ..
                } => (
                    Kind::Triggered,
                    format!("alert {alert} fired at {at}: installed revision {revision}"),
                ),
                _ => (Kind::Installed, format!("revision {revision}")),
            });
        }
        Action::Upgrade => {
            set_phase(rec, ServicePhase::Deployed, None);
            notes.push((Kind::Upgraded, format!("revision {revision}")));
        }
        Action::CorrectDrift(paths) => {
            set_phase(rec, ServicePhase::Deployed, None);
            notes.push((Kind::DriftCorrected, paths.join(", ")));
        }
        Action::ReportDrift(paths) => {
            let what = paths.join(", ");
            rec.last_error = Some(format!("drifted: {what}"));
            notes.push((Kind::Drifted, what));
        }
        Action::Uninstall(UninstallReason::Suspended) | Action::StaySuspended => {
            set_phase(rec, ServicePhase::Suspended, None);
        }
        Action::Uninstall(UninstallReason::Resolved) => {
            if let Some((_, state)) = &plan.rearm {
                rec.trigger = state.clone();
            }
            set_phase(rec, ServicePhase::WaitingForTrigger, None);
            notes.push((
                Kind::Rearmed,
                "the alert resolved: uninstalled (undeployOnResolve); waiting for the trigger again"
                    .into(),
            ));
        }
        Action::WaitForTrigger { .. } => set_phase(rec, ServicePhase::WaitingForTrigger, None),
        Action::WaitForDependency { why, .. } => {
            set_phase(rec, ServicePhase::BlockedByDependency, Some(why.clone()));
            rec.blocked_by = Some(why.clone());
        }
        Action::InSync => {
            if plan.drift.is_some()
                && rec
                    .last_error
                    .as_deref()
                    .is_some_and(|e| e.starts_with("drifted: "))
            {
                rec.last_error = None;
            }
        }
        Action::Fail(_) | Action::Hold(_) => {}
    }
    notes
}

fn set_phase(rec: &mut ServiceRecord, phase: ServicePhase, error: Option<String>) {
    rec.phase = phase;
    rec.last_error = error;
    if phase != ServicePhase::BlockedByDependency {
        rec.blocked_by = None;
    }
}

/// The graph's conditions after a pass, from its outcome and its service
/// records (drift included: a drifted service stays reported until a
/// check finds it in sync or an upgrade re-applies it). `since` of a
/// condition whose status did not change is kept.
pub fn summarize(
    g: &mut GraphRecord,
    services: &BTreeMap<String, ServiceRecord>,
    outcome: &Outcome,
    revision: &str,
    now: u64,
) {
    let blocked = services
        .values()
        .find_map(|s| s.blocked_by.as_ref().map(|b| format!("{}: {b}", s.service)));
    let waiting: Vec<String> = services
        .values()
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
    let drifted: Vec<String> = services
        .values()
        .filter(|s| !s.drifted.is_empty())
        .map(|s| format!("{}: {}", s.service, s.drifted.join(", ")))
        .collect();
    let (ready, reason, message) = match outcome {
        Outcome::Done if g.suspended => (false, "Suspended", "the graph is suspended".to_owned()),
        Outcome::Done => (true, "Converged", format!("revision {revision}")),
        Outcome::RequeueAfter(_) => (
            false,
            "Progressing",
            blocked
                .clone()
                .unwrap_or_else(|| "waiting for a cluster's failover grace period".into()),
        ),
        Outcome::Retry(e) => (false, "RetryingAfterError", e.message.clone()),
        Outcome::Stalled(e) => (false, "Stalled", e.message.clone()),
    };
    let condition = |kind, status, reason: &str, message: String| Condition {
        kind,
        status,
        reason: reason.to_owned(),
        message,
        since: now,
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
            message,
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
    if !drifted.is_empty() {
        conditions.push(condition(
            ConditionKind::Drifted,
            true,
            "Drifted",
            drifted.join("; "),
        ));
    }
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
    g.updated_at = now;
    match outcome {
        Outcome::Done | Outcome::RequeueAfter(_) => {
            g.last_error = None;
            g.failures = 0;
            if matches!(outcome, Outcome::Done) {
                g.last_applied_revision = Some(revision.to_owned());
            }
        }
        Outcome::Retry(e) | Outcome::Stalled(e) => {
            g.last_error = Some(e.message.clone());
            g.failures = g.failures.saturating_add(1);
        }
    }
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
