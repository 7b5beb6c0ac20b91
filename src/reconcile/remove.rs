//! A graph that left the desired state (positive evidence: no file of the
//! tree declares it, and the prune guard let it through): its rules and
//! dashboards go, every release is uninstalled, every owned object pruned,
//! then the record is forgotten. Anything that fails keeps the record, so
//! the next attempt retries what is left.

use super::actions::{HelmOps, KarmadaOps, uninstall};
use super::batch::{Batch, blocking};
use super::dashsync::DashboardSync;
use super::error::StepError;
use super::rulesync::RuleSync;
use super::status::{Outcome, outcome};
use crate::provenance::Cause;
use crate::store::records::NewEvent;
use crate::store::{Kind, Store, StoreError};
use std::sync::Arc;

pub struct Context<'a, H, K> {
    pub helm: &'a H,
    pub karmada: &'a K,
    pub rules: &'a RuleSync,
    pub dashboards: &'a DashboardSync,
    pub store: &'a Arc<Store>,
    pub now: u64,
    /// The revision in force, for the journal.
    pub cause: Option<Cause>,
}

pub async fn run<H: HelmOps, K: KarmadaOps>(
    cx: &Context<'_, H, K>,
    mut batch: Batch,
) -> Result<Outcome, StoreError> {
    let key = batch.key.clone();
    let mut worst: Option<StepError> = None;
    let mut fail = |e: StepError| worst = Some(StepError::worse(worst.take(), e));
    if let Err(e) = cx.rules.remove(&key.project, &key.graph).await {
        fail(e.into());
    }
    // The recorded dashboards, and the ones the graph's services would
    // have (uids are deterministic): a kill between publishing and
    // recording leaves none behind. Deleting an absent one is a no-op.
    let mut uids: std::collections::BTreeSet<String> = batch
        .graph
        .as_ref()
        .map(|g| g.dashboards.keys().cloned().collect())
        .unwrap_or_default();
    uids.insert(crate::dashboards::graph_uid(&key.project, &key.graph));
    uids.extend(
        batch
            .services
            .keys()
            .map(|s| crate::dashboards::service_uid(&key.project, &key.graph, s)),
    );
    let uids: Vec<String> = uids.into_iter().collect();
    if let Err(e) = cx.dashboards.delete(&key.project, &uids).await {
        fail(e.into());
    }
    let owner = crate::adapters::karmada::Owner {
        project: key.project.clone(),
        graph: key.graph.clone(),
    };
    for rec in batch.services.values_mut() {
        if let Err(e) = uninstall::remove(cx.helm, cx.karmada, &owner, rec).await {
            fail(e);
        }
    }
    if let Err(e) = batch.owned.prune(cx.karmada, |_| true).await {
        fail(e);
    }
    let (project, graph, now) = (key.project.clone(), key.graph.clone(), cx.now);
    let cause = cx.cause.clone();
    let event = move |kind: Kind, message: &str| {
        NewEvent::graph(now, (&project, &graph), None, kind, message).caused_by(cause.clone())
    };
    if let Some(e) = worst {
        // Keep the record: the next attempt retries what is left.
        let ev = event(Kind::RemoveFailed, &e.message);
        blocking(cx.store, move |s| s.write(|tx| tx.append_event(ev))).await?;
        return Ok(outcome(Some(e), None));
    }
    let ev = event(
        Kind::GraphRemoved,
        "the graph left the desired state; uninstalled and pruned",
    );
    let k = key.to_string();
    blocking(cx.store, move |s| {
        s.write(|tx| {
            tx.delete_graph(&k)?;
            tx.append_event(ev)?;
            Ok(())
        })
    })
    .await?;
    Ok(Outcome::Done)
}
