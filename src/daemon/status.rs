//! The status snapshot `smo status` reads while the daemon holds the
//! store, and the graph and service gauges that follow it.

use super::*;

/// The longest a published status goes unrewritten while nothing changes.
const REPUBLISH_AFTER: Duration = Duration::from_secs(60);

/// The status snapshot next to the database, for `smo status`; the
/// graph and service gauges follow it.
pub(super) async fn publish(store: &Arc<Store>, shared: &Arc<Shared>, state_dir: &Path) {
    // Building the snapshot reads every record (a resync of 2,000
    // services published it every second for nothing): skipped while the
    // store and the notes are as last published, up to REPUBLISH_AFTER,
    // so `generatedAt` still shows a live daemon.
    let (generation, notes) = (store.generation(), shared.notes());
    let unchanged = |(g, n, at): &(u64, Vec<String>, std::time::Instant)| {
        *g == generation && *n == notes && at.elapsed() < REPUBLISH_AFTER
    };
    if shared
        .published
        .lock_or_recover()
        .as_ref()
        .is_some_and(unchanged)
    {
        return;
    }
    if let Some(snap) = publish_notes(store, state_dir, notes.clone()).await {
        *shared.published.lock_or_recover() = Some((generation, notes, std::time::Instant::now()));
        publish_history(store, shared, state_dir, &snap).await;
        let m = &shared.metrics;
        m.clear(Family::Graphs);
        let mut by_condition: BTreeMap<String, u32> = BTreeMap::new();
        for g in &snap.graphs {
            for c in g.conditions.iter().filter(|c| c.status) {
                *by_condition.entry(format!("{:?}", c.kind)).or_default() += 1;
            }
        }
        for (condition, n) in by_condition {
            m.set(Family::Graphs, &[&condition], f64::from(n));
        }
        m.clear(Family::Services);
        let mut by_phase: BTreeMap<String, u32> = BTreeMap::new();
        for s in &snap.services {
            *by_phase.entry(format!("{:?}", s.phase)).or_default() += 1;
        }
        for (phase, n) in by_phase {
            m.set(Family::Services, &[&phase], f64::from(n));
        }
    }
}

/// The journal for `smo history`, written only when it grew since the
/// last time (it is the largest file smo publishes).
async fn publish_history(
    store: &Arc<Store>,
    shared: &Arc<Shared>,
    state_dir: &Path,
    snap: &snapshot::StatusSnapshot,
) {
    let newest = snap.events.first().map_or(0, |e| e.seq);
    if *shared.history_seq.lock_or_recover() == Some(newest) {
        return;
    }
    let (store, dir) = (Arc::clone(store), state_dir.to_owned());
    let r = tokio::task::spawn_blocking(move || {
        let events = store.events(usize::MAX).map_err(|e| e.to_string())?;
        snapshot::publish_history(&dir, &events).map_err(|e| e.to_string())
    })
    .await;
    match r.map_err(|e| e.to_string()) {
        Ok(Ok(())) => *shared.history_seq.lock_or_recover() = Some(newest),
        Ok(Err(e)) | Err(e) => tracing::warn!(error = %e, "could not publish the history"),
    }
}

/// Publishes a status snapshot with these notes (also before the world
/// exists, when the source has not answered yet).
pub(super) async fn publish_notes(
    store: &Arc<Store>,
    state_dir: &Path,
    notes: Vec<String>,
) -> Option<snapshot::StatusSnapshot> {
    let (store, dir) = (Arc::clone(store), state_dir.to_owned());
    let r = tokio::task::spawn_blocking(move || {
        let snap = store.status_snapshot(notes).map_err(|e| e.to_string())?;
        snapshot::publish(&dir, &snap).map_err(|e| e.to_string())?;
        Ok::<_, String>(snap)
    })
    .await;
    match r.map_err(|e| e.to_string()) {
        Ok(Ok(snap)) => Some(snap),
        Ok(Err(e)) | Err(e) => {
            tracing::warn!(error = %e, "could not publish the status snapshot");
            None
        }
    }
}
