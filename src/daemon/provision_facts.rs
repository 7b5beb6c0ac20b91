//! The provision records shared on Karmada ([`crate::ha::facts`]) when
//! leader election is on: NFVCL's creation is not idempotent, so a new
//! leader that did not know its predecessor's clusters would create them
//! again. The leader adopts the shared records before each pass (those its
//! store lacks or holds older), shares a creation's intent before it asks
//! NFVCL, and shares every change at the end of the pass. A pass that
//! cannot read the shared records does nothing.

use crate::ha::facts::Facts;
use crate::store::Store;
use crate::store::records::ProvisionRecord;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The ConfigMap's name in the `ha` namespace.
pub const NAME: &str = "smo-provisions";

pub(super) struct SharedProvisions {
    facts: Facts<ProvisionRecord>,
    /// The version last read or written: an unchanged set is not merged
    /// again.
    seen: Option<String>,
}

/// The shared records to take into the store: those it lacks, and those
/// that differ and are not older than its own.
pub(super) fn adopted(
    local: &BTreeMap<String, ProvisionRecord>,
    shared: Vec<ProvisionRecord>,
) -> Vec<ProvisionRecord> {
    shared
        .into_iter()
        .filter(|m| {
            local
                .get(&m.cluster)
                .is_none_or(|l| l != m && m.updated_at >= l.updated_at)
        })
        .collect()
}

impl SharedProvisions {
    pub(super) fn new(facts: Facts<ProvisionRecord>) -> Self {
        SharedProvisions { facts, seen: None }
    }

    /// Takes the shared records into the store and `recorded`; an error
    /// means the pass must not act.
    pub(super) async fn adopt(
        &mut self,
        store: &Arc<Store>,
        recorded: &mut BTreeMap<String, ProvisionRecord>,
    ) -> Result<(), String> {
        let read = self.facts.read().await.map_err(|e| e.to_string())?;
        let Some(read) = read else {
            return Ok(());
        };
        if self.seen.as_ref() == Some(&read.version) {
            return Ok(());
        }
        let take = adopted(recorded, read.records);
        if !take.is_empty() {
            tracing::info!(
                clusters = take.len(),
                "adopted provisioned clusters another instance recorded"
            );
            let s = Arc::clone(store);
            let records = take.clone();
            tokio::task::spawn_blocking(move || {
                s.write(|tx| {
                    for r in &records {
                        tx.put_provision(r)?;
                    }
                    Ok(())
                })
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
            for r in take {
                recorded.insert(r.cluster.clone(), r);
            }
        }
        self.seen = Some(read.version);
        Ok(())
    }

    /// Shares the store's records as they are now.
    pub(super) async fn share(&mut self, store: &Arc<Store>) -> Result<(), String> {
        let s = Arc::clone(store);
        let records = tokio::task::spawn_blocking(move || s.provisions())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let version = self
            .facts
            .write(&records)
            .await
            .map_err(|e| e.to_string())?;
        self.seen = Some(version);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::records::ProvisionStatus;

    fn rec(cluster: &str, blueprint: Option<&str>, at: u64) -> ProvisionRecord {
        ProvisionRecord {
            cluster: cluster.into(),
            blueprint_id: blueprint.map(str::to_owned),
            workers: 2,
            status: ProvisionStatus::Creating,
            spec_hash: "s".into(),
            detail: None,
            refused: None,
            polls: 0,
            updated_at: at,
        }
    }

    #[test]
    fn a_successor_adopts_what_it_lacks_or_holds_older_and_keeps_its_newer() {
        let local = BTreeMap::from([
            ("old".to_owned(), rec("old", None, 10)),
            ("newer".to_owned(), rec("newer", Some("b-2"), 30)),
            ("same".to_owned(), rec("same", Some("b-3"), 5)),
        ]);
        let shared = vec![
            rec("missing", Some("b-1"), 20),
            rec("old", Some("b-0"), 20),
            rec("newer", Some("b-1"), 20),
            rec("same", Some("b-3"), 5),
        ];
        let took: Vec<_> = adopted(&local, shared)
            .into_iter()
            .map(|r| (r.cluster, r.blueprint_id))
            .collect();
        assert_eq!(
            took,
            [
                ("missing".to_owned(), Some("b-1".to_owned())),
                ("old".to_owned(), Some("b-0".to_owned())),
            ]
        );
    }
}
