//! Clusters that smo creates itself through NFVCL: the pure planner.
//!
//! [`plan`] compares the desired provisions (cluster metadata files with a
//! `provision.nfvcl` block) with the recorded ones (the store's
//! `provisions` table) and classifies every cluster into exactly one next
//! step. It does no I/O; [`run::step`] carries a step out against NFVCL.
//!
//! Classes, one per cluster (see the table test):
//! - desired, nothing recorded, or recorded without a blueprint (an earlier
//!   creation failed transiently or was refused for another spec) →
//!   [`Action::Create`];
//! - desired exactly as NFVCL refused it last → nothing: terminal until the
//!   provision changes;
//! - creation or scaling accepted, not finished → [`Action::Wait`];
//! - ready with another worker count → [`Action::Scale`];
//! - ready with another shape (VIM, area, network, CNI, flavors) → nothing,
//!   reported as drifted: NFVCL cannot change those in place, and smo does
//!   not destroy a working cluster on its own;
//! - failed (NFVCL reported the blueprint in error) → nothing until the
//!   provision changes, then [`Action::Delete`] so the next pass recreates it;
//! - recorded but no longer desired → [`Action::Delete`] (or
//!   [`Action::Forget`] when no blueprint exists), unless the caller holds
//!   deletions back (the prune guard), then listed in [`Plan::held`].

pub mod run;

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::spec::cluster::NfvclProvision;
use crate::store::records::{ProvisionRecord, ProvisionStatus};

/// One step for one cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum Action {
    /// Register the VIM and ask NFVCL for the blueprint.
    Create { cluster: String },
    /// Ask NFVCL how the creation or scaling goes.
    Wait { cluster: String },
    /// Add (`to > from`) or remove workers.
    Scale { cluster: String, from: u32, to: u32 },
    /// Destroy the blueprint, then forget the record.
    Delete {
        cluster: String,
        blueprint_id: String,
    },
    /// Forget a record that has no blueprint behind it.
    Forget { cluster: String },
}

impl Action {
    pub fn cluster(&self) -> &str {
        match self {
            Action::Create { cluster }
            | Action::Wait { cluster }
            | Action::Scale { cluster, .. }
            | Action::Delete { cluster, .. }
            | Action::Forget { cluster } => cluster,
        }
    }
}

/// Whether recorded clusters that are no longer desired may be deleted.
/// The caller holds deletions back when the desired state may be partial
/// (a source that failed to load, an empty snapshot after a bad commit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prune {
    Allow,
    Hold,
}

/// What to do, and what not to do with a reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// Clusters that would be deleted but for [`Prune::Hold`].
    pub held: Vec<String>,
    /// Ready clusters whose provision changed in a way NFVCL cannot apply
    /// in place.
    pub drifted: Vec<String>,
}

/// Hash of the provision's shape: everything but the worker count, which
/// is changed in place.
pub fn spec_hash(spec: &NfvclProvision) -> String {
    let shape = NfvclProvision {
        workers: 0,
        ..spec.clone()
    };
    hash(&shape)
}

/// Hash of the whole provision, workers included: what NFVCL refused.
pub fn full_hash(spec: &NfvclProvision) -> String {
    hash(spec)
}

fn hash(value: &impl Serialize) -> String {
    // Serializing plain structs of strings and integers cannot fail.
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    format!("{:x}", Sha256::digest(&bytes))
}

/// The next step of every cluster, in cluster-name order.
pub fn plan(
    desired: &BTreeMap<String, NfvclProvision>,
    recorded: &BTreeMap<String, ProvisionRecord>,
    prune: Prune,
) -> Plan {
    let mut out = Plan::default();
    for (cluster, spec) in desired {
        let cluster = cluster.clone();
        let Some(record) = recorded.get(&cluster) else {
            out.actions.push(Action::Create { cluster });
            continue;
        };
        if record.refused.as_deref() == Some(full_hash(spec).as_str()) {
            continue;
        }
        let Some(blueprint_id) = &record.blueprint_id else {
            out.actions.push(Action::Create { cluster });
            continue;
        };
        let changed = record.spec_hash != spec_hash(spec);
        match record.status {
            ProvisionStatus::Pending => out.actions.push(Action::Create { cluster }),
            ProvisionStatus::Creating | ProvisionStatus::Scaling => {
                out.actions.push(Action::Wait { cluster });
            }
            ProvisionStatus::Failed => {
                if changed || record.workers != spec.workers {
                    out.actions.push(Action::Delete {
                        cluster,
                        blueprint_id: blueprint_id.clone(),
                    });
                }
            }
            ProvisionStatus::Ready if changed => out.drifted.push(cluster),
            ProvisionStatus::Ready if record.workers != spec.workers => {
                out.actions.push(Action::Scale {
                    cluster,
                    from: record.workers,
                    to: spec.workers,
                });
            }
            ProvisionStatus::Ready => {}
        }
    }
    for (cluster, record) in recorded {
        if desired.contains_key(cluster) {
            continue;
        }
        if prune == Prune::Hold {
            out.held.push(cluster.clone());
            continue;
        }
        out.actions.push(match &record.blueprint_id {
            Some(id) => Action::Delete {
                cluster: cluster.clone(),
                blueprint_id: id.clone(),
            },
            None => Action::Forget {
                cluster: cluster.clone(),
            },
        });
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
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
            let plan = plan(&desired, &recorded, Prune::Allow);
            assert_eq!(plan.actions, expected, "{class}");
            assert_eq!(plan.drifted == ["c"], drifted, "{class}");
            assert!(plan.held.is_empty(), "{class}");
        }
    }

    #[test]
    fn prune_guard_holds_deletions_back_and_nothing_else() {
        let desired = BTreeMap::from([("new".to_owned(), spec(1))]);
        let recorded = BTreeMap::from([(
            "old".to_owned(),
            ProvisionRecord {
                cluster: "old".into(),
                ..record(ProvisionStatus::Ready, Some("bp"), 2)
            },
        )]);
        let held = plan(&desired, &recorded, Prune::Hold);
        assert_eq!(
            held.actions,
            [Action::Create {
                cluster: "new".into()
            }]
        );
        assert_eq!(held.held, ["old"]);
        let allowed = plan(&desired, &recorded, Prune::Allow);
        assert_eq!(allowed.actions.len(), 2);
        assert!(allowed.held.is_empty());
    }

    #[test]
    fn spec_hash_ignores_the_worker_count_and_nothing_else() {
        assert_eq!(spec_hash(&spec(1)), spec_hash(&spec(5)));
        assert_ne!(full_hash(&spec(1)), full_hash(&spec(5)));
        assert_ne!(spec_hash(&spec(1)), other_shape());
    }
}
