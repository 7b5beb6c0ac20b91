//! NFVCL REST API (nfvcl-ng, API v2): K8s blueprints and VIM registration.
//!
//! Every HTTP call to NFVCL is in this module.
//!
//! NFVCL chooses a blueprint's id and its creation model accepts no name or
//! label of ours, so a creation whose answer was lost is found again by its
//! content: [`Nfvcl::k8s_blueprints`] lists the K8s blueprints with the
//! creation request NFVCL keeps (`create_config`) and their workers
//! (`state.vm_workers`), and [`K8sBlueprint::created_from`] compares that
//! request with the one smo sends for a provision. No retries here: whether and
//! when to retry is the provisioning executor's policy, guided by
//! [`NfvclError::is_transient`] (connect failures, timeouts and 5xx are
//! transient; 4xx are terminal until the cluster file changes).
//!
//! Invariant: the VIM password is read from its file only to build the VIM
//! registration body; it is never logged, kept in an error or a record.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::spec::cluster::{Flavor, NfvclProvision};

/// Where NFVCL is and how long to wait for an answer.
#[derive(Debug, Clone)]
pub struct NfvclConfig {
    /// Base URL, e.g. `http://nfvcl.example:5002`.
    pub url: String,
    /// Per-request timeout (NFVCL answers creation requests at once and
    /// works asynchronously, so this bounds a hung server, not the work).
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum NfvclError {
    #[error("cannot build the HTTP client for NFVCL: {0}; check this machine's TLS setup")]
    Client(#[source] reqwest::Error),
    #[error(
        "NFVCL at {url} is unreachable ({operation}): {source}; check nfvcl.url and that NFVCL is running"
    )]
    Unreachable {
        url: String,
        operation: &'static str,
        #[source]
        source: reqwest::Error,
    },
    #[error(
        "NFVCL at {url} did not answer {operation} within {after:?}; check its load or raise nfvcl.timeout"
    )]
    TimedOut {
        url: String,
        operation: &'static str,
        after: Duration,
    },
    #[error("NFVCL refused {operation} with HTTP {status}: {message}; {hint}")]
    Rejected {
        operation: &'static str,
        status: u16,
        /// NFVCL's own explanation (its `detail` field, or the body).
        message: String,
        hint: &'static str,
    },
    #[error("NFVCL failed {operation} with HTTP {status}: {message}; it may recover, smo retries")]
    Server {
        operation: &'static str,
        status: u16,
        message: String,
    },
    #[error(
        "NFVCL's answer to {operation} is not what smo expects: {reason}; check the NFVCL version (API v2 is needed)"
    )]
    Answer {
        operation: &'static str,
        reason: String,
    },
    #[error(
        "NFVCL has {} K8s blueprints ({}) made from the request smo sends for this cluster, none recorded by smo; smo neither picks one nor creates another: delete the extra ones in NFVCL",
        ids.len(),
        ids.join(", ")
    )]
    Ambiguous { ids: Vec<String> },
    #[error(
        "cannot read the VIM password of {vim} from {file}: {source}; check vim.passwordFile and its permissions"
    )]
    PasswordFile {
        vim: String,
        file: String,
        #[source]
        source: std::io::Error,
    },
}

impl NfvclError {
    /// Worth retrying later without a change of the cluster file (an
    /// ambiguity ends when the operator deletes the extra blueprints).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            NfvclError::Unreachable { .. }
                | NfvclError::TimedOut { .. }
                | NfvclError::Server { .. }
                | NfvclError::Ambiguous { .. }
        )
    }

    /// Replaces `secret` in NFVCL's message with `***`.
    fn redact(self, secret: &str) -> NfvclError {
        let clean = |m: String| {
            if secret.is_empty() {
                m
            } else {
                m.replace(secret, "***")
            }
        };
        match self {
            NfvclError::Rejected {
                operation,
                status,
                message,
                hint,
            } => NfvclError::Rejected {
                operation,
                status,
                message: clean(message),
                hint,
            },
            NfvclError::Server {
                operation,
                status,
                message,
            } => NfvclError::Server {
                operation,
                status,
                message: clean(message),
            },
            other => other,
        }
    }

    /// The HTTP status NFVCL answered, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            NfvclError::Rejected { status, .. } | NfvclError::Server { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }
}

/// A blueprint's state as NFVCL reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlueprintStatus {
    /// `idle`: the last operation finished; the cluster is usable.
    Idle,
    /// `error`, with NFVCL's detail.
    Error(String),
    /// Anything else (`processing`, `deploying`, …): work in progress.
    Busy(String),
}

/// A K8s blueprint as NFVCL lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct K8sBlueprint {
    pub id: String,
    /// The creation request NFVCL keeps (`create_config`), when reported.
    pub create_config: Option<Value>,
    /// Worker nodes NFVCL has (`state.vm_workers`), when reported.
    pub workers: Option<u32>,
    pub status: Option<BlueprintStatus>,
}

impl K8sBlueprint {
    /// Whether NFVCL made this blueprint from the request smo sends for
    /// `spec`: every field smo sends has the same value (NFVCL adds its own
    /// defaults). The worker count is left out: it may have been scaled, or
    /// changed in the file since the request.
    pub fn created_from(&self, spec: &NfvclProvision) -> bool {
        let Some(have) = &self.create_config else {
            return false;
        };
        let mut want = create_body(spec);
        if let Some(areas) = want.get_mut("areas").and_then(Value::as_array_mut) {
            for a in areas {
                if let Some(a) = a.as_object_mut() {
                    a.remove("worker_replicas");
                }
            }
        }
        contains(have, &want)
    }

    /// The workers the creation request asked for, summed over its areas.
    pub fn requested_workers(&self) -> Option<u32> {
        let areas = self.create_config.as_ref()?.get("areas")?.as_array()?;
        areas
            .iter()
            .map(|a| a.get("worker_replicas").and_then(Value::as_u64))
            .sum::<Option<u64>>()
            .and_then(|n| u32::try_from(n).ok())
    }
}

/// `have` holds every field of `want` with the same value; arrays match
/// element by element.
fn contains(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => w
            .iter()
            .all(|(k, v)| h.get(k).is_some_and(|hv| contains(hv, v))),
        (Value::Array(h), Value::Array(w)) => {
            h.len() == w.len() && h.iter().zip(w).all(|(a, b)| contains(a, b))
        }
        (h, w) => h == w,
    }
}

/// The NFVCL client.
#[derive(Debug, Clone)]
pub struct Nfvcl {
    http: reqwest::Client,
    base: String,
    timeout: Duration,
}

impl Nfvcl {
    pub fn new(config: &NfvclConfig) -> Result<Nfvcl, NfvclError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(NfvclError::Client)?;
        Ok(Nfvcl {
            http,
            base: config.url.trim_end_matches('/').to_owned(),
            timeout: config.timeout,
        })
    }

    /// Registers the VIM of `spec` in NFVCL's topology; an existing VIM of
    /// that name (409) is kept as it is.
    pub async fn register_vim(&self, spec: &NfvclProvision) -> Result<(), NfvclError> {
        const OP: &str = "VIM registration";
        let vim = &spec.vim;
        let file = vim.password_file.clone();
        // A file read is blocking I/O; keep it off the async workers.
        let read = tokio::task::spawn_blocking(move || std::fs::read_to_string(file))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
        let password = read.map_err(|source| NfvclError::PasswordFile {
            vim: vim.name.clone(),
            file: vim.password_file.clone(),
            source,
        })?;
        let password = password.trim_end_matches(['\n', '\r']).to_owned();
        let body = json!({
            "name": vim.name,
            "vim_type": "openstack",
            "vim_url": vim.url,
            "vim_tenant_name": vim.tenant,
            "vim_user": vim.user,
            "vim_password": password,
            "areas": [spec.area],
        });
        let request = self
            .http
            .post(format!("{}/v1/topology/vim", self.base))
            .json(&body);
        match self.send(OP, request, VIM_HINT).await {
            Ok(_) | Err(NfvclError::Rejected { status: 409, .. }) => Ok(()),
            // A validation answer (FastAPI's 422) echoes the offending
            // input, which may be the whole body with the password.
            Err(e) => Err(e.redact(&password)),
        }
    }

    /// Starts the creation of a K8s blueprint; returns its id.
    pub async fn create_k8s(&self, spec: &NfvclProvision) -> Result<String, NfvclError> {
        const OP: &str = "K8s blueprint creation";
        let body = create_body(spec);
        let request = self
            .http
            .post(format!("{}/nfvcl/v2/api/blue/k8s", self.base))
            .json(&body);
        let answer = self.send(OP, request, SPEC_HINT).await?;
        #[derive(Deserialize)]
        struct Created {
            id: String,
        }
        serde_json::from_value::<Created>(answer)
            .map(|c| c.id)
            .map_err(|e| NfvclError::Answer {
                operation: OP,
                reason: format!("no blueprint id ({e})"),
            })
    }

    /// The blueprint's status; `None` when NFVCL does not know it (404).
    pub async fn status(&self, id: &str) -> Result<Option<BlueprintStatus>, NfvclError> {
        const OP: &str = "blueprint status";
        let request = self
            .http
            .get(format!("{}/nfvcl/v2/api/blue/{id}", self.base));
        let answer = match self.send(OP, request, SPEC_HINT).await {
            Ok(a) => a,
            Err(NfvclError::Rejected { status: 404, .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        status_of(&answer)
            .map(Some)
            .ok_or_else(|| NfvclError::Answer {
                operation: OP,
                reason: "no `status` field".into(),
            })
    }

    /// Every K8s blueprint NFVCL has, with details
    /// (`GET /nfvcl/v2/api/blue/?blue_type=k8s&detailed=true`).
    pub async fn k8s_blueprints(&self) -> Result<Vec<K8sBlueprint>, NfvclError> {
        const OP: &str = "listing K8s blueprints";
        let request = self
            .http
            .get(format!("{}/nfvcl/v2/api/blue/", self.base))
            .query(&[("blue_type", "k8s"), ("detailed", "true")]);
        let answer = self.send(OP, request, SPEC_HINT).await?;
        let items = answer.as_array().ok_or_else(|| NfvclError::Answer {
            operation: OP,
            reason: "not a list".into(),
        })?;
        items
            .iter()
            .map(|item| {
                let id =
                    item.get("id")
                        .and_then(Value::as_str)
                        .ok_or_else(|| NfvclError::Answer {
                            operation: OP,
                            reason: "a blueprint without `id`".into(),
                        })?;
                Ok(K8sBlueprint {
                    id: id.to_owned(),
                    create_config: item.get("create_config").cloned(),
                    workers: item
                        .pointer("/state/vm_workers")
                        .and_then(Value::as_array)
                        .and_then(|w| u32::try_from(w.len()).ok()),
                    status: status_of(item),
                })
            })
            .collect()
    }

    /// Adds `count` workers of the spec's flavor in its area.
    pub async fn add_workers(
        &self,
        id: &str,
        spec: &NfvclProvision,
        count: u32,
    ) -> Result<(), NfvclError> {
        const OP: &str = "adding workers";
        let mut area = area(spec, false);
        area["worker_replicas"] = json!(count);
        let request = self
            .http
            .post(format!("{}/nfvcl/v2/api/blue/k8s/{id}/add_node", self.base))
            .json(&json!({ "areas": [area] }));
        self.send(OP, request, SPEC_HINT).await.map(drop)
    }

    /// Removes `count` workers of the spec's area. smo asks by count
    /// (`{"area_id": N, "count": k}`) rather than by node name: it does not
    /// track node names, and NFVCL picks which workers go.
    pub async fn remove_workers(
        &self,
        id: &str,
        spec: &NfvclProvision,
        count: u32,
    ) -> Result<(), NfvclError> {
        const OP: &str = "removing workers";
        let request = self
            .http
            .delete(format!(
                "{}/nfvcl/v2/api/blue/k8s/{id}/del_workers",
                self.base
            ))
            .json(&json!({ "area_id": spec.area, "count": count }));
        self.send(OP, request, SPEC_HINT).await.map(drop)
    }

    /// Destroys the blueprint; one NFVCL no longer knows (404) is gone.
    pub async fn delete(&self, id: &str) -> Result<(), NfvclError> {
        const OP: &str = "blueprint deletion";
        let request = self
            .http
            .delete(format!("{}/nfvcl/v2/api/blue/{id}", self.base));
        match self.send(OP, request, SPEC_HINT).await {
            Ok(_) | Err(NfvclError::Rejected { status: 404, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn send(
        &self,
        operation: &'static str,
        request: reqwest::RequestBuilder,
        hint: &'static str,
    ) -> Result<Value, NfvclError> {
        let response = request
            .send()
            .await
            .map_err(|e| self.transport(operation, e))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| self.transport(operation, e))?;
        if status.is_success() {
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_str(&text).map_err(|e| NfvclError::Answer {
                operation,
                reason: format!("not JSON ({e})"),
            });
        }
        let message = detail(&text);
        if status.is_server_error() {
            Err(NfvclError::Server {
                operation,
                status: status.as_u16(),
                message,
            })
        } else {
            Err(NfvclError::Rejected {
                operation,
                status: status.as_u16(),
                message,
                hint,
            })
        }
    }

    fn transport(&self, operation: &'static str, error: reqwest::Error) -> NfvclError {
        if error.is_timeout() {
            NfvclError::TimedOut {
                url: self.base.clone(),
                operation,
                after: self.timeout,
            }
        } else {
            NfvclError::Unreachable {
                url: self.base.clone(),
                operation,
                // The URL is our configured base, already in the message.
                source: error.without_url(),
            }
        }
    }
}

const VIM_HINT: &str = "check cluster.provision.nfvcl.vim (name, url, tenant, user, passwordFile)";
const SPEC_HINT: &str = "check cluster.provision.nfvcl (area, mgmtNet, flavors) and that the VIM's area exists in NFVCL's topology";

/// NFVCL (FastAPI) explains a refusal in `detail`; keep the body otherwise,
/// bounded so that an HTML error page does not flood the status.
fn detail(body: &str) -> String {
    let text = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| match v.get("detail") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
            None => None,
        })
        .unwrap_or_else(|| body.trim().to_owned());
    // 500 characters: enough for a validation message, short for a status.
    text.chars().take(500).collect()
}

/// A blueprint's `status`: a word (`idle`, `error`, `processing`…) with a
/// `detail` beside it, or NFVCL-ng's object `{error, current_operation,
/// detail}`.
fn status_of(answer: &Value) -> Option<BlueprintStatus> {
    let detail = |v: &Value| {
        ["detail", "status_detail", "error"]
            .iter()
            .find_map(|k| v.get(*k).and_then(Value::as_str))
            .unwrap_or("no detail given")
            .to_owned()
    };
    match answer.get("status")? {
        Value::String(s) => Some(match s.as_str() {
            "idle" => BlueprintStatus::Idle,
            "error" => BlueprintStatus::Error(detail(answer)),
            other => BlueprintStatus::Busy(other.to_owned()),
        }),
        Value::Object(o) => {
            let status = Value::Object(o.clone());
            if o.get("error").and_then(Value::as_bool) == Some(true) {
                return Some(BlueprintStatus::Error(detail(&status)));
            }
            Some(match o.get("current_operation").and_then(Value::as_str) {
                None | Some("" | "idle" | "IDLE") => BlueprintStatus::Idle,
                Some(other) => BlueprintStatus::Busy(other.to_owned()),
            })
        }
        _ => None,
    }
}

/// The K8s blueprint creation request for a provision.
fn create_body(spec: &NfvclProvision) -> Value {
    json!({
        "cni": spec.cni,
        "master_flavors": flavor(&spec.master_flavor),
        "areas": [area(spec, true)],
    })
}

fn flavor(f: &Flavor) -> Value {
    json!({ "memory_mb": f.memory_mb, "storage_gb": f.storage_gb, "vcpu_count": f.vcpu })
}

fn area(spec: &NfvclProvision, master: bool) -> Value {
    json!({
        "area_id": spec.area,
        "is_master_area": master,
        "mgmt_net": spec.mgmt_net,
        "worker_replicas": spec.workers,
        "worker_flavors": flavor(&spec.worker_flavor),
    })
}
