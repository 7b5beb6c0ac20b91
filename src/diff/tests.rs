//! One row per class of verdict.

use super::*;
use serde_json::json;

fn key(graph: &str, service: &str) -> ServiceKey {
    GraphKey::new("p", graph).service(service)
}

fn manifest(replicas: u32) -> String {
    format!(
        "---\n# Source: c/templates/d.yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: {replicas}\n"
    )
}

fn policy(name: &str) -> ObjectRef {
    ObjectRef {
        api_version: "policy.karmada.io/v1alpha1".into(),
        kind: "PropagationPolicy".into(),
        namespace: Some("p".into()),
        name: name.into(),
    }
}

fn run(graph: &str, service: &str, tag: &str) -> DesiredService {
    DesiredService {
        key: key(graph, service),
        namespace: "p".into(),
        want: Want::Run(Rendered {
            values: json!({"clustersAffinity": ["c1"], "tag": tag}),
            manifest: manifest(1),
            hash: format!("h-{tag}"),
            on_event: false,
            policy: Some(policy(service)),
        }),
    }
}

fn live(graph: &str, service: &str, tag: &str) -> Installed {
    Installed {
        key: key(graph, service),
        namespace: "p".into(),
        values: Some(json!({"clustersAffinity": ["c1"], "tag": tag})),
        manifest: Some(manifest(1)),
        hash: None,
    }
}

fn desired(services: Vec<DesiredService>) -> Desired {
    let declared = services.iter().map(|s| s.key.graph.clone()).collect();
    Desired {
        services,
        declared,
        ..Desired::default()
    }
}

fn observed(releases: Vec<Installed>) -> Observed {
    let objects = releases
        .iter()
        .map(|r| (r.key.graph.clone(), policy(&r.key.service)))
        .collect();
    Observed {
        mode: Mode::Live,
        releases,
        objects,
    }
}

fn verdicts(r: &Report) -> Vec<(String, Verdict)> {
    r.services
        .iter()
        .map(|s| (format!("{}/{}", s.graph, s.service), s.verdict))
        .collect()
}

#[test]
fn the_same_state_changes_nothing() {
    let r = compare(
        &desired(vec![run("g", "a", "1")]),
        &observed(vec![live("g", "a", "1")]),
    );
    assert!(!r.changes);
    assert_eq!(verdicts(&r), [("g/a".to_owned(), Verdict::None)]);
    assert_eq!(r.services[0].values_diff, None);
    assert_eq!(r.services[0].manifest_diff, None);
    assert!(r.objects.is_empty());
}

#[test]
fn a_missing_release_is_installed_with_its_policy() {
    let mut o = observed(vec![]);
    o.objects.clear();
    let r = compare(&desired(vec![run("g", "a", "1")]), &o);
    assert!(r.changes);
    assert_eq!(r.services[0].verdict, Verdict::Install);
    let values = r.services[0].values_diff.as_deref().unwrap();
    assert!(values.contains("+tag: \"1\"\n"), "{values}");
    let m = r.services[0].manifest_diff.as_deref().unwrap();
    assert!(m.contains("+  replicas: 1\n"), "{m}");
    assert_eq!(r.objects.len(), 1);
    assert_eq!(r.objects[0].action, ObjectAction::Create);
    assert_eq!(r.objects[0].object.name, "a");
}

#[test]
fn other_values_upgrade_and_show_the_changed_line() {
    let r = compare(
        &desired(vec![run("g", "a", "2")]),
        &observed(vec![live("g", "a", "1")]),
    );
    assert!(r.changes);
    assert_eq!(r.services[0].verdict, Verdict::Upgrade);
    let d = r.services[0].values_diff.as_deref().unwrap();
    assert!(d.contains("-tag: \"1\"\n+tag: \"2\"\n"), "{d}");
    assert_eq!(r.services[0].manifest_diff, None);
}

#[test]
fn another_manifest_upgrades_live() {
    let mut l = live("g", "a", "1");
    l.manifest = Some(manifest(3));
    let r = compare(&desired(vec![run("g", "a", "1")]), &observed(vec![l]));
    assert_eq!(r.services[0].verdict, Verdict::Upgrade);
    let d = r.services[0].manifest_diff.as_deref().unwrap();
    assert!(d.contains("-  replicas: 3\n+  replicas: 1\n"), "{d}");
}

#[test]
fn releases_nothing_asks_for_are_uninstalled_and_their_policies_pruned() {
    let r = compare(
        &desired(vec![run("g", "a", "1")]),
        &observed(vec![
            live("g", "a", "1"),
            live("g", "gone", "1"),
            live("old", "x", "1"),
        ]),
    );
    assert_eq!(
        verdicts(&r),
        [
            ("g/a".to_owned(), Verdict::None),
            ("g/gone".to_owned(), Verdict::Uninstall),
            ("old/x".to_owned(), Verdict::Uninstall),
        ]
    );
    assert_eq!(
        r.services[1].note.as_deref(),
        Some("the service left its descriptor")
    );
    assert_eq!(
        r.services[2].note.as_deref(),
        Some("no descriptor declares its graph")
    );
    let m = r.services[2].manifest_diff.as_deref().unwrap();
    assert!(m.contains("-  replicas: 1\n"), "{m}");
    let pruned: Vec<&str> = r.objects.iter().map(|o| o.object.name.as_str()).collect();
    assert_eq!(pruned, ["gone", "x"]);
    assert!(r.objects.iter().all(|o| o.action == ObjectAction::Prune));
}

#[test]
fn an_invalid_file_holds_its_graph_and_an_unreadable_one_its_project() {
    let mut d = desired(vec![]);
    d.held_graphs.insert(
        GraphKey::new("p", "g"),
        "projects/p/g.yaml has errors".into(),
    );
    let r = compare(&d, &observed(vec![live("g", "a", "1")]));
    assert!(!r.changes, "{r:?}");
    assert_eq!(
        r.services[0].note.as_deref(),
        Some("held: projects/p/g.yaml has errors")
    );

    let mut d = desired(vec![run("g", "a", "1")]);
    d.held_projects
        .insert("p".into(), "projects/p/x.yaml cannot be read".into());
    let r = compare(
        &d,
        &observed(vec![live("g", "a", "1"), live("other", "b", "1")]),
    );
    // The declared graph is compared as usual; the undeclared one is held.
    assert!(!r.changes, "{r:?}");
    assert_eq!(r.services[1].verdict, Verdict::None);
    assert!(r.services[1].note.as_deref().unwrap().starts_with("held:"));
}

#[test]
fn a_held_service_and_a_waiting_trigger_change_nothing() {
    let mut waiting = run("g", "vo", "1");
    if let Want::Run(r) = &mut waiting.want {
        r.on_event = true;
    }
    let held = DesiredService {
        key: key("g", "b"),
        namespace: "p".into(),
        want: Want::Hold("placement is infeasible: no free GPU".into()),
    };
    let mut o = observed(vec![live("g", "b", "1")]);
    o.objects.clear();
    let r = compare(&desired(vec![waiting, held]), &o);
    assert!(!r.changes, "{r:?}");
    assert!(
        r.services[1]
            .note
            .as_deref()
            .unwrap()
            .starts_with("waits for its trigger")
    );
    assert!(
        r.services[0]
            .note
            .as_deref()
            .unwrap()
            .contains("no free GPU")
    );
}

#[test]
fn a_fired_trigger_is_compared_like_any_service() {
    let mut fired = run("g", "vo", "2");
    if let Want::Run(r) = &mut fired.want {
        r.on_event = true;
    }
    let r = compare(&desired(vec![fired]), &observed(vec![live("g", "vo", "1")]));
    assert_eq!(r.services[0].verdict, Verdict::Upgrade);
}

#[test]
fn a_suspended_graph_is_uninstalled() {
    let s = DesiredService {
        key: key("g", "a"),
        namespace: "p".into(),
        want: Want::Suspended,
    };
    let r = compare(&desired(vec![s]), &observed(vec![live("g", "a", "1")]));
    assert_eq!(r.services[0].verdict, Verdict::Uninstall);
    assert_eq!(r.objects[0].action, ObjectAction::Prune);
}

#[test]
fn offline_the_recorded_hash_decides_and_values_are_not_shown() {
    let recorded = |hash: &str| Installed {
        key: key("g", "a"),
        namespace: "p".into(),
        values: None,
        manifest: Some(manifest(1)),
        hash: Some(hash.into()),
    };
    let mut o = observed(vec![recorded("h-1")]);
    o.mode = Mode::Offline;
    let r = compare(&desired(vec![run("g", "a", "1")]), &o);
    assert!(!r.changes);
    assert_eq!(r.mode, Mode::Offline);

    o.releases = vec![recorded("h-0")];
    let r = compare(&desired(vec![run("g", "a", "1")]), &o);
    let s = &r.services[0];
    assert_eq!(s.verdict, Verdict::Upgrade);
    assert!(!s.values_compared && s.values_diff.is_none());
    assert!(s.manifest_compared);
    assert!(s.note.as_deref().unwrap().contains("hash"), "{s:?}");
}

#[test]
fn the_json_shape_is_stable() {
    let r = compare(
        &desired(vec![run("g", "a", "2")]),
        &observed(vec![live("g", "a", "1")]),
    );
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["mode"], "live");
    assert_eq!(v["changes"], true);
    let s = &v["services"][0];
    for field in [
        "project",
        "graph",
        "service",
        "namespace",
        "verdict",
        "valuesDiff",
        "valuesCompared",
        "manifestDiff",
        "manifestCompared",
    ] {
        assert!(s.get(field).is_some(), "{field} missing: {s}");
    }
    assert_eq!(s["verdict"], "upgrade");
    assert!(v["objects"].as_array().unwrap().is_empty());
}
