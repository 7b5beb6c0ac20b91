//! The daemon: wires the source, the cluster inventory, the timers and the
//! worker pool around the reconcile engine.
//!
//! Every trigger only enqueues graph keys; workers reconcile one key at a
//! time each. The world (snapshot, desired state, clusters) is replaced as
//! a whole and read by reconciles as a consistent copy.
//!
//! Entry point: [`run`] with an injected configuration and shutdown
//! channel, so tests run it in-process with a temporary state directory.

use crate::adapters::helm::Helm;
use crate::adapters::karmada::{Karmada, KarmadaError};
use crate::adapters::prometheus::PrometheusError;
use crate::desired::prune::prune_guard;
use crate::desired::{DesiredState, loader::load_root};
use crate::http::{self, HttpError};
use crate::locks::MutexExt;
use crate::metrics::{Family, Metrics};
use crate::observe::clusters::{ClusterFacts, merge};
use crate::reconcile::engine::{Engine, Outcome, World};
use crate::reconcile::error::StepError;
use crate::reconcile::queue::{Key, Queue, backoff};
use crate::source::{self, Snapshot};
use crate::spec::config::{Config, Source};
use crate::spec::inventory::Inventory;
use crate::store::records::{ClusterRecord, NewRun};
use crate::store::{Store, StoreError, snapshot};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

pub mod alerts;
pub mod context;
mod inventory;
pub mod notify;
mod provision;
pub mod scaler;
mod shared;
mod snapshots;
mod status;
pub mod usage;
mod worker;

use inventory::refresh_inventory;
use shared::{Pass, Shared};
use snapshots::{all_keys, apply_snapshot, first_snapshot, load};
use status::{publish, publish_notes};
use worker::worker;

pub use crate::source::ALLOW_PRUNE_MARKER;

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// One full pass, then exit.
    pub once: bool,
    pub workers: usize,
    /// How often the cluster inventory is read from Karmada.
    pub inventory_interval: Duration,
    /// Debounce of the work queue.
    pub debounce: Duration,
    /// Base and cap of the retry backoff.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// In `--once` mode, how long to keep waiting for blocked dependencies.
    pub once_deadline: Duration,
    /// Serve the HTTP endpoint (never in `--once` mode).
    pub http: bool,
    /// systemd notifications (a no-op outside systemd).
    pub notify: notify::Notifier,
    /// How NFVCL blueprints being created are polled.
    pub provision_polling: crate::provision::run::Polling,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            once: false,
            // Two workers: helm is the bottleneck and each call is a
            // process; more would mostly queue on the API server.
            workers: 2,
            inventory_interval: Duration::from_secs(10),
            debounce: Duration::from_millis(50),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(300),
            once_deadline: Duration::from_secs(300),
            http: true,
            notify: notify::Notifier::default(),
            provision_polling: crate::provision::run::Polling::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot create the state directory {path}: {source}")]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("state store: {0}")]
    Store(#[from] StoreError),
    #[error("Karmada: {0}")]
    Karmada(#[from] KarmadaError),
    #[error("desired-state source: {0}")]
    Source(#[from] crate::source::SourceError),
    #[error("the state root cannot be loaded: {0}")]
    Load(String),
    #[error("internal task failed: {0}")]
    Join(String),
    #[error("HTTP endpoint: {0}")]
    Http(#[from] HttpError),
    #[error(
        "http.tokenFile is not set: POST /alerts needs the bearer token Alertmanager sends \
         (or set http.auth: none to accept unauthenticated webhooks)"
    )]
    NoWebhookToken,
    #[error("Prometheus client: {0}")]
    Prometheus(#[from] PrometheusError),
    #[error("NFVCL: {0}")]
    Nfvcl(#[from] crate::adapters::nfvcl::NfvclError),
    #[error("Grafana: {0}")]
    Grafana(#[from] crate::adapters::grafana::GrafanaError),
}

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

/// Runs the daemon until `shutdown` flips to true (or, with `once`, after
/// one full pass).
pub async fn run(
    config: Config,
    opts: RunOptions,
    mut shutdown: watch::Receiver<bool>,
) -> Result<RunReport, DaemonError> {
    let started = std::time::Instant::now();
    std::fs::create_dir_all(&config.state_dir).map_err(|source| DaemonError::StateDir {
        path: config.state_dir.clone(),
        source,
    })?;
    let db_path = context::store_path(&config);
    let store = Arc::new(blocking(move || Store::open(&db_path)).await??);
    // What a killed run was doing between an effect and its record: made
    // known to the store first, so the passes below finish or undo it.
    let s = Arc::clone(&store);
    let resolved =
        blocking(move || crate::reconcile::actions::journal::resolve(&s, now())).await??;
    if !resolved.is_empty() {
        tracing::warn!(graphs = ?resolved, "resolved operations a previous run left unrecorded");
    }
    let karmada = context::karmada(&config.karmada).await?;
    let metrics = Arc::new(Metrics::new());
    let prometheus = context::prometheus(&config.prometheus)?;
    let engine = Engine {
        helm: Helm::new(context::helm_config(&config)).with_metrics(Arc::clone(&metrics)),
        karmada: karmada.clone(),
        store: Arc::clone(&store),
        dependency_poll: Duration::from_secs(5),
        rules: context::rule_sync(&config.prometheus, prometheus.clone()),
        dashboards: context::dashboard_sync(&config.grafana)?,
        metrics: Arc::clone(&metrics),
        retry: crate::retry::Policy {
            base: opts.backoff_base,
            cap: opts.backoff_cap,
        },
    };
    // The endpoint comes up before the first snapshot so that /healthz
    // answers (and /readyz explains) while a Git remote is still awaited.
    let (http_tx, http_rx) = mpsc::channel::<http::Request>(256);
    let server = if opts.http && !opts.once {
        let hc = context::http_config(&config.http)?;
        Some(http::Server::start(hc, http_tx, Arc::clone(&metrics))?)
    } else {
        drop(http_tx);
        None
    };
    let queue = Queue::new(if opts.once {
        Duration::ZERO
    } else {
        opts.debounce
    });

    // Answered at once, but with 503 until the first snapshot is applied
    // (`world_tx`): nothing is acknowledged before the daemon can act.
    let (world_tx, world_rx) = watch::channel(None);
    let requests = tokio::spawn(tracing::Instrument::instrument(
        alerts::serve(http_rx, world_rx, Arc::clone(&store), queue.clone()),
        tracing::info_span!("http"),
    ));
    // The first snapshot, before anything else: nothing is reconciled
    // against an unknown desired state.
    let (snap_tx, mut snap_rx) = mpsc::channel::<Snapshot>(4);
    let (source_fail_tx, mut source_fail_rx) = mpsc::channel::<String>(4);
    let first = match first_snapshot(
        &config,
        &opts,
        snap_tx.clone(),
        source_fail_tx,
        shutdown.clone(),
        &store,
    )
    .await?
    {
        Some(s) => s,
        // Stopped before the source ever answered: nothing was done.
        None => {
            // Close the endpoint and let the request task release the store.
            drop(blocking(move || drop(server)).await);
            let _ = tokio::time::timeout(Duration::from_secs(10), requests).await;
            return Ok(RunReport {
                converged: false,
                graphs: 0,
                failed: Vec::new(),
            });
        }
    };
    let desired = load(&first).await?;

    let shared = Arc::new(Shared {
        world: RwLock::new(World {
            revision: first.revision.clone(),
            root: first.root.clone(),
            desired: Arc::new(DesiredState::default()),
            clusters: Vec::new(),
            not_ready_since: BTreeMap::new(),
            prune_blocked: None,
            replace: BTreeMap::new(),
        }),
        drift_due: Mutex::new(HashSet::new()),
        outcomes: Mutex::new(BTreeMap::new()),
        notes: Mutex::new(BTreeMap::new()),
        last_inventory: Mutex::new(None),
        pass: Mutex::new(None),
        last_publish: Mutex::new(None),
        metrics: Arc::clone(&metrics),
        dashboards: engine.dashboards.clone(),
        held: Mutex::new(Vec::new()),
    });
    refresh_inventory(&shared, &karmada, &config, &store, &queue, false).await;
    let first_revision = first.revision.clone();
    apply_snapshot(&shared, &store, &queue, first, desired).await?;
    let _ = world_tx.send(Some(Arc::clone(&shared)));
    publish(&store, &shared, &config.state_dir).await;
    // The store is open and the desired state loaded: ready.
    opts.notify.ready(&format!("revision {first_revision}"));
    // A full pass checks drift everywhere.
    {
        let keys = all_keys(&shared, &store).await?;
        shared.drift_due.lock_or_recover().extend(keys);
    }

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
        let scaler = prometheus.clone().map(|p| {
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
        scaler_task = scaler;
        let nfvcl = context::nfvcl(config.nfvcl.as_ref())?;
        provision_task = Some(tokio::spawn(tracing::Instrument::instrument(
            provision::provision_loop(
                nfvcl,
                Arc::clone(&shared),
                Arc::clone(&store),
                config.state_dir.clone(),
                opts.provision_polling,
                kick_rx,
                shutdown.clone(),
            ),
            tracing::info_span!("provision"),
        )));
        let mut resync = tokio::time::interval(config.resync_interval);
        resync.tick().await;
        let mut inventory = tokio::time::interval(opts.inventory_interval);
        inventory.tick().await;
        // The heartbeat is this loop itself: were it stuck, the pings
        // would stop and systemd would restart the service.
        let watchdog_every = opts.notify.watchdog_every();
        let mut watchdog =
            tokio::time::interval(watchdog_every.unwrap_or(Duration::from_secs(3600)));
        loop {
            tokio::select! {
                _ = shutdown.changed() => if *shutdown.borrow() { break },
                _ = watchdog.tick(), if watchdog_every.is_some() => opts.notify.watchdog(),
                Some(snap) = snap_rx.recv() => {
                    match load(&snap).await {
                        Ok(desired) => {
                            shared.note("source", None);
                            opts.notify.status(&format!("revision {}", snap.revision));
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
                    let keys = all_keys(&shared, &store).await?;
                    shared.drift_due.lock_or_recover().extend(keys.iter().cloned());
                    for k in keys { queue.enqueue(&k); }
                }
                _ = inventory.tick() => {
                    refresh_inventory(&shared, &karmada, &config, &store, &queue, true).await;
                }
            }
        }
    }

    // Graceful stop: no new work; running reconciles (and their helm
    // calls) finish within helm's own timeout plus a margin.
    opts.notify.stopping();
    queue.close();
    let grace = config.helm.timeout + Duration::from_secs(30);
    for w in workers {
        if tokio::time::timeout(grace, w).await.is_err() {
            tracing::warn!(
                "a worker did not finish in time; its graph is reconciled again at the next start"
            );
        }
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
    // Both end by themselves now (the endpoint's channel is closed, the
    // shutdown flag is set); waiting for them releases the store before
    // `run` returns, so the caller can open it.
    for task in std::iter::once(requests)
        .chain(scaler_task)
        .chain(provision_task)
    {
        let handle = task.abort_handle();
        if tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .is_err()
        {
            handle.abort();
        }
    }

    let outcomes = shared.outcomes.lock_or_recover().clone();
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|(_, (o, _))| !matches!(o, Outcome::Done))
        .map(|(k, (o, _))| format!("{k}: {o:?}"))
        .collect();
    let converged =
        failed.is_empty() && shared.notes().is_empty() && (!opts.once || queue.is_idle());
    let u = usage::of("self");
    tracing::info!(
        graphs = outcomes.len(),
        converged,
        wall_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        cpu_ms = u.map(|u| u.cpu_ms),
        peak_rss_kib = u.map(|u| u.peak_rss_kib),
        "stopped"
    );
    Ok(RunReport {
        converged,
        graphs: outcomes.len(),
        failed,
    })
}
