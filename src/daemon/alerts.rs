//! The async side of the HTTP endpoint: webhook deliveries become fired
//! trigger events, committed to the store before the answer goes back
//! (a 503 on failure makes Alertmanager retry), and readiness.

use crate::desired::DesiredState;
use crate::http::AlertsReply;
use crate::reconcile::triggers::{self, Delivery, Effect};
use crate::store::records::trigger_key;
use crate::store::{Store, StoreError};
use crate::webhook::{Payload, Status};
use std::collections::BTreeSet;

/// What one payload did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// Events that fired now.
    pub fired: usize,
    /// Events already fired that changed (resolved, or a newer instance
    /// of the alert).
    pub updated: usize,
    pub duplicates: usize,
    /// Alerts not aimed at a known event of a known service, and
    /// resolutions of alerts that never fired here.
    pub ignored: usize,
    /// Graphs to reconcile now.
    pub graphs: BTreeSet<String>,
}

impl Recorded {
    pub fn reply(&self) -> AlertsReply {
        AlertsReply::Accepted {
            triggered: self.fired,
            updated: self.updated,
            duplicates: self.duplicates,
            ignored: self.ignored,
        }
    }
}

/// Matches the payload's alerts to the desired state's event triggers.
/// An alert for a graph whose descriptor is currently invalid is kept
/// (the last good state may be waiting for it); one for an unknown graph,
/// service or event is ignored.
pub fn deliveries(desired: &DesiredState, payload: &Payload) -> (Vec<Delivery>, usize) {
    let mut out = Vec::new();
    let mut ignored = 0;
    for alert in &payload.alerts {
        let Some(t) = alert.target() else {
            ignored += 1;
            continue;
        };
        let known = desired
            .graphs
            .iter()
            .find(|e| e.project == t.project && e.id.as_deref() == Some(t.graph.as_str()))
            .is_some_and(|e| match &e.graph {
                // Invalid now: the last good state may be waiting for it.
                None => true,
                Some(g) => g.descriptor.hda_graph.services.iter().any(|s| {
                    s.id.as_str() == t.service
                        && s.event_trigger()
                            .is_some_and(|tr| tr.events.iter().any(|e| e.id.as_str() == t.event))
                }),
            });
        if !known {
            ignored += 1;
            continue;
        }
        out.push(Delivery {
            alert: alert
                .labels
                .get("alertname")
                .cloned()
                .unwrap_or_else(|| t.event.clone()),
            project: t.project,
            graph: t.graph,
            service: t.service,
            event: t.event,
            fingerprint: alert.fingerprint.clone(),
            starts_at: alert.starts_at.clone(),
            firing: alert.status == Status::Firing,
        });
    }
    (out, ignored)
}

/// Applies deliveries in one transaction (committed with immediate
/// durability before this returns). Blocking.
pub fn record(store: &Store, list: &[Delivery], now: u64) -> Result<Recorded, StoreError> {
    // Redeliveries are the common case (Alertmanager repeats firing
    // alerts): answer them from a read transaction, without a commit.
    let mut seen = Recorded::default();
    let mut writes = false;
    for d in list {
        let existing = store.trigger(&trigger_key(&d.project, &d.graph, &d.service, &d.event))?;
        match triggers::on_delivery(existing.as_ref(), d, now).0 {
            Effect::Duplicate => seen.duplicates += 1,
            Effect::ResolvedWithoutFiring => seen.ignored += 1,
            _ => writes = true,
        }
    }
    if !writes {
        return Ok(seen);
    }
    store.write(|tx| {
        let mut r = Recorded::default();
        for d in list {
            let key = trigger_key(&d.project, &d.graph, &d.service, &d.event);
            let existing = tx.trigger(&key)?;
            let (effect, write) = triggers::on_delivery(existing.as_ref(), d, now);
            if let Some(w) = write {
                tx.put_trigger(&w)?;
            }
            match effect {
                Effect::Duplicate => r.duplicates += 1,
                Effect::ResolvedWithoutFiring => r.ignored += 1,
                Effect::Fired => r.fired += 1,
                Effect::Refreshed | Effect::Resolved => r.updated += 1,
            }
            if effect.writes() {
                r.graphs.insert(format!("{}/{}", d.project, d.graph));
                tracing::info!(
                    project = %d.project,
                    graph = %d.graph,
                    service = %d.service,
                    event = %d.event,
                    effect = ?effect,
                    "trigger recorded"
                );
            }
        }
        Ok(r)
    })
}

/// Answers the endpoint's requests until the channel closes.
pub(super) async fn serve(
    mut rx: tokio::sync::mpsc::Receiver<crate::http::Request>,
    shared: std::sync::Arc<super::Shared>,
    store: std::sync::Arc<Store>,
    queue: crate::reconcile::queue::Queue,
) {
    use crate::http::Request;
    while let Some(request) = rx.recv().await {
        match request {
            Request::Alerts { payload, reply } => {
                let desired = shared.world().desired;
                let (list, ignored) = deliveries(&desired, &payload);
                let answer = if list.is_empty() {
                    Ok(Recorded {
                        ignored,
                        ..Recorded::default()
                    })
                } else {
                    let s = std::sync::Arc::clone(&store);
                    let now = super::now();
                    match tokio::task::spawn_blocking(move || record(&s, &list, now)).await {
                        Ok(Ok(mut r)) => {
                            r.ignored += ignored;
                            Ok(r)
                        }
                        Ok(Err(e)) => Err(e.to_string()),
                        Err(e) => Err(e.to_string()),
                    }
                };
                match answer {
                    Ok(r) => {
                        // Committed: acknowledge, then reconcile at once.
                        let _ = reply.send(r.reply());
                        for key in &r.graphs {
                            queue.enqueue_now(key);
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "webhook alerts not recorded; answering 503 so Alertmanager retries");
                        let _ = reply.send(AlertsReply::Unavailable(e));
                    }
                }
            }
            Request::Ready { reply } => {
                let r = readiness(&shared, &store).await;
                let _ = reply.send(r);
            }
        }
    }
}

/// Ready when the store answers, the source and Karmada were reachable at
/// their last attempt, and no prune guard holds removals back.
async fn readiness(
    shared: &super::Shared,
    store: &std::sync::Arc<Store>,
) -> crate::http::Readiness {
    let mut reasons = Vec::new();
    let s = std::sync::Arc::clone(store);
    match tokio::task::spawn_blocking(move || s.source_revision()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => reasons.push(format!("state store: {e}")),
        Err(e) => reasons.push(format!("state store: {e}")),
    }
    let notes = shared
        .notes
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    for topic in ["source", "inventory"] {
        if let Some(n) = notes.get(topic) {
            reasons.push(n.clone());
        }
    }
    if let Some(p) = &shared.world().prune_blocked {
        reasons.push(format!("prune guard: {p}"));
    }
    crate::http::Readiness {
        ready: reasons.is_empty(),
        reasons,
    }
}
