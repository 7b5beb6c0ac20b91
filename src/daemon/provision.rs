//! The provisioning loop: clusters whose metadata declares
//! `provision.nfvcl` are created, waited for, scaled and deleted through
//! NFVCL ([`crate::provision`] plans, [`crate::provision::run`] acts).
//!
//! One job for all clusters, run on every new snapshot and again when a
//! step asked to look later (a blueprint still deploying) or after
//! `PASS_EVERY` otherwise. Deletions are held while the prune guard holds.
//! What it cannot do is reported as the daemon note `provision`.

use super::Shared;
use crate::adapters::nfvcl::Nfvcl;
use crate::provision::run::{Polling, apply, step};
use crate::provision::{Prune, plan};
use crate::spec::cluster::NfvclProvision;
use crate::store::Store;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// A pass with nothing pending still runs this often: NFVCL's blueprints
/// can change without smo (an operator's action, a failed node).
const PASS_EVERY: Duration = Duration::from_secs(300);

pub(super) async fn provision_loop(
    client: Option<Nfvcl>,
    shared: Arc<Shared>,
    store: Arc<Store>,
    polling: Polling,
    mut kick: mpsc::Receiver<()>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let next = pass(client.as_ref(), &shared, &store, &polling).await;
        tokio::select! {
            () = tokio::time::sleep(next) => {}
            Some(()) = kick.recv() => {}
            _ = shutdown.changed() => if *shutdown.borrow() { return },
        }
    }
}

/// One pass over every provisioned cluster; returns when to look again.
async fn pass(
    client: Option<&Nfvcl>,
    shared: &Shared,
    store: &Arc<Store>,
    polling: &Polling,
) -> Duration {
    let world = shared.world();
    let desired: BTreeMap<String, NfvclProvision> = world
        .desired
        .clusters
        .iter()
        .filter_map(|(name, meta)| Some((name.clone(), meta.provision.clone()?)))
        .collect();
    let s = Arc::clone(store);
    let recorded = match tokio::task::spawn_blocking(move || s.provisions()).await {
        Ok(Ok(r)) => r
            .into_iter()
            .map(|r| (r.cluster.clone(), r))
            .collect::<BTreeMap<_, _>>(),
        Ok(Err(e)) => {
            shared.note("provision", Some(format!("provisioning: state store: {e}")));
            return PASS_EVERY;
        }
        Err(e) => {
            shared.note("provision", Some(format!("provisioning task failed: {e}")));
            return PASS_EVERY;
        }
    };
    if desired.is_empty() && recorded.is_empty() {
        shared.note("provision", None);
        return PASS_EVERY;
    }
    let Some(client) = client else {
        shared.note(
            "provision",
            Some("clusters declare provision.nfvcl but config.yaml has no `nfvcl` block".into()),
        );
        return PASS_EVERY;
    };
    let prune = if world.prune_blocked.is_some() {
        Prune::Hold
    } else {
        Prune::Allow
    };
    let planned = plan(&desired, &recorded, prune);
    let mut next = PASS_EVERY;
    let mut problems: Vec<String> = Vec::new();
    for action in &planned.actions {
        let outcome = step(client, action, &desired, &recorded, polling, super::now()).await;
        if let Some(change) = outcome.change {
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
            .map(|c| format!("{c}: deletion held by the prune guard")),
    );
    problems.extend(planned.drifted.iter().map(|c| {
        format!("{c}: its provision changed in a way NFVCL cannot apply to a running cluster")
    }));
    shared.note(
        "provision",
        (!problems.is_empty()).then(|| format!("provisioning: {}", problems.join("; "))),
    );
    next
}
