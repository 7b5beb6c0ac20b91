//! The planner's table: one row per class of service.

use super::*;
use crate::reconcile::error::Reason;
use Action::*;

fn rec(hash: Option<&str>, installed: bool, phase: ServicePhase) -> ServiceRecord {
    let mut r = ServiceRecord::new("p", "g", "s", 0);
    r.release_revision = installed.then_some(1);
    r.input_hash = hash.map(str::to_owned);
    r.phase = phase;
    r
}

fn fired(event: &str, resolved: bool) -> FiredEvent {
    FiredEvent {
        project: "p".into(),
        graph: "g".into(),
        service: "s".into(),
        event: event.into(),
        alert: event.into(),
        fingerprint: format!("fp-{event}"),
        starts_at: "t".into(),
        fired_at: 10,
        resolved_at: resolved.then_some(20),
        cleared_at: None,
    }
}

/// A trigger over `events` with `all` (else ANY) and these recorded firings.
fn trigger<'a>(
    events: &[&'a str],
    all: bool,
    undeploy: bool,
    recorded: Vec<FiredEvent>,
) -> Trigger<'a> {
    let counted: Vec<&FiredEvent> = recorded.iter().filter(|f| f.counts()).collect();
    let pending: Vec<String> = events
        .iter()
        .filter(|e| !counted.iter().any(|f| f.event == **e))
        .map(|e| (*e).to_owned())
        .collect();
    let active = counted.iter().filter(|f| f.resolved_at.is_none()).count();
    let (fired, holds) = if all {
        (pending.is_empty(), active == events.len())
    } else {
        (!counted.is_empty(), active > 0)
    };
    Trigger {
        evaluation: Evaluation {
            fired,
            holds,
            pending: if fired && !all { Vec::new() } else { pending },
            by: counted.last().map(|f| (*f).clone()),
        },
        undeploy_on_resolve: undeploy,
        events: events.to_vec(),
        recorded,
    }
}

fn svc<'a>(trigger: Option<Trigger<'a>>) -> DesiredService<'a> {
    DesiredService {
        id: "s",
        hash: "h1",
        dependencies: Vec::new(),
        trigger,
        adopt: false,
    }
}

fn graph<'a>(
    services: Vec<DesiredService<'a>>,
    suspended: bool,
    drift: DriftMode,
) -> DesiredGraph<'a> {
    DesiredGraph {
        suspended,
        drift,
        services,
    }
}

fn one(g: &DesiredGraph<'_>, r: Option<ServiceRecord>, observed: &Observed) -> ServicePlan {
    let recorded: BTreeMap<String, ServiceRecord> =
        r.into_iter().map(|r| (r.service.clone(), r)).collect();
    let p = plan(g, &recorded, observed, &BTreeSet::new(), &BTreeSet::new());
    p.services.into_iter().find(|s| s.id == "s").unwrap()
}

fn drift(paths: &[&str]) -> Observed {
    Observed {
        drift: BTreeMap::from([(
            "s".to_owned(),
            Ok(paths.iter().map(|p| (*p).to_owned()).collect()),
        )]),
        ..Observed::default()
    }
}

#[test]
fn one_row_per_service_class() {
    use ServicePhase::*;
    let none = Observed::default();
    let drifted = drift(&["Deployment/a/spec/x"]);
    let checked = drift(&[]);
    let unread = Observed {
        drift: BTreeMap::from([(
            "s".to_owned(),
            Err(StepError::transient(Reason::Karmada, "API down")),
        )]),
        ..Observed::default()
    };
    type Row<'a> = (
        &'a str,
        DesiredGraph<'a>,
        Option<ServiceRecord>,
        &'a Observed,
        Action,
    );
    let rows: Vec<Row> = vec![
        (
            "new service",
            graph(vec![svc(None)], false, DriftMode::Correct),
            None,
            &none,
            Install,
        ),
        (
            "recorded, never installed",
            graph(vec![svc(None)], false, DriftMode::Correct),
            Some(rec(None, false, Pending)),
            &none,
            Install,
        ),
        (
            "in sync",
            graph(vec![svc(None)], false, DriftMode::Correct),
            Some(rec(Some("h1"), true, Deployed)),
            &none,
            InSync,
        ),
        (
            "changed inputs",
            graph(vec![svc(None)], false, DriftMode::Correct),
            Some(rec(Some("h0"), true, Deployed)),
            &none,
            Upgrade,
        ),
        (
            "failed last time, same inputs",
            graph(vec![svc(None)], false, DriftMode::Correct),
            Some(rec(Some("h1"), true, Failed)),
            &none,
            Upgrade,
        ),
        (
            "drifted, correct mode",
            graph(vec![svc(None)], false, DriftMode::Correct),
            Some(rec(Some("h1"), true, Deployed)),
            &drifted,
            CorrectDrift(vec!["Deployment/a/spec/x".into()]),
        ),
        (
            "drifted, warn mode",
            graph(vec![svc(None)], false, DriftMode::Warn),
            Some(rec(Some("h1"), true, Deployed)),
            &drifted,
            ReportDrift(vec!["Deployment/a/spec/x".into()]),
        ),
        (
            "drift checked, none",
            graph(vec![svc(None)], false, DriftMode::Correct),
            Some(rec(Some("h1"), true, Deployed)),
            &checked,
            InSync,
        ),
        (
            "drift unreadable",
            graph(vec![svc(None)], false, DriftMode::Correct),
            Some(rec(Some("h1"), true, Deployed)),
            &unread,
            Fail(StepError::transient(Reason::Karmada, "API down")),
        ),
        (
            "event trigger not fired",
            graph(
                vec![svc(Some(trigger(&["e1"], false, false, vec![])))],
                false,
                DriftMode::Correct,
            ),
            None,
            &none,
            WaitForTrigger {
                pending: vec!["e1".into()],
            },
        ),
        (
            "event trigger fired",
            graph(
                vec![svc(Some(trigger(
                    &["e1"],
                    false,
                    false,
                    vec![fired("e1", false)],
                )))],
                false,
                DriftMode::Correct,
            ),
            None,
            &none,
            Install,
        ),
        (
            "fired earlier, installed, inputs changed",
            graph(
                vec![svc(Some(trigger(
                    &["e1"],
                    false,
                    false,
                    vec![fired("e1", true)],
                )))],
                false,
                DriftMode::Correct,
            ),
            Some(rec(Some("h0"), true, Deployed)),
            &none,
            Upgrade,
        ),
        (
            "resolved without undeployOnResolve stays",
            graph(
                vec![svc(Some(trigger(
                    &["e1"],
                    false,
                    false,
                    vec![fired("e1", true)],
                )))],
                false,
                DriftMode::Correct,
            ),
            Some(rec(Some("h1"), true, Deployed)),
            &none,
            InSync,
        ),
        (
            "resolved with undeployOnResolve re-arms",
            graph(
                vec![svc(Some(trigger(
                    &["e1"],
                    false,
                    true,
                    vec![fired("e1", true)],
                )))],
                false,
                DriftMode::Correct,
            ),
            Some(rec(Some("h1"), true, Deployed)),
            &none,
            Uninstall(UninstallReason::Resolved),
        ),
        (
            "suspended, installed",
            graph(vec![svc(None)], true, DriftMode::Correct),
            Some(rec(Some("h1"), true, Deployed)),
            &none,
            Uninstall(UninstallReason::Suspended),
        ),
        (
            "suspended, nothing installed",
            graph(vec![svc(None)], true, DriftMode::Correct),
            Some(rec(None, false, Suspended)),
            &none,
            StaySuspended,
        ),
        (
            "suspended wins over a resolved trigger",
            graph(
                vec![svc(Some(trigger(
                    &["e1"],
                    false,
                    true,
                    vec![fired("e1", true)],
                )))],
                true,
                DriftMode::Correct,
            ),
            Some(rec(Some("h1"), true, Deployed)),
            &none,
            Uninstall(UninstallReason::Suspended),
        ),
    ];
    for (name, g, r, observed, want) in rows {
        assert_eq!(one(&g, r, observed).action, want, "{name}");
    }
}

#[test]
fn rearming_an_all_trigger_keeps_the_events_still_firing() {
    // ALL over a and b; a resolved, b still firing: only a is cleared,
    // so b's next repetition (a duplicate of its firing) still counts and
    // a new firing of a deploys again.
    let t = trigger(
        &["a", "b"],
        true,
        true,
        vec![fired("a", true), fired("b", false)],
    );
    let g = graph(vec![svc(Some(t))], false, DriftMode::Correct);
    let p = one(
        &g,
        Some(rec(Some("h1"), true, ServicePhase::Deployed)),
        &Observed::default(),
    );
    assert_eq!(p.action, Uninstall(UninstallReason::Resolved));
    let (cleared, state) = p.rearm.expect("re-arm on success");
    assert_eq!(
        cleared.iter().map(|f| f.event.as_str()).collect::<Vec<_>>(),
        ["a"]
    );
    assert!(state.armed);
    assert_eq!(state.pending, ["a"]);
}

fn dep_graph<'a>() -> DesiredGraph<'a> {
    let mut front = svc(None);
    front.id = "s";
    front.dependencies = vec!["db"];
    let db = DesiredService {
        id: "db",
        hash: "hd",
        dependencies: Vec::new(),
        trigger: None,
        adopt: false,
    };
    graph(vec![front, db], false, DriftMode::Correct)
}

fn db_rec(hash: &str) -> ServiceRecord {
    let mut r = rec(Some(hash), true, ServicePhase::Deployed);
    r.service = "db".into();
    r
}

#[test]
fn the_dependency_gate_waits_for_deployed_and_ready_dependencies() {
    let g = dep_graph();
    let recorded = |db: Option<ServiceRecord>| -> BTreeMap<String, ServiceRecord> {
        db.into_iter().map(|r| (r.service.clone(), r)).collect()
    };
    let with = |r: Readiness| Observed {
        readiness: BTreeMap::from([("db".to_owned(), r)]),
        ..Observed::default()
    };
    let run = |db: Option<ServiceRecord>, o: &Observed| {
        let p = plan(&g, &recorded(db), o, &BTreeSet::new(), &BTreeSet::new());
        // Dependencies come first.
        assert_eq!(p.services[0].id, "db");
        p.services[1].clone()
    };

    assert_eq!(
        readiness_wanted(&g, &recorded(None)),
        BTreeSet::from(["db".to_owned()])
    );
    // db installs in this pass: s waits.
    let s = run(None, &with(Readiness::NotReady("absent".into())));
    assert_eq!(
        s.action,
        WaitForDependency {
            dependency: "db".into(),
            why: "db is not deployed".into()
        }
    );
    // db deployed but its workloads are not ready.
    let s = run(
        Some(db_rec("hd")),
        &with(Readiness::NotReady("Deployment/db has 0 of 1 ready".into())),
    );
    assert!(
        matches!(&s.action, WaitForDependency { why, .. } if why.contains("0 of 1 ready")),
        "{s:?}"
    );
    // Unreadable readiness holds too.
    let s = run(
        Some(db_rec("hd")),
        &with(Readiness::Unknown(StepError::transient(
            Reason::Karmada,
            "API down",
        ))),
    );
    assert!(matches!(&s.action, WaitForDependency { why, .. } if why.contains("API down")));
    // Ready: install, nothing to wait for.
    let s = run(Some(db_rec("hd")), &with(Readiness::Ready));
    assert_eq!((s.action, s.after), (Install, Vec::<String>::new()));
    // db being upgraded this pass and ready: s goes after it.
    let s = run(Some(db_rec("old")), &with(Readiness::Ready));
    assert_eq!((s.action, s.after), (Install, vec!["db".to_owned()]));
}

#[test]
fn services_and_scalers_that_left_the_descriptor_are_removed() {
    let g = graph(vec![svc(None)], false, DriftMode::Correct);
    let mut gone = rec(Some("h"), true, ServicePhase::Deployed);
    gone.service = "old".into();
    let recorded = BTreeMap::from([("old".to_owned(), gone)]);
    let scale_records = BTreeSet::from(["s".to_owned(), "old".to_owned()]);
    let p = plan(
        &g,
        &recorded,
        &Observed::default(),
        &BTreeSet::new(),
        &scale_records,
    );
    assert_eq!(p.remove, ["old"]);
    assert_eq!(p.forget_scales, ["old", "s"]);
    let p = plan(
        &g,
        &recorded,
        &Observed::default(),
        &BTreeSet::from(["s"]),
        &scale_records,
    );
    assert_eq!(p.forget_scales, ["old"]);
}

#[test]
fn dependencies_come_first() {
    let s = [
        ("front", vec!["api"]),
        ("api", vec!["db"]),
        ("db", vec![]),
        ("side", vec![]),
    ];
    assert_eq!(dependency_order(&s), ["db", "side", "api", "front"]);
    let cyc = [("a", vec!["b"]), ("b", vec!["a"]), ("c", vec![])];
    assert_eq!(dependency_order(&cyc), ["c", "a", "b"]);
}

#[test]
fn a_release_smo_did_not_install_is_held_unless_adopted() {
    let observed = |o: Ownership| Observed {
        releases: BTreeMap::from([("s".to_owned(), o)]),
        ..Observed::default()
    };
    let g = graph(vec![svc(None)], false, DriftMode::Correct);
    let held = one(&g, None, &observed(Ownership::Foreign));
    assert!(
        matches!(&held.action, Hold(why) if why.contains("release s exists and is not managed by smo")),
        "{held:?}"
    );
    assert!(
        matches!(one(&g, None, &observed(Ownership::OtherGraph("p/h".into()))).action, Hold(why) if why.contains("p/h"))
    );
    assert_eq!(one(&g, None, &observed(Ownership::Ours)).action, Install);
    assert_eq!(one(&g, None, &observed(Ownership::Absent)).action, Install);
    assert!(matches!(
        one(&g, None, &observed(Ownership::Unknown(StepError::transient(Reason::Karmada, "down")))).action,
        Fail(e) if e.transient
    ));
    let mut adopting = svc(None);
    adopting.adopt = true;
    let g = graph(vec![adopting], false, DriftMode::Correct);
    assert_eq!(one(&g, None, &observed(Ownership::Foreign)).action, Install);
    assert_eq!(
        ownership_wanted(&g, &BTreeMap::new()),
        BTreeSet::from(["s".to_owned()])
    );
}

#[test]
fn a_release_adopted_by_another_graph_is_forgotten_not_uninstalled() {
    assert_eq!(removal("web", &Ownership::Ours), Ok(Removal::Uninstall));
    assert_eq!(removal("web", &Ownership::Foreign), Ok(Removal::Uninstall));
    assert!(matches!(
        removal("web", &Ownership::Absent),
        Ok(Removal::Forget(_))
    ));
    assert!(matches!(
        removal("web", &Ownership::OtherGraph("p/h".into())),
        Ok(Removal::Forget(why)) if why.contains("p/h")
    ));
    let e = StepError::transient(Reason::Karmada, "down");
    assert_eq!(removal("web", &Ownership::Unknown(e.clone())), Err(e));
}
