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

use super::DaemonError;
use crate::adapters::grafana::{self, GrafanaClient, GrafanaError, Token};
use crate::adapters::helm::HelmConfig;
use crate::adapters::karmada::{Karmada, KarmadaError};
use crate::adapters::nfvcl::{Nfvcl, NfvclConfig, NfvclError};
use crate::adapters::prometheus::{Prometheus, PrometheusConfig, PrometheusError};
use crate::dashboards::DashboardConfig;
use crate::http::{self, HttpConfig};
use crate::reconcile::dashsync::DashboardSync;
use crate::reconcile::rulesync::{RuleSync, Sink};
use crate::source::git;
use crate::spec::config::{self, Config, HttpAuth, RuleSink};
use crate::store::DB_FILE;
use std::path::PathBuf;
use std::time::Duration;

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
    }
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
