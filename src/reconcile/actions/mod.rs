//! The executors: one module per kind of action of the plan. Each takes
//! the narrow effect traits below instead of the concrete adapters, so
//! that it is unit-tested with small in-memory implementations; the real
//! `helm` and Karmada adapters implement them at the bottom of this file.
//!
//! Executors never decide: the planner chose the action, an executor
//! carries it out, writes what it learnt into the service record and
//! reports success or a typed [`StepError`](super::error::StepError).

pub mod adopt;
pub mod clean;
pub mod install;
pub mod journal;
pub mod observe;
pub mod owned;
pub mod uninstall;
pub mod unlock;

#[cfg(test)]
mod fakes;

use crate::adapters::helm::{Helm, HelmError, HistoryEntry, ReleaseSpec, ReleaseStatus};
use crate::adapters::karmada::{Karmada, KarmadaError, ObjectRef, Owner};
use serde_json::Value;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

/// What the reconciler asks of helm.
pub trait HelmOps: Send + Sync {
    fn upgrade_install(
        &self,
        spec: &ReleaseSpec<'_>,
    ) -> impl Future<Output = Result<ReleaseStatus, HelmError>> + Send;
    /// `Ok` also when the release does not exist.
    fn uninstall(
        &self,
        name: &str,
        namespace: &str,
    ) -> impl Future<Output = Result<(), HelmError>> + Send;
    /// `None` when the release does not exist.
    fn status(
        &self,
        name: &str,
        namespace: &str,
    ) -> impl Future<Output = Result<Option<ReleaseStatus>, HelmError>> + Send;
    fn history(
        &self,
        name: &str,
        namespace: &str,
    ) -> impl Future<Output = Result<Vec<HistoryEntry>, HelmError>> + Send;
    fn rollback(
        &self,
        name: &str,
        namespace: &str,
        revision: u64,
    ) -> impl Future<Output = Result<(), HelmError>> + Send;
    fn get_manifest(
        &self,
        name: &str,
        namespace: &str,
    ) -> impl Future<Output = Result<String, HelmError>> + Send;
}

/// What the reconciler asks of the Karmada API.
pub trait KarmadaOps: Send + Sync {
    fn ensure_namespace(&self, name: &str)
    -> impl Future<Output = Result<(), KarmadaError>> + Send;
    /// Server-side apply with smo's field manager and the owner's labels.
    fn apply(
        &self,
        object: &Value,
        owner: &Owner,
    ) -> impl Future<Output = Result<(), KarmadaError>> + Send;
    /// `None` when the object (or its kind) does not exist.
    fn get(
        &self,
        r: &ObjectRef,
    ) -> impl Future<Output = Result<Option<Value>, KarmadaError>> + Send;
    /// From a watch cache when one holds the object (`true`: it may lag a
    /// write made a moment ago), otherwise as [`KarmadaOps::get`].
    fn get_cached(
        &self,
        r: &ObjectRef,
    ) -> impl Future<Output = Result<(Option<Arc<Value>>, bool), KarmadaError>> + Send {
        async move { Ok((self.get(r).await?.map(Arc::new), false)) }
    }
    /// The resourceVersion a synced watch cache holds for the object;
    /// `None` when no cache holds it.
    fn cached_version(&self, r: &ObjectRef) -> impl Future<Output = Option<String>> + Send {
        let _ = r;
        async { None }
    }
    /// Keeps the kinds of these objects watched, when there are watch
    /// caches.
    fn watch_kinds(&self, objects: &[Value]) -> impl Future<Output = ()> + Send {
        let _ = objects;
        async {}
    }
    /// `Ok` also when the object does not exist.
    fn delete(&self, r: &ObjectRef) -> impl Future<Output = Result<(), KarmadaError>> + Send;
    /// Labels of helm's newest record of a release; `None` when absent.
    fn release_labels(
        &self,
        namespace: &str,
        release: &str,
    ) -> impl Future<Output = Result<Option<BTreeMap<String, String>>, KarmadaError>> + Send;
    /// Replicas through the scale subresource (the scaler's field manager).
    fn scale(
        &self,
        namespace: &str,
        kind: &str,
        name: &str,
        replicas: u32,
    ) -> impl Future<Output = Result<(), KarmadaError>> + Send;
}

impl HelmOps for Helm {
    async fn upgrade_install(&self, spec: &ReleaseSpec<'_>) -> Result<ReleaseStatus, HelmError> {
        Helm::upgrade_install(self, spec).await
    }
    async fn uninstall(&self, name: &str, namespace: &str) -> Result<(), HelmError> {
        Helm::uninstall(self, name, namespace).await
    }
    async fn status(
        &self,
        name: &str,
        namespace: &str,
    ) -> Result<Option<ReleaseStatus>, HelmError> {
        Helm::status(self, name, namespace).await
    }
    async fn history(&self, name: &str, namespace: &str) -> Result<Vec<HistoryEntry>, HelmError> {
        Helm::history(self, name, namespace).await
    }
    async fn rollback(&self, name: &str, namespace: &str, revision: u64) -> Result<(), HelmError> {
        Helm::rollback(self, name, namespace, revision).await
    }
    async fn get_manifest(&self, name: &str, namespace: &str) -> Result<String, HelmError> {
        Helm::get_manifest(self, name, namespace).await
    }
}

impl KarmadaOps for Karmada {
    async fn ensure_namespace(&self, name: &str) -> Result<(), KarmadaError> {
        Karmada::ensure_namespace(self, name).await
    }
    async fn apply(&self, object: &Value, owner: &Owner) -> Result<(), KarmadaError> {
        Karmada::apply(self, object, owner).await
    }
    async fn get(&self, r: &ObjectRef) -> Result<Option<Value>, KarmadaError> {
        Karmada::get(self, r).await
    }
    async fn get_cached(&self, r: &ObjectRef) -> Result<(Option<Arc<Value>>, bool), KarmadaError> {
        Karmada::get_cached(self, r).await
    }
    async fn cached_version(&self, r: &ObjectRef) -> Option<String> {
        Karmada::cached_version(self, r).await
    }
    async fn watch_kinds(&self, objects: &[Value]) {
        Karmada::watch_kinds(self, objects).await;
    }
    async fn delete(&self, r: &ObjectRef) -> Result<(), KarmadaError> {
        Karmada::delete(self, r).await
    }
    async fn release_labels(
        &self,
        namespace: &str,
        release: &str,
    ) -> Result<Option<BTreeMap<String, String>>, KarmadaError> {
        Karmada::release_labels(self, namespace, release).await
    }
    async fn scale(
        &self,
        namespace: &str,
        kind: &str,
        name: &str,
        replicas: u32,
    ) -> Result<(), KarmadaError> {
        Karmada::scale(self, namespace, kind, name, replicas).await
    }
}
