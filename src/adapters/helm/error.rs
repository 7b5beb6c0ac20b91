//! How a helm call fails: [`HelmError`], and the classification of helm's
//! stderr into [`HelmErrorKind`] (which failures are worth retrying).

use std::time::Duration;

/// What failed, classified from helm's exit and stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelmErrorKind {
    ChartNotFound,
    RegistryUnreachable,
    RenderError,
    ClusterUnreachable,
    OperationInProgress,
    ReleaseNotFound,
    Timeout,
    Other,
}

#[derive(Debug, thiserror::Error)]
pub enum HelmError {
    #[error("cannot run {binary}: {source}; check helm.binary")]
    Spawn {
        binary: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the values file: {0}")]
    Values(#[source] std::io::Error),
    #[error("`{command}` failed ({kind:?}, {status}): {stderr}{hint}", hint = hint(*kind))]
    Failed {
        kind: HelmErrorKind,
        command: String,
        status: String,
        stderr: String,
    },
    #[error("`{command}` did not finish within {after:?}")]
    TimedOut { command: String, after: Duration },
    #[error("`{command}` printed output smo cannot read: {reason}")]
    Output { command: String, reason: String },
    /// Refused before it ran: another instance holds the leader Lease.
    #[error("helm {verb} not run: {source}")]
    NotLeader {
        verb: String,
        #[source]
        source: crate::ha::NotLeader,
    },
}

fn hint(kind: HelmErrorKind) -> &'static str {
    match kind {
        HelmErrorKind::ChartNotFound => "; check artifact.ociImage and artifact.version",
        HelmErrorKind::RegistryUnreachable => {
            "; check the registry address, and helm.insecureRegistries for plain-HTTP registries"
        }
        HelmErrorKind::RenderError => "; the chart does not render with these values",
        HelmErrorKind::ClusterUnreachable => {
            "; check karmada.kubeconfig and that the Karmada API server is up"
        }
        HelmErrorKind::OperationInProgress => {
            "; another helm operation holds the release; it is retried"
        }
        _ => "",
    }
}

impl HelmError {
    pub fn kind(&self) -> HelmErrorKind {
        match self {
            HelmError::Failed { kind, .. } => *kind,
            HelmError::TimedOut { .. } => HelmErrorKind::Timeout,
            _ => HelmErrorKind::Other,
        }
    }

    /// Worth retrying with backoff (network, busy release, timeouts);
    /// otherwise terminal until the input changes.
    pub fn is_transient(&self) -> bool {
        matches!(self, HelmError::NotLeader { .. })
            || matches!(
                self.kind(),
                HelmErrorKind::RegistryUnreachable
                    | HelmErrorKind::ClusterUnreachable
                    | HelmErrorKind::OperationInProgress
                    | HelmErrorKind::Timeout
            )
    }
}

/// Classifies helm's stderr. Messages differ between helm 3 and 4 and
/// between registries; these patterns cover both versions' wording.
pub fn classify(stderr: &str) -> HelmErrorKind {
    if is_release_not_found(stderr) {
        return HelmErrorKind::ReleaseNotFound;
    }
    let s = stderr.to_ascii_lowercase();
    let any = |pats: &[&str]| pats.iter().any(|p| s.contains(p));
    if any(&[
        "another operation (install/upgrade/rollback) is in progress",
        "operation in progress",
    ]) {
        HelmErrorKind::OperationInProgress
    } else if any(&[
        "kubernetes cluster unreachable",
        "the server could not find the requested resource (get",
        "connect: connection refused\" while",
    ]) || (any(&["connection refused", "no such host", "i/o timeout"])
        && any(&["kube", "/api", "/apis", "cluster"]))
    {
        HelmErrorKind::ClusterUnreachable
    } else if any(&[
        "timed out waiting",
        "context deadline exceeded",
        "timeout waiting",
    ]) {
        HelmErrorKind::Timeout
    } else if any(&[
        "connection refused",
        "no such host",
        "dial tcp",
        "tls: ",
        "http: server gave http response to https client",
    ]) {
        HelmErrorKind::RegistryUnreachable
    } else if any(&[
        "not found",
        "no such file or directory",
        "path \"",
        "manifest unknown",
        "name unknown",
        "failed to fetch",
        "404",
    ]) {
        HelmErrorKind::ChartNotFound
    } else if any(&[
        "parse error",
        "template:",
        "yaml:",
        "error converting yaml",
        "render error",
        "execution error",
        "unable to build kubernetes objects",
    ]) {
        HelmErrorKind::RenderError
    } else {
        HelmErrorKind::Other
    }
}

/// helm's own message for "this release does not exist", and nothing else.
///
/// helm 3.18 and 4.1 print exactly `Error: release: not found` (`status`,
/// `history`, `get`) and `Error: uninstall: Release not loaded: NAME:
/// release: not found` (`uninstall`) — the storage driver's
/// `ErrReleaseNotFound`, possibly wrapped once by uninstall. The last line
/// of stderr must be one of these whole: a missing kube context, an
/// unreachable cluster, a proxy's `404 page not found` or a missing chart
/// also say "not found" somewhere, and taking them for an absent release
/// would make smo forget a live one.
pub fn is_release_not_found(stderr: &str) -> bool {
    const NOT_FOUND: &str = "release: not found";
    const UNINSTALL: &str = "uninstall: Release not loaded: ";
    let Some(last) = stderr.lines().map(str::trim).rfind(|l| !l.is_empty()) else {
        return false;
    };
    let msg = last.strip_prefix("Error: ").unwrap_or(last);
    if msg == NOT_FOUND {
        return true;
    }
    // `uninstall: Release not loaded: NAME: release: not found`, NAME a
    // release name (DNS-1123 label characters only).
    msg.strip_prefix(UNINSTALL)
        .and_then(|rest| rest.strip_suffix(NOT_FOUND))
        .and_then(|rest| rest.strip_suffix(": "))
        .is_some_and(|name| {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        })
}

impl crate::retry::Transient for HelmError {
    fn is_transient(&self) -> bool {
        HelmError::is_transient(self)
    }
}
