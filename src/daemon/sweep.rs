//! The sweep by ownership, at start and on every resync: lists what
//! carries smo's labels on Karmada, records what the store lost
//! ([`crate::reconcile::sweep`] decides), and enqueues those graphs. A
//! listing that fails records nothing: the sweep only ever adds records,
//! and only what it saw.

use super::Shared;
use crate::adapters::karmada::Karmada;
use crate::desired::prune::prune_guard;
use crate::keys::GraphKey;
use crate::reconcile::queue::Queue;
use crate::reconcile::sweep::{self, Recorded};
use crate::source::ALLOW_PRUNE_MARKER;
use crate::store::Kind;
use crate::store::Store;
use crate::store::records::NewEvent;
use std::collections::BTreeSet;
use std::sync::Arc;

/// The kinds smo applies with a graph's labels: recorded as owned objects
/// when found unrecorded.
const OWNED_KINDS: &[(&str, &str)] = &[("policy.karmada.io/v1alpha1", "PropagationPolicy")];

/// Kinds that only reveal their graph (the rule sync finds its object by
/// name): an orphan graph's rule goes with the graph's removal.
const NAMED_KINDS: &[(&str, &str)] = &[("monitoring.coreos.com/v1", "PrometheusRule")];

#[tracing::instrument(name = "sweep", skip_all)]
pub(super) async fn sweep(karmada: &Karmada, store: &Arc<Store>, shared: &Shared, queue: &Queue) {
    let releases = match karmada.list_managed_releases().await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "sweep skipped: helm releases not listed");
            return;
        }
    };
    let mut objects = Vec::new();
    for (api_version, kind) in OWNED_KINDS.iter().chain(NAMED_KINDS) {
        match karmada.list_managed(api_version, kind).await {
            Ok(found) => objects.extend(found),
            Err(e) => {
                tracing::warn!(error = %e, kind = kind, "sweep skipped: objects not listed");
                return;
            }
        }
    }
    let world = shared.world();
    let declared: BTreeSet<GraphKey> = world
        .desired
        .graphs
        .iter()
        .filter_map(|e| e.id.as_ref().map(|id| GraphKey::new(&e.project, id)))
        .collect();
    let allowed = world.root.join(ALLOW_PRUNE_MARKER).exists();
    let max_percent = world.desired.settings.prune_max_delete_percent;
    let s = Arc::clone(store);
    // Decided and written in one transaction: a reconcile committing a
    // record meanwhile is seen, never overwritten by a stub.
    let written = tokio::task::spawn_blocking(move || {
        s.write(|tx| {
            let everything = tx.everything()?;
            let kinds: Vec<&str> = OWNED_KINDS.iter().map(|(_, k)| *k).collect();
            let plan = sweep::plan(
                &releases,
                &objects,
                &kinds,
                Recorded {
                    graphs: &everything.graphs,
                    services: &everything.services,
                    owned: &everything.owned,
                },
                &declared,
                |existing, removing| prune_guard(existing, removing, false, max_percent, allowed),
                super::now(),
            );
            for g in &plan.graphs {
                tx.put_graph(g)?;
            }
            for rec in &plan.services {
                tx.put_service(rec)?;
                let found = format!("release {}/{}", rec.namespace, rec.release);
                tx.append_event(event(&rec.project, &rec.graph, Some(&rec.service), &found))?;
            }
            for o in &plan.owned {
                tx.put_owned(o)?;
                let found = format!(
                    "{} {}/{}",
                    o.kind,
                    o.namespace.as_deref().unwrap_or("-"),
                    o.name
                );
                tx.append_event(event(&o.project, &o.graph, None, &found))?;
            }
            Ok(plan)
        })
    })
    .await;
    let plan = match written {
        Ok(Ok(plan)) => plan,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "sweep not recorded");
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "sweep task failed");
            return;
        }
    };
    if let Some(why) = &plan.held {
        tracing::warn!(reason = %why, "sweep: orphans held back");
    }
    shared.note("sweep", plan.held.map(|why| format!("sweep: {why}")));
    if !plan.touched.is_empty() {
        tracing::info!(
            graphs = plan.touched.len(),
            releases = plan.services.len(),
            objects = plan.owned.len(),
            "sweep recorded what carries smo's labels and was not recorded"
        );
    }
    for key in &plan.touched {
        queue.enqueue(key);
    }
}

fn event(project: &str, graph: &str, service: Option<&str>, found: &str) -> NewEvent {
    NewEvent::graph(
        super::now(),
        (project, graph),
        service,
        Kind::Swept,
        format!(
            "{found} carries smo's labels for this graph and was not recorded; recorded so that the graph's reconcile keeps or removes it"
        ),
    )
}
