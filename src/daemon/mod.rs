//! The daemon: wires the source, the cluster inventory, the timers and the
//! worker pool around the reconcile engine.
//!
//! Every trigger only enqueues graph keys; workers reconcile one key at a
//! time each. The world (snapshot, desired state, clusters) is replaced as
//! a whole and read by reconciles as a consistent copy.
//!
//! Entry point: [`run`] with an injected configuration and shutdown
//! channel, so tests run it in-process with a temporary state directory.
//! [`context`] builds every effect from the configuration, `start` brings
//! the daemon up (endpoint, first snapshot, world); `run` spawns the tasks,
//! runs the select loop and drains at shutdown.

use crate::adapters::karmada::{Karmada, Signal};
use crate::desired::incremental::LoadCache;
use crate::desired::prune::prune_guard;
use crate::desired::{DesiredState, loader::load_root_cached};
use crate::http;
use crate::locks::{MutexExt, RwLockExt};
use crate::metrics::{Family, Metrics};
use crate::observe::clusters::{ClusterFacts, merge};
use crate::reconcile::engine::{Engine, Outcome, World};
use crate::reconcile::error::StepError;
use crate::reconcile::queue::{Key, Queue, backoff};
use crate::source::{self, Snapshot};
use crate::spec::config::{Config, Source};
use crate::spec::inventory::Inventory;
use crate::store::records::{ClusterRecord, NewRun};
use crate::store::{Store, snapshot};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

pub mod alerts;
mod artifacts;
pub mod context;
mod error;
mod heads;
mod inbox;
mod inventory;
pub mod notify;
mod placement_facts;
mod provision;
mod provision_facts;
pub mod role;
pub mod scaler;
mod shared;
mod snapshots;
mod start;
mod status;
mod sweep;
pub mod usage;
mod worker;

use context::Context;
use inventory::{Read, refresh_inventory};
use shared::{Pass, Shared};
use snapshots::{all_keys, apply_snapshot, first_snapshot, load};
use start::{Started, start};
use status::{publish, publish_notes};
use worker::worker;

pub use crate::source::ALLOW_PRUNE_MARKER;
pub use context::RunOptions;
pub use error::DaemonError;

/// What a run ended with (for `--once`'s exit code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// Every graph converged.
    pub converged: bool,
    pub graphs: usize,
    pub failed: Vec<String>,
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, DaemonError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| DaemonError::Join(e.to_string()))
}

/// The next change the watch caches saw; never, without watch caches.
async fn next_signal(signals: &mut Option<mpsc::Receiver<Signal>>) -> Option<Signal> {
    match signals {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Runs the daemon until `shutdown` flips to true (or, with `once`, after
/// one full pass).
pub async fn run(
    config: Config,
    opts: RunOptions,
    mut shutdown: watch::Receiver<bool>,
) -> Result<RunReport, DaemonError> {
    let started = std::time::Instant::now();
    let ctx = Context::build(&config, &opts).await?;
    // Contending for the Lease while the first snapshot loads: a standby
    // holds a warm world too, and acts as soon as it leads.
    let election = role::Election::start(&config, &ctx);
    let leadership = ctx.leadership.clone();
    let started_up = start(&config, &opts, &ctx, &shutdown).await;
    let (started_up, election) = match started_up {
        Ok(Some(s)) => (Some(s), election),
        Ok(None) | Err(_) => {
            if let Some(e) = election {
                e.stop().await;
            }
            (started_up?, None)
        }
    };
    let Some(Started {
        shared,
        queue,
        server,
        requests,
        snapshots: mut snap_rx,
        source_failures: mut source_fail_rx,
        snapshot_tx: snap_tx,
    }) = started_up
    else {
        return Ok(RunReport {
            converged: false,
            graphs: 0,
            failed: Vec::new(),
        });
    };
    let Context {
        store,
        metrics,
        karmada,
        prometheus,
        engine,
        nfvcl,
        hdar,
        mut signals,
        loads,
        ..
    } = ctx;
    let mut sharing = leadership
        .is_elected()
        .then(|| role::Sharing::new(&config, &karmada, &leadership));

    // Their own stop: they keep delivering while the workers drain, and
    // stop after them (also in `--once` mode, where `shutdown` stays false).
    let (stop_senders, senders_stop) = watch::channel(false);
    let senders = crate::events::run_senders(&config.events, &store, &metrics, &senders_stop)?;

    let workers: Vec<_> = (0..opts.workers.max(1))
        .map(|i| {
            let (engine, queue, shared, store, opts, state_dir) = (
                engine.clone(),
                queue.clone(),
                Arc::clone(&shared),
                Arc::clone(&store),
                opts.clone(),
                config.state_dir.clone(),
            );
            tokio::spawn(tracing::Instrument::instrument(
                worker(engine, queue, shared, store, opts, state_dir),
                tracing::info_span!("worker", id = i),
            ))
        })
        .collect();

    let mut scaler_task = None;
    let mut provision_task = None;
    let (kick_tx, kick_rx) = mpsc::channel::<()>(1);
    if opts.once {
        let deadline = tokio::time::Instant::now() + opts.once_deadline;
        while !queue.is_idle() && tokio::time::Instant::now() < deadline && !*shutdown.borrow() {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
                _ = shutdown.changed() => {}
            }
        }
    } else {
        scaler_task = prometheus.map(|p| {
            let scaler =
                scaler::Scaler::new(p, karmada.clone(), Arc::clone(&store), Arc::clone(&metrics));
            tokio::spawn(tracing::Instrument::instrument(
                scaler::scaling_loop(
                    scaler,
                    Arc::clone(&shared),
                    queue.clone(),
                    config.scaling_interval,
                    shutdown.clone(),
                ),
                tracing::info_span!("scaler"),
            ))
        });
        provision_task = Some(tokio::spawn(tracing::Instrument::instrument(
            provision::provision_loop(
                provision::Provisioning {
                    client: nfvcl,
                    state_dir: config.state_dir.clone(),
                    polling: opts.provision_polling,
                    sharing: config.ha.enabled.then(|| {
                        provision_facts::SharedProvisions::new(crate::ha::facts::Facts::new(
                            karmada.client(),
                            &config.ha.namespace,
                            provision_facts::NAME,
                            leadership.fence(),
                        ))
                    }),
                },
                Arc::clone(&shared),
                Arc::clone(&store),
                kick_rx,
                shutdown.clone(),
            ),
            tracing::info_span!("provision"),
        )));
        let mut resync = tokio::time::interval(config.resync_interval);
        resync.tick().await;
        let mut inventory =
            tokio::time::interval(opts.inventory_interval.unwrap_or(config.inventory_interval));
        inventory.tick().await;
        let mut references = tokio::time::interval(config.hdar.interval);
        references.tick().await;
        // The heartbeat is this loop itself: were it stuck, the pings
        // would stop and systemd would restart the service.
        let watchdog_every = opts.notify.watchdog_every();
        let mut watchdog =
            tokio::time::interval(watchdog_every.unwrap_or(Duration::from_secs(3600)));
        let mut roles = leadership.subscribe();
        // The role's file follows the renewals (the lease's expiry moves).
        let mut view_tick = tokio::time::interval(config.ha.retry_period);
        let mut view = None;
        role::publish_view(&shared, &config.state_dir, &mut view).await;
        if leadership.is_elected() {
            // Taken before the loop started: the pass is run now.
            let r = *roles.borrow_and_update();
            role::took(
                r,
                &shared,
                &store,
                &queue,
                &kick_tx,
                &opts.notify,
                sharing.as_mut(),
            )
            .await?;
        }
        loop {
            tokio::select! {
                _ = shutdown.changed() => if *shutdown.borrow() { break },
                Ok(()) = roles.changed() => {
                    let r = *roles.borrow_and_update();
                    role::took(r, &shared, &store, &queue, &kick_tx, &opts.notify, sharing.as_mut()).await?;
                    role::publish_view(&shared, &config.state_dir, &mut view).await;
                }
                _ = view_tick.tick(), if election.is_some() => {
                    role::publish_view(&shared, &config.state_dir, &mut view).await;
                    if let Some(s) = &mut sharing {
                        s.round(&shared, &store, &queue).await;
                    }
                }
                _ = watchdog.tick(), if watchdog_every.is_some() => opts.notify.watchdog(),
                Some(snap) = snap_rx.recv() => {
                    tracing::debug!(revision = %snap.revision, "snapshot received");
                    // The revision in force again (a source's first look
                    // after start, or a remote back after an outage): the
                    // source is fine, and there is nothing new to apply.
                    if shared.in_force(&snap.revision) {
                        shared.note("source", None);
                        publish(&store, &shared, &config.state_dir).await;
                        continue;
                    }
                    match load(&snap, &hdar, &loads).await {
                        Ok(desired) => {
                            shared.note("source", None);
                            opts.notify.status(&role::status_line(&shared, &snap.revision));
                            apply_snapshot(&shared, &store, &queue, snap, desired).await?;
                            // Cluster metadata may have changed: provision now.
                            let _ = kick_tx.try_send(());
                        }
                        Err(e) => shared.note("source", Some(e.to_string())),
                    }
                }
                Some(failure) = source_fail_rx.recv() => {
                    shared.note("source", Some(format!("source unreachable, keeping the last snapshot: {failure}")));
                    publish(&store, &shared, &config.state_dir).await;
                }
                _ = resync.tick() => {
                    sweep::sweep(&karmada, &store, &shared, &queue).await;
                    let keys = all_keys(&shared, &store).await?;
                    shared.drift_due.lock_or_recover().extend(keys.iter().cloned());
                    for k in keys { queue.enqueue(&k); }
                }
                _ = references.tick() => {
                    artifacts::refresh(&shared, &store, &queue, &hdar, &loads).await?;
                }
                _ = inventory.tick() => {
                    refresh_inventory(&shared, &karmada, &config, &store, &queue, (Read::Relist, true)).await;
                }
                Some(signal) = next_signal(&mut signals) => match signal {
                    Signal::Clusters => {
                        refresh_inventory(&shared, &karmada, &config, &store, &queue, (Read::Cached, true)).await;
                    }
                    Signal::Release { namespace, name } => {
                        // An object of a release changed (out of band, or
                        // smo's own write): its graph checks for drift now.
                        let key = shared.world.read_or_recover().graph_of_release(&namespace, &name);
                        if let Some(key) = key {
                            shared.drift_due.lock_or_recover().insert(key.clone());
                            queue.enqueue(&key);
                        }
                    }
                },
            }
        }
    }

    // Graceful stop: no new work; running reconciles (and their helm
    // calls) finish within helm's own timeout plus a margin.
    opts.notify.stopping();
    queue.close();
    let grace = config.helm.timeout + Duration::from_secs(30);
    for mut w in workers {
        if tokio::time::timeout(grace, &mut w).await.is_err() {
            tracing::warn!(
                "a worker did not finish in time; its graph is reconciled again at the next start"
            );
            // Dropped here rather than left running: `run` returns only
            // once nothing of it holds the store.
            w.abort();
            let _ = w.await;
        }
    }
    // Nothing of this instance acts any more: the Lease goes to a standby.
    if let Some(e) = election {
        e.stop().await;
    }
    publish(&store, &shared, &config.state_dir).await;
    drop(snap_tx);
    // Stop answering webhooks only now: a delivery during the drain was
    // still committed (or answered 503).
    if let Some(server) = server {
        tokio::task::spawn_blocking(move || server.shutdown())
            .await
            .map_err(|e| DaemonError::Join(e.to_string()))?;
    }
    // The event senders stop now; an event not yet taken is sent at the
    // next start.
    let _ = stop_senders.send(true);
    // All end by themselves now (the endpoint's channel is closed, the
    // shutdown flags are set); waiting for them releases the store before
    // `run` returns, so the caller can open it.
    for task in std::iter::once(requests)
        .chain(scaler_task)
        .chain(provision_task)
        .chain(senders)
    {
        let mut task = task;
        if tokio::time::timeout(Duration::from_secs(10), &mut task)
            .await
            .is_err()
        {
            task.abort();
            let _ = task.await;
        }
    }

    let report = shared.report(opts.once, queue.is_idle());
    let u = usage::of("self");
    tracing::info!(
        graphs = report.graphs,
        converged = report.converged,
        wall_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        cpu_ms = u.map(|u| u.cpu_ms),
        peak_rss_kib = u.map(|u| u.peak_rss_kib),
        "stopped"
    );
    Ok(report)
}
