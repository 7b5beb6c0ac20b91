//! In-memory helm and Karmada for the executors' unit tests: a call log,
//! releases and objects in maps, and a switch that fails the next call of
//! a verb (transiently or not).

use super::journal::IntentLog;
use super::{HelmOps, KarmadaOps};
use crate::adapters::helm::{HelmError, HelmErrorKind, HistoryEntry, ReleaseSpec, ReleaseStatus};
use crate::adapters::karmada::{KarmadaError, ObjectRef, Owner};
use crate::reconcile::error::{Reason, StepError};
use crate::store::records::Intent;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Debug, Clone)]
pub struct FakeRelease {
    pub status: ReleaseStatus,
    pub history: Vec<HistoryEntry>,
    pub manifest: String,
}

#[derive(Default)]
pub struct FakeHelm {
    pub releases: Mutex<BTreeMap<(String, String), FakeRelease>>,
    calls: Mutex<Vec<String>>,
    /// verb → transient
    fail: Mutex<BTreeMap<String, bool>>,
    /// The manifest the next install renders.
    pub manifest: Mutex<String>,
}

impl FakeHelm {
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
    pub fn fail_next(&self, verb: &str, transient: bool) {
        self.fail.lock().unwrap().insert(verb.to_owned(), transient);
    }
    pub fn set_release(
        &self,
        name: &str,
        ns: &str,
        revision: u64,
        status: &str,
        history: &[(u64, &str)],
    ) {
        self.releases.lock().unwrap().insert(
            (name.to_owned(), ns.to_owned()),
            FakeRelease {
                status: ReleaseStatus {
                    revision,
                    status: status.to_owned(),
                },
                history: history
                    .iter()
                    .map(|(r, s)| HistoryEntry {
                        revision: *r,
                        status: (*s).to_owned(),
                        chart: String::new(),
                    })
                    .collect(),
                manifest: String::new(),
            },
        );
    }
    fn call(&self, verb: &str, what: String) -> Result<(), HelmError> {
        self.calls.lock().unwrap().push(what.clone());
        match self.fail.lock().unwrap().remove(verb) {
            None => Ok(()),
            Some(transient) => Err(HelmError::Failed {
                kind: if transient {
                    HelmErrorKind::ClusterUnreachable
                } else {
                    HelmErrorKind::RenderError
                },
                command: what,
                status: "exit status: 1".into(),
                stderr: "Error: injected".into(),
            }),
        }
    }
}

impl HelmOps for FakeHelm {
    async fn upgrade_install(&self, spec: &ReleaseSpec<'_>) -> Result<ReleaseStatus, HelmError> {
        self.call("upgrade", format!("upgrade {}", spec.name))?;
        let manifest = self.manifest.lock().unwrap().clone();
        let mut releases = self.releases.lock().unwrap();
        let key = (spec.name.to_owned(), spec.namespace.to_owned());
        let revision = releases.get(&key).map_or(1, |r| r.status.revision + 1);
        let status = ReleaseStatus {
            revision,
            status: "deployed".into(),
        };
        let mut history = releases
            .get(&key)
            .map(|r| r.history.clone())
            .unwrap_or_default();
        history.push(HistoryEntry {
            revision,
            status: "deployed".into(),
            chart: String::new(),
        });
        releases.insert(
            key,
            FakeRelease {
                status: status.clone(),
                history,
                manifest,
            },
        );
        Ok(status)
    }
    async fn uninstall(&self, name: &str, namespace: &str) -> Result<(), HelmError> {
        self.call("uninstall", format!("uninstall {name}"))?;
        self.releases
            .lock()
            .unwrap()
            .remove(&(name.to_owned(), namespace.to_owned()));
        Ok(())
    }
    async fn status(
        &self,
        name: &str,
        namespace: &str,
    ) -> Result<Option<ReleaseStatus>, HelmError> {
        self.call("status", format!("status {name}"))?;
        Ok(self
            .releases
            .lock()
            .unwrap()
            .get(&(name.to_owned(), namespace.to_owned()))
            .map(|r| r.status.clone()))
    }
    async fn history(&self, name: &str, namespace: &str) -> Result<Vec<HistoryEntry>, HelmError> {
        self.call("history", format!("history {name}"))?;
        Ok(self
            .releases
            .lock()
            .unwrap()
            .get(&(name.to_owned(), namespace.to_owned()))
            .map(|r| r.history.clone())
            .unwrap_or_default())
    }
    async fn rollback(&self, name: &str, namespace: &str, revision: u64) -> Result<(), HelmError> {
        self.call("rollback", format!("rollback {name} {revision}"))?;
        if let Some(r) = self
            .releases
            .lock()
            .unwrap()
            .get_mut(&(name.to_owned(), namespace.to_owned()))
        {
            r.status.status = "deployed".into();
        }
        Ok(())
    }
    async fn get_manifest(&self, name: &str, namespace: &str) -> Result<String, HelmError> {
        self.call("manifest", format!("manifest {name}"))?;
        Ok(self
            .releases
            .lock()
            .unwrap()
            .get(&(name.to_owned(), namespace.to_owned()))
            .map(|r| r.manifest.clone())
            .unwrap_or_default())
    }
}

#[derive(Default)]
pub struct FakeKarmada {
    pub objects: Mutex<BTreeMap<ObjectRef, Value>>,
    /// (namespace, release) → labels of its newest record.
    pub releases: Mutex<BTreeMap<(String, String), BTreeMap<String, String>>>,
    calls: Mutex<Vec<String>>,
    fail: Mutex<BTreeMap<String, bool>>,
    /// `get_cached` answers from `objects` as a synced watch cache would.
    pub watched: std::sync::atomic::AtomicBool,
}

impl FakeKarmada {
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
    pub fn fail_next(&self, verb: &str, transient: bool) {
        self.fail.lock().unwrap().insert(verb.to_owned(), transient);
    }
    /// helm's newest record of a release, as its storage labels say.
    pub fn set_release_labels(&self, name: &str, ns: &str, version: u64, status: &str) {
        let labels = [
            ("owner", "helm"),
            ("name", name),
            ("status", status),
            ("version", &version.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        self.releases
            .lock()
            .unwrap()
            .insert((ns.to_owned(), name.to_owned()), labels);
    }
    pub fn put(&self, r: ObjectRef, v: Value) {
        self.objects.lock().unwrap().insert(r, v);
    }
    fn call(&self, verb: &'static str, what: String) -> Result<(), KarmadaError> {
        self.calls.lock().unwrap().push(what.clone());
        match self.fail.lock().unwrap().remove(verb) {
            None => Ok(()),
            Some(transient) => Err(KarmadaError::Api {
                operation: verb,
                object: what,
                code: if transient { 503 } else { 422 },
                reason: "Injected".into(),
                message: "injected".into(),
            }),
        }
    }
}

fn ref_of(v: &Value) -> ObjectRef {
    ObjectRef {
        api_version: v["apiVersion"].as_str().unwrap_or_default().to_owned(),
        kind: v["kind"].as_str().unwrap_or_default().to_owned(),
        namespace: v["metadata"]["namespace"].as_str().map(str::to_owned),
        name: v["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    }
}

impl KarmadaOps for FakeKarmada {
    async fn ensure_namespace(&self, name: &str) -> Result<(), KarmadaError> {
        self.call("namespace", format!("namespace {name}"))
    }
    async fn apply(&self, object: &Value, _owner: &Owner) -> Result<(), KarmadaError> {
        let r = ref_of(object);
        self.call("apply", format!("apply {} {}", r.kind, r.name))?;
        self.put(r, object.clone());
        Ok(())
    }
    async fn get(&self, r: &ObjectRef) -> Result<Option<Value>, KarmadaError> {
        self.call("get", format!("get {} {}", r.kind, r.name))?;
        Ok(self.objects.lock().unwrap().get(r).cloned())
    }
    async fn cached_version(&self, r: &ObjectRef) -> Option<String> {
        if !self.watched.load(std::sync::atomic::Ordering::SeqCst) {
            return None;
        }
        self.calls
            .lock()
            .unwrap()
            .push(format!("version {} {}", r.kind, r.name));
        let objects = self.objects.lock().unwrap();
        let v = &objects.get(r)?["metadata"]["resourceVersion"];
        v.as_str().map(str::to_owned)
    }
    async fn get_cached(
        &self,
        r: &ObjectRef,
    ) -> Result<(Option<std::sync::Arc<Value>>, bool), KarmadaError> {
        if !self.watched.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok((self.get(r).await?.map(std::sync::Arc::new), false));
        }
        self.calls
            .lock()
            .unwrap()
            .push(format!("cached {} {}", r.kind, r.name));
        let found = self.objects.lock().unwrap().get(r).cloned();
        Ok((found.map(std::sync::Arc::new), true))
    }
    async fn delete(&self, r: &ObjectRef) -> Result<(), KarmadaError> {
        self.call("delete", format!("delete {} {}", r.kind, r.name))?;
        self.objects.lock().unwrap().remove(r);
        Ok(())
    }
    async fn release_labels(
        &self,
        namespace: &str,
        release: &str,
    ) -> Result<Option<BTreeMap<String, String>>, KarmadaError> {
        self.call("list", format!("release {release}"))?;
        Ok(self
            .releases
            .lock()
            .unwrap()
            .get(&(namespace.to_owned(), release.to_owned()))
            .cloned())
    }
    async fn scale(
        &self,
        _ns: &str,
        kind: &str,
        name: &str,
        replicas: u32,
    ) -> Result<(), KarmadaError> {
        self.call("scale", format!("scale {kind} {name} {replicas}"))
    }
}

/// Intents in memory; `fail_next` refuses the next commit (a full disk).
#[derive(Default)]
pub struct FakeLog {
    intents: Mutex<Vec<Intent>>,
    fail: Mutex<bool>,
}

impl FakeLog {
    pub fn intents(&self) -> Vec<Intent> {
        self.intents.lock().unwrap().clone()
    }
    pub fn fail_next(&self) {
        *self.fail.lock().unwrap() = true;
    }
}

impl IntentLog for FakeLog {
    async fn begin(&self, intent: &Intent) -> Result<(), StepError> {
        if std::mem::take(&mut *self.fail.lock().unwrap()) {
            return Err(StepError::transient(
                Reason::Store,
                "state store: disk full",
            ));
        }
        self.intents.lock().unwrap().push(intent.clone());
        Ok(())
    }
}
