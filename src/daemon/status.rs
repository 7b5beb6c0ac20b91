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
    if let Some(published) = publish_notes(store, state_dir, notes.clone()).await {
        *shared.published.lock_or_recover() = Some((generation, notes, std::time::Instant::now()));
        publish_history(store, shared, state_dir, published.newest_event).await;
        let m = &shared.metrics;
        m.clear(Family::Graphs);
        for (condition, n) in &published.conditions {
            m.set(Family::Graphs, &[condition], f64::from(*n));
        }
        m.clear(Family::Services);
        for (phase, n) in &published.phases {
            m.set(Family::Services, &[phase], f64::from(*n));
        }
    }
}

/// The journal for `smo history`, written only when it grew since the
/// last time (it is the largest file smo publishes).
async fn publish_history(
    store: &Arc<Store>,
    shared: &Arc<Shared>,
    state_dir: &Path,
    newest: Option<u64>,
) {
    let newest = newest.unwrap_or(0);
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
) -> Option<crate::store::Published> {
    let (store, dir) = (Arc::clone(store), state_dir.to_owned());
    let r = tokio::task::spawn_blocking(move || {
        store.publish_status(&dir, notes).map_err(|e| e.to_string())
    })
    .await;
    match r.map_err(|e| e.to_string()) {
        Ok(Ok(published)) => Some(published),
        Ok(Err(e)) | Err(e) => {
            tracing::warn!(error = %e, "could not publish the status snapshot");
            None
        }
    }
}
