//! Desired-state snapshots: the first one (nothing is reconciled before
//! it), loading and checking one, and applying it to the world (broken
//! files attributed, the prune guard, changed graphs enqueued first).

use super::*;
use crate::keys::GraphKey;
use crate::locks::{MutexExt, RwLockExt};
use crate::source::index::{Touched, changed as changed_paths};

pub(super) async fn first_snapshot(
    config: &Config,
    opts: &RunOptions,
    tx: mpsc::Sender<Snapshot>,
    fail_tx: mpsc::Sender<String>,
    shutdown: watch::Receiver<bool>,
    store: &Arc<Store>,
) -> Result<Option<Snapshot>, DaemonError> {
    match &config.source {
        Source::Dir { path, debounce } => {
            let p = path.clone();
            let snap = blocking(move || source::dir::snapshot(&p)).await??;
            if !opts.once {
                let (path, debounce) = (path.clone(), *debounce);
                tokio::spawn(async move {
                    if let Err(e) = source::dir::watch(path, debounce, tx, shutdown).await {
                        tracing::error!(error = %e, "directory watch ended");
                        let _ = fail_tx.send(e.to_string()).await;
                    }
                });
            }
            Ok(Some(snap))
        }
        Source::Git {
            url,
            reference,
            path,
            interval,
            auth,
        } => {
            let git = source::git::GitSource {
                url: url.clone(),
                reference: reference.into(),
                path: path.clone(),
                auth: auth.into(),
                dir: config.state_dir.join("git"),
                leases: source::Leases::default(),
            };
            let g = git.clone();
            let first = match blocking(move || g.sync()).await? {
                Ok(snap) => Some(snap),
                Err(e) if opts.once => return Err(e.into()),
                Err(e) => {
                    // Unreachable at start: stay up, say so, and wait for
                    // the poller's first snapshot (the remote may be back
                    // any moment; systemd restarts would only add noise).
                    tracing::warn!(error = %e, url = %url, "git source unreachable at start; waiting for it");
                    publish_notes(
                        store,
                        &config.state_dir,
                        vec![format!("source unreachable, no snapshot yet: {e}")],
                    )
                    .await;
                    None
                }
            };
            if !opts.once {
                let (gtx, mut grx) = mpsc::channel(4);
                let interval = *interval;
                let synced = first.as_ref().map(|s| s.revision.clone());
                tokio::spawn(git.poll_after(synced, interval, gtx, shutdown.clone()));
                let mut first = first;
                let mut shutdown = shutdown;
                while first.is_none() {
                    tokio::select! {
                        ev = grx.recv() => match ev {
                            Some(source::git::GitEvent::Snapshot(s)) => first = Some(s),
                            Some(source::git::GitEvent::Failed(e)) => {
                                publish_notes(store, &config.state_dir, vec![format!("source unreachable, no snapshot yet: {e}")]).await;
                            }
                            None => return Ok(None),
                        },
                        _ = shutdown.changed() => if *shutdown.borrow() { return Ok(None) },
                    }
                }
                tokio::spawn(async move {
                    while let Some(ev) = grx.recv().await {
                        let sent = match ev {
                            source::git::GitEvent::Snapshot(s) => tx.send(s).await.is_ok(),
                            source::git::GitEvent::Failed(e) => fail_tx.send(e).await.is_ok(),
                        };
                        if !sent {
                            return;
                        }
                    }
                });
                return Ok(first);
            }
            Ok(first)
        }
    }
}

/// Loads a snapshot's state root, fetching the HDAR artifacts its
/// `hdaGraphRef` files name (a failed fetch holds that graph).
pub(super) async fn load(
    snap: &Snapshot,
    hdar: &Arc<context::Artifacts>,
    loads: &Arc<LoadCache>,
) -> Result<DesiredState, DaemonError> {
    let root = snap.root.clone();
    let pulling = crate::hdar::Pulling::new(Arc::clone(hdar), tokio::runtime::Handle::current());
    let cache = Arc::clone(loads);
    let t = std::time::Instant::now();
    let state = blocking(move || load_root_cached(&root, Some(&pulling), &cache))
        .await?
        .map_err(|e| DaemonError::Load(e.to_string()))?;
    let stats = loads.stats();
    tracing::debug!(
        revision = %snap.revision,
        judged = stats.judged,
        reused = stats.reused,
        ms = u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX),
        "desired state loaded"
    );
    if !state.settings_valid {
        let errors: Vec<String> = state
            .findings
            .iter()
            .filter(|f| f.file.ends_with("smo.yaml"))
            .map(ToString::to_string)
            .collect();
        return Err(DaemonError::Load(format!(
            "smo.yaml is invalid at revision {}; keeping the previous snapshot: {}",
            snap.revision,
            errors.join("; ")
        )));
    }
    // Said once, when it appears: an unchanged file's warnings are not
    // repeated on every snapshot (`smo validate` and status list them all).
    for f in loads.new_findings(&state.findings) {
        tracing::warn!(finding = %f, "descriptor finding");
    }
    Ok(state)
}

/// Every key the daemon is responsible for: desired and recorded graphs.
pub(super) async fn all_keys(
    shared: &Arc<Shared>,
    store: &Arc<Store>,
) -> Result<Vec<Key>, DaemonError> {
    let world = shared.world();
    let store = Arc::clone(store);
    let recorded = blocking(move || store.graphs()).await??;
    let mut keys: BTreeSet<Key> = recorded
        .into_iter()
        .map(|g| GraphKey::new(&g.project, &g.graph))
        .collect();
    keys.extend(
        world
            .desired
            .graphs
            .iter()
            .filter_map(|e| e.id.as_ref().map(|id| GraphKey::new(&e.project, id))),
    );
    Ok(keys.into_iter().collect())
}

/// A new desired state: re-merge cluster metadata, apply the prune guard,
/// record the revision and enqueue every key.
pub(super) async fn apply_snapshot(
    shared: &Arc<Shared>,
    store: &Arc<Store>,
    queue: &Queue,
    snap: Snapshot,
    mut desired: DesiredState,
) -> Result<(), DaemonError> {
    // A broken cluster file keeps its cluster's last good metadata.
    provision::keep_last_good_metadata(&shared.world().desired, &mut desired);
    let s = Arc::clone(store);
    let recorded = blocking(move || s.graphs()).await??;
    // A file that is present but declares nothing readable holds the graph
    // it declared last time; only a file that is gone removes.
    for (project, graph) in desired.attribute(
        recorded
            .iter()
            .map(|g| (g.project.as_str(), g.graph.as_str(), g.file.as_str())),
    ) {
        tracing::warn!(project = %project, graph = %graph, "descriptor unreadable: the graph is held at its last good state");
    }
    let desired_keys: BTreeSet<GraphKey> = desired
        .graphs
        .iter()
        .filter_map(|e| e.id.as_ref().map(|id| GraphKey::new(&e.project, id)))
        .collect();
    let removing = recorded
        .iter()
        .filter(|g| !desired_keys.contains(&GraphKey::new(&g.project, &g.graph)))
        .count();
    let allowed = snap.root.join(ALLOW_PRUNE_MARKER).exists();
    let blocked = prune_guard(
        recorded.len(),
        removing,
        desired.graphs.is_empty(),
        desired.settings.prune_max_delete_percent,
        allowed,
    );
    if let Some(why) = &blocked {
        tracing::warn!(reason = %why, "prune guard: removals held back");
    }
    shared.note(
        "prune",
        blocked.clone().map(|b| format!("prune guard: {b}")),
    );
    let touched = touched_files(shared, &snap);
    let inventory = shared.last_inventory.lock_or_recover().clone();
    let key_of =
        |e: &crate::desired::GraphEntry| e.id.as_ref().map(|id| GraphKey::new(&e.project, id));
    let (everything, changed): (bool, BTreeSet<GraphKey>) = {
        let prev = shared.world().desired;
        let before: BTreeMap<GraphKey, &crate::desired::GraphEntry> = prev
            .graphs
            .iter()
            .filter_map(|e| Some((key_of(e)?, e)))
            .collect();
        let changed = desired
            .graphs
            .iter()
            .filter_map(|e| {
                let k = key_of(e)?;
                (before.get(&k) != Some(&e)).then_some(k)
            })
            .collect();
        (
            prev.settings != desired.settings || prev.clusters != desired.clusters,
            changed,
        )
    };
    {
        let mut w = shared.world.write_or_recover();
        let clusters = inventory
            .as_ref()
            .map(|inv| merge(inv, &desired.clusters).0);
        w.switch_to(
            &snap.revision,
            snap.commit.clone(),
            &snap.root,
            desired,
            clusters,
            blocked,
        );
    }
    tracing::info!(revision = %snap.revision, changed = changed.len(), "new desired state");
    // Graphs whose descriptor changed (or all, when settings or cluster
    // metadata did) go first; the others of a project where another file
    // changed (a local chart) follow shortly; the rest have nothing new.
    let keys: BTreeSet<GraphKey> = recorded
        .iter()
        .map(|g| GraphKey::new(&g.project, &g.graph))
        .chain(desired_keys.iter().cloned())
        .collect();
    let mut later = 0usize;
    for k in keys {
        if everything || changed.contains(&k) || !desired_keys.contains(&k) {
            queue.enqueue(&k);
        } else if touched.includes(&k.project) {
            queue.requeue_after(&k, UNCHANGED_DELAY);
            later += 1;
        }
    }
    tracing::debug!(
        rechecked_later = later,
        everything = touched.everything,
        "graphs enqueued"
    );
    // Recorded once the work is queued: the queue's debounce covers the
    // write, which is not on the way from an edit to helm.
    let (s, rev) = (Arc::clone(store), snap.revision.clone());
    blocking(move || s.write(|tx| tx.set_source_revision(&rev))).await??;
    shared.metrics.clear(Family::SourceRevision);
    shared
        .metrics
        .set(Family::SourceRevision, &[&snap.revision], 1.0);
    #[allow(clippy::cast_precision_loss)] // unix seconds fit an f64 exactly
    shared
        .metrics
        .set(Family::SourceLastSync, &[], now() as f64);
    let mut held = shared.held.lock_or_recover();
    held.push(snap);
    if held.len() > 2 {
        held.remove(0);
    }
    Ok(())
}

/// Which files the snapshot changed since the one in force, by what they
/// can affect. A snapshot applied again (new HDAR artifacts) or one
/// without a file index touches everything.
fn touched_files(shared: &Shared, snap: &Snapshot) -> Touched {
    let held = shared.held.lock_or_recover();
    match (held.last(), &snap.files) {
        (Some(prev), Some(now)) if prev.revision != snap.revision => match &prev.files {
            Some(before) => Touched::of(changed_paths(before, now)),
            None => Touched::all(),
        },
        _ => Touched::all(),
    }
}

/// How long graphs whose descriptor did not change wait behind the ones
/// that did, after a new snapshot.
pub(super) const UNCHANGED_DELAY: Duration = Duration::from_secs(2);
