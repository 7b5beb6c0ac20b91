//! Carries out one planned [`Action`] against NFVCL.
//!
//! [`step`] talks to NFVCL and returns what to record ([`Change`]) and when
//! to look at the cluster again; it never touches the store itself, so the
//! caller commits the change (in `spawn_blocking`, with [`apply`]) and owns
//! the timers. Errors are returned with the outcome, classified: a transient
//! one (NFVCL down, slow, 5xx) is retried after a back-off without a new
//! record of a blueprint; a terminal one (4xx) is recorded as refused, with
//! NFVCL's message, until the provision changes.
//!
//! Creating and scaling are not idempotent in NFVCL, and an answer can be
//! lost after NFVCL acted (a timeout, a dropped connection). So a creation
//! retried after an earlier attempt first looks for a blueprint NFVCL made
//! from the same request and that no record claims, and continues from it;
//! and a scaling first reads the blueprint's worker count, waits while
//! NFVCL is busy with it, and asks only for the difference to the target.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::{Action, full_hash, spec_hash};
use crate::adapters::nfvcl::{BlueprintStatus, K8sBlueprint, Nfvcl, NfvclError};
use crate::spec::cluster::NfvclProvision;
use crate::store::records::{ProvisionRecord, ProvisionStatus};
use crate::store::{Store, StoreError};

/// How often to ask NFVCL about a blueprint that is busy: `initial`, then
/// doubling up to `max`. Creating a cluster takes minutes; the first
/// answers come fast (validation), later ones are worth waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Polling {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Polling {
    fn default() -> Polling {
        // 2 s catches an immediate error; 60 s bounds the delay between a
        // ready cluster and smo noticing it.
        Polling {
            initial: Duration::from_secs(2),
            max: Duration::from_secs(60),
        }
    }
}

impl Polling {
    /// The delay after `polls` unsuccessful polls.
    pub fn delay(&self, polls: u32) -> Duration {
        let factor = 1u32.checked_shl(polls.min(31)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }
}

/// What to record after a step.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Put(ProvisionRecord),
    Forget(String),
}

/// The result of one step.
#[derive(Debug)]
pub struct Outcome {
    pub change: Option<Change>,
    /// When to run the cluster's next step without waiting for the next
    /// snapshot or timer (a busy blueprint, a transient failure).
    pub again_after: Option<Duration>,
    /// What went wrong, if anything; for the log and the status.
    pub error: Option<NfvclError>,
}

impl Outcome {
    fn put(record: ProvisionRecord, again_after: Option<Duration>) -> Outcome {
        Outcome {
            change: Some(Change::Put(record)),
            again_after,
            error: None,
        }
    }
}

/// What to commit before `action` runs, when its effect could otherwise
/// not be found again after a crash. A first creation (no record yet) is
/// preceded by a Pending record without a blueprint: killed after NFVCL
/// made the blueprint but before its id was recorded, the next start finds
/// that record, takes the creation for an earlier attempt and looks for the
/// blueprint instead of asking NFVCL for a second cluster.
///
/// Run the step with the `recorded` map from before the intent: to the
/// step, this is still a first attempt, which adopts no existing blueprint.
pub fn intent(
    action: &Action,
    desired: &BTreeMap<String, NfvclProvision>,
    recorded: &BTreeMap<String, ProvisionRecord>,
    now: u64,
) -> Option<Change> {
    match action {
        Action::Create { cluster } if !recorded.contains_key(cluster) => {
            let mut record = fresh(cluster, desired.get(cluster)?, now);
            record.detail = Some(
                "creation asked of NFVCL; should its answer be lost, the next attempt looks for the blueprint first"
                    .into(),
            );
            Some(Change::Put(record))
        }
        _ => None,
    }
}

/// Runs `action`. `desired` and `recorded` are the planner's inputs;
/// `now` is Unix seconds.
pub async fn step(
    client: &Nfvcl,
    action: &Action,
    desired: &BTreeMap<String, NfvclProvision>,
    recorded: &BTreeMap<String, ProvisionRecord>,
    polling: &Polling,
    now: u64,
) -> Outcome {
    let cluster = action.cluster();
    let record = recorded.get(cluster);
    let spec = desired.get(cluster);
    match (action, spec) {
        (Action::Create { .. }, Some(spec)) => {
            // Blueprints other records hold are never adopted.
            let claimed: BTreeSet<&str> = recorded
                .values()
                .filter(|r| r.cluster != cluster)
                .filter_map(|r| r.blueprint_id.as_deref())
                .collect();
            create(client, cluster, spec, record, &claimed, polling, now).await
        }
        (Action::Wait { .. }, _) => {
            let Some(record) = record else {
                return nothing();
            };
            wait(client, record, polling, now).await
        }
        (Action::Scale { from, to, .. }, Some(spec)) => {
            let Some(record) = record else {
                return nothing();
            };
            scale(client, record, spec, *from, *to, polling, now).await
        }
        (Action::Delete { blueprint_id, .. }, _) => match client.delete(blueprint_id).await {
            Ok(()) => Outcome {
                change: Some(Change::Forget(cluster.to_owned())),
                again_after: None,
                error: None,
            },
            Err(error) => failed_call(record, error, polling, now),
        },
        (Action::Forget { .. }, _) => Outcome {
            change: Some(Change::Forget(cluster.to_owned())),
            again_after: None,
            error: None,
        },
        // The planner only creates and scales desired clusters.
        (Action::Create { .. } | Action::Scale { .. }, None) => nothing(),
    }
}

fn nothing() -> Outcome {
    Outcome {
        change: None,
        again_after: None,
        error: None,
    }
}

fn fresh(cluster: &str, spec: &NfvclProvision, now: u64) -> ProvisionRecord {
    ProvisionRecord {
        cluster: cluster.to_owned(),
        blueprint_id: None,
        workers: spec.workers,
        status: ProvisionStatus::Pending,
        spec_hash: spec_hash(spec),
        detail: None,
        refused: None,
        polls: 0,
        updated_at: now,
    }
}

async fn create(
    client: &Nfvcl,
    cluster: &str,
    spec: &NfvclProvision,
    previous: Option<&ProvisionRecord>,
    claimed: &BTreeSet<&str>,
    polling: &Polling,
    now: u64,
) -> Outcome {
    let mut record = fresh(cluster, spec, now);
    if let Err(error) = client.register_vim(spec).await {
        return create_failed(record, previous, spec, error, polling);
    }
    // A record without a blueprint means an earlier attempt, which may have
    // reached NFVCL with its answer lost. A first attempt adopts nothing:
    // an identical blueprint that exists before smo asked is not smo's.
    if previous.is_some() {
        let found = match client.k8s_blueprints().await {
            Ok(list) => list,
            Err(error) => return create_failed(record, previous, spec, error, polling),
        };
        let mine: Vec<&K8sBlueprint> = found
            .iter()
            .filter(|b| !claimed.contains(b.id.as_str()) && b.created_from(spec))
            .collect();
        match mine.as_slice() {
            [] => {}
            [one] => {
                record.blueprint_id = Some(one.id.clone());
                record.workers = one.requested_workers().unwrap_or(spec.workers);
                record.status = ProvisionStatus::Creating;
                record.detail = Some(format!(
                    "continues blueprint {} that NFVCL made from an earlier request whose answer was lost",
                    one.id
                ));
                return Outcome::put(record, Some(polling.initial));
            }
            many => {
                let ids = many.iter().map(|b| b.id.clone()).collect();
                return create_failed(
                    record,
                    previous,
                    spec,
                    NfvclError::Ambiguous { ids },
                    polling,
                );
            }
        }
    }
    match client.create_k8s(spec).await {
        Ok(id) => {
            record.blueprint_id = Some(id);
            record.status = ProvisionStatus::Creating;
            Outcome::put(record, Some(polling.initial))
        }
        Err(error) => create_failed(record, previous, spec, error, polling),
    }
}

/// A creation that failed: a transient failure is retried with the same
/// back-off as polling, counted in `polls`; a terminal one is refused until
/// the provision changes.
fn create_failed(
    mut record: ProvisionRecord,
    previous: Option<&ProvisionRecord>,
    spec: &NfvclProvision,
    error: NfvclError,
    polling: &Polling,
) -> Outcome {
    record.detail = Some(error.to_string());
    if error.is_transient() {
        record.polls = previous.map_or(0, |p| p.polls.saturating_add(1));
        Outcome {
            again_after: Some(polling.delay(record.polls)),
            change: Some(Change::Put(record)),
            error: Some(error),
        }
    } else {
        record.status = ProvisionStatus::Failed;
        record.refused = Some(full_hash(spec));
        Outcome {
            change: Some(Change::Put(record)),
            again_after: None,
            error: Some(error),
        }
    }
}

async fn wait(client: &Nfvcl, record: &ProvisionRecord, polling: &Polling, now: u64) -> Outcome {
    let Some(id) = &record.blueprint_id else {
        return nothing();
    };
    let mut next = ProvisionRecord {
        updated_at: now,
        ..record.clone()
    };
    match client.status(id).await {
        Ok(Some(BlueprintStatus::Idle)) => {
            next.status = ProvisionStatus::Ready;
            next.detail = None;
            next.polls = 0;
            Outcome::put(next, None)
        }
        Ok(Some(BlueprintStatus::Error(detail))) => {
            next.status = ProvisionStatus::Failed;
            next.detail = Some(detail);
            next.polls = 0;
            Outcome::put(next, None)
        }
        Ok(Some(BlueprintStatus::Busy(_))) => {
            next.polls = record.polls.saturating_add(1);
            let delay = polling.delay(next.polls);
            Outcome::put(next, Some(delay))
        }
        Ok(None) => lost(next, id),
        Err(error) => failed_call(Some(record), error, polling, now),
    }
}

/// NFVCL lost the blueprint (deleted by hand, database reset): the planner
/// creates it again.
fn lost(mut next: ProvisionRecord, id: &str) -> Outcome {
    next.status = ProvisionStatus::Pending;
    next.detail = Some(format!(
        "NFVCL no longer knows blueprint {id}; smo creates the cluster again"
    ));
    next.blueprint_id = None;
    next.polls = 0;
    Outcome::put(next, None)
}

async fn scale(
    client: &Nfvcl,
    record: &ProvisionRecord,
    spec: &NfvclProvision,
    from: u32,
    to: u32,
    polling: &Polling,
    now: u64,
) -> Outcome {
    let Some(id) = &record.blueprint_id else {
        return nothing();
    };
    let mut next = ProvisionRecord {
        updated_at: now,
        ..record.clone()
    };
    // The count NFVCL has, not the one smo asked for last: an earlier
    // request may have been carried out with its answer lost.
    let found = match client.k8s_blueprints().await {
        Ok(list) => list.into_iter().find(|b| b.id == *id),
        Err(error) => return failed_call(Some(record), error, polling, now),
    };
    let Some(found) = found else {
        return lost(next, id);
    };
    if let Some(BlueprintStatus::Busy(what)) = &found.status {
        next.polls = record.polls.saturating_add(1);
        next.detail = Some(format!(
            "NFVCL is busy with blueprint {id} ({what}); smo changes the workers once it is idle"
        ));
        let delay = polling.delay(next.polls);
        return Outcome::put(next, Some(delay));
    }
    let have = found.workers.unwrap_or(from);
    let result = if to > have {
        client.add_workers(id, spec, to - have).await
    } else if to < have {
        client.remove_workers(id, spec, have - to).await
    } else {
        // Already there (a lost answer): wait for NFVCL to report idle.
        Ok(())
    };
    match result {
        Ok(()) => {
            next.status = ProvisionStatus::Scaling;
            next.workers = to;
            next.detail = None;
            next.refused = None;
            next.polls = 0;
            Outcome::put(next, Some(polling.initial))
        }
        Err(error) if !error.is_transient() => {
            // The cluster keeps working with its workers; only this ask is
            // refused, until the provision changes.
            next.detail = Some(error.to_string());
            next.refused = Some(full_hash(spec));
            Outcome {
                change: Some(Change::Put(next)),
                again_after: None,
                error: Some(error),
            }
        }
        Err(error) => failed_call(Some(record), error, polling, now),
    }
}

/// A call that failed: a transient failure is retried after the back-off;
/// a terminal one is kept in the record's detail (the planner asks again on
/// the next pass, so a rejected deletion is visible, not silent).
fn failed_call(
    record: Option<&ProvisionRecord>,
    error: NfvclError,
    polling: &Polling,
    now: u64,
) -> Outcome {
    let Some(record) = record else {
        return Outcome {
            change: None,
            again_after: None,
            error: Some(error),
        };
    };
    let polls = record.polls.saturating_add(1);
    let next = ProvisionRecord {
        detail: Some(error.to_string()),
        polls,
        updated_at: now,
        ..record.clone()
    };
    Outcome {
        change: Some(Change::Put(next)),
        again_after: error.is_transient().then(|| polling.delay(polls)),
        error: Some(error),
    }
}

/// Commits a change. Blocking (redb): call it from `spawn_blocking`.
pub fn apply(store: &Store, change: &Change) -> Result<(), StoreError> {
    match change {
        Change::Put(record) => store.write(|tx| tx.put_provision(record)),
        Change::Forget(cluster) => {
            let now = crate::clock::now();
            store
                .write(|tx| tx.delete_provision(cluster, now))
                .map(drop)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::tests::spec;

    /// Regression: a kill between NFVCL's creation and the commit of its
    /// answer left no record, and the restarted daemon created a second
    /// cluster. Only a first creation needs the intent; every later step
    /// has a record to continue from.
    #[test]
    fn only_a_first_creation_is_preceded_by_a_pending_record() {
        let desired = BTreeMap::from([("c".to_owned(), spec(2))]);
        let create = Action::Create {
            cluster: "c".into(),
        };
        let Some(Change::Put(r)) = intent(&create, &desired, &BTreeMap::new(), 7) else {
            panic!("no intent before a first creation");
        };
        assert_eq!(
            (
                r.cluster.as_str(),
                r.status,
                r.blueprint_id.as_deref(),
                r.workers,
                r.updated_at
            ),
            ("c", ProvisionStatus::Pending, None, 2, 7)
        );
        assert_eq!(r.spec_hash, spec_hash(&spec(2)));
        let recorded = BTreeMap::from([("c".to_owned(), r)]);
        assert_eq!(intent(&create, &desired, &recorded, 8), None);
        for action in [
            Action::Wait {
                cluster: "c".into(),
            },
            Action::Scale {
                cluster: "c".into(),
                from: 2,
                to: 3,
            },
            Action::Forget {
                cluster: "c".into(),
            },
        ] {
            assert_eq!(intent(&action, &desired, &BTreeMap::new(), 8), None);
        }
        // Nothing to intend for a cluster no longer desired.
        assert_eq!(intent(&create, &BTreeMap::new(), &BTreeMap::new(), 8), None);
    }

    #[test]
    fn polling_doubles_from_initial_up_to_max() {
        let p = Polling::default();
        let secs: Vec<u64> = (0..8).map(|n| p.delay(n).as_secs()).collect();
        assert_eq!(secs, [2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(p.delay(u32::MAX), Duration::from_secs(60));
    }
}
