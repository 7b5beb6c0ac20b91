//! The cluster inventory from Karmada: readiness changes enqueue the graphs
//! (failover), NotReady times are kept, the inventory is recorded.
//!
//! The clusters' watch cache reports a change as it happens ([`Read::Cached`]);
//! `intervals.inventory` lists them again as a fallback ([`Read::Relist`]).

use super::*;
use crate::locks::{MutexExt, RwLockExt};

/// Where an inventory refresh reads the clusters from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Read {
    /// The watch cache when it is synced, else a list.
    Cached,
    /// A list from the API server, whatever the cache holds.
    Relist,
}

/// Reads the inventory; a readiness change enqueues the graphs that use
/// the cluster (failover) and records when it became NotReady.
pub(super) async fn refresh_inventory(
    shared: &Arc<Shared>,
    karmada: &Karmada,
    config: &Config,
    store: &Arc<Store>,
    queue: &Queue,
    (read, enqueue_changes): (Read, bool),
) {
    let gpu = &config.karmada.gpu_resource;
    let result = match read {
        Read::Cached => karmada.inventory_cached(gpu).await,
        Read::Relist => karmada.inventory(gpu).await,
    };
    let inv = match result {
        Ok(i) => {
            shared.note("inventory", None);
            i
        }
        Err(e) => {
            tracing::warn!(error = %e, "cluster inventory unavailable; keeping the last one");
            shared.note(
                "inventory",
                Some(format!("cluster inventory unavailable: {e}")),
            );
            return;
        }
    };
    if read == Read::Cached && shared.last_inventory.lock_or_recover().as_ref() == Some(&inv) {
        // A watch event that changed nothing smo reads (a heartbeat).
        return;
    }
    let at = now();
    let (changed, names_changed) = {
        let mut w = shared.world.write_or_recover();
        let facts: Vec<ClusterFacts> = merge(&inv, &w.desired.clusters).0;
        w.observe_clusters(facts, at)
    };
    if names_changed && shared.dashboards.enabled() {
        // One dashboard per cluster, published when the set changes.
        let names: Vec<String> = shared
            .world()
            .clusters
            .iter()
            .map(|c| c.name.clone())
            .collect();
        let dashboards = shared.dashboards.clone();
        tokio::spawn(async move {
            if let Err(e) = dashboards.publish_clusters(&names).await {
                tracing::warn!(error = %e, "cluster dashboards not published");
            }
        });
    }
    *shared.last_inventory.lock_or_recover() = Some(inv.clone());
    let records: Vec<ClusterRecord> = {
        let w = shared.world();
        w.clusters
            .iter()
            .map(|c| ClusterRecord {
                name: c.name.clone(),
                ready: c.ready,
                since: w.not_ready_since.get(&c.name).copied().unwrap_or(at),
                cpu_free: c.free_cpu,
                memory_free: c.free_memory,
                gpu_free: c.free_gpu,
            })
            .collect()
    };
    let s = Arc::clone(store);
    if let Ok(Err(e)) =
        tokio::task::spawn_blocking(move || s.write(|tx| tx.put_clusters(&records))).await
    {
        tracing::warn!(error = %e, "could not record the inventory");
    }
    if enqueue_changes && !changed.is_empty() {
        tracing::info!(clusters = ?changed, "cluster readiness changed");
        if let Ok(keys) = all_keys(shared, store).await {
            for k in keys {
                queue.enqueue(&k);
            }
        }
    }
}
