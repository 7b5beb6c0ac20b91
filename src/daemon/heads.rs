//! A new leader's store may be stale: while another instance led, it
//! installed, upgraded or uninstalled releases this store still records
//! as they were. Before its first pass, a new leader compares each
//! recorded release with the newest revision live on Karmada (the helm
//! release records carry smo's labels) and forgets what it can no longer
//! vouch for: a release gone live is no longer installed, and one at
//! another revision is taken with the inputs its label names (upgraded once
//! when it has none, or when they are not the desired ones), or
//! uninstalled if the desired state says so. Releases the store does not
//! record at all are the sweep's.

use crate::adapters::karmada::ManagedRelease;
use crate::store::records::{ServicePhase, ServiceRecord};
use std::collections::BTreeMap;

/// The records that disagree with the live releases, corrected.
pub fn corrections(services: &[ServiceRecord], live: &[ManagedRelease]) -> Vec<ServiceRecord> {
    let newest: BTreeMap<(&str, &str), &ManagedRelease> = live
        .iter()
        .map(|r| ((r.namespace.as_str(), r.release.as_str()), r))
        .collect();
    let mut out = Vec::new();
    for rec in services {
        let found = newest
            .get(&(rec.namespace.as_str(), rec.release.as_str()))
            .copied();
        let now = found.map(|l| l.revision);
        if rec.release_revision == now {
            continue;
        }
        let mut r = rec.clone();
        r.release_revision = now;
        r.input_hash = found
            .and_then(|l| l.inputs.as_deref())
            .map(crate::release::inputs_from_label);
        r.manifest = None;
        r.drifted.clear();
        r.phase = if now.is_some() {
            ServicePhase::Deployed
        } else {
            ServicePhase::Pending
        };
        out.push(r);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::karmada::Owner;

    fn rec(release: &str, revision: Option<u64>) -> ServiceRecord {
        let mut r = ServiceRecord::new("demo2", "g", release, 1);
        r.release_revision = revision;
        r.input_hash = revision.map(|_| "h".to_owned());
        r.manifest = revision.map(|_| "m".to_owned());
        r
    }

    fn live(release: &str, revision: u64) -> ManagedRelease {
        ManagedRelease {
            namespace: "demo2".into(),
            release: release.into(),
            revision,
            inputs: None,
            owner: Owner {
                project: "demo2".into(),
                graph: "g".into(),
            },
        }
    }

    #[test]
    fn records_that_disagree_with_the_live_releases_are_corrected() {
        let services = [
            rec("same", Some(3)),
            rec("upgraded-elsewhere", Some(3)),
            rec("uninstalled-elsewhere", Some(2)),
            rec("installed-elsewhere", None),
            rec("absent", None),
        ];
        let live = [
            live("same", 3),
            live("upgraded-elsewhere", 4),
            live("installed-elsewhere", 1),
        ];
        let fixed = corrections(&services, &live);
        let got: Vec<_> = fixed
            .iter()
            .map(|r| {
                (
                    r.release.as_str(),
                    r.release_revision,
                    r.input_hash.is_none(),
                    r.phase,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("upgraded-elsewhere", Some(4), true, ServicePhase::Deployed),
                ("uninstalled-elsewhere", None, true, ServicePhase::Pending),
                ("installed-elsewhere", Some(1), true, ServicePhase::Deployed),
            ]
        );
        assert!(fixed.iter().all(|r| r.manifest.is_none()));
    }
}
