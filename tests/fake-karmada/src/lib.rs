//! Fake Karmada/Kubernetes API server (test-only).
//!
//! Plain HTTP on loopback, good enough for the real `helm` binary (v3.18+
//! and v4) and for kube-rs. Start one per test with
//! [`FakeKarmada::start`]; the handle offers the URL, a kubeconfig file
//! and controls: cluster readiness and resource summaries, fault injection
//! (errors, latency, outage), a request log and out-of-band object edits.
//!
//! Module map:
//! - `kinds`: the served kinds (discovery, routing); [`KindSpec`].
//! - `store`: objects, resourceVersions, event history.
//! - `api`: API-server semantics (metadata, subresources, patches, apply).
//! - `patch`: merge / JSON / strategic patches and field sets.
//! - `server`, `watch`, `openapi`: the HTTP side.
//! - `proto`: protobuf request bodies.
//! - `inventory`: inventory files and seeded `Cluster` objects.
//!
//! ```no_run
//! # async fn demo() -> Result<(), fake_karmada::Error> {
//! use fake_karmada::{FakeKarmada, Options};
//! let fake = FakeKarmada::start(Options::default()).await?;
//! let kubeconfig = fake.kubeconfig_path(); // hand to helm / kube-rs
//! # let _ = kubeconfig;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod api;
mod inventory;
mod kinds;
mod openapi;
mod patch;
mod proto;
mod selector;
mod server;
mod store;
pub mod testing;
mod util;
mod watch;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::net::TcpSocket;
use tokio::sync::watch as tokio_watch;

pub use inventory::{ClusterResources, ClusterSpec, Inventory, ResourcePair};
pub use kinds::KindSpec;

use server::Shared;

/// Errors of the fake's own API (not of the HTTP API it serves).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Binding or re-binding the listen address failed.
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// A file could not be read or written.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The inventory is malformed.
    #[error("invalid inventory: {0}")]
    Inventory(String),
    /// `api_version`/`kind` is not registered.
    #[error("unknown kind {kind} in {api_version}; register it with FakeKarmada::register_kind")]
    UnknownKind { api_version: String, kind: String },
    /// The object does not exist.
    #[error("{kind} {name} not found")]
    NotFound { kind: String, name: String },
    /// The object was refused (missing name or namespace).
    #[error("object refused: {0}")]
    Invalid(String),
}

/// How to start the fake.
#[derive(Debug, Clone)]
pub struct Options {
    /// Address to listen on; port 0 picks a free port. Default `127.0.0.1:0`.
    pub listen: SocketAddr,
    /// Where to write the kubeconfig; default: a file in a fresh temporary
    /// directory removed when the handle is dropped.
    pub kubeconfig_path: Option<PathBuf>,
    /// Member clusters to seed as `Cluster` objects.
    pub clusters: Vec<ClusterSpec>,
    /// When set, Deployments and StatefulSets get their status replicas
    /// (`replicas`, `readyReplicas`, `availableReplicas`, `updatedReplicas`)
    /// set to `spec.replicas` this long after each change.
    pub simulate_members: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            kubeconfig_path: None,
            clusters: Vec::new(),
            simulate_members: None,
        }
    }
}

impl Options {
    /// Adds member clusters (builder style).
    pub fn clusters(mut self, clusters: impl IntoIterator<Item = ClusterSpec>) -> Self {
        self.clusters.extend(clusters);
        self
    }

    /// Turns member simulation on with the given delay (builder style).
    pub fn simulate_members(mut self, delay: Duration) -> Self {
        self.simulate_members = Some(delay);
        self
    }
}

/// A rule failing matching requests with a status (see [`FakeKarmada::fail_next`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// HTTP method to match (`GET`, `PATCH`...); None matches any.
    pub method: Option<String>,
    /// Path prefix to match (`/apis/apps/v1`); empty matches any.
    pub path_prefix: String,
    /// HTTP status answered (with a `Status` body).
    pub status: u16,
    /// How many more requests this rule fails.
    pub remaining: usize,
}

impl Fault {
    /// Fails the next matching request with `status` (any method, any path
    /// until narrowed with [`Fault::method`] / [`Fault::path_prefix`]).
    pub fn status(status: u16) -> Self {
        Self {
            method: None,
            path_prefix: String::new(),
            status,
            remaining: 1,
        }
    }

    /// Only requests with this method.
    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    /// Only requests whose path starts with `prefix`.
    pub fn path_prefix(mut self, prefix: &str) -> Self {
        self.path_prefix = prefix.to_string();
        self
    }

    /// Fail this many matching requests instead of one.
    pub fn times(mut self, n: usize) -> Self {
        self.remaining = n.max(1);
        self
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.remaining > 0
            && self.method.as_deref().is_none_or(|m| m == method)
            && path.starts_with(&self.path_prefix)
    }
}

/// One request as the fake received it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedRequest {
    /// `GET`, `PATCH`...
    pub method: String,
    /// URL path.
    pub path: String,
    /// Raw query string (without `?`).
    pub query: String,
    /// `Content-Type` header, empty if none.
    pub content_type: String,
    /// `fieldManager` query parameter, if any.
    pub field_manager: Option<String>,
    /// `User-Agent` header, empty if none.
    pub user_agent: String,
    /// HTTP status of the answer (for watches: of the stream's start).
    pub status: u16,
    /// Raw body.
    pub body: Vec<u8>,
    /// The body as JSON (protobuf and YAML bodies decoded), if it parsed.
    pub body_json: Option<Value>,
}

/// A running fake API server. Dropping it stops the server.
///
/// The server runs on its own small Tokio runtime (one worker thread), so
/// it keeps answering while a test blocks its own thread (running `helm`
/// with `std::process::Command`, say) or pauses its clock.
pub struct FakeKarmada {
    rt: Option<tokio::runtime::Runtime>,
    shared: Arc<Shared>,
    addr: SocketAddr,
    kubeconfig: PathBuf,
    temp_dir: Option<PathBuf>,
    stop: tokio_watch::Sender<bool>,
    accept_task: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for FakeKarmada {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeKarmada")
            .field("addr", &self.addr)
            .finish()
    }
}

fn is_addr_in_use(e: &Error) -> bool {
    matches!(e, Error::Bind { source, .. } if source.kind() == std::io::ErrorKind::AddrInUse)
}

fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, Error> {
    let err = |source| Error::Bind { addr, source };
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(err)?;
    // Recovery after an outage re-binds the same port.
    sock.set_reuseaddr(true).map_err(err)?;
    sock.bind(addr).map_err(err)?;
    sock.listen(1024).map_err(err)
}

fn kubeconfig_text(url: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake-karmada\n  cluster:\n    server: {url}\ncontexts:\n- name: fake-karmada\n  context:\n    cluster: fake-karmada\n    user: fake-karmada\n    namespace: default\ncurrent-context: fake-karmada\nusers:\n- name: fake-karmada\n  user:\n    token: fake-token\npreferences: {{}}\n"
    )
}

impl FakeKarmada {
    /// Binds, writes the kubeconfig, seeds the `default`, `kube-system` and
    /// `karmada-system` namespaces and the inventory's clusters, and serves.
    pub async fn start(options: Options) -> Result<Self, Error> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("fake-karmada")
            .enable_all()
            .build()
            .map_err(|source| Error::Io {
                what: "starting the fake's runtime".into(),
                source,
            })?;
        let shared = Arc::new(Shared::new());
        let listener = {
            let _in_rt = rt.enter();
            bind(options.listen)?
        };
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: options.listen,
            source,
        })?;
        let (kubeconfig, temp_dir) = match options.kubeconfig_path {
            Some(p) => (p, None),
            None => {
                let dir = std::env::temp_dir().join(format!(
                    "fake-karmada-{}-{}",
                    std::process::id(),
                    util::new_uid()
                ));
                std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
                    what: format!("creating {}", dir.display()),
                    source,
                })?;
                (dir.join("kubeconfig"), Some(dir))
            }
        };
        let url = format!("http://{addr}");
        std::fs::write(&kubeconfig, kubeconfig_text(&url)).map_err(|source| Error::Io {
            what: format!("writing kubeconfig {}", kubeconfig.display()),
            source,
        })?;
        let (stop, stop_rx) = tokio_watch::channel(false);
        let mut fake = Self {
            rt: Some(rt),
            shared: shared.clone(),
            addr,
            kubeconfig,
            temp_dir,
            stop,
            accept_task: None,
        };
        for ns in ["default", "kube-system", "karmada-system"] {
            fake.put_object(serde_json::json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns}, "status": {"phase": "Active"},
            }))?;
        }
        for c in &options.clusters {
            fake.add_cluster(c)?;
        }
        let rt = fake.runtime();
        if let Some(delay) = options.simulate_members {
            // Ends when the runtime shuts down with the handle.
            rt.spawn(members::run(shared.clone(), delay));
        }
        fake.accept_task = Some(rt.spawn(server::accept_loop(shared, listener, stop_rx)));
        Ok(fake)
    }

    fn runtime(&self) -> tokio::runtime::Handle {
        self.rt
            .as_ref()
            .map(|rt| rt.handle().clone())
            .expect("the runtime lives as long as the handle")
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The kubeconfig file pointing at this server (context `fake-karmada`,
    /// namespace `default`, a dummy bearer token).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    // ---- member clusters -------------------------------------------------

    /// Creates or replaces a `Cluster` object from an inventory entry.
    pub fn add_cluster(&self, cluster: &ClusterSpec) -> Result<(), Error> {
        cluster.resources.validate(&cluster.name)?;
        self.put_object(inventory::cluster_object(cluster))
            .map(|_| ())
    }

    /// Sets the `Ready` condition of a cluster.
    pub fn set_cluster_ready(&self, name: &str, ready: bool) -> Result<(), Error> {
        self.mutate_object(CLUSTER_API, "Cluster", None, name, |c| {
            if !c["status"].is_object() {
                c["status"] = serde_json::json!({});
            }
            let conds = c["status"]["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut conds: Vec<Value> =
                conds.into_iter().filter(|x| x["type"] != "Ready").collect();
            conds.push(inventory::ready_condition(ready));
            c["status"]["conditions"] = Value::Array(conds);
        })
        .map(|_| ())
    }

    /// Sets a cluster's `status.resourceSummary`.
    pub fn set_cluster_resources(
        &self,
        name: &str,
        resources: &ClusterResources,
    ) -> Result<(), Error> {
        resources.validate(name)?;
        let summary = resources.summary();
        self.mutate_object(CLUSTER_API, "Cluster", None, name, |c| {
            if !c["status"].is_object() {
                c["status"] = serde_json::json!({});
            }
            c["status"]["resourceSummary"] = summary;
        })
        .map(|_| ())
    }

    // ---- faults ----------------------------------------------------------

    /// Fails the next requests matching the rule (rules are tried in the
    /// order added; each failed request uses up one count of one rule).
    pub fn fail_next(&self, fault: Fault) {
        self.shared
            .faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(fault);
    }

    /// Removes all pending fault rules.
    pub fn clear_faults(&self) {
        self.shared
            .faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Delays every request by `latency` (zero turns it off).
    pub fn set_latency(&self, latency: Duration) {
        *self
            .shared
            .latency
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = latency;
    }

    /// Full outage: stops listening (connections are refused) and drops all
    /// open connections, including watches. State is kept.
    pub async fn outage(&mut self) {
        let _ = self.stop.send(true);
        self.shared.epoch.send_modify(|e| *e += 1);
        if let Some(t) = self.accept_task.take() {
            let _ = t.await;
        }
    }

    /// Ends an outage: listens again on the same address. A no-op when the
    /// server is up.
    pub async fn recover(&mut self) -> Result<(), Error> {
        if self.accept_task.is_some() {
            return Ok(());
        }
        let rt = self.runtime();
        // The port was free while the fake was down: a client socket of
        // another test may hold it for a moment (seen in CI); try again
        // for a while before giving up.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let listener = loop {
            let bound = {
                let _in_rt = rt.enter();
                bind(self.addr)
            };
            match bound {
                Ok(l) => break l,
                Err(e) if std::time::Instant::now() < deadline && is_addr_in_use(&e) => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e),
            }
        };
        let (stop, stop_rx) = tokio_watch::channel(false);
        self.stop = stop;
        self.accept_task =
            Some(rt.spawn(server::accept_loop(self.shared.clone(), listener, stop_rx)));
        Ok(())
    }

    /// Closes every open connection, watches included, while still
    /// listening: clients reconnect at once (an API server restarting).
    /// Watches end their streams cleanly, as the API server ends them on
    /// shutdown, so a client sees the end of a stream and not an error.
    pub fn drop_connections(&self) {
        self.shared.closing.send_modify(|e| *e += 1);
    }

    /// Compacts the watch history and drops every connection: a watch that
    /// resumes from the version it had seen gets `410 Gone` and must list
    /// again. Changes made before it reconnects appear only in that list.
    pub fn expire_watches(&self) {
        self.shared.store().compact();
        self.drop_connections();
    }

    // ---- request log -----------------------------------------------------

    /// Every request received so far (faulted ones included), oldest first.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared
            .log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Empties the request log.
    pub fn clear_requests(&self) {
        self.shared
            .log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    // ---- objects ---------------------------------------------------------

    /// Registers (or replaces) a kind; discovery and OpenAPI show it at once.
    pub fn register_kind(&self, spec: KindSpec) {
        self.shared
            .registry
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .register(spec);
    }

    fn spec(&self, api_version: &str, kind: &str) -> Result<KindSpec, Error> {
        self.shared
            .registry()
            .by_kind(api_version, kind)
            .cloned()
            .ok_or_else(|| Error::UnknownKind {
                api_version: api_version.into(),
                kind: kind.into(),
            })
    }

    /// A stored object, if present (`namespace` is ignored for
    /// cluster-scoped kinds).
    pub fn get_object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let spec = self.spec(api_version, kind).ok()?;
        let k = api::key(&spec, namespace.unwrap_or(""), name);
        self.shared.store().get(&k).cloned()
    }

    /// All stored objects of a kind, in one namespace or (None) in all.
    pub fn list_objects(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Vec<Value> {
        let Ok(spec) = self.spec(api_version, kind) else {
            return Vec::new();
        };
        let ns = if spec.namespaced { namespace } else { None };
        self.shared
            .store()
            .list(&spec.group, &spec.version, &spec.plural, ns)
            .into_iter()
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Creates or replaces an object out of band (no admission, status
    /// kept, managedFields untouched); watchers see ADDED or MODIFIED.
    /// Returns the stored object.
    pub fn put_object(&self, object: Value) -> Result<Value, Error> {
        let api_version = object["apiVersion"].as_str().unwrap_or("").to_string();
        let kind = object["kind"].as_str().unwrap_or("").to_string();
        let spec = self.spec(&api_version, &kind)?;
        let mut store = self.shared.store();
        api::put_raw(&mut store, &spec, object).map_err(|e| Error::Invalid(e.message))
    }

    /// Changes a live object out of band (drift): `f` edits a copy, which
    /// is stored with a new resourceVersion; watchers see MODIFIED.
    /// Returns the stored object.
    pub fn mutate_object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        f: impl FnOnce(&mut Value),
    ) -> Result<Value, Error> {
        let spec = self.spec(api_version, kind)?;
        let mut store = self.shared.store();
        let k = api::key(&spec, namespace.unwrap_or(""), name);
        let mut obj = store.get(&k).cloned().ok_or_else(|| Error::NotFound {
            kind: kind.into(),
            name: name.into(),
        })?;
        f(&mut obj);
        api::put_raw(&mut store, &spec, obj).map_err(|e| Error::Invalid(e.message))
    }

    /// Deletes an object out of band; returns whether it existed.
    pub fn delete_object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<bool, Error> {
        let spec = self.spec(api_version, kind)?;
        let mut store = self.shared.store();
        Ok(store
            .remove(&api::key(&spec, namespace.unwrap_or(""), name))
            .is_some())
    }

    /// Stops serving (also done on drop).
    pub async fn shutdown(mut self) {
        self.outage().await;
    }
}

const CLUSTER_API: &str = "cluster.karmada.io/v1alpha1";

impl Drop for FakeKarmada {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.shared.epoch.send_modify(|e| *e += 1);
        if let Some(t) = self.accept_task.take() {
            t.abort();
        }
        if let Some(rt) = self.rt.take() {
            // Does not block, so dropping inside async code is fine.
            rt.shutdown_background();
        }
        if let Some(dir) = &self.temp_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

mod members {
    //! `--simulate-members`: plays the member clusters' controllers for
    //! workloads, so readiness-based logic (and `helm --wait`) sees
    //! progress: after the delay, a Deployment or StatefulSet reports all
    //! replicas ready, and a Deployment gets a ReplicaSet for its current
    //! template (owned by it, scaled to its replicas; older ones scaled to
    //! zero), which is what helm 3's `--wait` inspects. ReplicaSets of a
    //! deleted Deployment are deleted with it.

    use std::sync::Arc;
    use std::time::Duration;

    use serde_json::{Value, json};
    use tokio::sync::broadcast;

    use crate::server::Shared;
    use crate::store::{ObjKey, Store};

    fn replicas(obj: &Value) -> i64 {
        obj.pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1)
    }

    fn wanted_status(obj: &Value) -> Option<Value> {
        let replicas = replicas(obj);
        let generation = obj
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let mut status = obj.get("status").cloned().unwrap_or(json!({}));
        if !status.is_object() {
            status = json!({});
        }
        for f in [
            "replicas",
            "readyReplicas",
            "availableReplicas",
            "updatedReplicas",
        ] {
            status[f] = json!(replicas);
        }
        status["observedGeneration"] = json!(generation);
        if obj["kind"] == "Deployment" {
            status["conditions"] = json!([
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability."},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "message": "ReplicaSet has successfully progressed."},
            ]);
        } else {
            status["currentReplicas"] = json!(replicas);
        }
        (obj.get("status") != Some(&status)).then_some(status)
    }

    /// A hash of the pod template, as a short name suffix.
    fn template_hash(template: &Value) -> String {
        let h = crate::util::fnv64(template.to_string().as_bytes());
        format!("{:010x}", h & 0xff_ffff_ffff)
    }

    fn owned_replica_sets(store: &Store, namespace: &str, uid: &Value) -> Vec<(ObjKey, Value)> {
        store
            .list("apps", "v1", "replicasets", Some(namespace))
            .into_iter()
            .filter(|(_, rs)| {
                rs.pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .is_some_and(|refs| refs.iter().any(|r| r.get("uid") == Some(uid)))
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn sync_replica_sets(store: &mut Store, key: &ObjKey, deploy: &Value) {
        let uid = deploy
            .pointer("/metadata/uid")
            .cloned()
            .unwrap_or(Value::Null);
        let template = deploy
            .pointer("/spec/template")
            .cloned()
            .unwrap_or(json!({}));
        // Client input is arbitrary JSON: only well-formed templates get a
        // ReplicaSet (the fake does not validate Deployments).
        let template_ok = template.is_object()
            && template.get("metadata").is_none_or(Value::is_object)
            && template
                .pointer("/metadata/labels")
                .is_none_or(Value::is_object);
        let selector_ok = deploy
            .pointer("/spec/selector")
            .is_none_or(Value::is_object)
            && deploy
                .pointer("/spec/selector/matchLabels")
                .is_none_or(Value::is_object);
        if !template_ok || !selector_ok {
            return;
        }
        let hash = template_hash(&template);
        let name = format!("{}-{hash}", key.name);
        let replicas = replicas(deploy);
        for (k, mut rs) in owned_replica_sets(store, &key.namespace, &uid) {
            if k.name != name && rs.pointer("/spec/replicas") != Some(&json!(0)) {
                rs["spec"]["replicas"] = json!(0);
                rs["status"] = json!({"replicas": 0, "readyReplicas": 0, "availableReplicas": 0});
                store.put(k, rs);
            }
        }
        let mut labeled = template.clone();
        labeled["metadata"]["labels"]["pod-template-hash"] = json!(hash);
        let mut selector = deploy
            .pointer("/spec/selector")
            .cloned()
            .unwrap_or(json!({}));
        selector["matchLabels"]["pod-template-hash"] = json!(hash);
        let rs_key = ObjKey {
            group: "apps".into(),
            version: "v1".into(),
            plural: "replicasets".into(),
            namespace: key.namespace.clone(),
            name: name.clone(),
        };
        let existing = store.get(&rs_key).cloned();
        let rs = json!({
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": name,
                "namespace": key.namespace,
                "labels": labeled["metadata"]["labels"],
                "uid": existing.as_ref().and_then(|e| e.pointer("/metadata/uid")).cloned()
                    .unwrap_or_else(|| json!(crate::util::new_uid())),
                "creationTimestamp": existing.as_ref().and_then(|e| e.pointer("/metadata/creationTimestamp")).cloned()
                    .unwrap_or_else(|| json!(crate::util::now_rfc3339())),
                "generation": 1,
                "ownerReferences": [{
                    "apiVersion": "apps/v1", "kind": "Deployment", "name": key.name,
                    "uid": uid, "controller": true, "blockOwnerDeletion": true,
                }],
            },
            "spec": {"replicas": replicas, "selector": selector, "template": labeled},
            "status": {
                "replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas,
                "fullyLabeledReplicas": replicas, "observedGeneration": 1,
            },
        });
        let mut cmp = existing.clone().unwrap_or(Value::Null);
        if let Some(m) = cmp.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
        if cmp != rs {
            store.put(rs_key, rs);
        }
    }

    pub(crate) async fn run(shared: Arc<Shared>, delay: Duration) {
        let mut rx = shared.store().subscribe();
        loop {
            let ev = match rx.recv().await {
                Ok(ev) => ev,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            };
            let workload = ev.key.group == "apps"
                && (ev.key.plural == "deployments" || ev.key.plural == "statefulsets");
            if !workload {
                continue;
            }
            if ev.kind == "DELETED" {
                // No garbage collector: take the Deployment's ReplicaSets along.
                let uid = ev
                    .object
                    .pointer("/metadata/uid")
                    .cloned()
                    .unwrap_or(Value::Null);
                let mut store = shared.store();
                for (k, _) in owned_replica_sets(&store, &ev.key.namespace, &uid) {
                    store.remove(&k);
                }
                continue;
            }
            if wanted_status(&ev.object).is_none() {
                continue;
            }
            let shared = shared.clone();
            let key = ev.key.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let mut store = shared.store();
                let Some(mut obj) = store.get(&key).cloned() else {
                    return;
                };
                if key.plural == "deployments" {
                    sync_replica_sets(&mut store, &key, &obj);
                }
                if let Some(status) = wanted_status(&obj) {
                    obj["status"] = status;
                    store.put(key, obj);
                }
            });
        }
    }
}
