//! The graph-level journal entries of a reconcile, from the graph's record
//! before and after it: what changed for the graph as a whole (applied,
//! held, suspended, resumed, failing). Each is reported once, when the
//! graph enters the state, not on every pass that finds it there — a
//! graph failing for an hour is one `ReconcileFailed`, not sixty.

use crate::store::Kind;
use crate::store::records::{ConditionKind, GraphRecord};

fn ready_reason(g: &GraphRecord) -> Option<(&str, &str)> {
    g.conditions
        .iter()
        .find(|c| c.kind == ConditionKind::Ready)
        .map(|c| (c.reason.as_str(), c.message.as_str()))
}

/// The entries for a graph that went from `before` (`None`: first seen)
/// to `after`; `invalid`: its file was refused this pass.
pub fn graph_events(
    before: Option<&GraphRecord>,
    after: &GraphRecord,
    invalid: bool,
) -> Vec<(Kind, String)> {
    let mut out = Vec::new();
    let was_suspended = before.is_some_and(|b| b.suspended);
    if after.suspended && !was_suspended {
        out.push((Kind::Suspended, "the graph is suspended".to_owned()));
    }
    if !after.suspended && was_suspended {
        out.push((Kind::Resumed, "the graph is no longer suspended".to_owned()));
    }
    let Some((reason, message)) = ready_reason(after) else {
        return out;
    };
    let old = before.and_then(ready_reason);
    let entered = old.is_none_or(|(r, _)| r != reason);
    let error = after
        .last_error
        .clone()
        .unwrap_or_else(|| message.to_owned());
    match reason {
        "Converged" => {
            let new_spec = before.is_none_or(|b| b.desired_hash != after.desired_hash);
            if entered || new_spec {
                let at = after.last_applied_revision.as_deref().unwrap_or("-");
                out.push((Kind::Applied, format!("converged at revision {at}")));
            }
        }
        "Stalled" => {
            let new_error = before.is_none_or(|b| b.last_error != after.last_error);
            if entered || new_error {
                let kind = if invalid {
                    Kind::Held
                } else {
                    Kind::ReconcileFailed
                };
                out.push((kind, error));
            }
        }
        "RetryingAfterError" if entered => out.push((Kind::ReconcileFailed, error)),
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::records::Condition;

    fn graph(reason: &str, hash: &str, suspended: bool, error: Option<&str>) -> GraphRecord {
        let mut g = GraphRecord::new("p", "g", "p.yaml", 1);
        g.desired_hash = hash.into();
        g.suspended = suspended;
        g.last_error = error.map(str::to_owned);
        g.last_applied_revision = Some("r1".into());
        g.conditions = vec![Condition {
            kind: ConditionKind::Ready,
            status: reason == "Converged",
            reason: reason.into(),
            message: String::new(),
            since: 1,
        }];
        g
    }

    fn kinds(before: Option<&GraphRecord>, after: &GraphRecord, invalid: bool) -> Vec<Kind> {
        graph_events(before, after, invalid)
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    }

    #[test]
    fn one_row_per_transition() {
        let converged = graph("Converged", "h1", false, None);
        let edited = graph("Converged", "h2", false, None);
        let retrying = graph("RetryingAfterError", "h2", false, Some("helm failed"));
        let stalled = graph("Stalled", "h1", false, Some("file invalid"));
        let stalled_other = graph("Stalled", "h1", false, Some("another error"));
        let suspended = graph("Suspended", "h3", true, None);
        let rows: Vec<(Option<&GraphRecord>, &GraphRecord, bool, Vec<Kind>)> = vec![
            (None, &converged, false, vec![Kind::Applied]),
            (Some(&converged), &converged, false, vec![]),
            (Some(&converged), &edited, false, vec![Kind::Applied]),
            (
                Some(&converged),
                &retrying,
                false,
                vec![Kind::ReconcileFailed],
            ),
            (Some(&retrying), &retrying, false, vec![]),
            (Some(&retrying), &edited, false, vec![Kind::Applied]),
            (Some(&converged), &stalled, true, vec![Kind::Held]),
            (Some(&stalled), &stalled, true, vec![]),
            (Some(&stalled), &stalled_other, true, vec![Kind::Held]),
            (
                Some(&converged),
                &stalled,
                false,
                vec![Kind::ReconcileFailed],
            ),
            (Some(&converged), &suspended, false, vec![Kind::Suspended]),
            (Some(&suspended), &suspended, false, vec![]),
            (
                Some(&suspended),
                &edited,
                false,
                vec![Kind::Resumed, Kind::Applied],
            ),
        ];
        for (i, (before, after, invalid, want)) in rows.into_iter().enumerate() {
            assert_eq!(kinds(before, after, invalid), want, "row {i}");
        }
    }
}
