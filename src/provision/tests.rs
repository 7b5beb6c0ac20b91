//! The planner's table and guard tests.

use super::*;
use crate::spec::cluster::{Flavor, Vim};

pub(crate) fn spec(workers: u32) -> NfvclProvision {
    NfvclProvision {
        vim: Vim {
            name: "os-lab".into(),
            url: "https://keystone.example:5000/v3".into(),
            tenant: "smo".into(),
            user: "smo".into(),
            password_file: "/etc/smo/credentials/vim-password".into(),
        },
        area: 3,
        mgmt_net: "dmz-internal".into(),
        cni: "flannel".into(),
        master_flavor: Flavor {
            vcpu: 4,
            memory_mb: 8192,
            storage_gb: 40,
        },
        worker_flavor: Flavor {
            vcpu: 8,
            memory_mb: 16384,
            storage_gb: 80,
        },
        workers,
    }
}

fn record(status: ProvisionStatus, bp: Option<&str>, workers: u32) -> ProvisionRecord {
    ProvisionRecord {
        cluster: "c".into(),
        blueprint_id: bp.map(Into::into),
        workers,
        status,
        spec_hash: spec_hash(&spec(workers)),
        detail: None,
        refused: None,
        polls: 0,
        updated_at: 0,
    }
}

fn other_shape() -> String {
    let mut s = spec(2);
    s.mgmt_net = "other".into();
    spec_hash(&s)
}

/// (class, desired workers, record, expected actions, drifted)
type Row = (
    &'static str,
    Option<u32>,
    Option<ProvisionRecord>,
    Vec<Action>,
    bool,
);

#[test]
fn plan_has_one_step_per_class() {
    use ProvisionStatus::*;
    let create = Action::Create {
        cluster: "c".into(),
    };
    let wait = Action::Wait {
        cluster: "c".into(),
    };
    let delete = Action::Delete {
        cluster: "c".into(),
        blueprint_id: "bp".into(),
    };
    let refused = |mut r: ProvisionRecord, s: &NfvclProvision| {
        r.refused = Some(full_hash(s));
        r
    };
    let reshaped = |mut r: ProvisionRecord| {
        r.spec_hash = other_shape();
        r
    };
    let rows: Vec<Row> = vec![
        ("absent", Some(2), None, vec![create.clone()], false),
        (
            "creation failed transiently",
            Some(2),
            Some(record(Pending, None, 2)),
            vec![create.clone()],
            false,
        ),
        (
            "creation refused, unchanged",
            Some(2),
            Some(refused(record(Failed, None, 2), &spec(2))),
            vec![],
            false,
        ),
        (
            "creation refused, changed since",
            Some(3),
            Some(refused(record(Failed, None, 2), &spec(2))),
            vec![create.clone()],
            false,
        ),
        (
            "creating",
            Some(2),
            Some(record(Creating, Some("bp"), 2)),
            vec![wait.clone()],
            false,
        ),
        (
            "scaling",
            Some(4),
            Some(record(Scaling, Some("bp"), 4)),
            vec![wait],
            false,
        ),
        (
            "in sync",
            Some(2),
            Some(record(Ready, Some("bp"), 2)),
            vec![],
            false,
        ),
        (
            "more workers",
            Some(4),
            Some(record(Ready, Some("bp"), 2)),
            vec![Action::Scale {
                cluster: "c".into(),
                from: 2,
                to: 4,
            }],
            false,
        ),
        (
            "fewer workers",
            Some(2),
            Some(record(Ready, Some("bp"), 4)),
            vec![Action::Scale {
                cluster: "c".into(),
                from: 4,
                to: 2,
            }],
            false,
        ),
        (
            "scale refused, unchanged",
            Some(4),
            Some(refused(record(Ready, Some("bp"), 2), &spec(4))),
            vec![],
            false,
        ),
        (
            "drifted shape",
            Some(2),
            Some(reshaped(record(Ready, Some("bp"), 2))),
            vec![],
            true,
        ),
        (
            "failed, unchanged",
            Some(2),
            Some(record(Failed, Some("bp"), 2)),
            vec![],
            false,
        ),
        (
            "failed, changed since",
            Some(3),
            Some(record(Failed, Some("bp"), 2)),
            vec![delete.clone()],
            false,
        ),
        (
            "no longer desired",
            None,
            Some(record(Ready, Some("bp"), 2)),
            vec![delete],
            false,
        ),
        (
            "no longer desired, no blueprint",
            None,
            Some(record(Pending, None, 2)),
            vec![Action::Forget {
                cluster: "c".into(),
            }],
            false,
        ),
    ];
    for (class, workers, rec, expected, drifted) in rows {
        let desired: BTreeMap<_, _> = workers
            .map(|w| ("c".to_owned(), spec(w)))
            .into_iter()
            .collect();
        let recorded: BTreeMap<_, _> = rec.map(|r| ("c".to_owned(), r)).into_iter().collect();
        let plan = plan(&desired, &recorded, &allow());
        assert_eq!(plan.actions, expected, "{class}");
        assert_eq!(plan.drifted == ["c"], drifted, "{class}");
        assert!(plan.held.is_empty(), "{class}");
    }
}

/// The marker file present: only broken files and a partial snapshot
/// hold anything.
fn allow() -> Guards {
    Guards {
        allow_prune: true,
        max_delete_percent: 50.0,
        ..Guards::default()
    }
}

fn named(cluster: &str, status: ProvisionStatus, workers: u32) -> ProvisionRecord {
    ProvisionRecord {
        cluster: cluster.into(),
        ..record(status, Some(&format!("bp-{cluster}")), workers)
    }
}

#[test]
fn snapshot_guard_holds_deletions_back_and_nothing_else() {
    let desired = BTreeMap::from([("new".to_owned(), spec(1))]);
    let recorded = BTreeMap::from([("old".to_owned(), named("old", ProvisionStatus::Ready, 2))]);
    let guards = Guards {
        snapshot: Some("the snapshot has no graphs".into()),
        ..allow()
    };
    let held = plan(&desired, &recorded, &guards);
    assert_eq!(
        held.actions,
        [Action::Create {
            cluster: "new".into()
        }]
    );
    assert_eq!(
        held.held,
        [Held {
            cluster: "old".into(),
            hold: Hold::Snapshot {
                why: "the snapshot has no graphs".into()
            }
        }]
    );
    let allowed = plan(&desired, &recorded, &allow());
    assert_eq!(allowed.actions.len(), 2);
    assert!(allowed.held.is_empty());
}

/// Regression: a cluster file that fails to load dropped the cluster
/// from the desired state, and the planner deleted its blueprint.
#[test]
fn a_broken_cluster_file_holds_the_cluster_at_its_last_good_state() {
    use ProvisionStatus::*;
    let guards = Guards {
        broken: BTreeSet::from(["c".to_owned()]),
        ..allow()
    };
    // Every recorded class, the file broken (not desired) or broken
    // while another file still declares the cluster (desired).
    for status in [Pending, Creating, Scaling, Ready, Failed] {
        for desired in [None, Some(4)] {
            let desired: BTreeMap<_, _> = desired
                .map(|w| ("c".to_owned(), spec(w)))
                .into_iter()
                .collect();
            let recorded = BTreeMap::from([("c".to_owned(), record(status, Some("bp"), 2))]);
            let p = plan(&desired, &recorded, &guards);
            assert!(p.actions.is_empty(), "{status:?}: {:?}", p.actions);
            assert_eq!(
                p.held,
                [Held {
                    cluster: "c".into(),
                    hold: Hold::Broken
                }],
                "{status:?}"
            );
        }
    }
    // Broken before it was ever created: not created either.
    let p = plan(
        &BTreeMap::from([("c".to_owned(), spec(2))]),
        &BTreeMap::new(),
        &guards,
    );
    assert!(p.actions.is_empty());
    assert_eq!(p.held.len(), 1);
}

#[test]
fn deleting_a_cluster_with_graphs_placed_on_it_waits_for_the_marker() {
    let desired = BTreeMap::from([("keep".to_owned(), spec(1))]);
    let recorded = BTreeMap::from([
        ("keep".to_owned(), named("keep", ProvisionStatus::Ready, 1)),
        ("old".to_owned(), named("old", ProvisionStatus::Ready, 2)),
    ]);
    let in_use = BTreeMap::from([(
        "old".to_owned(),
        BTreeSet::from(["p/g1".to_owned(), "p/g2".to_owned()]),
    )]);
    let guards = Guards {
        in_use,
        allow_prune: false,
        ..allow()
    };
    let p = plan(&desired, &recorded, &guards);
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    assert_eq!(
        p.held,
        [Held {
            cluster: "old".into(),
            hold: Hold::InUse {
                graphs: vec!["p/g1".into(), "p/g2".into()]
            }
        }]
    );
    assert!(p.held[0].hold.to_string().contains("p/g1, p/g2"));
    // Recreating a failed cluster deletes it first: held the same way.
    let failed = BTreeMap::from([("old".to_owned(), named("old", ProvisionStatus::Failed, 2))]);
    let changed = BTreeMap::from([("old".to_owned(), spec(3))]);
    let p = plan(&changed, &failed, &guards);
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    assert!(matches!(
        p.held[..],
        [Held {
            hold: Hold::InUse { .. },
            ..
        }]
    ));
    let p = plan(
        &desired,
        &recorded,
        &Guards {
            allow_prune: true,
            ..guards
        },
    );
    assert_eq!(
        p.actions,
        [Action::Delete {
            cluster: "old".into(),
            blueprint_id: "bp-old".into()
        }]
    );
}

#[test]
fn cluster_deletions_count_in_the_prune_guard() {
    use ProvisionStatus::Ready;
    let recorded: BTreeMap<_, _> = ["a", "b", "c", "d"]
        .map(|c| (c.to_owned(), named(c, Ready, 1)))
        .into_iter()
        .collect();
    let desired_of = |names: &[&str]| -> BTreeMap<String, NfvclProvision> {
        names.iter().map(|c| ((*c).to_owned(), spec(1))).collect()
    };
    let guards = Guards {
        allow_prune: false,
        ..allow()
    };
    // Two of four (50%, not more than 50): deleted.
    let p = plan(&desired_of(&["a", "b"]), &recorded, &guards);
    assert_eq!(p.actions.len(), 2);
    assert!(p.held.is_empty());
    // Three of four: held, all of them.
    let p = plan(&desired_of(&["a"]), &recorded, &guards);
    assert!(p.actions.is_empty());
    assert_eq!(p.held.len(), 3);
    assert_eq!(
        p.held[0].hold,
        Hold::TooMany {
            removing: 3,
            provisioned: 4,
            max_percent: "50".into()
        }
    );
    // All of them, even of one: held whatever the percentage.
    let one = BTreeMap::from([("a".to_owned(), named("a", Ready, 1))]);
    let p = plan(
        &BTreeMap::new(),
        &one,
        &Guards {
            max_delete_percent: 100.0,
            ..guards.clone()
        },
    );
    assert!(p.actions.is_empty());
    assert_eq!(p.held.len(), 1);
    // The marker lifts it.
    let p = plan(&desired_of(&["a"]), &recorded, &allow());
    assert_eq!(p.actions.len(), 3);
}

#[test]
fn hold_details_explain_holds_and_clear_when_they_end() {
    let recorded = BTreeMap::from([
        ("a".to_owned(), named("a", ProvisionStatus::Ready, 1)),
        (
            "b".to_owned(),
            ProvisionRecord {
                detail: Some(format!("{HELD_PREFIX}{}", Hold::Broken)),
                ..named("b", ProvisionStatus::Ready, 1)
            },
        ),
        (
            "c".to_owned(),
            ProvisionRecord {
                detail: Some("NFVCL refused".into()),
                ..named("c", ProvisionStatus::Ready, 1)
            },
        ),
    ]);
    let p = Plan {
        held: vec![Held {
            cluster: "a".into(),
            hold: Hold::Broken,
        }],
        ..Plan::default()
    };
    let changed = hold_details(&p, &recorded);
    let got: Vec<(&str, Option<&str>)> = changed
        .iter()
        .map(|r| (r.cluster.as_str(), r.detail.as_deref()))
        .collect();
    let a = format!("{HELD_PREFIX}{}", Hold::Broken);
    assert_eq!(got, [("a", Some(a.as_str())), ("b", None)]);
    // Unchanged holds write nothing.
    let again: BTreeMap<_, _> = changed
        .into_iter()
        .map(|r| (r.cluster.clone(), r))
        .collect();
    let mut recorded = recorded;
    recorded.extend(again);
    assert!(hold_details(&p, &recorded).is_empty());
}

#[test]
fn spec_hash_ignores_the_worker_count_and_nothing_else() {
    assert_eq!(spec_hash(&spec(1)), spec_hash(&spec(5)));
    assert_ne!(full_hash(&spec(1)), full_hash(&spec(5)));
    assert_ne!(spec_hash(&spec(1)), other_shape());
}
