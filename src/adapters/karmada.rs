//! The one place that talks to the Karmada API server (kube-rs).
//!
//! What `smo` does there, and nothing else: read the member clusters'
//! inventory, server-side apply the objects it owns outside any chart
//! (namespaces, generated PropagationPolicies, PrometheusRules…), read and
//! delete objects, list its own objects for pruning, write replica counts
//! through the `scale` subresource and read Deployment readiness.
//!
//! Invariants:
//! - Every object `smo` applies carries [`MANAGED_BY_LABEL`]`=smo` and the
//!   owner labels ([`Owner::labels`]); pruning finds objects by those
//!   labels only, so an object without them is never deleted by `smo`.
//! - Applies use the field manager [`FIELD_MANAGER`] with `force`: `smo`
//!   is the authority on the fields it sets. Replica counts use their own
//!   manager ([`SCALER_FIELD_MANAGER`]) so that chart applies and the
//!   scaler stay distinguishable in `managedFields`.
//! - apiVersion/kind are resolved through discovery, once per handle and
//!   kind; unknown kinds are not cached (a CRD may be installed later).
//! - Object bodies never reach a log or an error (Secrets): spans and
//!   errors carry identities (apiVersion, kind, namespace, name) only.
//!
//! Failures come back classified ([`KarmadaError::is_transient`]); whether
//! to retry is the caller's policy.

mod listing;

pub use listing::{Managed, ManagedRelease};

use crate::spec::inventory::{Inventory, InventoryCluster, Resource};
use crate::units::quantity_of;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Field manager of everything `smo` applies.
pub const FIELD_MANAGER: &str = "smo";
/// Field manager of replica counts written by the scaler.
pub const SCALER_FIELD_MANAGER: &str = "smo-scaler";
/// The standard label naming the tool that manages an object.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`] on `smo`'s objects.
pub const MANAGED_BY: &str = "smo";
/// The project (namespace) whose desired state holds the object.
pub const PROJECT_LABEL: &str = "smo.nephele.eu/project";
/// The graph (`hdaGraph.id`) whose desired state holds the object.
pub const GRAPH_LABEL: &str = "smo.nephele.eu/graph";

/// kube's default read timeout is about five minutes, sized for watches.
/// This handle never watches: every call is one short request, and a hung
/// API server must fail the reconcile (as `Unreachable`, retried) rather
/// than stall it.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

const CLUSTER_API_VERSION: &str = "cluster.karmada.io/v1alpha1";

/// Identity of one object on Karmada. `namespace` is `None` for
/// cluster-scoped kinds; it is ignored for them if given.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {} {ns}/{}", self.api_version, self.kind, self.name),
            None => write!(f, "{} {} {}", self.api_version, self.kind, self.name),
        }
    }
}

/// The graph an object belongs to: `(project, hdaGraph.id)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Owner {
    pub project: String,
    pub graph: String,
}

impl Owner {
    /// The labels `smo` puts on the owner's objects (values made
    /// label-safe by [`label_value`]).
    pub fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
            (PROJECT_LABEL.to_owned(), label_value(&self.project)),
            (GRAPH_LABEL.to_owned(), label_value(&self.graph)),
        ])
    }

    /// Label selector matching exactly the owner's objects.
    pub fn selector(&self) -> String {
        self.labels()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Longest label value Kubernetes accepts.
const LABEL_VALUE_MAX: usize = 63;
/// Room left for `-` and 8 hex digits of the hash when a value is rewritten.
const LABEL_PREFIX_MAX: usize = LABEL_VALUE_MAX - 9;

/// Makes a string a valid label value, deterministically (pruning selects
/// by these values, so the same input must always give the same label).
///
/// Rule: a value that is already valid — at most 63 characters of
/// `[A-Za-z0-9._-]`, starting and ending with a letter or digit, or empty —
/// is used unchanged; project names and graph ids (DNS-1123 labels) always
/// are. Any other value becomes its characters outside that set replaced
/// by `-`, leading and trailing non-alphanumerics dropped, cut to 54
/// characters, then `-` and the first 8 hex digits of the SHA-256 of the
/// original value, so two different inputs are unlikely to share a label.
pub fn label_value(value: &str) -> String {
    let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let is_valid = value.is_empty()
        || (value.len() <= LABEL_VALUE_MAX
            && value.chars().all(valid_char)
            && value.starts_with(|c: char| c.is_ascii_alphanumeric())
            && value.ends_with(|c: char| c.is_ascii_alphanumeric()));
    if is_valid {
        return value.to_owned();
    }
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(value.as_bytes());
    let hash = crate::digest::hex(&digest[..4]);
    let cleaned: String = value
        .chars()
        .map(|c| if valid_char(c) { c } else { '-' })
        .collect();
    let cleaned = cleaned.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let prefix: String = cleaned.chars().take(LABEL_PREFIX_MAX).collect();
    let prefix = prefix.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    if prefix.is_empty() {
        hash
    } else {
        format!("{prefix}-{hash}")
    }
}

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
            KarmadaError::Unreachable { .. } => true,
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
fn classify(operation: &'static str, object: &str, e: kube::Error) -> KarmadaError {
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

/// A resolved kind: its REST resource and scope.
#[derive(Debug, Clone)]
struct Kind {
    resource: ApiResource,
    namespaced: bool,
}

/// A cheap-to-clone handle on the Karmada API server (clones share the
/// connection pool and the discovery cache).
#[derive(Clone)]
pub struct Karmada {
    client: kube::Client,
    kinds: Arc<Mutex<HashMap<(String, String), Kind>>>,
}

impl fmt::Debug for Karmada {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Karmada")
            .field("default_namespace", &self.client.default_namespace())
            .finish_non_exhaustive()
    }
}

fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.split_once('/').unwrap_or(("", api_version))
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

impl Karmada {
    /// Connects with a kubeconfig file and context; `None` for both is
    /// kube's inference (`KUBECONFIG`, `~/.kube/config`, in-cluster). No
    /// request is made: an unreachable server shows on the first call.
    pub async fn connect(
        kubeconfig: Option<&Path>,
        context: Option<&str>,
    ) -> Result<Self, KarmadaError> {
        let options = KubeConfigOptions {
            context: context.map(str::to_owned),
            ..KubeConfigOptions::default()
        };
        let shown = |p: Option<&Path>| {
            p.map_or_else(
                || "the default kubeconfig".to_owned(),
                |p| p.display().to_string(),
            )
        };
        let kerr = |what: String| {
            move |e: kube::config::KubeconfigError| KarmadaError::Kubeconfig {
                what,
                source: Box::new(e),
            }
        };
        let mut config = match (kubeconfig, context) {
            (Some(path), _) => {
                let kc = Kubeconfig::read_from(path).map_err(kerr(shown(Some(path))))?;
                kube::Config::from_custom_kubeconfig(kc, &options)
                    .await
                    .map_err(kerr(format!(
                        "{}, context {}",
                        path.display(),
                        context.unwrap_or("(current)")
                    )))?
            }
            (None, Some(ctx)) => kube::Config::from_kubeconfig(&options)
                .await
                .map_err(kerr(format!("{}, context {ctx}", shown(None))))?,
            (None, None) => kube::Config::infer()
                .await
                .map_err(|e| KarmadaError::Kubeconfig {
                    what: "inferred from KUBECONFIG, ~/.kube/config or the pod".into(),
                    source: Box::new(e),
                })?,
        };
        config.read_timeout = Some(READ_TIMEOUT);
        let client = kube::Client::try_from(config).map_err(|e| KarmadaError::Kubeconfig {
            what: format!("building a client for {}", shown(kubeconfig)),
            source: Box::new(e),
        })?;
        Ok(Karmada {
            client,
            kinds: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// Resolves apiVersion + kind to a resource through discovery, cached.
    async fn resolve(&self, api_version: &str, kind: &str) -> Result<Kind, KarmadaError> {
        let key = (api_version.to_owned(), kind.to_owned());
        if let Some(k) = self.cache().get(&key) {
            return Ok(k.clone());
        }
        let (group, version) = split_api_version(api_version);
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let unknown = || KarmadaError::UnknownKind {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
        };
        let (resource, caps) = match kube::discovery::pinned_kind(&self.client, &gvk).await {
            Ok(found) => found,
            Err(kube::Error::Discovery(_)) => return Err(unknown()),
            Err(kube::Error::Api(s)) if s.code == 404 => return Err(unknown()),
            Err(e) => return Err(classify("discovery", &format!("{api_version} {kind}"), e)),
        };
        let resolved = Kind {
            resource,
            namespaced: caps.scope == kube::discovery::Scope::Namespaced,
        };
        self.cache().insert(key, resolved.clone());
        Ok(resolved)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Kind>> {
        // The map is only ever inserted into whole entries: a panic while
        // it was held cannot leave it inconsistent.
        self.kinds.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn api(&self, kind: &Kind, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace {
            Some(ns) if kind.namespaced => {
                Api::namespaced_with(self.client.clone(), ns, &kind.resource)
            }
            _ => Api::all_with(self.client.clone(), &kind.resource),
        }
    }

    /// The API for one object: its namespace for namespaced kinds (required),
    /// none for cluster-scoped kinds (a given namespace is ignored).
    async fn api_for(&self, r: &ObjectRef) -> Result<Api<DynamicObject>, KarmadaError> {
        let kind = self.resolve(&r.api_version, &r.kind).await?;
        if kind.namespaced && r.namespace.as_deref().is_none_or(str::is_empty) {
            return Err(KarmadaError::Invalid {
                object: r.to_string(),
                reason: format!("{} is namespaced but no namespace was given", r.kind),
            });
        }
        Ok(self.api(&kind, r.namespace.as_deref()))
    }

    /// The member clusters (Karmada `Cluster` objects), sorted by name.
    ///
    /// Ready = a condition `Ready` with status `"True"`. Resources come from
    /// `status.resourceSummary`: allocatable as is; allocated = `allocated`
    /// plus `allocating` (pods being scheduled hold capacity too). CPU in
    /// cores, memory in bytes, GPUs (`gpu_resource`, e.g.
    /// `nvidia.com/gpu`) in devices. A cluster without a summary has zeros.
    /// A cluster whose summary holds a quantity that does not parse is
    /// reported not ready with zeros (and a warning), so nothing is placed
    /// on what cannot be measured while the other clusters stay usable.
    #[tracing::instrument(name = "karmada.inventory", skip_all, fields(gpu_resource = gpu_resource))]
    pub async fn inventory(&self, gpu_resource: &str) -> Result<Inventory, KarmadaError> {
        let (group, version) = split_api_version(CLUSTER_API_VERSION);
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(group, version, "Cluster"),
            "clusters",
        );
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &ar);
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| classify("list", "Karmada clusters", e))?;
        let mut clusters: Vec<InventoryCluster> = list
            .items
            .iter()
            .filter_map(|c| {
                let name = c.metadata.name.clone()?;
                Some(cluster_of(name, &c.data, gpu_resource))
            })
            .collect();
        clusters.sort_by(|a, b| a.name.cmp(&b.name));
        tracing::debug!(clusters = clusters.len(), "inventory read");
        Ok(Inventory { clusters })
    }

    /// Server-side applies a Namespace labelled as `smo`'s (managed-by and
    /// project labels; no graph label: graphs of a project share it).
    #[tracing::instrument(name = "karmada.ensure_namespace", skip_all, fields(namespace = name))]
    pub async fn ensure_namespace(&self, name: &str) -> Result<(), KarmadaError> {
        let kind = self.resolve("v1", "Namespace").await?;
        let body = json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": name,
                "labels": {MANAGED_BY_LABEL: MANAGED_BY, PROJECT_LABEL: label_value(name)},
            },
        });
        self.api(&kind, None)
            .patch(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
            .map_err(|e| classify("apply", &format!("v1 Namespace {name}"), e))?;
        Ok(())
    }

    /// Server-side applies any object (field manager `smo`, forced), with
    /// the owner's labels added. A namespaced object without
    /// `metadata.namespace` goes to the owner's project namespace (a
    /// project is a namespace); a cluster-scoped one has its namespace
    /// removed. Server-set metadata in `obj` (resourceVersion,
    /// managedFields…) is dropped so a live object can be re-applied.
    #[tracing::instrument(
        name = "karmada.apply",
        skip_all,
        fields(
            api_version = obj["apiVersion"].as_str().unwrap_or_default(),
            kind = obj["kind"].as_str().unwrap_or_default(),
            name = str_at(obj, "/metadata/name").unwrap_or_default(),
            project = %owner.project,
            graph = %owner.graph,
        )
    )]
    pub async fn apply(&self, obj: &Value, owner: &Owner) -> Result<(), KarmadaError> {
        let (Some(api_version), Some(kind), Some(name)) = (
            str_at(obj, "/apiVersion"),
            str_at(obj, "/kind"),
            str_at(obj, "/metadata/name"),
        ) else {
            return Err(KarmadaError::Invalid {
                object: format!(
                    "{} {} {}",
                    obj["apiVersion"].as_str().unwrap_or("(no apiVersion)"),
                    obj["kind"].as_str().unwrap_or("(no kind)"),
                    str_at(obj, "/metadata/name").unwrap_or("(no name)")
                ),
                reason: "apiVersion, kind and metadata.name are required".into(),
            });
        };
        let resolved = self.resolve(api_version, kind).await?;
        let mut body = obj.clone();
        let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut) else {
            // metadata.name was found above, so metadata is a map.
            return Err(KarmadaError::Invalid {
                object: format!("{api_version} {kind} {name}"),
                reason: "metadata is not a map".into(),
            });
        };
        for server_set in [
            "resourceVersion",
            "uid",
            "generation",
            "creationTimestamp",
            "managedFields",
            "selfLink",
        ] {
            meta.remove(server_set);
        }
        let namespace = if resolved.namespaced {
            let ns = meta
                .get("namespace")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .unwrap_or(&owner.project)
                .to_owned();
            meta.insert("namespace".into(), json!(ns));
            Some(ns)
        } else {
            meta.remove("namespace");
            None
        };
        if !meta.get("labels").is_some_and(Value::is_object) {
            meta.insert("labels".into(), json!({}));
        }
        if let Some(labels) = meta.get_mut("labels").and_then(Value::as_object_mut) {
            for (k, v) in owner.labels() {
                labels.insert(k, Value::String(v));
            }
        }
        let identity = ObjectRef {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            namespace: namespace.clone(),
            name: name.to_owned(),
        };
        self.api(&resolved, namespace.as_deref())
            .patch(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
            .map_err(|e| classify("apply", &identity.to_string(), e))?;
        tracing::debug!("applied");
        Ok(())
    }

    /// The live object, or `None` when it (or its kind) does not exist.
    #[tracing::instrument(name = "karmada.get", skip_all, fields(object = %r))]
    pub async fn get(&self, r: &ObjectRef) -> Result<Option<Value>, KarmadaError> {
        let api = match self.api_for(r).await {
            Ok(api) => api,
            Err(KarmadaError::UnknownKind { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let found = api
            .get_opt(&r.name)
            .await
            .map_err(|e| classify("get", &r.to_string(), e))?;
        found
            .map(|o| {
                serde_json::to_value(o).map_err(|e| KarmadaError::Decode {
                    what: r.to_string(),
                    reason: e.to_string(),
                })
            })
            .transpose()
    }

    /// Deletes an object (dependents in the background, as kubectl does).
    /// An absent object, or a kind no longer served, is already deleted.
    #[tracing::instrument(name = "karmada.delete", skip_all, fields(object = %r))]
    pub async fn delete(&self, r: &ObjectRef) -> Result<(), KarmadaError> {
        let api = match self.api_for(r).await {
            Ok(api) => api,
            Err(KarmadaError::UnknownKind { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        match api.delete(&r.name, &DeleteParams::background()).await {
            Ok(_) => {
                tracing::debug!("deleted");
                Ok(())
            }
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(classify("delete", &r.to_string(), e)),
        }
    }

    /// The objects of one kind carrying the owner's labels, in every
    /// namespace, sorted: the candidates for pruning.
    #[tracing::instrument(
        name = "karmada.list_owned",
        skip_all,
        fields(api_version = api_version, kind = kind, project = %owner.project, graph = %owner.graph)
    )]
    pub async fn list_owned(
        &self,
        api_version: &str,
        kind: &str,
        owner: &Owner,
    ) -> Result<Vec<ObjectRef>, KarmadaError> {
        let resolved = match self.resolve(api_version, kind).await {
            Ok(k) => k,
            // Nothing of a kind that is not served can exist.
            Err(KarmadaError::UnknownKind { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let list = self
            .api(&resolved, None)
            .list(&ListParams::default().labels(&owner.selector()))
            .await
            .map_err(|e| classify("list", &format!("{api_version} {kind}"), e))?;
        let mut refs: Vec<ObjectRef> = list
            .items
            .into_iter()
            .filter_map(|o| {
                Some(ObjectRef {
                    api_version: api_version.to_owned(),
                    kind: kind.to_owned(),
                    namespace: if resolved.namespaced {
                        o.metadata.namespace
                    } else {
                        None
                    },
                    name: o.metadata.name?,
                })
            })
            .collect();
        refs.sort();
        Ok(refs)
    }

    /// Sets the replicas of an `apps/v1` workload (Deployment, StatefulSet)
    /// through its `scale` subresource, with field manager `smo-scaler`.
    ///
    /// A merge patch of `spec.replicas` rather than an apply: every
    /// Kubernetes version accepts it on `scale`, and it still records
    /// `smo-scaler` as the manager of the field.
    #[tracing::instrument(
        name = "karmada.scale",
        skip_all,
        fields(namespace = namespace, kind = kind, name = name, replicas = replicas)
    )]
    pub async fn scale(
        &self,
        namespace: &str,
        kind: &str,
        name: &str,
        replicas: u32,
    ) -> Result<(), KarmadaError> {
        let resolved = self.resolve("apps/v1", kind).await?;
        let identity = format!("apps/v1 {kind} {namespace}/{name}");
        let params = PatchParams {
            field_manager: Some(SCALER_FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        self.api(&resolved, Some(namespace))
            .patch_scale(
                name,
                &params,
                &Patch::Merge(json!({"spec": {"replicas": replicas}})),
            )
            .await
            .map_err(|e| classify("scale", &identity, e))?;
        tracing::debug!("scaled");
        Ok(())
    }

    /// The labels of a Helm release's newest record (helm keeps each
    /// revision in a Secret labelled `owner=helm`, `name=<release>`,
    /// `version=<revision>`, plus the labels given with `--labels`), or
    /// `None` when the release does not exist. Only labels are read: the
    /// release's content never leaves this function.
    #[tracing::instrument(name = "karmada.release_labels", skip_all, fields(namespace = namespace, release = release))]
    pub async fn release_labels(
        &self,
        namespace: &str,
        release: &str,
    ) -> Result<Option<BTreeMap<String, String>>, KarmadaError> {
        let api: Api<k8s_openapi::api::core::v1::Secret> =
            Api::namespaced(self.client.clone(), namespace);
        let selector = format!("owner=helm,name={}", label_value(release));
        let list = api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| {
                classify(
                    "list",
                    &format!("v1 Secret {namespace} (release {release})"),
                    e,
                )
            })?;
        let newest = list
            .items
            .into_iter()
            .filter_map(|s| s.metadata.labels)
            .max_by_key(|l| {
                l.get("version")
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            });
        Ok(newest)
    }

    /// Whether a Deployment is ready; `None` when it does not exist.
    ///
    /// Rule (wanted = `spec.replicas`, 1 when unset): ready when
    /// `status.readyReplicas >= wanted`, or when the controller has caught
    /// up with the current spec (`status.observedGeneration >=
    /// metadata.generation`) and `status.availableReplicas >= wanted`.
    /// On Karmada the status is the aggregate of the member clusters'.
    /// A Deployment scaled to zero is ready.
    #[tracing::instrument(name = "karmada.deployment_ready", skip_all, fields(namespace = namespace, name = name))]
    pub async fn deployment_ready(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<bool>, KarmadaError> {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), namespace);
        let found = api
            .get_opt(name)
            .await
            .map_err(|e| classify("get", &format!("apps/v1 Deployment {namespace}/{name}"), e))?;
        Ok(found.map(|d| deployment_is_ready(&d)))
    }
}

fn deployment_is_ready(d: &Deployment) -> bool {
    let wanted = d.spec.replicas.unwrap_or(1);
    let status = d.status.clone().unwrap_or_default();
    let ready = status.ready_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let caught_up = match (status.observed_generation, d.metadata.generation) {
        (Some(observed), Some(generation)) => observed >= generation,
        (_, None) => true,
        (None, Some(_)) => false,
    };
    ready >= wanted || (caught_up && available >= wanted)
}

/// One `Cluster` object as an inventory entry (see [`Karmada::inventory`]).
fn cluster_of(name: String, data: &Value, gpu_resource: &str) -> InventoryCluster {
    let ready = data
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|conds| {
            conds
                .iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        });
    let summary = data.pointer("/status/resourceSummary");
    let amount = |section: &str, resource: &str| -> Result<f64, String> {
        match summary
            .and_then(|s| s.get(section))
            .and_then(|m| m.get(resource))
        {
            None | Some(Value::Null) => Ok(0.0),
            Some(v) => quantity_of(v).map_err(|e| format!("{section}.{resource}: {e}")),
        }
    };
    let resource = |r: &str| -> Result<Resource, String> {
        Ok(Resource {
            allocatable: amount("allocatable", r)?,
            allocated: amount("allocated", r)? + amount("allocating", r)?,
        })
    };
    let measured = (|| {
        Ok::<_, String>((
            resource("cpu")?,
            resource("memory")?,
            resource(gpu_resource)?,
        ))
    })();
    match measured {
        Ok((cpu, memory, gpu)) => InventoryCluster {
            name,
            ready,
            cpu,
            memory,
            gpu,
        },
        Err(error) => {
            tracing::warn!(cluster = %name, error = %error, "cluster resource summary unreadable; treated as not ready");
            InventoryCluster {
                name,
                ready: false,
                cpu: Resource::default(),
                memory: Resource::default(),
                gpu: Resource::default(),
            }
        }
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
    fn label_values_are_valid_and_stable() {
        let long = "a".repeat(70);
        let cases = [
            ("shop", Some("shop")),
            ("my-graph.v1_x", Some("my-graph.v1_x")),
            ("", Some("")),
            ("a b", None),
            ("-lead", None),
            ("trail-", None),
            (long.as_str(), None),
            ("ü", None),
        ];
        for (input, unchanged) in cases {
            let out = label_value(input);
            if let Some(want) = unchanged {
                assert_eq!(out, want);
                continue;
            }
            assert!(out.len() <= 63, "{out}");
            assert!(
                out.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
                "{out}"
            );
            assert!(
                out.starts_with(|c: char| c.is_ascii_alphanumeric()),
                "{out}"
            );
            assert!(out.ends_with(|c: char| c.is_ascii_alphanumeric()), "{out}");
            assert_eq!(out, label_value(input), "deterministic");
        }
        assert_ne!(
            label_value("a b"),
            label_value("a-b"),
            "rewritten values carry a hash"
        );
        assert_ne!(label_value("a b"), label_value("a+b"));
    }

    #[test]
    fn owner_selector_matches_its_labels() {
        let o = Owner {
            project: "shop".into(),
            graph: "web".into(),
        };
        assert_eq!(
            o.selector(),
            "app.kubernetes.io/managed-by=smo,smo.nephele.eu/graph=web,smo.nephele.eu/project=shop"
        );
    }

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

    #[test]
    fn readiness_rule() {
        let d = |replicas: Option<i32>, generation, status: Value| -> Deployment {
            serde_json::from_value(json!({
                "metadata": {"name": "d", "generation": generation},
                "spec": {"replicas": replicas, "selector": {}, "template": {}},
                "status": status,
            }))
            .expect("deployment")
        };
        let cases = [
            (d(Some(3), 2, json!({"readyReplicas": 3})), true),
            (d(Some(3), 2, json!({"readyReplicas": 2})), false),
            (
                d(
                    Some(3),
                    2,
                    json!({"availableReplicas": 3, "observedGeneration": 2}),
                ),
                true,
            ),
            (
                d(
                    Some(3),
                    2,
                    json!({"availableReplicas": 3, "observedGeneration": 1}),
                ),
                false,
            ),
            (d(None, 1, json!({})), false),
            (d(None, 1, json!({"readyReplicas": 1})), true),
            (d(Some(0), 1, json!({})), true),
        ];
        for (i, (dep, want)) in cases.into_iter().enumerate() {
            assert_eq!(deployment_is_ready(&dep), want, "case {i}");
        }
    }

    #[test]
    fn cluster_summary_rules() {
        let c = json!({
            "status": {
                "conditions": [{"type": "Ready", "status": "True"}],
                "resourceSummary": {
                    "allocatable": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "2"},
                    "allocated": {"cpu": "2500m", "memory": "4Gi"},
                    "allocating": {"cpu": "500m"},
                },
            },
        });
        let got = cluster_of("a".into(), &c, "nvidia.com/gpu");
        assert!(got.ready);
        assert_eq!(
            got.cpu,
            Resource {
                allocatable: 8.0,
                allocated: 3.0
            }
        );
        assert_eq!(got.memory.allocatable, 32.0 * 1024f64.powi(3));
        assert_eq!(
            got.gpu,
            Resource {
                allocatable: 2.0,
                allocated: 0.0
            }
        );

        let bare = cluster_of(
            "b".into(),
            &json!({"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}}),
            "nvidia.com/gpu",
        );
        assert!(!bare.ready);
        assert_eq!(bare.cpu, Resource::default());

        let mut broken = c.clone();
        broken["status"]["resourceSummary"]["allocated"]["cpu"] = json!("lots");
        let got = cluster_of("c".into(), &broken, "nvidia.com/gpu");
        assert!(!got.ready);
        assert_eq!(got.cpu.allocatable, 0.0);
    }
}
