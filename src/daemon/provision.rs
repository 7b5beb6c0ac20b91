//! The provisioning loop: clusters whose metadata declares
//! `provision.nfvcl` are created, waited for, scaled and deleted through
//! NFVCL ([`crate::provision`] plans, [`crate::provision::run`] acts).
//!
//! One job for all clusters, run on every new snapshot and again when a
//! step asked to look later (a blueprint still deploying) or after
//! `PASS_EVERY` otherwise. The planner's guards come from here: clusters
//! whose file is broken (held at their last good state), the graphs placed
//! on each cluster (from the store), the graph prune guard and the
//! operator's marker file. A hold is written into the cluster's provision
//! record and announced by an event when it begins; what the loop cannot
//! do is reported as the daemon note `provision`.
//!
//! [`keep_last_good_metadata`] carries the metadata of a cluster whose file
//! broke over from the previous desired state, so that placement keeps
//! using it (location, cordon, reserve) instead of forgetting it.

use super::Shared;
use super::provision_facts::SharedProvisions;
use crate::adapters::nfvcl::Nfvcl;
use crate::desired::DesiredState;
use crate::provision::run::{Polling, apply, intent, step};
use crate::provision::{Guards, HELD_PREFIX, hold_details, plan};
use crate::spec::cluster::NfvclProvision;
use crate::store::Kind;
use crate::store::Store;
use crate::store::records::NewEvent;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// A pass with nothing pending still runs this often: NFVCL's blueprints
/// can change without smo (an operator's action, a failed node).
const PASS_EVERY: Duration = Duration::from_secs(300);

/// What the loop works with besides the daemon's shared state.
pub(super) struct Provisioning {
    pub(super) client: Option<Nfvcl>,
    pub(super) state_dir: PathBuf,
    pub(super) polling: Polling,
    /// The records shared with other instances (leader election only).
    pub(super) sharing: Option<SharedProvisions>,
}

pub(super) async fn provision_loop(
    p: Provisioning,
    shared: Arc<Shared>,
    store: Arc<Store>,
    mut kick: mpsc::Receiver<()>,
    mut shutdown: watch::Receiver<bool>,
) {
    let Provisioning {
        client,
        state_dir,
        polling,
        mut sharing,
    } = p;
    loop {
        // A standby provisions nothing: the leader does, and a new leader
        // is kicked at once.
        let (next, changed) = if shared.leadership.acting() {
            pass(client.as_ref(), &shared, &store, &polling, sharing.as_mut()).await
        } else {
            (polling.max, false)
        };
        // The status shows records and holds as this pass left them, not
        // as the next graph reconcile happens to find them.
        if changed {
            super::publish(&store, &shared, &state_dir).await;
        }
        tokio::select! {
            () = tokio::time::sleep(next) => {}
            Some(()) = kick.recv() => {}
            _ = shutdown.changed() => if *shutdown.borrow() { return },
        }
    }
}

/// One pass over every provisioned cluster; returns when to look again,
/// and whether it changed a record (or the note).
async fn pass(
    client: Option<&Nfvcl>,
    shared: &Shared,
    store: &Arc<Store>,
    polling: &Polling,
    mut sharing: Option<&mut SharedProvisions>,
) -> (Duration, bool) {
    let world = shared.world();
    let desired: BTreeMap<String, NfvclProvision> = world
        .desired
        .clusters
        .iter()
        .filter_map(|(name, meta)| Some((name.clone(), meta.provision.clone()?)))
        .collect();
    let s = Arc::clone(store);
    let read = tokio::task::spawn_blocking(move || {
        Ok::<_, crate::store::StoreError>((s.provisions()?, s.graphs()?))
    })
    .await;
    let (mut recorded, graphs) = match read {
        Ok(Ok((r, g))) => (
            r.into_iter()
                .map(|r| (r.cluster.clone(), r))
                .collect::<BTreeMap<_, _>>(),
            g,
        ),
        Ok(Err(e)) => {
            shared.note("provision", Some(format!("provisioning: state store: {e}")));
            return (PASS_EVERY, true);
        }
        Err(e) => {
            shared.note("provision", Some(format!("provisioning task failed: {e}")));
            return (PASS_EVERY, true);
        }
    };
    // A successor knows its predecessor's clusters before it acts.
    if let Some(sp) = sharing.as_deref_mut()
        && let Err(e) = sp.adopt(store, &mut recorded).await
    {
        shared.note(
            "provision",
            Some(format!("provisioning waits for the shared records: {e}")),
        );
        return (polling.initial, true);
    }
    if desired.is_empty() && recorded.is_empty() {
        shared.note("provision", None);
        return (PASS_EVERY, false);
    }
    let Some(client) = client else {
        shared.note(
            "provision",
            Some("clusters declare provision.nfvcl but config.yaml has no `nfvcl` block".into()),
        );
        return (PASS_EVERY, true);
    };
    let mut in_use: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for g in &graphs {
        for cluster in g.placement.values().flatten() {
            in_use
                .entry(cluster.clone())
                .or_default()
                .insert(crate::keys::GraphKey::new(&g.project, &g.graph).to_string());
        }
    }
    let guards = Guards {
        broken: world.desired.broken_clusters.clone(),
        in_use,
        snapshot: world.prune_blocked.clone(),
        allow_prune: world.root.join(super::ALLOW_PRUNE_MARKER).exists(),
        max_delete_percent: world.desired.settings.prune_max_delete_percent,
    };
    let planned = plan(&desired, &recorded, &guards);
    let mut problems: Vec<String> = Vec::new();
    let mut changed = record_holds(store, &planned, &recorded, &mut problems).await;
    let mut next = PASS_EVERY;
    for action in &planned.actions {
        // Intent before effect: a restart finds what the step may do.
        if let Some(intent) = intent(action, &desired, &recorded, super::now()) {
            changed = true;
            let s = Arc::clone(store);
            let problem = match tokio::task::spawn_blocking(move || apply(&s, &intent)).await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(format!("state store: {e}")),
                Err(e) => Some(format!("provisioning task failed: {e}")),
            };
            if let Some(p) = problem {
                problems.push(format!("{}: {p}", action.cluster()));
                continue;
            }
            // Shared before NFVCL is asked: a successor then looks for
            // the blueprint instead of asking for a second one.
            if let Some(sp) = sharing.as_deref_mut()
                && let Err(e) = sp.share(store).await
            {
                problems.push(format!("{}: intent not shared: {e}", action.cluster()));
                continue;
            }
        }
        let outcome = step(client, action, &desired, &recorded, polling, super::now()).await;
        if let Some(change) = outcome.change {
            changed = true;
            let s = Arc::clone(store);
            if let Ok(Err(e)) = tokio::task::spawn_blocking(move || apply(&s, &change)).await {
                problems.push(format!("{}: state store: {e}", action.cluster()));
            }
        }
        if let Some(e) = &outcome.error {
            tracing::warn!(error = %e, cluster = %action.cluster(), "provisioning step failed");
            problems.push(format!("{}: {e}", action.cluster()));
        }
        if let Some(after) = outcome.again_after {
            next = next.min(after);
        }
    }
    problems.extend(
        planned
            .held
            .iter()
            .map(|h| format!("{}: {}", h.cluster, h.hold)),
    );
    problems.extend(planned.drifted.iter().map(|c| {
        format!("{c}: its provision changed in a way NFVCL cannot apply to a running cluster")
    }));
    if changed
        && let Some(sp) = sharing
        && let Err(e) = sp.share(store).await
    {
        problems.push(format!("records not shared: {e}"));
        next = next.min(polling.initial);
    }
    let note = (!problems.is_empty()).then(|| format!("provisioning: {}", problems.join("; ")));
    // A note that ends ends with a change of a record (a hold cleared, a
    // step that succeeded), which publishes too.
    changed |= note.is_some();
    shared.note("provision", note);
    (next, changed)
}

/// Writes each hold into its cluster's record (and clears ended ones); a
/// hold that begins (or changes its reason) is announced by an event after
/// its record.
async fn record_holds(
    store: &Arc<Store>,
    planned: &crate::provision::Plan,
    recorded: &BTreeMap<String, crate::store::records::ProvisionRecord>,
    problems: &mut Vec<String>,
) -> bool {
    let changed = hold_details(planned, recorded);
    if changed.is_empty() {
        return false;
    }
    let at = super::now();
    let s = Arc::clone(store);
    let written = tokio::task::spawn_blocking(move || {
        s.write(|tx| {
            for r in &changed {
                tx.put_provision(r)?;
                if let Some(detail) = r.detail.as_deref().filter(|d| d.starts_with(HELD_PREFIX)) {
                    tracing::warn!(cluster = %r.cluster, "cluster provisioning held");
                    tx.append_event(NewEvent::cluster(
                        at,
                        &r.cluster,
                        Kind::ClusterHeld,
                        format!("cluster {}: {detail}", r.cluster),
                    ))?;
                }
            }
            Ok(())
        })
    })
    .await;
    match written {
        Ok(Ok(())) => {}
        Ok(Err(e)) => problems.push(format!("state store: {e}")),
        Err(e) => problems.push(format!("provisioning task failed: {e}")),
    }
    true
}

/// The metadata of each cluster whose file is broken, carried over from
/// `previous` (the last desired state that loaded it): placement keeps the
/// cluster as it was described instead of forgetting its description.
pub(super) fn keep_last_good_metadata(previous: &DesiredState, next: &mut DesiredState) {
    for name in &next.broken_clusters {
        if next.clusters.contains_key(name) {
            continue;
        }
        if let Some(meta) = previous.clusters.get(name) {
            next.clusters.insert(name.clone(), meta.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::cluster::ClusterMeta;

    fn meta(name: &str, schedulable: bool) -> ClusterMeta {
        ClusterMeta {
            name: name.into(),
            location: crate::spec::cluster::Location::default(),
            gpu: None,
            carbon_intensity: None,
            cost_per_cpu_hour: None,
            latency_ms: BTreeMap::new(),
            schedulable,
            reserve_cpu: 0.0,
            reserve_memory: 0.0,
            provision: None,
        }
    }

    #[test]
    fn a_broken_cluster_file_keeps_the_last_good_metadata_and_a_removed_one_does_not() {
        let previous = DesiredState {
            clusters: BTreeMap::from([
                ("cordoned".to_owned(), meta("cordoned", false)),
                ("removed".to_owned(), meta("removed", false)),
            ]),
            ..DesiredState::default()
        };
        let mut next = DesiredState {
            broken_clusters: BTreeSet::from(["cordoned".to_owned(), "new".to_owned()]),
            ..DesiredState::default()
        };
        keep_last_good_metadata(&previous, &mut next);
        assert_eq!(next.clusters.keys().collect::<Vec<_>>(), ["cordoned"]);
        assert!(!next.clusters["cordoned"].schedulable);
    }
}
