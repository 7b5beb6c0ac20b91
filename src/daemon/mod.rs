//! The daemon: wires the source, the cluster inventory, the timers and the
//! worker pool around the reconcile engine.
//!
//! Every trigger only enqueues graph keys; workers reconcile one key at a
//! time each. The world (snapshot, desired state, clusters) is replaced as
//! a whole and read by reconciles as a consistent copy.
//!
//! Entry point: [`run`] with an injected configuration and shutdown
//! channel, so tests run it in-process with a temporary state directory.

use crate::adapters::helm::{Helm, HelmConfig};
use crate::adapters::karmada::{Karmada, KarmadaError};
use crate::adapters::prometheus::{Prometheus, PrometheusConfig, PrometheusError};
use crate::desired::{DesiredState, loader::load_root};
use crate::http::{self, HttpConfig, HttpError};
use crate::metrics::{Family, Metrics};
use crate::observe::clusters::{ClusterFacts, merge};
use crate::reconcile::decide::prune_guard;
use crate::reconcile::engine::{Engine, Outcome, World};
use crate::reconcile::error::{Reason, StepError};
use crate::reconcile::queue::{Key, Queue, backoff};
use crate::reconcile::rulesync::RuleSync;
use crate::source::{self, Snapshot};
use crate::spec::config::{Config, HttpAuth, Source};
use crate::spec::inventory::Inventory;
use crate::store::records::{ClusterRecord, NewRun};
use crate::store::{Store, StoreError, snapshot};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

pub mod alerts;
pub mod notify;
mod provision;
pub mod scaler;
pub mod usage;

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

/// Mutable daemon state shared by the tasks.
struct Shared {
    world: RwLock<World>,
    /// Keys whose next reconcile checks for drift (set by the resync).
    drift_due: Mutex<HashSet<Key>>,
    /// Outcome of the last reconcile of each key and its failure count.
    outcomes: Mutex<BTreeMap<Key, (Outcome, u32)>>,
    notes: Mutex<BTreeMap<&'static str, String>>,
    last_inventory: Mutex<Option<Inventory>>,
    /// The pass in progress: from the queue leaving idle to idle again.
    pass: Mutex<Option<Pass>>,
    last_publish: Mutex<Option<std::time::Instant>>,
    metrics: Arc<Metrics>,
    dashboards: crate::reconcile::dashsync::DashboardSync,
    /// The applied snapshot and the one before it (a reconcile that started
    /// before the switch may still read that root): their leases keep the
    /// Git source from pruning the checkouts.
    held: Mutex<Vec<Snapshot>>,
}

/// Counters of one pass, appended to the run history when it ends.
#[derive(Debug, Clone, Copy)]
struct Pass {
    started_at: u64,
    reconciled: u32,
    errors: u32,
}

impl Shared {
    fn world(&self) -> World {
        self.world
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
    fn note(&self, topic: &'static str, text: Option<String>) {
        let mut n = self
            .notes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match text {
            Some(t) => n.insert(topic, t),
            None => n.remove(topic),
        };
    }
    fn notes(&self) -> Vec<String> {
        self.notes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }
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
    let db_path = config.state_dir.join("smo.redb");
    let store = Arc::new(blocking(move || Store::open(&db_path)).await??);
    // What a killed run was doing between an effect and its record: made
    // known to the store first, so the passes below finish or undo it.
    let s = Arc::clone(&store);
    let resolved =
        blocking(move || crate::reconcile::actions::journal::resolve(&s, now())).await??;
    if !resolved.is_empty() {
        tracing::warn!(graphs = ?resolved, "resolved operations a previous run left unrecorded");
    }
    let karmada = Karmada::connect(
        config.karmada.kubeconfig.as_deref(),
        config.karmada.context.as_deref(),
    )
    .await?;
    let metrics = Arc::new(Metrics::new());
    let prometheus = match &config.prometheus.url {
        Some(url) => Some(Prometheus::new(PrometheusConfig {
            url: url.clone(),
            timeout: config.prometheus.query_timeout,
            retries: config.prometheus.query_retries,
        })?),
        None => None,
    };
    let engine = Engine {
        helm: Helm::new(HelmConfig::from_config(&config)).with_metrics(Arc::clone(&metrics)),
        karmada: karmada.clone(),
        store: Arc::clone(&store),
        dependency_poll: Duration::from_secs(5),
        rules: RuleSync::from_config(&config, prometheus.clone()),
        dashboards: crate::reconcile::dashsync::DashboardSync::from_config(&config.grafana)?,
        metrics: Arc::clone(&metrics),
    };
    // The endpoint comes up before the first snapshot so that /healthz
    // answers (and /readyz explains) while a Git remote is still awaited.
    let (http_tx, http_rx) = mpsc::channel::<http::Request>(256);
    let server = if opts.http && !opts.once {
        let auth = match (config.http.auth, &config.http.token_file) {
            (HttpAuth::None, _) => {
                tracing::warn!(
                    listen = %config.http.listen,
                    "http.auth is none: anyone who reaches the endpoint can trigger deployments"
                );
                http::Auth::None
            }
            (HttpAuth::Bearer, Some(file)) => http::Auth::Bearer(http::Secret::read(file)?),
            (HttpAuth::Bearer, None) => return Err(DaemonError::NoWebhookToken),
        };
        let mut hc = HttpConfig::new(config.http.listen, auth);
        hc.max_body = config.http.max_body_bytes;
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
        shared
            .drift_due
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(keys);
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
                scaling_loop(
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
        let nfvcl = match &config.nfvcl {
            Some(n) => Some(crate::adapters::nfvcl::Nfvcl::new(
                &crate::adapters::nfvcl::NfvclConfig {
                    url: n.url.clone(),
                    timeout: n.timeout,
                },
            )?),
            None => None,
        };
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
                    shared.drift_due.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(keys.iter().cloned());
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

    let outcomes = shared
        .outcomes
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
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

async fn worker(
    engine: Engine,
    queue: Queue,
    shared: Arc<Shared>,
    store: Arc<Store>,
    opts: RunOptions,
    state_dir: PathBuf,
) {
    while let Some(key) = queue.next().await {
        let started_at = now();
        let world = shared.world();
        let drift = shared
            .drift_due
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&key);
        let t = std::time::Instant::now();
        let outcome = match key.parse::<crate::keys::GraphKey>() {
            Ok(k) => match engine.reconcile(&world, &k, drift).await {
                Ok(o) => o,
                Err(e) => Outcome::Retry(StepError::from(e)),
            },
            // Keys are built from graph identities: a malformed one is a bug.
            Err(e) => Outcome::Stalled(StepError::terminal(Reason::Internal, e.to_string())),
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
            shared
                .world
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .replace
                .remove(&key);
        }
        let failures = {
            let mut o = shared
                .outcomes
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
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
                let d = backoff(
                    failures,
                    opts.backoff_base,
                    opts.backoff_cap,
                    crate::retry::seed_of(&key),
                );
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
            let mut p = shared
                .pass
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
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
            if let Ok(Err(e)) = tokio::task::spawn_blocking(move || s.append_run(run)).await {
                tracing::warn!(error = %e, "could not record the run");
            }
        }
        let due = {
            let mut last = shared
                .last_publish
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let due = queue.is_idle() || last.is_none_or(|t| t.elapsed() >= PUBLISH_EVERY);
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

/// The status snapshot next to the database, for `smo status`; the
/// graph and service gauges follow it.
async fn publish(store: &Arc<Store>, shared: &Arc<Shared>, state_dir: &Path) {
    if let Some(snap) = publish_notes(store, state_dir, shared.notes()).await {
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

/// Runs the scaler every `interval`: changed decisions refresh their
/// graph's status; infeasible ones ask for re-placement.
async fn scaling_loop(
    mut scaler: scaler::Scaler,
    shared: Arc<Shared>,
    queue: Queue,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => if *shutdown.borrow() { return },
        }
        let world = shared.world();
        match scaler.tick(&world).await {
            Ok(report) => {
                if !report.replace.is_empty() {
                    let mut w = shared
                        .world
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    for (key, why) in &report.replace {
                        tracing::warn!(key = %key, reason = %why, "scaling infeasible: re-placement requested");
                        w.replace.insert(key.clone(), why.clone());
                    }
                }
                for key in report
                    .changed
                    .iter()
                    .chain(report.replace.iter().map(|(k, _)| k))
                {
                    queue.enqueue(key);
                }
            }
            Err(e) => tracing::warn!(error = %e, "scaling pass failed"),
        }
    }
}

async fn first_snapshot(
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
                reference: reference.clone(),
                path: path.clone(),
                auth: auth.clone(),
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
                tokio::spawn(git.poll(interval, gtx, shutdown.clone()));
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

/// Publishes a status snapshot with these notes (also before the world
/// exists, when the source has not answered yet).
async fn publish_notes(
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

async fn load(snap: &Snapshot) -> Result<DesiredState, DaemonError> {
    let root = snap.root.clone();
    let state = blocking(move || load_root(&root))
        .await?
        .map_err(|e| DaemonError::Load(e.to_string()))?;
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
    for f in &state.findings {
        tracing::warn!(finding = %f, "descriptor finding");
    }
    Ok(state)
}

/// Every key the daemon is responsible for: desired and recorded graphs.
async fn all_keys(shared: &Arc<Shared>, store: &Arc<Store>) -> Result<Vec<Key>, DaemonError> {
    let world = shared.world();
    let store = Arc::clone(store);
    let recorded = blocking(move || store.graphs()).await??;
    let mut keys: BTreeSet<Key> = recorded
        .into_iter()
        .map(|g| format!("{}/{}", g.project, g.graph))
        .collect();
    keys.extend(
        world
            .desired
            .graphs
            .iter()
            .filter_map(|e| e.id.as_ref().map(|id| format!("{}/{id}", e.project))),
    );
    Ok(keys.into_iter().collect())
}

/// A new desired state: re-merge cluster metadata, apply the prune guard,
/// record the revision and enqueue every key.
async fn apply_snapshot(
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
    let desired_keys: BTreeSet<String> = desired
        .graphs
        .iter()
        .filter_map(|e| e.id.as_ref().map(|id| format!("{}/{id}", e.project)))
        .collect();
    let removing = recorded
        .iter()
        .filter(|g| !desired_keys.contains(&format!("{}/{}", g.project, g.graph)))
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
    let inventory = shared
        .last_inventory
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let key_of =
        |e: &crate::desired::GraphEntry| e.id.as_ref().map(|id| format!("{}/{id}", e.project));
    let (everything, changed): (bool, BTreeSet<String>) = {
        let prev = shared.world().desired;
        let before: BTreeMap<String, &crate::desired::GraphEntry> = prev
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
        let mut w = shared
            .world
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(inv) = &inventory {
            w.clusters = merge(inv, &desired.clusters).0;
        }
        w.revision.clone_from(&snap.revision);
        w.root.clone_from(&snap.root);
        w.desired = Arc::new(desired);
        w.prune_blocked = blocked;
    }
    let (s, rev) = (Arc::clone(store), snap.revision.clone());
    blocking(move || s.set_source_revision(&rev)).await??;
    shared.metrics.clear(Family::SourceRevision);
    shared
        .metrics
        .set(Family::SourceRevision, &[&snap.revision], 1.0);
    #[allow(clippy::cast_precision_loss)] // unix seconds fit an f64 exactly
    shared
        .metrics
        .set(Family::SourceLastSync, &[], now() as f64);
    tracing::info!(revision = %snap.revision, changed = changed.len(), "new desired state");
    // Graphs whose descriptor changed (or all, when settings or cluster
    // metadata did) go first; the others follow shortly, because a file
    // they do not own (a local chart) may have changed too.
    let keys: BTreeSet<String> = recorded
        .iter()
        .map(|g| format!("{}/{}", g.project, g.graph))
        .chain(desired_keys.iter().cloned())
        .collect();
    for k in keys {
        if everything || changed.contains(&k) || !desired_keys.contains(&k) {
            queue.enqueue(&k);
        } else {
            queue.requeue_after(&k, UNCHANGED_DELAY);
        }
    }
    let mut held = shared.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    held.push(snap);
    if held.len() > 2 {
        held.remove(0);
    }
    Ok(())
}

/// How long graphs whose descriptor did not change wait behind the ones
/// that did, after a new snapshot.
const UNCHANGED_DELAY: Duration = Duration::from_secs(2);

/// The status snapshot is rewritten at most this often while work is
/// queued (and always when the queue drains): rewriting it after every one
/// of hundreds of reconciles would cost more than the reconciles.
const PUBLISH_EVERY: Duration = Duration::from_secs(1);

/// Reads the inventory; a readiness change enqueues the graphs that use
/// the cluster (failover) and records when it became NotReady.
async fn refresh_inventory(
    shared: &Arc<Shared>,
    karmada: &Karmada,
    config: &Config,
    store: &Arc<Store>,
    queue: &Queue,
    enqueue_changes: bool,
) {
    let inv = match karmada.inventory(&config.karmada.gpu_resource).await {
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
    let at = now();
    let changed: (Vec<String>, bool) = {
        let mut w = shared
            .world
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let before: BTreeMap<String, bool> = w
            .clusters
            .iter()
            .map(|c| (c.name.clone(), c.ready))
            .collect();
        let facts: Vec<ClusterFacts> = merge(&inv, &w.desired.clusters).0;
        let mut changed = Vec::new();
        for c in &facts {
            if before.get(&c.name) != Some(&c.ready) {
                changed.push(c.name.clone());
            }
            if c.ready {
                w.not_ready_since.remove(&c.name);
            } else {
                w.not_ready_since.entry(c.name.clone()).or_insert(at);
            }
        }
        let names_changed = {
            let old: BTreeSet<&String> = before.keys().collect();
            let new: BTreeSet<&String> = facts.iter().map(|c| &c.name).collect();
            old != new
        };
        w.clusters = facts;
        (changed, names_changed)
    };
    let (changed, names_changed) = changed;
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
    *shared
        .last_inventory
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(inv.clone());
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
    if let Ok(Err(e)) = tokio::task::spawn_blocking(move || s.put_clusters(&records)).await {
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
