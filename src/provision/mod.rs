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
//!   provision changes, then [`Action::Delete`] so the next pass recreates it
//!   (held while graphs are placed on it, like any deletion);
//! - recorded but no longer desired → [`Action::Delete`] (or
//!   [`Action::Forget`] when no blueprint exists), unless a guard holds it
//!   back, then listed in [`Plan::held`] with the reason.
//!
//! Guards ([`Guards`]), which only ever hold a step back:
//! - a cluster whose file exists but does not load is held at its last good
//!   state: no creation, scaling, waiting or deletion until the file loads
//!   again or is removed ([`Hold::Broken`]);
//! - a deletion waits while the snapshot may be partial (the graph prune
//!   guard holds, [`Hold::Snapshot`]), while graphs are placed on the cluster
//!   ([`Hold::InUse`]), and when it would delete more than
//!   `prune.maxDeletePercent` of the provisioned clusters, or all of them
//!   ([`Hold::TooMany`], decided by [`prune_guard`]). The operator's marker
//!   file lifts the last two.

pub mod run;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::desired::prune::prune_guard;
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

/// What may hold a step back, besides the desired and recorded provisions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Guards {
    /// Clusters whose file exists but does not load.
    pub broken: BTreeSet<String>,
    /// Graphs (`project/graph`) placed on each cluster, as recorded.
    pub in_use: BTreeMap<String, BTreeSet<String>>,
    /// Why the graph prune guard holds removals, when it does: the snapshot
    /// may be partial (a wrong path, an emptied checkout).
    pub snapshot: Option<String>,
    /// The operator's marker file exists: deleting clusters in use, or more
    /// than `max_delete_percent` of them, is allowed.
    pub allow_prune: bool,
    /// `prune.maxDeletePercent`.
    pub max_delete_percent: f64,
}

impl Guards {
    fn graphs_on(&self, cluster: &str) -> Vec<String> {
        self.in_use
            .get(cluster)
            .map(|g| g.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// Why a cluster's step is held back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "camelCase")]
pub enum Hold {
    /// The cluster file exists but does not load.
    Broken,
    /// The graph prune guard holds removals; its explanation.
    Snapshot { why: String },
    /// Graphs are placed on the cluster.
    InUse { graphs: Vec<String> },
    /// The deletion would remove too many of the provisioned clusters.
    TooMany {
        removing: usize,
        provisioned: usize,
        max_percent: String,
    },
}

impl fmt::Display for Hold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hold::Broken => write!(
                f,
                "its cluster file exists but does not load; held at the last good state (nothing is created, scaled or deleted) until the file is fixed, or removed to delete the cluster"
            ),
            Hold::Snapshot { why } => write!(f, "deletion held: {why}"),
            Hold::InUse { graphs } => write!(
                f,
                "deletion held: graphs are placed on it ({}); move them first, or create the marker file {} in the state root",
                graphs.join(", "),
                ALLOW_PRUNE_MARKER_NAME
            ),
            Hold::TooMany {
                removing,
                provisioned,
                max_percent,
            } => write!(
                f,
                "deletion held: it would delete {removing} of {provisioned} provisioned clusters (more than prune.maxDeletePercent {max_percent}%, or all of them); raise the setting or create the marker file {ALLOW_PRUNE_MARKER_NAME} in the state root"
            ),
        }
    }
}

/// The name of the operator's marker file, for messages; the daemon owns
/// the constant and checks the file.
const ALLOW_PRUNE_MARKER_NAME: &str = ".smo-allow-prune";

/// A cluster whose step is held back, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Held {
    pub cluster: String,
    #[serde(flatten)]
    pub hold: Hold,
}

/// What to do, and what not to do with a reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// Clusters held back by a guard, in cluster-name order.
    pub held: Vec<Held>,
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
    guards: &Guards,
) -> Plan {
    let mut out = Plan::default();
    for (cluster, spec) in desired {
        if !guards.broken.contains(cluster) {
            step_of_desired(cluster, spec, recorded.get(cluster), guards, &mut out);
        }
    }
    // Only a cluster that no file declares, and whose file is not merely
    // broken, is a candidate for deletion.
    let gone: Vec<(&String, &ProvisionRecord)> = recorded
        .iter()
        .filter(|(c, _)| !desired.contains_key(*c) && !guards.broken.contains(*c))
        .collect();
    let removing = gone.len();
    let too_many = prune_guard(
        recorded.len(),
        removing,
        desired.is_empty(),
        guards.max_delete_percent,
        guards.allow_prune,
    )
    .is_some();
    for (cluster, record) in gone {
        let graphs = guards.graphs_on(cluster);
        let hold = if let Some(why) = &guards.snapshot {
            Some(Hold::Snapshot { why: why.clone() })
        } else if !graphs.is_empty() && !guards.allow_prune {
            Some(Hold::InUse { graphs })
        } else if too_many {
            Some(Hold::TooMany {
                removing,
                provisioned: recorded.len(),
                max_percent: guards.max_delete_percent.to_string(),
            })
        } else {
            None
        };
        match hold {
            Some(hold) => out.held.push(Held {
                cluster: cluster.clone(),
                hold,
            }),
            None => out.actions.push(match &record.blueprint_id {
                Some(id) => Action::Delete {
                    cluster: cluster.clone(),
                    blueprint_id: id.clone(),
                },
                None => Action::Forget {
                    cluster: cluster.clone(),
                },
            }),
        }
    }
    out.held.extend(
        recorded
            .keys()
            .chain(desired.keys())
            .filter(|c| guards.broken.contains(*c))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|c| Held {
                cluster: c.clone(),
                hold: Hold::Broken,
            }),
    );
    out.held.sort_by(|a, b| a.cluster.cmp(&b.cluster));
    out
}

fn step_of_desired(
    cluster: &str,
    spec: &NfvclProvision,
    record: Option<&ProvisionRecord>,
    guards: &Guards,
    out: &mut Plan,
) {
    let cluster = cluster.to_owned();
    let Some(record) = record else {
        out.actions.push(Action::Create { cluster });
        return;
    };
    if record.refused.as_deref() == Some(full_hash(spec).as_str()) {
        return;
    }
    let Some(blueprint_id) = &record.blueprint_id else {
        out.actions.push(Action::Create { cluster });
        return;
    };
    let changed = record.spec_hash != spec_hash(spec);
    match record.status {
        ProvisionStatus::Pending => out.actions.push(Action::Create { cluster }),
        ProvisionStatus::Creating | ProvisionStatus::Scaling => {
            out.actions.push(Action::Wait { cluster });
        }
        ProvisionStatus::Failed if changed || record.workers != spec.workers => {
            // Recreating deletes first: not under graphs placed there.
            let graphs = guards.graphs_on(&cluster);
            if graphs.is_empty() || guards.allow_prune {
                out.actions.push(Action::Delete {
                    cluster,
                    blueprint_id: blueprint_id.clone(),
                });
            } else {
                out.held.push(Held {
                    cluster,
                    hold: Hold::InUse { graphs },
                });
            }
        }
        ProvisionStatus::Failed => {}
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

/// Prefix of a record's detail that reports a hold, so that the detail is
/// cleared once the hold ends (a held cluster gets no step that would).
pub const HELD_PREFIX: &str = "held: ";

/// Records whose detail must change: held clusters show why, clusters no
/// longer held lose the explanation. Pure; the caller commits them and
/// announces each new hold as an event.
pub fn hold_details(
    plan: &Plan,
    recorded: &BTreeMap<String, ProvisionRecord>,
) -> Vec<ProvisionRecord> {
    let acting: BTreeSet<&str> = plan.actions.iter().map(Action::cluster).collect();
    let held: BTreeMap<&str, &Hold> = plan
        .held
        .iter()
        .map(|h| (h.cluster.as_str(), &h.hold))
        .collect();
    recorded
        .values()
        // A step writes its own detail.
        .filter(|r| !acting.contains(r.cluster.as_str()))
        .filter_map(|r| {
            let detail = match held.get(r.cluster.as_str()) {
                Some(hold) => Some(format!("{HELD_PREFIX}{hold}")),
                None if r
                    .detail
                    .as_deref()
                    .is_some_and(|d| d.starts_with(HELD_PREFIX)) =>
                {
                    None
                }
                None => return None,
            };
            (r.detail != detail).then(|| ProvisionRecord {
                detail,
                ..r.clone()
            })
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests;
