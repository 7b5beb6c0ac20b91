//! The records kept in the state store, as serde types.
//!
//! Records are stored as JSON bytes (field names in camelCase, enum variants
//! as Kubernetes spells phases and conditions: `Deployed`, `Ready`). JSON
//! keeps the file readable with a generic redb dump and lets a new optional
//! field be added without a migration; any other change of these shapes is
//! a new schema version with a migration in [`super::migrate`].
//!
//! Keys are built here and nowhere else. They join names with `/`, which
//! cannot occur in a project, graph or service name (those are DNS labels,
//! checked by the descriptor validation), so a graph's services and owned
//! objects are exactly the keys under the prefix `"{project}/{graph}/"`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use super::journal::{Event, NewEvent, NewRun, RunRecord};
use crate::keys::GraphKey;
use crate::provenance::Change;

/// The stored state of one graph (an HDAG of one project).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphRecord {
    pub project: String,
    pub graph: String,
    /// The descriptor's path in the desired-state source.
    pub file: String,
    pub desired_hash: String,
    pub suspended: bool,
    pub last_applied_revision: Option<String>,
    pub last_attempted_revision: Option<String>,
    /// Service name → the clusters it is placed on.
    pub placement: BTreeMap<String, Vec<String>>,
    /// Hash of what the placement was computed from; a placement is reused
    /// while its inputs are unchanged.
    pub placement_inputs_hash: Option<String>,
    pub placement_revision: Option<String>,
    pub conditions: Vec<Condition>,
    pub last_error: Option<String>,
    /// Unix seconds.
    pub updated_at: u64,
    /// Consecutive failed reconciles, for the retry back-off.
    pub failures: u32,
    /// Unix seconds.
    pub next_retry_at: Option<u64>,
    /// Grafana dashboards smo published for the graph: uid → URL (or the
    /// file written for Grafana's provisioning).
    #[serde(default)]
    pub dashboards: BTreeMap<String, String>,
    /// For a graph pulled from the HDAR: the artifact its descriptor came
    /// from, pinned (`oci://host/repo@sha256:…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// The revision (and commit) that last changed the descriptor, and
    /// its file: the audit trail `smo status` shows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_change: Option<Change>,
}

impl GraphRecord {
    /// A graph seen for the first time (declared in `file`).
    pub fn new(project: &str, graph: &str, file: &str, now: u64) -> Self {
        GraphRecord {
            project: project.to_owned(),
            graph: graph.to_owned(),
            file: file.to_owned(),
            desired_hash: String::new(),
            suspended: false,
            last_applied_revision: None,
            last_attempted_revision: None,
            placement: BTreeMap::new(),
            placement_inputs_hash: None,
            placement_revision: None,
            conditions: Vec::new(),
            last_error: None,
            updated_at: now,
            failures: 0,
            next_retry_at: None,
            dashboards: BTreeMap::new(),
            origin: None,
            last_change: None,
        }
    }

    /// The record's key, `"{project}/{graph}"`.
    pub fn key(&self) -> String {
        graph_key(&self.project, &self.graph)
    }
}

/// What a service is doing, as last observed or decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServicePhase {
    Pending,
    Deployed,
    Failed,
    WaitingForTrigger,
    BlockedByDependency,
    Suspended,
    Uninstalled,
    /// Held: acting would touch something that is not smo's (a release it
    /// did not install); nothing is changed until the descriptor adopts it
    /// or the release is gone.
    Blocked,
}

/// The state of a service's deployment trigger (an alert that must fire
/// before the service is deployed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerState {
    pub armed: bool,
    /// Unix seconds.
    pub fired_at: Option<u64>,
    /// The alert that fired the trigger.
    pub alert: Option<String>,
    /// Events of the trigger that have not fired yet (for `ALL`, the ones
    /// still awaited; for `ANY`, every event while none has fired).
    #[serde(default)]
    pub pending: Vec<String>,
}

/// One event of a service's trigger that an alert fired: written by the
/// webhook before it acknowledges, read by the reconciler. Kept in its own
/// table so that the reconciler's batch write of a service record can never
/// overwrite a trigger that arrived meanwhile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FiredEvent {
    pub project: String,
    pub graph: String,
    pub service: String,
    pub event: String,
    /// The alert's name (`alertname` label).
    pub alert: String,
    /// Alertmanager's fingerprint and `startsAt`: with the status, the
    /// idempotency key of a delivery.
    pub fingerprint: String,
    pub starts_at: String,
    /// Unix seconds the firing was recorded.
    pub fired_at: u64,
    /// Unix seconds a `resolved` notification for the same alert arrived.
    pub resolved_at: Option<u64>,
    /// Unix seconds the trigger was re-armed (`undeployOnResolve`): the
    /// event no longer counts, but a late duplicate of the same firing is
    /// still recognised as one.
    pub cleared_at: Option<u64>,
}

impl FiredEvent {
    pub fn key(&self) -> String {
        trigger_key(&self.project, &self.graph, &self.service, &self.event)
    }
    /// Fired and not re-armed since.
    pub fn counts(&self) -> bool {
        self.cleared_at.is_none()
    }
}

/// The scaler's last decision for one service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleRecord {
    pub project: String,
    pub graph: String,
    pub service: String,
    /// Replicas written through the scale subresource (re-asserted after
    /// every upgrade of the release).
    pub replicas: u32,
    /// Cluster → replicas the model chose there.
    pub per_cluster: BTreeMap<String, u32>,
    /// Request rate used (req/s); `None` when Prometheus had no data.
    pub rate: Option<f64>,
    /// Why the decision is not a fresh one (no data, Prometheus
    /// unreachable, re-placement requested).
    pub note: Option<String>,
    /// Unix seconds.
    pub at: u64,
}

impl ScaleRecord {
    pub fn key(&self) -> String {
        service_key(&self.project, &self.graph, &self.service)
    }
}

/// Where a cluster provisioned through NFVCL stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProvisionStatus {
    /// Not created yet: the last creation attempt failed transiently (or
    /// none was made); the planner asks for a creation again.
    Pending,
    /// NFVCL accepted the creation and works on it.
    Creating,
    /// NFVCL accepted a change of the worker count and works on it.
    Scaling,
    /// NFVCL reports the blueprint idle.
    Ready,
    /// NFVCL refused the creation or reported the blueprint in error;
    /// terminal until the cluster's provision changes.
    Failed,
}

/// A cluster that smo provisions through NFVCL, keyed by cluster name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionRecord {
    pub cluster: String,
    /// NFVCL's blueprint id, once NFVCL accepted the creation.
    pub blueprint_id: Option<String>,
    /// Workers asked of NFVCL last (what the blueprint has once Ready).
    pub workers: u32,
    pub status: ProvisionStatus,
    /// [`crate::provision::spec_hash`] of the provision last acted on.
    pub spec_hash: String,
    /// NFVCL's explanation of a failure, or the last transient error.
    pub detail: Option<String>,
    /// [`crate::provision::full_hash`] of the provision NFVCL refused
    /// (creation or scaling): not asked again until the provision changes.
    #[serde(default)]
    pub refused: Option<String>,
    /// Status polls since the last change, for the polling back-off.
    #[serde(default)]
    pub polls: u32,
    /// Unix seconds.
    pub updated_at: u64,
}

impl ProvisionRecord {
    pub fn key(&self) -> String {
        self.cluster.clone()
    }
}

/// A graph asked to move so that another graph can be placed (the fleet
/// repair, see `placement::make_room`), keyed by the graph that moves.
/// Written with the placement of the graph it makes room for, in one
/// transaction, and taken by the moving graph's own reconcile: a crash in
/// between leaves the request, not a half-made room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MoveRecord {
    pub project: String,
    pub graph: String,
    /// Service → clusters: where the graph goes.
    pub placement: BTreeMap<String, Vec<String>>,
    /// The graph's placement inputs hash the move was planned on: a move
    /// planned on other inputs is dropped.
    pub inputs_hash: String,
    /// `project/graph` of the graph the room is made for.
    pub for_graph: String,
    /// Unix seconds.
    pub requested_at: u64,
}

impl MoveRecord {
    pub fn key(&self) -> String {
        graph_key(&self.project, &self.graph)
    }
}

/// Which release a service record holds, read without the rest of the
/// record (the sweep reads every record; most of their bytes are
/// manifests it does not need).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseHead {
    pub project: String,
    pub graph: String,
    pub namespace: String,
    pub release: String,
}

impl From<&ServiceRecord> for ReleaseHead {
    fn from(s: &ServiceRecord) -> Self {
        ReleaseHead {
            project: s.project.clone(),
            graph: s.graph.clone(),
            namespace: s.namespace.clone(),
            release: s.release.clone(),
        }
    }
}

/// The stored state of one service of a graph (one Helm release).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRecord {
    pub project: String,
    pub graph: String,
    pub service: String,
    pub namespace: String,
    pub release: String,
    pub release_revision: Option<u64>,
    /// Hash of the chart, version and values last applied; the upgrade is
    /// skipped while it is unchanged.
    pub input_hash: Option<String>,
    pub phase: ServicePhase,
    pub clusters: Vec<String>,
    /// Cluster → replicas chosen by the scaler.
    pub replicas: BTreeMap<String, u32>,
    pub trigger: TriggerState,
    /// The service this one waits for.
    pub blocked_by: Option<String>,
    pub last_error: Option<String>,
    /// Unix seconds.
    pub updated_at: u64,
    /// The manifest helm applied at `release_revision` (`helm get
    /// manifest`): drift is checked against it without running helm.
    #[serde(default)]
    pub manifest: Option<String>,
    /// Fields of the release that differ live, as the last drift check
    /// found them (`Kind/name/pointer`); empty when in sync or unchecked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drifted: Vec<String>,
}

impl ServiceRecord {
    /// A service seen for the first time: its release is named after it
    /// in the project's namespace.
    pub fn new(project: &str, graph: &str, service: &str, now: u64) -> Self {
        ServiceRecord {
            project: project.to_owned(),
            graph: graph.to_owned(),
            service: service.to_owned(),
            namespace: project.to_owned(),
            release: service.to_owned(),
            release_revision: None,
            input_hash: None,
            phase: ServicePhase::Pending,
            clusters: Vec::new(),
            replicas: BTreeMap::new(),
            trigger: TriggerState::default(),
            blocked_by: None,
            last_error: None,
            updated_at: now,
            manifest: None,
            drifted: Vec::new(),
        }
    }

    /// The record's key, `"{project}/{graph}/{service}"`.
    pub fn key(&self) -> String {
        service_key(&self.project, &self.graph, &self.service)
    }
}

/// The kinds of condition a graph reports (Flux-style).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConditionKind {
    Ready,
    Reconciling,
    Stalled,
    Suspended,
    WaitingForTrigger,
    BlockedByDependency,
    Drifted,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    pub kind: ConditionKind,
    pub status: bool,
    pub reason: String,
    pub message: String,
    /// Unix seconds: when `status` last changed.
    pub since: u64,
}

/// An object smo applied outside any chart (a PropagationPolicy, a
/// namespace, a PrometheusRule), kept so that it can be pruned when it
/// leaves the desired state.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnedObject {
    pub project: String,
    pub graph: String,
    pub api_version: String,
    pub kind: String,
    /// `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    pub name: String,
}

impl OwnedObject {
    /// The record's key,
    /// `"{project}/{graph}/{api_version}/{kind}/{namespace or '-'}/{name}"`.
    ///
    /// `api_version` may itself contain a `/` (`policy.karmada.io/v1alpha1`);
    /// the key stays unique because the kind, namespace and name cannot.
    pub fn key(&self) -> String {
        format!(
            "{}{}/{}/{}/{}",
            children_prefix(&self.project, &self.graph),
            self.api_version,
            self.kind,
            self.namespace.as_deref().unwrap_or("-"),
            self.name
        )
    }
}

/// The last observed state of a member cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterRecord {
    pub name: String,
    pub ready: bool,
    /// Unix seconds: when readiness last changed.
    pub since: u64,
    pub cpu_free: f64,
    pub memory_free: f64,
    pub gpu_free: f64,
}

/// A side effect smo is about to cause, committed before it starts
/// (write-ahead): if the process dies between the effect and the commit of
/// its result, the next start finds the intent and makes sure the store
/// knows what may now exist, so nothing smo creates can be orphaned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Intent {
    pub project: String,
    pub graph: String,
    pub effect: IntentEffect,
    /// Unix seconds.
    pub at: u64,
}

/// What an [`Intent`] is about to create or change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum IntentEffect {
    /// `helm upgrade --install` of a service's release.
    #[serde(rename_all = "camelCase")]
    Release {
        service: String,
        release: String,
        namespace: String,
    },
    /// A server-side apply of an object smo owns outside any chart.
    Object { object: OwnedObject },
}

impl Intent {
    /// `"{project}/{graph}/release/{service}"` or
    /// `"{project}/{graph}/object/{owned object key}"`.
    pub fn key(&self) -> String {
        let prefix = children_prefix(&self.project, &self.graph);
        match &self.effect {
            IntentEffect::Release { service, .. } => format!("{prefix}release/{service}"),
            IntentEffect::Object { object } => format!("{prefix}object/{}", object.key()),
        }
    }
}

/// How far one event sink has got through the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SinkCursor {
    /// The sequence number of the last event given to the sink
    /// (delivered, refused for good, or not of a type it takes).
    pub seq: u64,
    /// Unix seconds.
    pub at: u64,
}

/// The value types redb records for the tables (see [`super::codec`]):
/// part of the schema, never renamed without a migration.
macro_rules! records {
    ($($t:ident),* $(,)?) => {
        $(impl super::codec::Record for $t {
            const TYPE_NAME: &'static str = concat!("smo::", stringify!($t), "+json");
        })*
    };
}

records!(
    GraphRecord,
    ServiceRecord,
    OwnedObject,
    FiredEvent,
    ScaleRecord,
    ClusterRecord,
    ProvisionRecord,
    Intent,
    Event,
    RunRecord,
    SinkCursor,
    MoveRecord,
);

/// The key of a graph record.
pub fn graph_key(project: &str, graph: &str) -> String {
    GraphKey::new(project, graph).to_string()
}

/// The key of a service record.
pub fn service_key(project: &str, graph: &str, service: &str) -> String {
    GraphKey::new(project, graph).service(service).to_string()
}

/// The key of a fired trigger event.
pub fn trigger_key(project: &str, graph: &str, service: &str, event: &str) -> String {
    format!("{}/{event}", service_key(project, graph, service))
}

/// The prefix shared by the keys of a graph's services and owned objects.
pub(crate) fn children_prefix(project: &str, graph: &str) -> String {
    format!("{}/", GraphKey::new(project, graph))
}

/// The first key past every key that starts with `prefix`, where `prefix`
/// ends with `/`: `'0'` is the character right after `'/'`.
pub(crate) fn prefix_end(prefix: &str) -> String {
    debug_assert!(prefix.ends_with('/'));
    let mut end = prefix[..prefix.len() - 1].to_owned();
    end.push('0');
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_object_key_marks_cluster_scope_with_a_dash() {
        let object = OwnedObject {
            project: "p".into(),
            graph: "g".into(),
            api_version: "v1".into(),
            kind: "Namespace".into(),
            namespace: None,
            name: "p".into(),
        };
        assert_eq!(object.key(), "p/g/v1/Namespace/-/p");
        let object = OwnedObject {
            api_version: "policy.karmada.io/v1alpha1".into(),
            kind: "PropagationPolicy".into(),
            namespace: Some("p".into()),
            name: "web".into(),
            ..object
        };
        assert_eq!(
            object.key(),
            "p/g/policy.karmada.io/v1alpha1/PropagationPolicy/p/web"
        );
    }

    #[test]
    fn prefix_range_excludes_graphs_whose_name_extends_another() {
        let prefix = children_prefix("p", "g");
        let end = prefix_end(&prefix);
        let inside = service_key("p", "g", "zzz");
        let sibling = service_key("p", "g-2", "a");
        let longer = service_key("p", "gx", "a");
        assert!(prefix.as_str() <= inside.as_str() && inside.as_str() < end.as_str());
        assert!(!(prefix.as_str() <= sibling.as_str() && sibling.as_str() < end.as_str()));
        assert!(!(prefix.as_str() <= longer.as_str() && longer.as_str() < end.as_str()));
    }

    #[test]
    fn phases_and_conditions_serialise_as_kubernetes_spells_them() {
        assert_eq!(
            serde_json::to_string(&ServicePhase::WaitingForTrigger).unwrap(),
            "\"WaitingForTrigger\""
        );
        assert_eq!(
            serde_json::to_string(&ConditionKind::Ready).unwrap(),
            "\"Ready\""
        );
    }
}
