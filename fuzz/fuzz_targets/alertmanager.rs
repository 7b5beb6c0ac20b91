//! An Alertmanager webhook body: the payload parser, then what the daemon
//! does with the alerts before it touches the store — matching them to the
//! event triggers the desired state declares (`state-example/`, plus a
//! graph whose descriptor is invalid now), and each delivery's effect on
//! the recorded events, with the trigger evaluation that follows.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smo::daemon::alerts::deliveries;
use smo::desired::{DesiredState, GraphEntry};
use smo::reconcile::triggers::{Effect, evaluate, on_delivery};
use smo::store::FiredEvent;
use smo::store::records::trigger_key;
use smo::webhook::payload::MAX_REASON_CHARS;
use smo::webhook::{MAX_ALERTS, parse};
use std::collections::BTreeMap;
use std::sync::OnceLock;

fn desired() -> &'static DesiredState {
    static DESIRED: OnceLock<DesiredState> = OnceLock::new();
    DESIRED.get_or_init(|| {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../state-example");
        let mut state = smo::desired::loader::load_root(root.as_ref()).expect("state-example loads");
        assert!(state.valid_graphs().count() > 0, "state-example has valid graphs");
        // A graph whose file is invalid now: its alerts are held.
        state.graphs.push(GraphEntry {
            project: "demo2".into(),
            id: Some("broken-graph".into()),
            file: "projects/demo2/broken.yaml".into(),
            graph: None,
        });
        state
    })
}

fuzz_target!(|data: &[u8]| {
    let payload = match parse(data) {
        Err(e) => {
            // The reason goes back in a 400: one bounded line.
            let message = e.to_string();
            assert!(!message.contains(['\n', '\r']), "multi-line: {message:?}");
            assert!(message.chars().count() <= MAX_REASON_CHARS, "too long: {message:?}");
            return;
        }
        Ok(p) => p,
    };
    assert_eq!(payload.version, "4");
    assert!(payload.alerts.len() <= MAX_ALERTS);
    // What smo reads is what it would read again (status shows payloads).
    let again = serde_json::to_vec(&payload).expect("a payload serialises");
    assert_eq!(parse(&again).as_ref(), Ok(&payload), "round trip");

    for alert in &payload.alerts {
        let key = alert.delivery_key();
        assert_eq!(key, alert.clone().delivery_key());
        assert!(key.ends_with(alert.status.as_str()));
        let labelled = [
            smo::webhook::LABEL_PROJECT,
            smo::webhook::LABEL_GRAPH,
            smo::webhook::LABEL_SERVICE,
            smo::webhook::LABEL_EVENT,
        ]
        .iter()
        .all(|l| alert.labels.get(*l).is_some_and(|v| !v.is_empty()));
        assert_eq!(alert.target().is_some(), labelled);
    }

    let desired = desired();
    let matched = deliveries(desired, &payload);
    assert_eq!(
        matched.known.len() + matched.held.len() + matched.ignored,
        payload.alerts.len(),
        "every alert is known, held or ignored"
    );
    for d in &matched.known {
        let graph = desired
            .valid_graphs()
            .find(|g| g.project == d.project && g.id() == d.graph)
            .expect("a known delivery names a valid graph");
        let service = graph
            .descriptor
            .hda_graph
            .services
            .iter()
            .find(|s| s.id.as_str() == d.service)
            .expect("a known delivery names a service of its graph");
        let trigger = service.event_trigger().expect("that service has an event trigger");
        assert!(trigger.events.iter().any(|e| e.id.as_str() == d.event));
    }
    for d in &matched.held {
        assert!(
            desired
                .graphs
                .iter()
                .any(|e| e.graph.is_none() && e.project == d.project && e.id.as_deref() == Some(&d.graph)),
            "a held delivery names an invalid graph"
        );
    }

    // The deliveries against an in-memory record table, as `record` does.
    let mut table: BTreeMap<String, FiredEvent> = BTreeMap::new();
    for (now, d) in (1_000u64..).zip(matched.known.iter().chain(&matched.held)) {
        let key = trigger_key(&d.project, &d.graph, &d.service, &d.event);
        let (effect, write) = on_delivery(table.get(&key), d, now);
        assert_eq!(effect.writes(), write.is_some(), "{effect:?}");
        if let Some(r) = write {
            assert_eq!(r.key(), key);
            table.insert(key.clone(), r);
        }
        // A redelivery changes nothing.
        let (again, write) = on_delivery(table.get(&key), d, now + 1);
        assert!(write.is_none(), "a redelivery wrote ({effect:?} then {again:?})");
        if effect == Effect::ResolvedWithoutFiring {
            assert_eq!(again, Effect::ResolvedWithoutFiring);
        } else {
            assert_eq!(again, Effect::Duplicate, "after {effect:?}");
        }
    }
    for graph in desired.valid_graphs() {
        for s in &graph.descriptor.hda_graph.services {
            let Some(trigger) = s.event_trigger() else { continue };
            let recorded: Vec<FiredEvent> = table
                .values()
                .filter(|r| r.project == graph.project && r.graph == graph.id() && r.service == s.id.as_str())
                .cloned()
                .collect();
            let e = evaluate(trigger, &recorded);
            assert!(!e.holds || e.fired, "{e:?}");
            assert!(!e.fired || e.by.is_some(), "{e:?}");
            for p in &e.pending {
                assert!(trigger.events.iter().any(|ev| ev.id.as_str() == p));
            }
        }
    }
});
