//! Event triggers, pure: what one alert delivery does to the recorded
//! events ([`on_delivery`]), and what the recorded events mean for a
//! service ([`evaluate`]).
//!
//! Delivery is at-least-once and Alertmanager repeats firing alerts, so a
//! delivery is identified by fingerprint + `startsAt` + status: the same
//! one twice changes nothing. Semantics (the original SMO's, plus our
//! `undeployOnResolve`): `ANY` deploys on the first fired event, `ALL` once
//! every event fired; fired events persist; a resolved alert leaves the
//! service deployed unless `undeployOnResolve` is set, which uninstalls it
//! and re-arms the trigger (the events are cleared, not forgotten, so a late
//! duplicate of the old firing is still recognised).

use crate::descriptor::model::{EventCondition, EventTrigger};
use crate::store::FiredEvent;

/// One alert of a delivery, already matched to a service's event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub project: String,
    pub graph: String,
    pub service: String,
    pub event: String,
    pub alert: String,
    pub fingerprint: String,
    pub starts_at: String,
    pub firing: bool,
}

/// What a delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// The event counts now (it did not before).
    Fired,
    /// Already fired; the record now follows the newer alert instance (so
    /// that its resolution is recognised).
    Refreshed,
    /// The alert resolved.
    Resolved,
    /// The same delivery was seen before: nothing changes.
    Duplicate,
    /// A resolution of an alert that never fired here: nothing to record.
    ResolvedWithoutFiring,
}

impl Effect {
    /// Whether the record changed (and the graph must be reconciled).
    pub fn writes(self) -> bool {
        matches!(self, Effect::Fired | Effect::Refreshed | Effect::Resolved)
    }
}

/// The effect of `delivery` on the recorded event, and the record to write.
pub fn on_delivery(
    existing: Option<&FiredEvent>,
    d: &Delivery,
    now: u64,
) -> (Effect, Option<FiredEvent>) {
    let same_instance =
        existing.is_some_and(|e| e.fingerprint == d.fingerprint && e.starts_at == d.starts_at);
    if d.firing {
        match existing {
            Some(_) if same_instance => (Effect::Duplicate, None),
            Some(e) if e.counts() => {
                let mut r = e.clone();
                r.fingerprint.clone_from(&d.fingerprint);
                r.starts_at.clone_from(&d.starts_at);
                r.alert.clone_from(&d.alert);
                r.resolved_at = None;
                (Effect::Refreshed, Some(r))
            }
            _ => (
                Effect::Fired,
                Some(FiredEvent {
                    project: d.project.clone(),
                    graph: d.graph.clone(),
                    service: d.service.clone(),
                    event: d.event.clone(),
                    alert: d.alert.clone(),
                    fingerprint: d.fingerprint.clone(),
                    starts_at: d.starts_at.clone(),
                    fired_at: now,
                    resolved_at: None,
                    cleared_at: None,
                }),
            ),
        }
    } else {
        match existing {
            Some(e) if same_instance && e.resolved_at.is_some() => (Effect::Duplicate, None),
            Some(e) if same_instance && e.counts() => {
                let mut r = e.clone();
                r.resolved_at = Some(now);
                (Effect::Resolved, Some(r))
            }
            Some(_) if same_instance => (Effect::Duplicate, None),
            _ => (Effect::ResolvedWithoutFiring, None),
        }
    }
}

/// What the recorded events mean for one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// The trigger condition was met (the service deploys).
    pub fired: bool,
    /// The condition still holds counting only unresolved alerts.
    pub holds: bool,
    /// Events not fired yet, in descriptor order.
    pub pending: Vec<String>,
    /// The event whose firing completed the condition (the latest one).
    pub by: Option<FiredEvent>,
}

/// Evaluates a trigger against the recorded events of its service (events
/// no longer in the descriptor are ignored).
pub fn evaluate(trigger: &EventTrigger, recorded: &[FiredEvent]) -> Evaluation {
    let find = |id: &str| recorded.iter().find(|r| r.event == id && r.counts());
    let mut pending = Vec::new();
    let mut fired_events = Vec::new();
    let mut active = 0usize;
    for e in &trigger.events {
        match find(e.id.as_str()) {
            Some(r) => {
                if r.resolved_at.is_none() {
                    active += 1;
                }
                fired_events.push(r);
            }
            None => pending.push(e.id.to_string()),
        }
    }
    let total = trigger.events.len();
    let (fired, holds) = match trigger.condition {
        EventCondition::Any => (!fired_events.is_empty(), active > 0),
        EventCondition::All => (fired_events.len() == total, active == total),
    };
    let by = fired_events
        .iter()
        .max_by_key(|r| r.fired_at)
        .map(|r| (*r).clone());
    if matches!(trigger.condition, EventCondition::Any) && fired {
        pending.clear();
    }
    Evaluation {
        fired,
        holds,
        pending,
        by,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::descriptor::model::{Event, EventRule};

    fn trigger(condition: EventCondition, ids: &[&str]) -> EventTrigger {
        EventTrigger {
            condition,
            events: ids
                .iter()
                .map(|id| Event {
                    id: serde_json::from_value(serde_json::json!(id)).unwrap(),
                    source: Vec::new(),
                    condition: EventRule {
                        prom_query: "vector(1)".into(),
                        grace_period: "0s".into(),
                        description: None,
                    },
                })
                .collect(),
            undeploy_on_resolve: false,
        }
    }

    fn delivery(event: &str, fp: &str, starts: &str, firing: bool) -> Delivery {
        Delivery {
            project: "p".into(),
            graph: "g".into(),
            service: "s".into(),
            event: event.into(),
            alert: event.into(),
            fingerprint: fp.into(),
            starts_at: starts.into(),
            firing,
        }
    }

    #[test]
    fn a_delivery_is_applied_once() {
        let d = delivery("e1", "f1", "t1", true);
        let (effect, rec) = on_delivery(None, &d, 10);
        assert_eq!(effect, Effect::Fired);
        let rec = rec.unwrap();
        assert_eq!((rec.fired_at, rec.resolved_at), (10, None));
        assert_eq!(on_delivery(Some(&rec), &d, 20), (Effect::Duplicate, None));

        let resolved = delivery("e1", "f1", "t1", false);
        let (effect, r2) = on_delivery(Some(&rec), &resolved, 30);
        assert_eq!(effect, Effect::Resolved);
        let r2 = r2.unwrap();
        assert_eq!(r2.resolved_at, Some(30));
        assert_eq!(
            on_delivery(Some(&r2), &resolved, 40),
            (Effect::Duplicate, None)
        );
        // A late duplicate of the firing does not un-resolve it.
        assert_eq!(on_delivery(Some(&r2), &d, 50), (Effect::Duplicate, None));
    }

    #[test]
    fn resolved_before_firing_records_nothing() {
        let r = delivery("e1", "f1", "t1", false);
        assert_eq!(
            on_delivery(None, &r, 1),
            (Effect::ResolvedWithoutFiring, None)
        );
    }

    #[test]
    fn a_new_alert_instance_refreshes_a_fired_event_and_rearms_a_cleared_one() {
        let (_, rec) = on_delivery(None, &delivery("e1", "f1", "t1", true), 10);
        let rec = rec.unwrap();
        let (effect, r2) = on_delivery(Some(&rec), &delivery("e1", "f1", "t2", true), 20);
        assert_eq!(effect, Effect::Refreshed);
        let r2 = r2.unwrap();
        assert_eq!((r2.fired_at, r2.starts_at.as_str()), (10, "t2"));

        let mut cleared = r2.clone();
        cleared.cleared_at = Some(30);
        // The cleared instance's duplicate stays a duplicate…
        assert_eq!(
            on_delivery(Some(&cleared), &delivery("e1", "f1", "t2", true), 40),
            (Effect::Duplicate, None)
        );
        // …a new instance fires again.
        let (effect, r3) = on_delivery(Some(&cleared), &delivery("e1", "f1", "t3", true), 50);
        assert_eq!(effect, Effect::Fired);
        assert_eq!(r3.unwrap().fired_at, 50);
    }

    #[test]
    fn any_and_all() {
        let fired = |event: &str, at: u64, resolved: bool| FiredEvent {
            project: "p".into(),
            graph: "g".into(),
            service: "s".into(),
            event: event.into(),
            alert: event.into(),
            fingerprint: "f".into(),
            starts_at: "t".into(),
            fired_at: at,
            resolved_at: resolved.then_some(at + 1),
            cleared_at: None,
        };
        let any = trigger(EventCondition::Any, &["e1", "e2"]);
        let all = trigger(EventCondition::All, &["e1", "e2"]);

        let none = evaluate(&any, &[]);
        assert!(!none.fired);
        assert_eq!(none.pending, ["e1", "e2"]);

        let one = [fired("e2", 5, false)];
        let e = evaluate(&any, &one);
        assert!(e.fired && e.holds && e.pending.is_empty());
        assert_eq!(e.by.unwrap().event, "e2");
        let e = evaluate(&all, &one);
        assert!(!e.fired);
        assert_eq!(e.pending, ["e1"]);

        let both = [fired("e1", 7, false), fired("e2", 5, true)];
        let e = evaluate(&all, &both);
        assert!(e.fired && !e.holds, "one of two resolved");
        assert_eq!(e.by.unwrap().event, "e1");

        // Events that left the descriptor do not count; cleared ones neither.
        let mut cleared = fired("e1", 1, false);
        cleared.cleared_at = Some(2);
        let e = evaluate(&any, &[fired("gone", 1, false), cleared]);
        assert!(!e.fired);
    }
}
