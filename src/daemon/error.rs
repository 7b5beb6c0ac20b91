//! What stops the daemon: a failure at start (configuration, store,
//! Karmada, an adapter refusing its settings) or of its own machinery.
//! Failures of one reconcile never end up here; they are its outcome.

use crate::adapters::grafana::GrafanaError;
use crate::adapters::karmada::KarmadaError;
use crate::adapters::nfvcl::NfvclError;
use crate::adapters::prometheus::PrometheusError;
use crate::http::HttpError;
use crate::source::SourceError;
use crate::store::StoreError;
use std::path::PathBuf;

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
    Source(#[from] SourceError),
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
    Nfvcl(#[from] NfvclError),
    #[error("Grafana: {0}")]
    Grafana(#[from] GrafanaError),
    #[error("HDAR client: {0}")]
    Hdar(#[from] crate::hdar::RegistryError),
}
