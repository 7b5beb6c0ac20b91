//! Coming up, after [`Context::build`]: the endpoint (answering 503 until
//! the world exists), the first snapshot (nothing is reconciled against an
//! unknown desired state), the inventory, the initial world and the status;
//! then the daemon tells systemd it is ready.

use super::*;
use crate::locks::MutexExt;

/// A daemon that is up: what its loop and its shutdown work with.
pub(super) struct Started {
    pub(super) shared: Arc<Shared>,
    pub(super) queue: Queue,
    /// `None` without an endpoint.
    pub(super) server: Option<http::Server>,
    /// Answers the endpoint's requests; ends once the server is shut down.
    pub(super) requests: tokio::task::JoinHandle<()>,
    /// Snapshots after the first one, from the watch or the poller.
    pub(super) snapshots: mpsc::Receiver<Snapshot>,
    /// Why the source could not be read (the last snapshot stays).
    pub(super) source_failures: mpsc::Receiver<String>,
    /// Keeps `snapshots` open until the daemon stops.
    pub(super) snapshot_tx: mpsc::Sender<Snapshot>,
}

/// Brings the daemon up; `None` when `shutdown` came before the source's
/// first snapshot (nothing was done, the endpoint is closed again).
pub(super) async fn start(
    config: &Config,
    opts: &RunOptions,
    ctx: &Context,
    shutdown: &watch::Receiver<bool>,
) -> Result<Option<Started>, DaemonError> {
    let store = &ctx.store;
    // The endpoint comes up before the first snapshot so that /healthz
    // answers (and /readyz explains) while a Git remote is still awaited.
    let (http_tx, http_rx) = mpsc::channel::<http::Request>(256);
    let server = match &ctx.http {
        Some(hc) => Some(http::Server::start(
            hc.clone(),
            http_tx,
            Arc::clone(&ctx.metrics),
        )?),
        None => {
            drop(http_tx);
            None
        }
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
        alerts::serve(
            http_rx,
            world_rx,
            Arc::clone(store),
            queue.clone(),
            ctx.mirror.clone(),
        ),
        tracing::info_span!("http"),
    ));
    // The first snapshot, before anything else: nothing is reconciled
    // against an unknown desired state.
    let (snapshot_tx, snapshots) = mpsc::channel::<Snapshot>(4);
    let (source_fail_tx, source_failures) = mpsc::channel::<String>(4);
    let first = first_snapshot(
        config,
        opts,
        snapshot_tx.clone(),
        source_fail_tx,
        shutdown.clone(),
        store,
    )
    .await?;
    // Stopped before the source ever answered: nothing was done.
    let Some(first) = first else {
        // Close the endpoint and let the request task release the store.
        drop(blocking(move || drop(server)).await);
        let _ = tokio::time::timeout(Duration::from_secs(10), requests).await;
        return Ok(None);
    };
    let desired = load(&first, &ctx.hdar, &ctx.loads).await?;

    let shared = Arc::new(Shared::new(
        &first,
        Arc::clone(&ctx.metrics),
        ctx.engine.dashboards.clone(),
        ctx.leadership.clone(),
    ));
    // Starts the clusters' watch too; its first list is not waited for.
    refresh_inventory(
        &shared,
        &ctx.karmada,
        config,
        store,
        &queue,
        (Read::Cached, false),
    )
    .await;
    let first_revision = first.revision.clone();
    apply_snapshot(&shared, store, &queue, first, desired).await?;
    // What carries smo's labels and the store lost is recorded before the
    // first pass, which then keeps or removes it.
    super::sweep::sweep(&ctx.karmada, store, &shared, &queue).await;
    let _ = world_tx.send(Some(Arc::clone(&shared)));
    publish(store, &shared, &config.state_dir).await;
    // The store is open and the desired state loaded: ready.
    opts.notify
        .ready(&super::role::status_line(&shared, &first_revision));
    // A full pass checks drift everywhere.
    let keys = all_keys(&shared, store).await?;
    shared.drift_due.lock_or_recover().extend(keys);
    Ok(Some(Started {
        shared,
        queue,
        server,
        requests,
        snapshots,
        source_failures,
        snapshot_tx,
    }))
}
