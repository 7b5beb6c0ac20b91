use super::*;
use crate::adapters::karmada::{ObjectRef, Owner};

fn owner(project: &str, graph: &str) -> Owner {
    Owner {
        project: project.into(),
        graph: graph.into(),
    }
}

fn release(project: &str, graph: &str, name: &str) -> ManagedRelease {
    ManagedRelease {
        inputs: None,
        namespace: project.into(),
        release: name.into(),
        revision: 3,
        owner: owner(project, graph),
    }
}

fn object(project: &str, graph: &str, kind: &str, name: &str) -> Managed {
    Managed {
        object: ObjectRef {
            api_version: "v".into(),
            kind: kind.into(),
            namespace: Some(project.into()),
            name: name.into(),
        },
        owner: owner(project, graph),
    }
}

fn key(project: &str, graph: &str) -> GraphKey {
    GraphKey::new(project, graph)
}

const OWNED: &[&str] = &["PropagationPolicy"];

fn no_guard(_: usize, _: usize) -> Option<String> {
    None
}

#[test]
fn what_the_store_already_holds_is_left_alone() {
    let graphs = [GraphRecord::new("p", "g", "projects/p/g.yaml", 0)];
    let mut web = ServiceRecord::new("p", "g", "web", 0);
    web.release_revision = Some(2);
    // Recorded by another graph (it adopted the release): not ours to record.
    let adopted = ServiceRecord::new("p", "other", "db", 0);
    let services = [&web, &adopted].map(ReleaseHead::from);
    let owned = [OwnedObject {
        project: "p".into(),
        graph: "g".into(),
        api_version: "v".into(),
        kind: "PropagationPolicy".into(),
        namespace: Some("p".into()),
        name: "web".into(),
    }];
    let recorded = Recorded {
        graphs: &graphs,
        services: &services,
        owned: &owned,
    };
    let sweep = plan(
        &[release("p", "g", "web"), release("p", "g", "db")],
        &[object("p", "g", "PropagationPolicy", "web")],
        OWNED,
        recorded,
        &BTreeSet::from([key("p", "g")]),
        no_guard,
        9,
    );
    assert!(sweep.is_empty(), "{sweep:?}");
    assert!(sweep.touched.is_empty());
}

#[test]
fn an_unrecorded_release_or_policy_of_a_known_graph_is_recorded_for_its_reconcile() {
    let graphs = [GraphRecord::new("p", "g", "projects/p/g.yaml", 0)];
    let recorded = Recorded {
        graphs: &graphs,
        services: &[],
        owned: &[],
    };
    let sweep = plan(
        &[release("p", "g", "web")],
        &[
            object("p", "g", "PropagationPolicy", "web"),
            // Found by name by the rule sync: never recorded as owned.
            object("p", "g", "PrometheusRule", "smo-p.g"),
        ],
        OWNED,
        recorded,
        &BTreeSet::from([key("p", "g")]),
        no_guard,
        9,
    );
    assert_eq!(sweep.services.len(), 1);
    let s = &sweep.services[0];
    assert_eq!((s.key().as_str(), s.namespace.as_str()), ("p/g/web", "p"));
    assert_eq!(
        (s.release_revision, s.phase),
        (Some(3), ServicePhase::Deployed)
    );
    assert_eq!(
        sweep.owned.iter().map(OwnedObject::key).collect::<Vec<_>>(),
        ["p/g/v/PropagationPolicy/p/web"]
    );
    assert!(sweep.graphs.is_empty(), "a known graph needs no record");
    assert_eq!(sweep.touched, BTreeSet::from([key("p", "g")]));
    assert_eq!(sweep.held, None);
}

#[test]
fn an_orphan_graph_gets_a_record_so_that_its_removal_runs() {
    let sweep = plan(
        &[release("p", "gone", "web")],
        &[object("p", "gone", "PrometheusRule", "smo-p.gone")],
        OWNED,
        Recorded {
            graphs: &[GraphRecord::new("p", "g", "f", 0)],
            services: &[],
            owned: &[],
        },
        &BTreeSet::from([key("p", "g")]),
        no_guard,
        9,
    );
    assert_eq!(
        sweep
            .graphs
            .iter()
            .map(GraphRecord::key)
            .collect::<Vec<_>>(),
        ["p/gone"]
    );
    assert_eq!(sweep.services.len(), 1);
    assert_eq!(sweep.touched, BTreeSet::from([key("p", "gone")]));
}

#[test]
fn a_declared_graph_the_store_does_not_know_is_not_an_orphan() {
    let sweep = plan(
        &[release("p", "new", "web")],
        &[],
        OWNED,
        Recorded {
            graphs: &[],
            services: &[],
            owned: &[],
        },
        &BTreeSet::from([key("p", "new")]),
        |_, _| Some("must not be asked".into()),
        9,
    );
    assert!(sweep.graphs.is_empty());
    assert_eq!(sweep.services.len(), 1);
    assert_eq!(sweep.held, None);
}

#[test]
fn too_many_orphans_are_held_by_the_prune_guard_and_said_so() {
    let asked = std::cell::Cell::new((0, 0));
    let sweep = plan(
        &[release("p", "a", "web"), release("p", "b", "web")],
        &[object("p", "c", "PropagationPolicy", "x")],
        OWNED,
        Recorded {
            graphs: &[GraphRecord::new("p", "g", "f", 0)],
            services: &[],
            owned: &[],
        },
        &BTreeSet::from([key("p", "g"), key("p", "d")]),
        |existing, removing| {
            asked.set((existing, removing));
            Some("too many".into())
        },
        9,
    );
    assert_eq!(asked.get(), (4, 3), "1 known + 3 orphans, 3 removals");
    assert!(sweep.is_empty(), "{sweep:?}");
    let held = sweep.held.expect("held");
    assert!(
        held.contains("3 graph(s)") && held.contains("p/a, p/b, p/c"),
        "{held}"
    );
    assert!(held.ends_with("too many"), "{held}");
}
