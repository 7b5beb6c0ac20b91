//! The async side of the HTTP endpoint: webhook deliveries become fired
//! trigger events, committed to the store before the answer goes back
//! (a 503 on failure makes Alertmanager retry), and readiness.
//!
//! Nothing is acknowledged before the daemon can act on it: until the
//! first snapshot is loaded (the world is published to [`serve`]), every
//! delivery is answered 503 — Alertmanager retries 5xx — and `/readyz`
//! says why ([`STARTING`]).
//!
//! Only alerts aimed at an event that a descriptor declares are stored, so
//! the trigger table stays bounded by the descriptors, whatever arrives:
//! - graph valid now: its descriptor decides;
//! - graph present but invalid now (the file still declares its id): the
//!   daemon holds the graph at its last good state and keeps no copy of
//!   that descriptor, so the recorded state decides instead — the event
//!   is known when a fired event is recorded under that exact key, or the
//!   service's recorded trigger still awaits it (`pending`, which lists
//!   every event not fired yet);
//! - unknown project, graph, service or event: ignored.

use crate::desired::DesiredState;
use crate::http::AlertsReply;
use crate::locks::MutexExt;
use crate::reconcile::triggers::{self, Delivery, Effect};
use crate::store::records::{ServiceRecord, trigger_key};
use crate::store::{FiredEvent, Store, StoreError};
use crate::webhook::{Payload, Status};
use std::collections::BTreeSet;

/// Why nothing is acknowledged yet (the `/readyz` line, and the reason
/// logged with the 503 of a delivery).
pub const STARTING: &str = "starting: no desired state loaded yet";

/// Why an instance that neither acts nor shares refuses a delivery.
pub const STANDBY: &str = "standby: another instance holds the leader Lease and takes the alerts";

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
    pub graphs: BTreeSet<crate::keys::GraphKey>,
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

/// A payload's alerts matched against the desired state.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Matched {
    /// Aimed at an event that a valid descriptor declares.
    pub known: Vec<Delivery>,
    /// Aimed at a graph whose descriptor is invalid now: recorded only if
    /// the store knows the event ([`known_from_records`]).
    pub held: Vec<Delivery>,
    /// Not aimed at any declared event.
    pub ignored: usize,
}

/// Where a delivery goes: `Some(true)` known (a valid descriptor declares
/// its event), `Some(false)` held (its graph is invalid now: its last good
/// state may be waiting for it), `None` ignored.
fn bucket(desired: &DesiredState, d: &Delivery) -> Option<bool> {
    let entry = desired
        .graphs
        .iter()
        .find(|e| e.project == d.project && e.id.as_deref() == Some(d.graph.as_str()))?;
    match entry.graph.as_ref() {
        None => Some(false),
        Some(g) => g
            .descriptor
            .hda_graph
            .services
            .iter()
            .any(|s| {
                s.id.as_str() == d.service
                    && s.event_trigger()
                        .is_some_and(|tr| tr.events.iter().any(|e| e.id.as_str() == d.event))
            })
            .then_some(true),
    }
}

/// Matches deliveries (shared by another instance) to the desired state.
pub fn sort(desired: &DesiredState, list: Vec<Delivery>) -> Matched {
    let mut out = Matched::default();
    for d in list {
        match bucket(desired, &d) {
            Some(true) => out.known.push(d),
            Some(false) => out.held.push(d),
            None => out.ignored += 1,
        }
    }
    out
}

/// Matches the payload's alerts to the desired state's event triggers.
pub fn deliveries(desired: &DesiredState, payload: &Payload) -> Matched {
    let mut list = Vec::new();
    let mut without_target = 0;
    for alert in &payload.alerts {
        let Some(t) = alert.target() else {
            without_target += 1;
            continue;
        };
        list.push(Delivery {
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
    let mut out = sort(desired, list);
    out.ignored += without_target;
    out
}

/// Whether the recorded state of a graph that is invalid now knows the
/// delivery's event: a fired event is recorded under its key, or the
/// service's recorded trigger still awaits it.
pub fn known_from_records(
    d: &Delivery,
    existing: Option<&FiredEvent>,
    services: &[ServiceRecord],
) -> bool {
    existing.is_some()
        || services.iter().any(|s| {
            s.project == d.project
                && s.graph == d.graph
                && s.service == d.service
                && s.trigger.pending.contains(&d.event)
        })
}

/// The held deliveries the store knows (see [`known_from_records`]), and
/// how many it does not. Blocking.
pub fn confirm_held(
    store: &Store,
    held: Vec<Delivery>,
) -> Result<(Vec<Delivery>, usize), StoreError> {
    let mut known = Vec::new();
    let mut ignored = 0;
    let mut services: std::collections::BTreeMap<(String, String), Vec<ServiceRecord>> =
        std::collections::BTreeMap::new();
    for d in held {
        let graph = (d.project.clone(), d.graph.clone());
        if !services.contains_key(&graph) {
            let recs = store.services_of(&d.project, &d.graph)?;
            services.insert(graph.clone(), recs);
        }
        let existing = store.trigger(&trigger_key(&d.project, &d.graph, &d.service, &d.event))?;
        if known_from_records(&d, existing.as_ref(), &services[&graph]) {
            known.push(d);
        } else {
            ignored += 1;
        }
    }
    Ok((known, ignored))
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
                r.graphs
                    .insert(crate::keys::GraphKey::new(&d.project, &d.graph));
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

/// Answers the endpoint's requests until the channel closes. `world` is
/// `None` until the first snapshot is applied: until then deliveries get a
/// 503 and `/readyz` says the daemon is starting.
pub(super) async fn serve(
    mut rx: tokio::sync::mpsc::Receiver<crate::http::Request>,
    world: tokio::sync::watch::Receiver<Option<std::sync::Arc<super::Shared>>>,
    store: std::sync::Arc<Store>,
    queue: crate::reconcile::queue::Queue,
    mirror: Option<crate::ha::triggers::TriggerMirror>,
) {
    use crate::http::Request;
    while let Some(request) = rx.recv().await {
        let current = world.borrow().clone();
        let Some(shared) = current else {
            starting(request);
            continue;
        };
        match request {
            Request::Alerts { payload, reply } => {
                let desired = shared.world().desired;
                let matched = deliveries(&desired, &payload);
                // With leader election, what is acknowledged is shared on
                // Karmada first: whichever instance leads next acts on it.
                if let Some(mirror) = &mirror {
                    match share(mirror, &matched, shared.leadership.acting()).await {
                        Sharing::Failed(e) => {
                            tracing::error!(error = %e, "webhook alerts not shared; answering 503 so Alertmanager retries");
                            let _ = reply.send(AlertsReply::Unavailable(e));
                            continue;
                        }
                        Sharing::ForTheLeader(answer) => {
                            let _ = reply.send(answer);
                            continue;
                        }
                        Sharing::Done => {}
                    }
                } else if !shared.leadership.acting() {
                    let _ = reply.send(AlertsReply::Unavailable(STANDBY.to_owned()));
                    continue;
                }
                let answer = if matched.known.is_empty() && matched.held.is_empty() {
                    Ok(Recorded {
                        ignored: matched.ignored,
                        ..Recorded::default()
                    })
                } else {
                    let s = std::sync::Arc::clone(&store);
                    let now = super::now();
                    let job = move || {
                        let Matched {
                            mut known,
                            held,
                            ignored,
                        } = matched;
                        let (confirmed, unknown) = confirm_held(&s, held)?;
                        known.extend(confirmed);
                        let mut r = record(&s, &known, now)?;
                        r.ignored += ignored + unknown;
                        Ok::<_, StoreError>(r)
                    };
                    match tokio::task::spawn_blocking(job).await {
                        Ok(Ok(r)) => Ok(r),
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

/// What sharing a delivery came to.
enum Sharing {
    Failed(String),
    /// Shared by a standby: the leader records and acts on it.
    ForTheLeader(AlertsReply),
    /// Shared by the leader, which records it now as well.
    Done,
}

async fn share(
    mirror: &crate::ha::triggers::TriggerMirror,
    matched: &Matched,
    leading: bool,
) -> Sharing {
    let list: Vec<Delivery> = matched.known.iter().chain(&matched.held).cloned().collect();
    if !list.is_empty()
        && let Err(e) = mirror.add(&list).await
    {
        return Sharing::Failed(e.to_string());
    }
    if leading {
        return Sharing::Done;
    }
    tracing::info!(shared = list.len(), "alerts shared for the leader");
    Sharing::ForTheLeader(AlertsReply::Accepted {
        triggered: list.len(),
        updated: 0,
        duplicates: 0,
        ignored: matched.ignored,
    })
}

/// The answers before the first snapshot is applied: the daemon cannot act
/// yet, so it acknowledges nothing.
fn starting(request: crate::http::Request) {
    use crate::http::Request;
    match request {
        Request::Alerts { reply, .. } => {
            let _ = reply.send(AlertsReply::Unavailable(STARTING.to_owned()));
        }
        Request::Ready { reply } => {
            let _ = reply.send(crate::http::Readiness {
                standby: false,
                ready: false,
                reasons: vec![STARTING.to_owned()],
            });
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
    let notes = shared.notes.lock_or_recover().clone();
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
        standby: shared.leadership.role() == crate::ha::Role::Standby,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::records::{ServicePhase, TriggerState};

    const PROJECT: &str = "brussels";
    const GRAPH: &str = "image-detection-graph";
    const VO: &str = "image-compression-vo";
    const EVENT: &str = "noise-reduction-busy";
    const FILE: &str = "projects/brussels/image-detection-graph.yaml";

    /// The example state, with the brussels descriptor made invalid (but
    /// still declaring its id) when `invalid`.
    fn desired(invalid: bool) -> DesiredState {
        let root = tempfile::tempdir().unwrap();
        let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("state-example");
        // The whole example: descriptors with their local charts.
        fake_karmada::testing::copy_dir(&example, root.path());
        if invalid {
            let p = root.path().join(FILE);
            let text = std::fs::read_to_string(&p).unwrap();
            std::fs::write(
                &p,
                text.replacen("condition: ANY", "condition: SOMETIMES", 1),
            )
            .unwrap();
        }
        let state = crate::desired::loader::load_root(root.path()).unwrap();
        let entry = state.graphs.iter().find(|e| e.project == PROJECT).unwrap();
        assert_eq!(entry.id.as_deref(), Some(GRAPH));
        assert_eq!(entry.graph.is_none(), invalid, "{:?}", state.findings);
        state
    }

    fn payload(targets: &[(&str, &str, &str, &str)]) -> Payload {
        let alerts: Vec<serde_json::Value> = targets
            .iter()
            .map(|(project, graph, service, event)| {
                serde_json::json!({
                    "status": "firing",
                    "labels": {"alertname": event, "smo_project": project, "smo_graph": graph,
                               "smo_service": service, "smo_event": event},
                    "annotations": {},
                    "startsAt": "2024-05-02T10:15:00.000Z",
                    "endsAt": "0001-01-01T00:00:00Z",
                    "fingerprint": format!("f-{service}-{event}"),
                })
            })
            .collect();
        let body = serde_json::json!({
            "version": "4", "status": "firing", "receiver": "smo", "groupKey": "{}",
            "alerts": alerts,
        });
        crate::webhook::parse(&serde_json::to_vec(&body).unwrap()).unwrap()
    }

    fn targets(list: &[Delivery]) -> Vec<(&str, &str)> {
        list.iter()
            .map(|d| (d.service.as_str(), d.event.as_str()))
            .collect()
    }

    #[test]
    fn only_declared_events_of_valid_graphs_are_known() {
        let m = deliveries(
            &desired(false),
            &payload(&[
                (PROJECT, GRAPH, VO, EVENT),
                (PROJECT, GRAPH, VO, "made-up-event"),
                (PROJECT, GRAPH, "made-up-service", EVENT),
                (PROJECT, GRAPH, "noise-reduction", EVENT),
                (PROJECT, "made-up-graph", VO, EVENT),
                ("made-up-project", GRAPH, VO, EVENT),
            ]),
        );
        assert_eq!(targets(&m.known), [(VO, EVENT)]);
        assert!(m.held.is_empty(), "{m:?}");
        assert_eq!(m.ignored, 5);
    }

    /// Regression: any service or event name aimed at an invalid graph was
    /// stored, so the trigger table grew with whatever was posted.
    #[test]
    fn alerts_for_an_invalid_graph_are_held_for_the_records_to_decide() {
        let m = deliveries(
            &desired(true),
            &payload(&[
                (PROJECT, GRAPH, VO, EVENT),
                (PROJECT, GRAPH, "made-up-service", "made-up-event"),
                (PROJECT, "made-up-graph", VO, EVENT),
            ]),
        );
        assert!(m.known.is_empty(), "{m:?}");
        assert_eq!(
            targets(&m.held),
            [(VO, EVENT), ("made-up-service", "made-up-event")]
        );
        assert_eq!(m.ignored, 1);

        let waiting = ServiceRecord {
            project: PROJECT.into(),
            graph: GRAPH.into(),
            service: VO.into(),
            namespace: PROJECT.into(),
            release: VO.into(),
            release_revision: None,
            input_hash: None,
            phase: ServicePhase::WaitingForTrigger,
            clusters: Vec::new(),
            replicas: std::collections::BTreeMap::new(),
            trigger: TriggerState {
                armed: true,
                pending: vec![EVENT.into()],
                ..TriggerState::default()
            },
            blocked_by: None,
            last_error: None,
            updated_at: 0,
            drifted: Vec::new(),
            manifest: None,
        };
        let services = [waiting];
        let [vo, made_up] = [&m.held[0], &m.held[1]];
        // Awaited by the recorded trigger: recorded.
        assert!(known_from_records(vo, None, &services));
        // Neither awaited nor recorded: ignored.
        assert!(!known_from_records(made_up, None, &services));
        assert!(!known_from_records(vo, None, &[]));
        // Already fired (no longer pending): its resolution still counts.
        let fired = FiredEvent {
            project: PROJECT.into(),
            graph: GRAPH.into(),
            service: VO.into(),
            event: EVENT.into(),
            alert: EVENT.into(),
            fingerprint: "f".into(),
            starts_at: "s".into(),
            fired_at: 1,
            resolved_at: None,
            cleared_at: None,
        };
        assert!(known_from_records(vo, Some(&fired), &[]));
    }

    #[test]
    fn confirm_held_reads_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("smo.redb")).unwrap();
        let m = deliveries(
            &desired(true),
            &payload(&[(PROJECT, GRAPH, VO, EVENT), (PROJECT, GRAPH, VO, "other")]),
        );
        let (known, unknown) = confirm_held(&store, m.held.clone()).unwrap();
        assert!(known.is_empty());
        assert_eq!(unknown, 2);
        let first = record(&store, &m.held[..1], 1).unwrap();
        assert_eq!(first.fired, 1);
        let (known, unknown) = confirm_held(&store, m.held).unwrap();
        assert_eq!(targets(&known), [(VO, EVENT)]);
        assert_eq!(unknown, 1);
    }
}
