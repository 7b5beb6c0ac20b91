//! [`KarmadaError`] and the classification of kube's errors into it
//! (transient, worth retrying, or terminal).

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum KarmadaError {
    #[error(
        "cannot use the Karmada kubeconfig ({what}): {source}; check karmada.kubeconfig and karmada.context"
    )]
    Kubeconfig {
        what: String,
        #[source]
        source: BoxError,
    },
    #[error(
        "cannot reach the Karmada API server ({operation}): {source}; check that it is up and reachable from this host (retried)"
    )]
    Unreachable {
        operation: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("Karmada refused {operation} of {object}: {code} {reason}: {message}{hint}", hint = api_hint(*code))]
    Api {
        operation: &'static str,
        object: String,
        code: u16,
        reason: String,
        message: String,
    },
    #[error(
        "Karmada does not serve kind {kind} in {api_version}; install the CRD that defines it, or fix apiVersion/kind"
    )]
    UnknownKind { api_version: String, kind: String },
    #[error("cannot read or write {what}: {reason}")]
    Decode { what: String, reason: String },
    #[error("cannot send {object}: {reason}; fix the object in the chart or descriptor")]
    Invalid { object: String, reason: String },
    /// Refused before it was sent: another instance holds the leader Lease.
    #[error("{operation} not sent: {source}")]
    NotLeader {
        operation: &'static str,
        #[source]
        source: crate::ha::NotLeader,
    },
}

fn api_hint(code: u16) -> &'static str {
    match code {
        401 | 403 => "; check the credentials and RBAC of karmada.kubeconfig",
        404 => "; the object or its namespace does not exist",
        409 => "; another writer changed it at the same time (retried)",
        400 | 422 => "; the object is invalid: fix it in the chart or descriptor",
        429 => "; the API server is throttling requests (retried)",
        500.. => "; the API server failed (retried)",
        _ => "",
    }
}

impl KarmadaError {
    /// Worth retrying with backoff: the API server was unreachable, failed
    /// (5xx), throttled (429), or an apply met a concurrent write (409).
    /// Everything else is terminal until the input or the cluster changes.
    pub fn is_transient(&self) -> bool {
        match self {
            KarmadaError::Unreachable { .. } | KarmadaError::NotLeader { .. } => true,
            KarmadaError::Api {
                code, operation, ..
            } => *code >= 500 || *code == 429 || (*code == 409 && *operation == "apply"),
            _ => false,
        }
    }

    /// HTTP status of an API error.
    pub fn code(&self) -> Option<u16> {
        match self {
            KarmadaError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// Classifies a kube error. `operation` is a fixed verb (`apply`, `get`…),
/// `object` an identity, never a body.
pub(super) fn classify(operation: &'static str, object: &str, e: kube::Error) -> KarmadaError {
    match e {
        kube::Error::Api(s) => KarmadaError::Api {
            operation,
            object: object.to_owned(),
            code: s.code,
            reason: s.reason,
            message: s.message,
        },
        kube::Error::SerdeError(e) => KarmadaError::Decode {
            what: format!("the answer to {operation} of {object}"),
            reason: e.to_string(),
        },
        kube::Error::BuildRequest(e) => KarmadaError::Invalid {
            object: object.to_owned(),
            reason: e.to_string(),
        },
        e @ (kube::Error::Auth(_)
        | kube::Error::OpensslTls(_)
        | kube::Error::TlsRequired
        | kube::Error::InferConfig(_)
        | kube::Error::InferKubeconfig(_)) => KarmadaError::Kubeconfig {
            what: format!("credentials or TLS for {operation}"),
            source: Box::new(e),
        },
        // Connection refused, resets, timeouts, TLS handshakes, bodies cut
        // short: the server is not answering properly.
        source => KarmadaError::Unreachable { operation, source },
    }
}

impl crate::retry::Transient for KarmadaError {
    fn is_transient(&self) -> bool {
        KarmadaError::is_transient(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_errors_are_the_retryable_ones() {
        let api = |operation, code| KarmadaError::Api {
            operation,
            object: "o".into(),
            code,
            reason: String::new(),
            message: String::new(),
        };
        let cases = [
            (api("apply", 500), true),
            (api("get", 503), true),
            (api("list", 429), true),
            (api("apply", 409), true),
            (api("delete", 409), false),
            (api("apply", 422), false),
            (api("get", 403), false),
            (
                KarmadaError::UnknownKind {
                    api_version: "x/v1".into(),
                    kind: "Y".into(),
                },
                false,
            ),
        ];
        for (e, want) in cases {
            assert_eq!(e.is_transient(), want, "{e}");
        }
    }
}
