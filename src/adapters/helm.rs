//! The one place that runs `helm` (3.8+ and 4.x).
//!
//! Every call is an explicit argument vector (no shell), with
//! `--kubeconfig`/`--kube-context` when configured, the configured extra
//! arguments, and a process timeout a little longer than helm's own
//! `--timeout` (so helm reports its timeout itself when it can). Values go
//! through a file created with mode 0600 in a private temporary directory
//! and removed when the call returns: they may hold secrets, which must not
//! appear in an argument list, a log or a leftover file. Failures come back
//! classified, with the command (never the values), exit status and stderr;
//! whether to retry is the caller's policy ([`HelmError::is_transient`]).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;
use tracing::Instrument;

mod error;
pub use error::{HelmError, HelmErrorKind, classify, is_release_not_found};

/// How to run helm.
#[derive(Debug, Clone)]
pub struct HelmConfig {
    pub binary: PathBuf,
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// helm's `--timeout` for install, upgrade, uninstall and rollback.
    pub timeout: Duration,
    /// Pass `--wait` to install, upgrade and rollback.
    pub wait: bool,
    pub extra_args: Vec<String>,
    /// `host:port` of registries reached over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// Where values files are written, each in a private directory of its
    /// own (the daemon's `stateDir/tmp`, emptied at start, so that a kill
    /// during a helm call leaves nothing behind for long); `None`: the
    /// system's temporary directory.
    pub scratch: Option<PathBuf>,
}

/// What to install: a release of a chart with values.
#[derive(Debug, Clone)]
pub struct ReleaseSpec<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    /// `oci://…` or a chart directory on disk.
    pub chart: &'a str,
    pub version: Option<&'a str>,
    pub values: &'a serde_json::Value,
    /// Labels helm puts on the release's records (`--labels`, helm 3.13
    /// and later): smo's ownership marks, so that a release smo installed
    /// is recognised as smo's whatever the store remembers.
    pub labels: &'a std::collections::BTreeMap<String, String>,
}

/// No labels (a `helm template` needs none).
pub static NO_LABELS: std::collections::BTreeMap<String, String> =
    std::collections::BTreeMap::new();

/// A release's state as `helm status -o json` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseStatus {
    pub revision: u64,
    /// `deployed`, `failed`, `pending-install`, `pending-upgrade`,
    /// `pending-rollback`, `superseded`, `uninstalling`, …
    pub status: String,
}

impl ReleaseStatus {
    /// Left behind by an interrupted operation (a crash mid-upgrade).
    pub fn is_pending(&self) -> bool {
        is_pending_status(&self.status)
    }
}

/// helm's `pending-install`, `pending-upgrade` and `pending-rollback`: a
/// release an interrupted helm call left locked.
pub fn is_pending_status(status: &str) -> bool {
    status.starts_with("pending-")
}

/// One row of `helm history -o json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct HistoryEntry {
    pub revision: u64,
    pub status: String,
    #[serde(default)]
    pub chart: String,
}

/// A read or uninstall result with "the release does not exist" turned into
/// `None`; every other failure stays an error (see [`is_release_not_found`]).
fn absent_as_none(result: Result<String, HelmError>) -> Result<Option<String>, HelmError> {
    match result {
        Ok(out) => Ok(Some(out)),
        Err(e) if e.kind() == HelmErrorKind::ReleaseNotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Margin on top of helm's own timeout before the process is killed.
const KILL_MARGIN: Duration = Duration::from_secs(30);
/// Timeout of calls that only read (status, history, get manifest).
const READ_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct Helm {
    cfg: HelmConfig,
    /// Counts calls by verb and outcome (`smo_helm_calls_total`).
    metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
    /// Checked before every call that changes a release.
    fence: crate::ha::Fence,
}

/// The verbs that change a release (the others only read).
const WRITES: &[&str] = &["upgrade", "install", "uninstall", "rollback"];

impl Helm {
    pub fn new(cfg: HelmConfig) -> Self {
        Helm {
            cfg,
            metrics: None,
            fence: crate::ha::Fence::open(),
        }
    }

    /// Calls that change a release run only while `fence` admits them.
    pub fn with_fence(mut self, fence: crate::ha::Fence) -> Self {
        self.fence = fence;
        self
    }

    pub fn with_metrics(mut self, metrics: std::sync::Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    fn base(&self, verb: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = verb.iter().map(|s| (*s).to_owned()).collect();
        if let Some(k) = &self.cfg.kubeconfig {
            args.push("--kubeconfig".into());
            args.push(k.display().to_string());
        }
        if let Some(c) = &self.cfg.context {
            args.push("--kube-context".into());
            args.push(c.clone());
        }
        args
    }

    fn chart_args(&self, spec: &ReleaseSpec<'_>, args: &mut Vec<String>) {
        args.push(spec.chart.to_owned());
        if let Some(v) = spec.version {
            args.push("--version".into());
            args.push(v.to_owned());
        }
        if let Some(rest) = spec.chart.strip_prefix("oci://") {
            let host = rest.split('/').next().unwrap_or_default();
            if self.cfg.insecure_registries.iter().any(|r| r == host) {
                args.push("--plain-http".into());
            }
        }
    }

    async fn run(&self, args: Vec<String>, limit: Duration) -> Result<String, HelmError> {
        let verb = args.first().cloned().unwrap_or_default();
        if WRITES.contains(&verb.as_str()) {
            self.fence.check().map_err(|source| HelmError::NotLeader {
                verb: verb.clone(),
                source,
            })?;
        }
        let result = self.run_unmetered(args, limit).await;
        if let Some(m) = &self.metrics {
            let outcome = match &result {
                Ok(_) => "ok",
                Err(HelmError::TimedOut { .. }) => "timeout",
                Err(_) => "error",
            };
            m.inc(crate::metrics::Family::HelmCalls, &[&verb, outcome]);
        }
        result
    }

    async fn run_unmetered(&self, args: Vec<String>, limit: Duration) -> Result<String, HelmError> {
        let command = format!("{} {}", self.cfg.binary.display(), args.join(" "));
        let mut cmd = Command::new(&self.cfg.binary);
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = cmd.spawn().map_err(|source| HelmError::Spawn {
            binary: self.cfg.binary.display().to_string(),
            source,
        })?;
        tracing::debug!(verb = %verb_of(&args), "helm started");
        // The span follows the wait (instrument, not enter: a guard held
        // across an await would tag whatever else runs on the thread).
        let span = tracing::debug_span!("helm", verb = %verb_of(&args));
        let output = match tokio::time::timeout(limit, child.wait_with_output())
            .instrument(span)
            .await
        {
            Err(_) => {
                return Err(HelmError::TimedOut {
                    command,
                    after: limit,
                });
            }
            Ok(Err(source)) => {
                return Err(HelmError::Spawn {
                    binary: self.cfg.binary.display().to_string(),
                    source,
                });
            }
            Ok(Ok(o)) => o,
        };
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        Err(HelmError::Failed {
            kind: classify(&stderr),
            command,
            status: output.status.to_string(),
            stderr,
        })
    }

    fn mutate_args(&self, args: &mut Vec<String>) {
        args.push("--timeout".into());
        args.push(format!("{}s", self.cfg.timeout.as_secs().max(1)));
        if self.cfg.wait {
            args.push("--wait".into());
        }
        args.extend(self.cfg.extra_args.iter().cloned());
    }

    /// `helm upgrade --install`; returns the new release status.
    pub async fn upgrade_install(
        &self,
        spec: &ReleaseSpec<'_>,
    ) -> Result<ReleaseStatus, HelmError> {
        let values = ValuesFile::write(spec.values, self.cfg.scratch.as_deref())?;
        let mut args = self.base(&["upgrade", "--install", spec.name]);
        self.chart_args(spec, &mut args);
        args.extend([
            "--namespace".into(),
            spec.namespace.to_owned(),
            "--values".into(),
        ]);
        args.push(values.path().display().to_string());
        if !spec.labels.is_empty() {
            args.push("--labels".into());
            args.push(
                spec.labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(","),
            );
        }
        self.mutate_args(&mut args);
        self.run(args, self.cfg.timeout + KILL_MARGIN).await?;
        drop(values);
        self.status(spec.name, spec.namespace)
            .await?
            .ok_or_else(|| HelmError::Output {
                command: "helm status".into(),
                reason: "release missing right after install".into(),
            })
    }

    /// `helm template`: what would be applied, without touching a cluster.
    pub async fn template(&self, spec: &ReleaseSpec<'_>) -> Result<String, HelmError> {
        let values = ValuesFile::write(spec.values, self.cfg.scratch.as_deref())?;
        let mut args = vec!["template".to_owned(), spec.name.to_owned()];
        self.chart_args(spec, &mut args);
        args.extend([
            "--namespace".into(),
            spec.namespace.to_owned(),
            "--values".into(),
        ]);
        args.push(values.path().display().to_string());
        args.extend(self.cfg.extra_args.iter().cloned());
        self.run(args, READ_TIMEOUT).await
    }

    /// `helm uninstall`; an absent release is not an error.
    pub async fn uninstall(&self, name: &str, namespace: &str) -> Result<(), HelmError> {
        let mut args = self.base(&["uninstall", name, "--namespace", namespace]);
        args.push("--timeout".into());
        args.push(format!("{}s", self.cfg.timeout.as_secs().max(1)));
        absent_as_none(self.run(args, self.cfg.timeout + KILL_MARGIN).await).map(|_| ())
    }

    /// `helm rollback NAME REVISION`.
    pub async fn rollback(
        &self,
        name: &str,
        namespace: &str,
        revision: u64,
    ) -> Result<(), HelmError> {
        let mut args = self.base(&[
            "rollback",
            name,
            &revision.to_string(),
            "--namespace",
            namespace,
        ]);
        self.mutate_args(&mut args);
        self.run(args, self.cfg.timeout + KILL_MARGIN)
            .await
            .map(|_| ())
    }

    /// `helm status -o json`; `None` when the release does not exist.
    pub async fn status(
        &self,
        name: &str,
        namespace: &str,
    ) -> Result<Option<ReleaseStatus>, HelmError> {
        let args = self.base(&["status", name, "--namespace", namespace, "--output", "json"]);
        let command = args.join(" ");
        let Some(out) = absent_as_none(self.run(args, READ_TIMEOUT).await)? else {
            return Ok(None);
        };
        let v: serde_json::Value = serde_json::from_str(&out).map_err(|e| HelmError::Output {
            command: command.clone(),
            reason: e.to_string(),
        })?;
        let revision = v["version"].as_u64();
        let status = v.pointer("/info/status").and_then(|s| s.as_str());
        match (revision, status) {
            (Some(revision), Some(status)) => Ok(Some(ReleaseStatus {
                revision,
                status: status.to_owned(),
            })),
            _ => Err(HelmError::Output {
                command,
                reason: "no version or info.status".into(),
            }),
        }
    }

    /// Runs a read command whose output is JSON.
    async fn run_json<T: serde::de::DeserializeOwned>(
        &self,
        args: Vec<String>,
    ) -> Result<T, HelmError> {
        let command = args.join(" ");
        let out = self.run(args, READ_TIMEOUT).await?;
        serde_json::from_str(&out).map_err(|e| HelmError::Output {
            command,
            reason: e.to_string(),
        })
    }

    /// `helm history -o json`, oldest first.
    pub async fn history(
        &self,
        name: &str,
        namespace: &str,
    ) -> Result<Vec<HistoryEntry>, HelmError> {
        let args = self.base(&[
            "history",
            name,
            "--namespace",
            namespace,
            "--output",
            "json",
        ]);
        self.run_json(args).await
    }

    /// `helm get manifest`: the objects the release's last revision applied.
    pub async fn get_manifest(&self, name: &str, namespace: &str) -> Result<String, HelmError> {
        let args = self.base(&["get", "manifest", name, "--namespace", namespace]);
        self.run(args, READ_TIMEOUT).await
    }

    /// `helm get values -o json`: the values the release's last revision
    /// was installed with (what smo passed; `null` when none were).
    pub async fn get_values(
        &self,
        name: &str,
        namespace: &str,
    ) -> Result<serde_json::Value, HelmError> {
        let args = self.base(&[
            "get",
            "values",
            name,
            "--namespace",
            namespace,
            "--output",
            "json",
        ]);
        self.run_json(args).await
    }
}

/// A values file readable only by us, removed on drop.
struct ValuesFile {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl ValuesFile {
    fn write(values: &serde_json::Value, scratch: Option<&Path>) -> Result<Self, HelmError> {
        use std::io::Write;
        // TempDir is created 0700; the file itself is created 0600 before
        // any byte is written.
        let mut builder = tempfile::Builder::new();
        builder.prefix("smo-helm-");
        let dir = match scratch {
            Some(parent) => builder.tempdir_in(parent),
            None => builder.tempdir(),
        }
        .map_err(HelmError::Values)?;
        let path = dir.path().join("values.json");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path).map_err(HelmError::Values)?;
        // JSON is YAML: helm reads it as a values file.
        let bytes = serde_json::to_vec(values).map_err(|e| HelmError::Values(e.into()))?;
        file.write_all(&bytes).map_err(HelmError::Values)?;
        Ok(ValuesFile { _dir: dir, path })
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

fn verb_of(args: &[String]) -> &str {
    args.first().map(String::as_str).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_covers_helm_3_and_4_wording() {
        let cases = [
            (
                "Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress",
                HelmErrorKind::OperationInProgress,
            ),
            (
                "Error: Kubernetes cluster unreachable: Get \"http://127.0.0.1:1/version\": dial tcp 127.0.0.1:1: connect: connection refused",
                HelmErrorKind::ClusterUnreachable,
            ),
            (
                "Error: failed to do request: Head \"https://127.0.0.1:5000/v2/charts/a/manifests/1.0\": dial tcp 127.0.0.1:5000: connect: connection refused",
                HelmErrorKind::RegistryUnreachable,
            ),
            (
                "Error: http: server gave HTTP response to HTTPS client",
                HelmErrorKind::RegistryUnreachable,
            ),
            (
                "Error: 127.0.0.1:5000/charts/a:1.0.0: not found",
                HelmErrorKind::ChartNotFound,
            ),
            (
                "Error: path \"./charts/x\" not found",
                HelmErrorKind::ChartNotFound,
            ),
            (
                "Error: UPGRADE FAILED: template: a/templates/d.yaml:3:9: executing \"a/templates/d.yaml\" at <.Values.x.y>: nil pointer",
                HelmErrorKind::RenderError,
            ),
            (
                "Error: UPGRADE FAILED: context deadline exceeded",
                HelmErrorKind::Timeout,
            ),
            ("Error: release: not found", HelmErrorKind::ReleaseNotFound),
            ("Error: something else entirely", HelmErrorKind::Other),
        ];
        for (stderr, want) in cases {
            assert_eq!(classify(stderr), want, "{stderr}");
        }
    }

    fn failed(stderr: &str) -> Result<String, HelmError> {
        Err(HelmError::Failed {
            kind: classify(stderr),
            command: "helm status x".into(),
            status: "exit status: 1".into(),
            stderr: stderr.into(),
        })
    }

    /// Texts printed by helm 4.1 and 3.18 (identical for these cases; helm 4
    /// writes "kubernetes cluster unreachable" in lower case).
    #[test]
    fn only_helms_release_not_found_means_absent() {
        for absent in [
            "Error: release: not found",
            "Error: uninstall: Release not loaded: web-1: release: not found",
            "WARNING: Kubernetes configuration file is group-readable.\nError: release: not found",
        ] {
            assert!(
                matches!(absent_as_none(failed(absent)), Ok(None)),
                "{absent}"
            );
        }
        for error in [
            "Error: Kubernetes cluster unreachable: Get \"http://127.0.0.1:1/version\": dial tcp 127.0.0.1:1: connect: connection refused",
            "Error: kubernetes cluster unreachable: context \"x\" does not exist",
            "Error: context \"x\" does not exist",
            "Error: kubernetes cluster unreachable: the server could not find the requested resource",
            "Error: query: failed to query with labels: the server could not find the requested resource (get secrets)",
            "Error: uninstall: Release not loaded: web: query: failed to query with labels: the server could not find the requested resource (get secrets)",
            "Error: failed to do request: 404 page not found",
            "Error: 127.0.0.1:5000/charts/a:1.0.0: not found",
            "Error: chart \"web\" not found in repository",
            "Error: release: not found, but also: something else",
        ] {
            assert!(absent_as_none(failed(error)).is_err(), "{error}");
            assert_ne!(classify(error), HelmErrorKind::ReleaseNotFound, "{error}");
        }
        assert!(matches!(absent_as_none(Ok("{}".into())), Ok(Some(_))));
    }

    #[test]
    fn values_files_are_private_and_removed() {
        let v = serde_json::json!({"secret": "s3cr3t"});
        let scratch = tempfile::tempdir().unwrap();
        let f = ValuesFile::write(&v, Some(scratch.path())).unwrap();
        let path = f.path().to_owned();
        assert!(path.starts_with(scratch.path()), "{path:?}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            r#"{"secret":"s3cr3t"}"#
        );
        drop(f);
        assert!(!path.exists());
        assert!(!path.parent().unwrap().exists());
    }
}
