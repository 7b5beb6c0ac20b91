//! The daemon's host configuration (`/etc/smo/config.yaml` by default).
//!
//! Two stages: the raw document (schema-checked, serde) and the validated
//! [`Config`] with units parsed, defaults applied and relative paths
//! resolved against the configuration file's directory. Secrets are never
//! in this file, only paths of files that hold them.

/// PromQL templates of the dashboard panels: the dashboards module owns
/// them and their defaults (spec depends on dashboards, never the reverse).
pub use crate::dashboards::Queries as GrafanaQueries;
use crate::units::parse_duration;
use crate::validate::findings::{Finding, Pos, Severity};
use crate::validate::schema::SchemaKind;
use crate::validate::yaml::Document;
use crate::validate::{parse_document, read_document, typed};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod events;
pub mod ha;
mod raw;

pub use events::{Events, Sink, SinkAuth, SinkTarget};
pub use ha::Ha;

use raw::*;

/// Default location of the configuration file.
pub const DEFAULT_PATH: &str = "/etc/smo/config.yaml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration {path} is invalid:\n{}", render(.findings))]
    Invalid {
        path: String,
        findings: Vec<Finding>,
    },
}

fn render(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum GitRef {
    Branch(String),
    Tag(String),
    Commit(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum GitAuth {
    None,
    Token {
        file: PathBuf,
        username: Option<String>,
    },
    /// Host keys are checked by libgit2 against the service user's
    /// `~/.ssh/known_hosts`.
    SshKey {
        file: PathBuf,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Source {
    Dir {
        path: PathBuf,
        debounce: Duration,
    },
    Git {
        url: String,
        reference: GitRef,
        path: Option<PathBuf>,
        interval: Duration,
        auth: GitAuth,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Karmada {
    /// `None`: the client's defaults (KUBECONFIG, ~/.kube/config).
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// Extended resource counted as GPU.
    pub gpu_resource: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Helm {
    pub binary: PathBuf,
    pub timeout: Duration,
    pub wait: bool,
    pub extra_args: Vec<String>,
    pub insecure_registries: Vec<String>,
}

/// Pulling graphs from the HDAR.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HdarConfig {
    /// Docker `config.json` with registry credentials.
    pub auth_file: Option<PathBuf>,
    /// Tags and version ranges are resolved again this often.
    pub interval: Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum RuleSink {
    None,
    Dir(PathBuf),
    PrometheusRule {
        namespace: String,
        labels: BTreeMap<String, String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prometheus {
    /// Queried by the scaling loop and reloaded after a rules file changed.
    pub url: Option<String>,
    pub rules: RuleSink,
    /// `severity` label of the generated alert rules (empty: none).
    pub severity: String,
    /// When set, every rules file is checked with `promtool check rules`
    /// before it replaces the previous one.
    pub promtool: Option<PathBuf>,
    pub query_timeout: Duration,
    /// Retries of a failed query or reload (transient failures only).
    pub query_retries: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Grafana {
    /// Sink 1: dashboards published through Grafana's HTTP API.
    pub url: Option<String>,
    pub token_file: Option<PathBuf>,
    /// Prefix of the title of the per-project folders (default `smo`).
    pub folder: Option<String>,
    /// Sink 2: one JSON file per dashboard (`DIR/PROJECT/UID.json`) for
    /// Grafana's file provisioning.
    pub dashboards_dir: Option<PathBuf>,
    /// uid of the Prometheus datasource every panel queries.
    pub datasource: String,
    /// Substituted for `{window}` in the queries.
    pub window: String,
    pub queries: GrafanaQueries,
}

impl Default for Grafana {
    /// The dashboards' own defaults ([`crate::dashboards::DashboardConfig`]),
    /// no sink.
    fn default() -> Self {
        let d = crate::dashboards::DashboardConfig::default();
        Grafana {
            url: None,
            token_file: None,
            folder: d.folder,
            dashboards_dir: None,
            datasource: d.datasource,
            window: d.window,
            queries: d.queries,
        }
    }
}

/// NFVCL, which creates the clusters whose metadata has a
/// `provision.nfvcl` block.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Nfvcl {
    /// Base URL, e.g. `http://nfvcl.example:5002`, without a trailing `/`.
    pub url: String,
    /// Per-request timeout.
    pub timeout: Duration,
}

/// How `POST /alerts` is authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpAuth {
    /// `Authorization: Bearer <token>` with the token of `http.tokenFile`.
    #[default]
    Bearer,
    /// No authentication (explicit opt-out; warned about at start).
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Http {
    pub listen: SocketAddr,
    pub token_file: Option<PathBuf>,
    pub auth: HttpAuth,
    /// Largest accepted webhook body.
    pub max_body_bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Log {
    pub format: LogFormat,
    pub level: String,
}

/// The validated host configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    pub source: Source,
    pub state_dir: PathBuf,
    pub karmada: Karmada,
    pub helm: Helm,
    pub hdar: HdarConfig,
    pub prometheus: Prometheus,
    pub grafana: Grafana,
    /// `None`: no cluster is provisioned (a `provision` block is then an
    /// error the daemon reports).
    pub nfvcl: Option<Nfvcl>,
    pub http: Http,
    pub resync_interval: Duration,
    pub scaling_interval: Duration,
    /// How often the cluster inventory is listed again although the
    /// clusters' watch reports every change: a fallback, never the only
    /// way a change is seen.
    pub inventory_interval: Duration,
    pub log: Log,
    pub events: Events,
    /// Leader election between management hosts (off by default).
    pub ha: Ha,
}

/// Loads and validates the configuration file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let shown = path.display().to_string();
    let base = path.parent().unwrap_or(Path::new("."));
    judge(read_document(path, &shown), &shown, base)
}

/// Validates configuration given as text, as [`load`] does a file named
/// `shown`; relative paths resolve against `base`, the directory the file
/// would be in.
pub fn parse(text: &str, shown: &str, base: &Path) -> Result<Config, ConfigError> {
    judge(parse_document(text, shown), shown, base)
}

fn judge(
    read: Result<Option<Document>, Vec<Finding>>,
    shown: &str,
    base: &Path,
) -> Result<Config, ConfigError> {
    let invalid = |findings| ConfigError::Invalid {
        path: shown.to_owned(),
        findings,
    };
    let doc = read.map_err(invalid)?.ok_or_else(|| {
        invalid(vec![Finding::new(
            shown,
            Pos { line: 1, column: 1 },
            "",
            Severity::Error,
            "configuration file is empty",
        )])
    })?;
    let (raw, mut findings) = typed::<Raw>(SchemaKind::Config, &doc, shown);
    let Some(raw) = raw else {
        return Err(invalid(findings));
    };
    let mut ctx = Stage {
        base,
        doc: &doc,
        file: shown,
        findings: &mut findings,
    };
    let config = ctx.build(raw);
    if findings.iter().any(Finding::is_error) {
        return Err(invalid(findings));
    }
    Ok(config)
}

struct Stage<'a> {
    base: &'a Path,
    doc: &'a Document,
    file: &'a str,
    findings: &'a mut Vec<Finding>,
}

impl Stage<'_> {
    fn path(&self, p: &str) -> PathBuf {
        self.base.join(p)
    }

    fn duration(&mut self, text: Option<&str>, pointer: &str, default: Duration) -> Duration {
        match text.map(parse_duration) {
            None => default,
            Some(Ok(d)) if d.is_zero() => {
                self.error(pointer, "must be longer than zero".into());
                default
            }
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                self.error(pointer, e.to_string());
                default
            }
        }
    }

    fn error(&mut self, pointer: &str, message: String) {
        self.findings
            .push(self.doc.error(self.file, pointer, message));
    }

    fn build(&mut self, raw: Raw) -> Config {
        let source = match (raw.source.dir, raw.source.git) {
            (Some(dir), _) => Source::Dir {
                path: self.path(&dir),
                // Long enough to coalesce an editor's write-rename-chmod
                // burst, short enough to feel immediate.
                debounce: self.duration(
                    raw.source.debounce.as_deref(),
                    "/source/debounce",
                    Duration::from_millis(200),
                ),
            },
            (None, Some(git)) => {
                let reference = match git.reference {
                    RawRef { tag: Some(t), .. } => GitRef::Tag(t),
                    RawRef {
                        commit: Some(c), ..
                    } => GitRef::Commit(c),
                    RawRef {
                        branch: Some(b), ..
                    } => GitRef::Branch(b),
                    RawRef { .. } => GitRef::Branch("main".into()),
                };
                let auth = match git.auth {
                    RawAuth {
                        token_file: Some(f),
                        ssh_key_file: None,
                        username,
                        ..
                    } => GitAuth::Token {
                        file: self.path(&f),
                        username,
                    },
                    RawAuth {
                        ssh_key_file: Some(f),
                        token_file: None,
                        ..
                    } => GitAuth::SshKey {
                        file: self.path(&f),
                    },
                    RawAuth {
                        ssh_key_file: Some(_),
                        token_file: Some(_),
                        ..
                    } => {
                        self.error(
                            "/source/git/auth",
                            "set one of `tokenFile` or `sshKeyFile`, not both".into(),
                        );
                        GitAuth::None
                    }
                    _ => GitAuth::None,
                };
                Source::Git {
                    url: git.url,
                    reference,
                    path: git.path.map(PathBuf::from),
                    interval: self.duration(
                        git.interval.as_deref(),
                        "/source/git/interval",
                        Duration::from_secs(30),
                    ),
                    auth,
                }
            }
            (None, None) => unreachable_source(),
        };
        let hdar_default = match &source {
            Source::Git { interval, .. } => *interval,
            Source::Dir { .. } => Duration::from_secs(60),
        };
        let hdar = HdarConfig {
            auth_file: raw.hdar.auth_file.map(|f| self.path(&f)),
            interval: self.duration(raw.hdar.interval.as_deref(), "/hdar/interval", hdar_default),
        };
        let listen_text = raw.http.listen.unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen = listen_text
            .replace("localhost", "127.0.0.1")
            .parse()
            .unwrap_or_else(|_| {
                self.error(
                    "/http/listen",
                    format!("`{listen_text}` is not ADDRESS:PORT"),
                );
                SocketAddr::from(([127, 0, 0, 1], 8080))
            });
        let rules = match (raw.prometheus.rules_dir, raw.prometheus.prometheus_rule) {
            (Some(d), _) => RuleSink::Dir(self.path(&d)),
            (None, Some(r)) => RuleSink::PrometheusRule {
                namespace: r.namespace,
                labels: r.labels,
            },
            (None, None) => RuleSink::None,
        };
        Config {
            source,
            state_dir: raw
                .state_dir
                .map_or_else(|| PathBuf::from("/var/lib/smo"), |d| self.path(&d)),
            karmada: Karmada {
                kubeconfig: raw.karmada.kubeconfig.map(|k| self.path(&k)),
                context: raw.karmada.context,
                gpu_resource: raw
                    .karmada
                    .gpu_resource
                    .unwrap_or_else(|| "nvidia.com/gpu".into()),
            },
            helm: Helm {
                binary: raw
                    .helm
                    .binary
                    .map_or_else(|| PathBuf::from("helm"), PathBuf::from),
                timeout: self.duration(
                    raw.helm.timeout.as_deref(),
                    "/helm/timeout",
                    Duration::from_secs(300),
                ),
                wait: raw.helm.wait.unwrap_or(false),
                extra_args: raw.helm.extra_args,
                insecure_registries: raw.helm.insecure_registries,
            },
            hdar,
            prometheus: Prometheus {
                url: raw
                    .prometheus
                    .url
                    .map(|u| u.trim_end_matches('/').to_owned()),
                rules,
                severity: raw.prometheus.severity.unwrap_or_else(|| "warning".into()),
                promtool: raw.prometheus.promtool.map(PathBuf::from),
                query_timeout: self.duration(
                    raw.prometheus.query_timeout.as_deref(),
                    "/prometheus/queryTimeout",
                    Duration::from_secs(10),
                ),
                query_retries: raw.prometheus.query_retries.unwrap_or(2),
            },
            grafana: {
                let defaults = Grafana::default();
                let q = raw.grafana.queries;
                let d = defaults.queries;
                Grafana {
                    url: raw.grafana.url.map(|u| u.trim_end_matches('/').to_owned()),
                    token_file: raw.grafana.token_file.map(|f| self.path(&f)),
                    folder: raw.grafana.folder,
                    dashboards_dir: raw.grafana.dashboards_dir.map(|d| self.path(&d)),
                    datasource: raw.grafana.datasource.unwrap_or(defaults.datasource),
                    window: raw.grafana.window.unwrap_or(defaults.window),
                    queries: GrafanaQueries {
                        request_rate: q.request_rate.unwrap_or(d.request_rate),
                        cpu: q.cpu.unwrap_or(d.cpu),
                        memory: q.memory.unwrap_or(d.memory),
                        replicas: q.replicas.unwrap_or(d.replicas),
                        cluster_capacity: q.cluster_capacity.unwrap_or(d.cluster_capacity),
                        cluster_allocated: q.cluster_allocated.unwrap_or(d.cluster_allocated),
                    },
                }
            },
            nfvcl: raw.nfvcl.map(|n| Nfvcl {
                url: n.url.trim_end_matches('/').to_owned(),
                // NFVCL answers at once and works asynchronously; 30 s
                // covers a loaded server without hiding a hung one.
                timeout: self.duration(
                    n.timeout.as_deref(),
                    "/nfvcl/timeout",
                    Duration::from_secs(30),
                ),
            }),
            http: {
                let auth = raw.http.auth.unwrap_or_default();
                Http {
                    listen,
                    token_file: raw.http.token_file.map(|f| self.path(&f)),
                    auth,
                    // Alertmanager's notifications are a few KiB; 1 MiB
                    // leaves room for large groups and bounds memory.
                    max_body_bytes: raw.http.max_body_bytes.unwrap_or(1024 * 1024),
                }
            },
            resync_interval: self.duration(
                raw.intervals.resync.as_deref(),
                "/intervals/resync",
                Duration::from_secs(300),
            ),
            scaling_interval: self.duration(
                raw.intervals.scaling.as_deref(),
                "/intervals/scaling",
                Duration::from_secs(30),
            ),
            inventory_interval: self.duration(
                raw.intervals.inventory.as_deref(),
                "/intervals/inventory",
                Duration::from_secs(60),
            ),
            log: Log {
                format: raw.log.format.unwrap_or_default(),
                level: raw.log.level.unwrap_or_else(|| "info".into()),
            },
            events: self.events(raw.events),
            ha: self.ha(raw.ha),
        }
    }
}

/// The schema's `oneOf` guarantees a source; this keeps the match total.
fn unreachable_source() -> Source {
    Source::Dir {
        path: PathBuf::from("."),
        debounce: Duration::from_millis(200),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_given_as_text_is_judged_as_its_file_is() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("state-example/config.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        let shown = path.display().to_string();
        let dir = path.parent().unwrap();
        assert_eq!(parse(&text, &shown, dir).unwrap(), load(&path).unwrap());

        let text = "source:\n  dir: state\nhelm:\n  timeout: 0s\n";
        let Err(ConfigError::Invalid { path, findings }) = parse(text, "c.yaml", dir) else {
            panic!("a zero timeout is refused");
        };
        assert_eq!(path, "c.yaml");
        assert_eq!(
            (findings[0].line, findings[0].pointer.as_str()),
            (4, "/helm/timeout")
        );
    }
}
