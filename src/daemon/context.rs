//! The one place that turns the configuration into the daemon's effects:
//! the store, Karmada, helm, Prometheus, the rules sink, Grafana and the
//! dashboards, NFVCL and the HTTP endpoint's settings. Everything is built
//! here and injected downwards (mini-redis's wiring); nothing below reads
//! the configuration file's types.
//!
//! Adapters own their configuration structs and never import
//! [`crate::spec::config`]; the functions below translate its sections into
//! them, for the daemon and for the CLI alike.
//!
//! [`Context::build`] checks in a fixed order, which is the order in which
//! a misconfigured daemon reports its first error: the state directory, the
//! store (what a killed run left unrecorded resolved first), Karmada,
//! Prometheus, Grafana, the endpoint's authentication, NFVCL.

use super::{DaemonError, blocking, notify, now};
use crate::adapters::grafana::{self, GrafanaClient, GrafanaError, Token};
use crate::adapters::helm::{Helm, HelmConfig};
use crate::adapters::karmada::{Karmada, KarmadaError, Signal};
use crate::adapters::nfvcl::{Nfvcl, NfvclConfig, NfvclError};
use crate::adapters::prometheus::{Prometheus, PrometheusConfig, PrometheusError};
use crate::dashboards::DashboardConfig;
use crate::ha::Leadership;
use crate::hdar::auth::AuthSource;
use crate::hdar::{Hdar, Limits, OciConfig, OciRegistry, RegistryError};
use crate::http::{self, HttpConfig};
use crate::metrics::Metrics;
use crate::reconcile::dashsync::DashboardSync;
use crate::reconcile::engine::Engine;
use crate::reconcile::rulesync::{RuleSync, Sink};
use crate::source::git;
use crate::spec::config::{self, Config, HttpAuth, RuleSink};
use crate::store::{DB_FILE, Store};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How the daemon runs, besides its configuration file: set by `smo run`'s
/// flags, and by tests (no endpoint, short intervals, `--once`).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// One full pass, then exit.
    pub once: bool,
    pub workers: usize,
    /// Overrides `intervals.inventory` (the fallback relist of the
    /// clusters; their watch reports changes as they happen).
    pub inventory_interval: Option<Duration>,
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
            inventory_interval: None,
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

/// Every effect the daemon's tasks use, built once at start.
pub(super) struct Context {
    pub(super) store: Arc<Store>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) karmada: Karmada,
    /// `None`: no `prometheus.url` (no scaling loop, no reloads).
    pub(super) prometheus: Option<Prometheus>,
    pub(super) engine: Engine,
    /// `None`: no endpoint (`--once`, or turned off by the options).
    pub(super) http: Option<HttpConfig>,
    /// `None`: no `nfvcl` block (a `provision` block is then reported).
    pub(super) nfvcl: Option<Nfvcl>,
    /// Pulls what `hdaGraphRef` files name (cache under the state dir).
    pub(super) hdar: Arc<Artifacts>,
    /// The descriptor outcomes kept between snapshots.
    pub(super) loads: Arc<crate::desired::incremental::LoadCache>,
    /// Changes the watch caches saw (`None` with `--once`: no watches).
    pub(super) signals: Option<tokio::sync::mpsc::Receiver<Signal>>,
    /// Whether this instance acts: always, or while it holds the leader
    /// Lease (`ha.enabled`); its fence guards helm's and Karmada's writes.
    pub(super) leadership: Leadership,
    /// Where acknowledged alerts are shared between instances (`None`
    /// without leader election).
    pub(super) mirror: Option<crate::ha::triggers::TriggerMirror>,
}

/// The HDAR client and its artifact cache.
pub type Artifacts = Hdar<OciRegistry>;

/// The HDAR client with the `hdar` section's credentials, plain HTTP for
/// `helm.insecureRegistries`, caching under `state_dir`.
pub fn hdar(config: &Config, state_dir: &std::path::Path) -> Result<Artifacts, RegistryError> {
    let limits = Limits::default();
    let registry = OciRegistry::new(OciConfig {
        insecure_registries: config.helm.insecure_registries.clone(),
        auth: AuthSource {
            file: config.hdar.auth_file.clone(),
        },
        max_layer_bytes: limits.max_archive_bytes,
        ..OciConfig::default()
    })?;
    Ok(Hdar::new(registry, state_dir, limits))
}

impl Context {
    pub(super) async fn build(config: &Config, opts: &RunOptions) -> Result<Context, DaemonError> {
        std::fs::create_dir_all(&config.state_dir).map_err(|source| DaemonError::StateDir {
            path: config.state_dir.clone(),
            source,
        })?;
        let db_path = store_path(config);
        // A restart right after a kill may find the lock held for a moment.
        let options = crate::store::StoreOptions {
            // The outbox is written only while someone reads it.
            outbox: if config.events.sinks.is_empty() {
                0
            } else {
                config.events.outbox_size
            },
            ..crate::store::StoreOptions::default()
        };
        let store = Arc::new(
            blocking(move || Store::open_waiting_with(&db_path, options, Duration::from_secs(5)))
                .await??,
        );
        // What a killed run was doing between an effect and its record: made
        // known to the store first, so the passes that follow finish or undo
        // it.
        let s = Arc::clone(&store);
        let resolved =
            blocking(move || crate::reconcile::actions::journal::resolve(&s, now())).await??;
        if !resolved.is_empty() {
            tracing::warn!(graphs = ?resolved, "resolved operations a previous run left unrecorded");
        }
        let mut karmada = karmada(&config.karmada).await?;
        // A single pass reads each object once: watching would only add
        // requests.
        let mut signals = None;
        if !opts.once {
            // Bounded: a burst waits in the API server's stream rather
            // than in memory here.
            let (tx, rx) = tokio::sync::mpsc::channel(1024);
            karmada = karmada.with_watches(tx);
            signals = Some(rx);
        }
        let metrics = Arc::new(Metrics::new());
        let leadership = if config.ha.enabled {
            Leadership::elected(&ha_settings(&config.ha), Some(Arc::clone(&metrics)))
        } else {
            Leadership::single(Some(Arc::clone(&metrics)))
        };
        let karmada = karmada.with_fence(leadership.fence());
        let prometheus = prometheus(&config.prometheus)?;
        let scratch = scratch_path(config);
        let dir = scratch.clone();
        match blocking(move || prepare_scratch(&dir)).await? {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "removed values files a previous run left"),
            Err(source) => {
                return Err(DaemonError::StateDir {
                    path: scratch,
                    source,
                });
            }
        }
        let mut helm = helm_config(config);
        helm.scratch = Some(scratch);
        let engine = Engine {
            helm: Helm::new(helm)
                .with_metrics(Arc::clone(&metrics))
                .with_fence(leadership.fence()),
            karmada: karmada.clone(),
            store: Arc::clone(&store),
            dependency_poll: Duration::from_secs(5),
            rules: rule_sync(&config.prometheus, prometheus.clone()),
            dashboards: dashboard_sync(&config.grafana)?,
            metrics: Arc::clone(&metrics),
            retry: crate::retry::Policy {
                base: opts.backoff_base,
                cap: opts.backoff_cap,
            },
            clean: Arc::default(),
        };
        let http = if opts.http && !opts.once {
            Some(http_config(&config.http)?)
        } else {
            None
        };
        let nfvcl = nfvcl(config.nfvcl.as_ref())?;
        let hdar = Arc::new(hdar(config, &config.state_dir)?);
        let mirror = config.ha.enabled.then(|| {
            crate::ha::triggers::TriggerMirror::new(karmada.client(), &config.ha.namespace)
        });
        Ok(Context {
            mirror,
            leadership,
            loads: Arc::default(),
            signals,
            hdar,
            store,
            metrics,
            karmada,
            prometheus,
            engine,
            http,
            nfvcl,
        })
    }
}

/// The elector's settings from the `ha` section.
pub fn ha_settings(c: &config::Ha) -> crate::ha::Settings {
    crate::ha::Settings {
        lease_name: c.lease_name.clone(),
        namespace: c.namespace.clone(),
        lease_duration: c.lease_duration,
        renew_deadline: c.renew_deadline,
        retry_period: c.retry_period,
        identity: c.identity.clone(),
    }
}

/// The database file in the state directory (the daemon's, and the one
/// `smo status` opens when no daemon holds it).
pub fn store_path(config: &Config) -> PathBuf {
    config.state_dir.join(DB_FILE)
}

/// helm runs against the Karmada control plane the `karmada` section names.
pub fn helm_config(config: &Config) -> HelmConfig {
    HelmConfig {
        binary: config.helm.binary.clone(),
        kubeconfig: config.karmada.kubeconfig.clone(),
        context: config.karmada.context.clone(),
        timeout: config.helm.timeout,
        wait: config.helm.wait,
        extra_args: config.helm.extra_args.clone(),
        insecure_registries: config.helm.insecure_registries.clone(),
        scratch: None,
    }
}

/// The daemon's directory for helm's values files, `stateDir/tmp`.
pub fn scratch_path(config: &Config) -> PathBuf {
    config.state_dir.join("tmp")
}

/// Empties the scratch directory of what a killed run left (values files
/// of helm calls it never finished) and creates it private. Only for the
/// holder of the store's lock: no other daemon shares the directory, and
/// the CLI writes its values files elsewhere.
fn prepare_scratch(dir: &std::path::Path) -> std::io::Result<usize> {
    let mut removed = 0;
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for entry in entries {
                let entry = entry?;
                let path = entry.path();
                if entry.file_type()?.is_dir() {
                    std::fs::remove_dir_all(&path)?;
                } else {
                    std::fs::remove_file(&path)?;
                }
                removed += 1;
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut builder = std::fs::DirBuilder::new();
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder.create(dir)?;
        }
        Err(e) => return Err(e),
    }
    Ok(removed)
}

/// [`Karmada::connect`] with the `karmada` section.
pub async fn karmada(c: &config::Karmada) -> Result<Karmada, KarmadaError> {
    Karmada::connect(c.kubeconfig.as_deref(), c.context.as_deref()).await
}

/// The Prometheus client, when `prometheus.url` is set.
pub fn prometheus(c: &config::Prometheus) -> Result<Option<Prometheus>, PrometheusError> {
    c.url
        .as_ref()
        .map(|url| {
            Prometheus::new(PrometheusConfig {
                url: url.clone(),
                timeout: c.query_timeout,
                retries: c.query_retries,
            })
        })
        .transpose()
}

/// Where alert rules go (`prometheus.rulesDir` or `prometheusRule`);
/// `prometheus` is reloaded after a rules file changed.
pub fn rule_sync(c: &config::Prometheus, prometheus: Option<Prometheus>) -> RuleSync {
    let sink = match &c.rules {
        RuleSink::None => Sink::None,
        RuleSink::Dir(dir) => Sink::Dir(crate::rules::dir::DirSink {
            dir: dir.clone(),
            promtool: c.promtool.clone(),
        }),
        RuleSink::PrometheusRule { namespace, labels } => Sink::Object {
            namespace: namespace.clone(),
            labels: labels.clone(),
        },
    };
    RuleSync::new(sink, c.severity.clone(), prometheus)
}

/// What the dashboards look like, from the `grafana` section.
pub fn dashboard_config(c: &config::Grafana) -> DashboardConfig {
    DashboardConfig {
        folder: c.folder.clone(),
        datasource: c.datasource.clone(),
        window: c.window.clone(),
        queries: c.queries.clone(),
    }
}

/// The client the `grafana` section asks for: `None` when no `url` is set
/// (the API sink is off), an error when the token is missing or unreadable.
pub fn grafana_client(
    c: &config::Grafana,
    timeout: Duration,
) -> Result<Option<GrafanaClient>, GrafanaError> {
    let Some(url) = c.url.as_deref() else {
        return Ok(None);
    };
    let path = c.token_file.as_deref().ok_or(GrafanaError::MissingToken)?;
    GrafanaClient::new(url, Token::read(path)?, timeout).map(Some)
}

/// The dashboards of the graphs and clusters, published to Grafana's API,
/// to `grafana.dashboardsDir`, to both or to neither.
pub fn dashboard_sync(c: &config::Grafana) -> Result<DashboardSync, GrafanaError> {
    Ok(DashboardSync::new(
        dashboard_config(c),
        grafana_client(c, grafana::DEFAULT_TIMEOUT)?,
        c.dashboards_dir.clone().map(grafana::DirSink::new),
    ))
}

/// The endpoint's settings; the bearer token is read now, so a missing or
/// empty token file stops the start rather than every webhook.
pub fn http_config(c: &config::Http) -> Result<HttpConfig, DaemonError> {
    let auth = match (c.auth, &c.token_file) {
        (HttpAuth::None, _) => {
            tracing::warn!(
                listen = %c.listen,
                "http.auth is none: anyone who reaches the endpoint can trigger deployments"
            );
            http::Auth::None
        }
        (HttpAuth::Bearer, Some(file)) => http::Auth::Bearer(http::Secret::read(file)?),
        (HttpAuth::Bearer, None) => return Err(DaemonError::NoWebhookToken),
    };
    let mut hc = HttpConfig::new(c.listen, auth);
    hc.max_body = c.max_body_bytes;
    Ok(hc)
}

/// The NFVCL client, when an `nfvcl` block is set.
pub fn nfvcl(c: Option<&config::Nfvcl>) -> Result<Option<Nfvcl>, NfvclError> {
    c.map(|n| {
        Nfvcl::new(&NfvclConfig {
            url: n.url.clone(),
            timeout: n.timeout,
        })
    })
    .transpose()
}

impl From<&config::GitRef> for git::GitRef {
    fn from(r: &config::GitRef) -> Self {
        match r {
            config::GitRef::Branch(b) => git::GitRef::Branch(b.clone()),
            config::GitRef::Tag(t) => git::GitRef::Tag(t.clone()),
            config::GitRef::Commit(c) => git::GitRef::Commit(c.clone()),
        }
    }
}

impl From<&config::GitAuth> for git::GitAuth {
    fn from(a: &config::GitAuth) -> Self {
        match a {
            config::GitAuth::None => git::GitAuth::None,
            config::GitAuth::Token { file, username } => git::GitAuth::Token {
                file: file.clone(),
                username: username.clone(),
            },
            config::GitAuth::SshKey { file } => git::GitAuth::SshKey { file: file.clone() },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::prepare_scratch;

    #[test]
    fn scratch_is_created_private_and_emptied_of_a_killed_runs_files() {
        let state = tempfile::tempdir().unwrap();
        let dir = state.path().join("tmp");
        assert_eq!(prepare_scratch(&dir).unwrap(), 0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        std::fs::create_dir(dir.join("smo-helm-abc")).unwrap();
        std::fs::write(dir.join("smo-helm-abc/values.json"), "{}").unwrap();
        std::fs::write(dir.join("stray"), "x").unwrap();
        let kept = state.path().join("smo.redb");
        std::fs::write(&kept, "db").unwrap();
        assert_eq!(prepare_scratch(&dir).unwrap(), 2);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        assert!(kept.exists(), "only the scratch directory is emptied");
    }
}
