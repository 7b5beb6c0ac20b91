use super::*;
use crate::reconcile::error::Reason;
use crate::reconcile::plan::ServicePlan;

fn rec(service: &str) -> ServiceRecord {
    let mut r = ServiceRecord::new("p", "g", service, 0);
    r.release_revision = Some(2);
    r.input_hash = Some("h".into());
    r.phase = ServicePhase::Deployed;
    r
}

fn plan(action: Action) -> ServicePlan {
    ServicePlan {
        id: "s".into(),
        action,
        trigger: TriggerState::default(),
        after: Vec::new(),
        rearm: None,
        drift: None,
    }
}

fn graph() -> GraphRecord {
    GraphRecord::new("p", "g", "projects/p/g.yaml", 0)
}

#[test]
fn each_result_sets_its_phase_and_journal() {
    let ok = Ok(());
    let failed = Err(StepError::transient(Reason::Helm, "helm: busy"));
    type Row<'a> = (
        &'a str,
        Action,
        &'a Result<(), StepError>,
        ServicePhase,
        &'a [&'a str],
    );
    let rows: Vec<Row> = vec![
        (
            "installed",
            Action::Install,
            &ok,
            ServicePhase::Deployed,
            &["Installed"],
        ),
        (
            "upgraded",
            Action::Upgrade,
            &ok,
            ServicePhase::Deployed,
            &["Upgraded"],
        ),
        (
            "drift corrected",
            Action::CorrectDrift(vec!["Deployment/a/spec/x".into()]),
            &ok,
            ServicePhase::Deployed,
            &["DriftCorrected"],
        ),
        (
            "failed",
            Action::Upgrade,
            &failed,
            ServicePhase::Failed,
            &["Failed"],
        ),
        (
            "suspended",
            Action::Uninstall(UninstallReason::Suspended),
            &ok,
            ServicePhase::Suspended,
            &[],
        ),
        (
            "waiting for trigger",
            Action::WaitForTrigger {
                pending: vec!["e".into()],
            },
            &ok,
            ServicePhase::WaitingForTrigger,
            &[],
        ),
        (
            "blocked",
            Action::WaitForDependency {
                dependency: "db".into(),
                why: "db is not deployed".into(),
            },
            &ok,
            ServicePhase::BlockedByDependency,
            &[],
        ),
        ("in sync", Action::InSync, &ok, ServicePhase::Deployed, &[]),
    ];
    for (name, action, result, phase, kinds) in rows {
        let mut r = rec("s");
        let notes = record_service(&mut r, &plan(action), result);
        assert_eq!(r.phase, phase, "{name}");
        let got: Vec<&str> = notes.iter().map(|n| n.0.journal()).collect();
        assert_eq!(got, kinds, "{name}");
        assert_eq!(
            r.blocked_by.is_some(),
            phase == ServicePhase::BlockedByDependency,
            "{name}"
        );
    }
}

#[test]
fn drift_stays_reported_for_every_drifted_service_until_checked_again() {
    let mut services = BTreeMap::new();
    for id in ["a", "b"] {
        let mut r = rec(id);
        let mut p = plan(Action::ReportDrift(vec![format!("Deployment/{id}/spec/x")]));
        p.drift = Some(vec![format!("Deployment/{id}/spec/x")]);
        record_service(&mut r, &p, &Ok(()));
        services.insert(id.to_owned(), r);
    }
    let mut g = graph();
    summarize(&mut g, &services, &Outcome::Done, "r1", 100);
    let drifted = |g: &GraphRecord| {
        g.conditions
            .iter()
            .find(|c| c.kind == ConditionKind::Drifted)
            .map(|c| (c.message.clone(), c.since))
    };
    let (message, since) = drifted(&g).expect("a Drifted condition");
    assert!(
        message.contains("a: Deployment/a") && message.contains("b: Deployment/b"),
        "{message}"
    );
    // A later pass without a drift check (minutes later) keeps it, with
    // its original time.
    for r in services.values_mut() {
        record_service(r, &plan(Action::InSync), &Ok(()));
    }
    summarize(&mut g, &services, &Outcome::Done, "r1", 500);
    assert_eq!(drifted(&g), Some((message, since)));
    // A check that finds a in sync clears a only.
    let mut p = plan(Action::InSync);
    p.drift = Some(Vec::new());
    record_service(services.get_mut("a").unwrap(), &p, &Ok(()));
    summarize(&mut g, &services, &Outcome::Done, "r1", 600);
    let (message, _) = drifted(&g).unwrap();
    assert!(
        !message.contains("a:") && message.contains("b:"),
        "{message}"
    );
}

#[test]
fn conditions_follow_the_outcome_and_keep_their_since() {
    let services = BTreeMap::new();
    let mut g = graph();
    summarize(&mut g, &services, &Outcome::Done, "r1", 10);
    let ready = |g: &GraphRecord| {
        g.conditions
            .iter()
            .find(|c| c.kind == ConditionKind::Ready)
            .cloned()
            .unwrap()
    };
    assert!(ready(&g).status);
    assert_eq!(g.last_applied_revision.as_deref(), Some("r1"));
    summarize(&mut g, &services, &Outcome::Done, "r2", 20);
    assert_eq!(ready(&g).since, 10);
    let e = StepError::terminal(Reason::Chart, "chart unreadable");
    summarize(&mut g, &services, &Outcome::Stalled(e), "r3", 30);
    assert!(!ready(&g).status);
    assert_eq!(ready(&g).since, 30);
    assert_eq!(g.failures, 1);
    assert_eq!(g.last_applied_revision.as_deref(), Some("r2"));
    assert_eq!(outcome(None, None), Outcome::Done);
    assert!(matches!(
        outcome(
            Some(StepError::transient(Reason::Helm, "x")),
            Some(Duration::from_secs(1))
        ),
        Outcome::Retry(_)
    ));
}

#[test]
fn failures_count_up_and_schedule_the_next_attempt_until_a_pass_succeeds() {
    let policy = crate::retry::Policy {
        base: Duration::from_secs(10),
        cap: Duration::from_secs(300),
    };
    let busy = || Outcome::Retry(StepError::transient(Reason::Helm, "helm: busy"));
    let mut g = graph();
    let first = schedule(&mut g, &busy(), &policy, 1_000).expect("a retry is scheduled");
    assert_eq!(g.failures, 1);
    assert_eq!(g.next_retry_at, Some(1_000 + first.as_secs()));
    assert!((5..=10).contains(&first.as_secs()), "{first:?}");
    schedule(&mut g, &busy(), &policy, 2_000);
    let third = schedule(&mut g, &busy(), &policy, 3_000).unwrap();
    assert_eq!(g.failures, 3);
    assert!(
        third >= Duration::from_secs(20),
        "the back-off grows: {third:?}"
    );

    // Waiting is not failing: the count restarts, the wait is recorded.
    let wait = schedule(
        &mut g,
        &Outcome::RequeueAfter(Duration::from_secs(5)),
        &policy,
        4_000,
    );
    assert_eq!((g.failures, wait), (0, Some(Duration::from_secs(5))));
    assert_eq!(g.next_retry_at, Some(4_005));

    // Converged or stalled: nothing is due until something changes.
    for outcome in [
        Outcome::Done,
        Outcome::Stalled(StepError::terminal(Reason::InvalidDescriptor, "bad")),
    ] {
        g.failures = 2;
        assert_eq!(schedule(&mut g, &outcome, &policy, 5_000), None);
        assert_eq!((g.failures, g.next_retry_at), (0, None));
    }
}
