//! A worker: takes a key from the queue, reconciles it, records the
//! outcome (metrics, back-off, run history) and publishes the status.

use super::*;
use crate::locks::{MutexExt, RwLockExt};

/// The status snapshot is rewritten at most this often while work is
/// queued (and always when the queue drains): rewriting it after every one
/// of hundreds of reconciles would cost more than the reconciles.
pub(super) const PUBLISH_EVERY: Duration = Duration::from_secs(1);

pub(super) async fn worker(
    engine: Engine,
    queue: Queue,
    shared: Arc<Shared>,
    store: Arc<Store>,
    opts: RunOptions,
    state_dir: PathBuf,
) {
    loop {
        // A standby takes no work: keys wait in the queue until this
        // instance leads, or the queue closes at shutdown.
        if !shared.leadership.acting() {
            tokio::select! {
                () = shared.leadership.until_acting() => {}
                () = queue.closed() => return,
            }
        }
        let Some(key) = queue.next().await else {
            return;
        };
        if !shared.leadership.acting() {
            // The Lease was lost while this worker waited: the key waits
            // with the others.
            queue.requeue_after(&key, Duration::ZERO);
            queue.done(&key);
            continue;
        }
        let started_at = now();
        let world = shared.world();
        let drift = shared.drift_due.lock_or_recover().remove(&key);
        let t = std::time::Instant::now();
        tracing::debug!(key = %key, drift, "reconcile started");
        let (outcome, after) = match engine.reconcile(&world, &key, drift).await {
            Ok(r) => {
                // Graphs asked to move for this one: their move is recorded.
                for moved in &r.moved {
                    queue.enqueue_now(moved);
                }
                (r.outcome, r.after)
            }
            Err(e) => (Outcome::Retry(StepError::from(e)), None),
        };
        let label = outcome.label();
        shared.metrics.observe(
            Family::ReconcileDuration,
            &[label],
            t.elapsed().as_secs_f64(),
        );
        shared.metrics.inc(Family::Reconciles, &[label]);
        if let Some(e) = outcome.error() {
            shared
                .metrics
                .inc(Family::ReconcileErrors, &[e.reason.label()]);
        }
        if world.replace.contains_key(&key) {
            shared.world.write_or_recover().replacement_done(&key);
        }
        let failures = {
            let mut o = shared.outcomes.lock_or_recover();
            let prev = o.get(&key).map_or(0, |(_, f)| *f);
            let f = if matches!(outcome, Outcome::Retry(_)) {
                prev + 1
            } else {
                0
            };
            o.insert(key.clone(), (outcome.clone(), f));
            f
        };
        match &outcome {
            Outcome::Done => tracing::info!(key = %key, "converged"),
            Outcome::RequeueAfter(d) => {
                tracing::info!(key = %key, after = ?d, "waiting");
                queue.requeue_after(&key, *d);
            }
            Outcome::Retry(e) => {
                // The engine's delay follows the failures recorded with the
                // graph; a failure that could not be recorded backs off on
                // the count kept here.
                let d = after.unwrap_or_else(|| {
                    backoff(
                        failures,
                        opts.backoff_base,
                        opts.backoff_cap,
                        crate::retry::seed_of(&key.to_string()),
                    )
                });
                tracing::warn!(key = %key, error = %e, retry_in = ?d, "transient failure");
                if !opts.once {
                    queue.requeue_after(&key, d);
                }
            }
            Outcome::Stalled(e) => {
                tracing::error!(key = %key, error = %e, "stalled until the inputs change");
            }
        }
        queue.done(&key);
        let finished = {
            let mut p = shared.pass.lock_or_recover();
            let pass = p.get_or_insert(Pass {
                started_at,
                reconciled: 0,
                errors: 0,
            });
            pass.reconciled += 1;
            pass.errors += u32::from(matches!(outcome, Outcome::Retry(_) | Outcome::Stalled(_)));
            if queue.is_idle() { p.take() } else { None }
        };
        if let Some(pass) = finished {
            let run = NewRun {
                started_at: pass.started_at,
                finished_at: now(),
                revision: Some(world.revision.clone()),
                graphs_reconciled: pass.reconciled,
                errors: pass.errors,
            };
            let s = Arc::clone(&store);
            if let Ok(Err(e)) =
                tokio::task::spawn_blocking(move || s.write(|tx| tx.append_run(run))).await
            {
                tracing::warn!(error = %e, "could not record the run");
            }
        }
        let due = {
            let mut last = shared.last_publish.lock_or_recover();
            // Settled: the end of a pass, even when graphs wait for later
            // (a grace period, a back-off): its outcome is published now,
            // not when the next of them runs.
            let due = queue.is_settled() || last.is_none_or(|t| t.elapsed() >= PUBLISH_EVERY);
            if due {
                *last = Some(std::time::Instant::now());
            }
            due
        };
        if due {
            publish(&store, &shared, &state_dir).await;
        }
    }
}
