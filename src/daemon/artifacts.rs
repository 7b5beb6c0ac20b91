//! HDAR references between snapshots: tags and version ranges are
//! resolved again on `hdar.interval` (a moved tag or a newer version in the
//! range is picked up, like Flux's `OCIRepository`), and cached artifacts
//! that neither a desired graph nor a recorded one uses are removed.

use super::*;
use crate::hdar::Digest;

/// Re-loads the applied snapshot when it has references, and applies it
/// when an artifact (or a fetch's outcome) changed; then collects the
/// cache. A failed fetch holds its graph (the loader names no graph for
/// it), exactly as at the snapshot.
pub(super) async fn refresh(
    shared: &Arc<Shared>,
    store: &Arc<Store>,
    queue: &Queue,
    hdar: &Arc<context::Artifacts>,
    loads: &Arc<LoadCache>,
) -> Result<(), DaemonError> {
    let current = shared.world().desired;
    let snap = shared.held.lock_or_recover().last().cloned();
    if let (true, Some(snap)) = (current.references > 0, snap) {
        match load(&snap, hdar, loads).await {
            Ok(desired) if same(&current, &desired) => {}
            Ok(desired) => {
                tracing::info!(revision = %snap.revision, "an HDAR reference now resolves differently");
                apply_snapshot(shared, store, queue, snap, desired).await?;
            }
            Err(e) => shared.note("source", Some(e.to_string())),
        }
    }
    gc(shared, store, hdar).await
}

/// Whether a reload found what is applied: the same graphs from the same
/// files (artifacts included) and the same findings. Graph ids of held
/// files are the daemon's attribution, not the loader's, so they are not
/// compared.
fn same(applied: &DesiredState, loaded: &DesiredState) -> bool {
    applied.findings == loaded.findings
        && applied.graphs.len() == loaded.graphs.len()
        && applied
            .graphs
            .iter()
            .zip(&loaded.graphs)
            .all(|(a, b)| a.file == b.file && a.graph == b.graph)
}

/// Removes cached artifacts no desired graph and no recorded graph (its
/// last applied artifact) uses.
async fn gc(
    shared: &Arc<Shared>,
    store: &Arc<Store>,
    hdar: &Arc<context::Artifacts>,
) -> Result<(), DaemonError> {
    let s = Arc::clone(store);
    let recorded = blocking(move || s.graphs()).await??;
    let desired = shared.world().desired;
    let keep = in_use(
        desired
            .graphs
            .iter()
            .filter_map(|e| e.graph.as_ref()?.origin.as_ref())
            .map(|o| o.digest.as_str()),
        recorded.iter().filter_map(|g| g.origin.as_deref()),
    );
    match hdar.gc(&keep).await {
        Ok(report) if !report.removed.is_empty() => {
            let removed: Vec<&str> = report.removed.iter().map(Digest::as_str).collect();
            tracing::info!(removed = ?removed, kept = report.kept, "HDAR cache collected");
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(error = %crate::hdar::oci::error_chain(&e), "HDAR cache not collected")
        }
    }
    Ok(())
}

/// Digests of desired artifacts (`sha256:…`) and of recorded ones
/// (`oci://…@sha256:…`).
fn in_use<'a>(
    desired: impl Iterator<Item = &'a str>,
    recorded: impl Iterator<Item = &'a str>,
) -> BTreeSet<Digest> {
    desired
        .chain(recorded.filter_map(|pinned| pinned.rsplit_once('@').map(|(_, d)| d)))
        .filter_map(|d| Digest::parse(d).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_in_use_come_from_desired_and_recorded_graphs() {
        let a = format!("sha256:{}", "a".repeat(64));
        let b = format!("sha256:{}", "b".repeat(64));
        let pinned = format!("oci://127.0.0.1:5000/p/g@{b}");
        let keep = in_use(
            [a.as_str()].into_iter(),
            [pinned.as_str(), "garbage"].into_iter(),
        );
        let shown: Vec<&str> = keep.iter().map(Digest::as_str).collect();
        assert_eq!(shown, [a.as_str(), b.as_str()]);
    }
}
