//! Live observations the planner needs, read from Karmada (from the watch
//! caches where they hold the object): drift of an installed release (its
//! recorded manifest against the live objects, confirmed against the API
//! server before it is reported) and the readiness of a dependency (every
//! workload of its release). Reads only; the rules that judge what was read
//! are pure functions below.

use super::KarmadaOps;
use super::clean::{self, CleanMemo};
use crate::adapters::karmada::{
    GRAPH_LABEL, MANAGED_BY, MANAGED_BY_LABEL, ObjectRef, Owner, PROJECT_LABEL, label_value,
};
use crate::adapters::manifest;
use crate::keys::GraphKey;
use crate::reconcile::error::{Reason, StepError};
use crate::reconcile::plan::{Ownership, Readiness};
use crate::store::records::ServiceRecord;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Paths (`Kind/name/pointer`) of the fields the recorded manifest sets
/// that differ live; a missing object is drift too. `ignore_replicas` when
/// the scaler owns the replicas. A release `memo` found in sync whose
/// objects are all still at the versions it saw is not compared again.
pub async fn drift<K: KarmadaOps>(
    karmada: &K,
    rec: &ServiceRecord,
    ignore_replicas: bool,
    memo: &CleanMemo,
) -> Result<Vec<String>, StepError> {
    let Some(text) = &rec.manifest else {
        return Ok(Vec::new());
    };
    let graph = GraphKey::new(&rec.project, &rec.graph);
    let hash = memo.manifest_hash(text);
    if let Some(objects) = memo.get(&graph, &rec.service, hash, ignore_replicas)
        && unchanged(karmada, &objects).await
    {
        return Ok(Vec::new());
    }
    let objects = manifest::parse(text).map_err(|e| {
        StepError::terminal(
            Reason::Manifest,
            format!("stored manifest of {} unreadable: {e}", rec.release),
        )
    })?;
    let mut out = Vec::new();
    // The version of every object found in sync, while all are.
    let mut versions = Some(Vec::new());
    for o in &objects {
        let Some(r) = manifest::object_ref(o, &rec.namespace) else {
            continue;
        };
        let label = format!("{}/{}", r.kind, r.name);
        let compare = |live: Option<&Value>| -> Vec<String> {
            match live {
                None => vec![format!("{label} is missing")],
                Some(live) => manifest::drift(o, live)
                    .into_iter()
                    .filter(|p| !(ignore_replicas && p == "/spec/replicas"))
                    .map(|p| format!("{label}{p}"))
                    .collect(),
            }
        };
        let (mut live, cached) = karmada.get_cached(&r).await?;
        let mut found = compare(live.as_deref());
        if cached && !found.is_empty() {
            // A cache may lag smo's own write of a moment ago: drift is
            // only reported as the API server shows it.
            live = karmada.get(&r).await?.map(Arc::new);
            found = compare(live.as_deref());
        }
        versions = match (versions, live.as_deref().and_then(version)) {
            (Some(mut v), Some(rv)) if found.is_empty() => {
                v.push((r, rv.to_owned()));
                Some(v)
            }
            _ => None,
        };
        out.extend(found);
    }
    let clean = versions
        .filter(|_| out.is_empty())
        .map(|objects| clean::Clean {
            manifest: hash,
            ignore_replicas,
            objects,
        });
    memo.put(&graph, &rec.service, clean);
    Ok(out)
}

/// Whether every object is in a watch cache at the version given.
async fn unchanged<K: KarmadaOps>(karmada: &K, objects: &[(ObjectRef, String)]) -> bool {
    for (r, rv) in objects {
        if karmada.cached_version(r).await.as_ref() != Some(rv) {
            return false;
        }
    }
    true
}

fn version(live: &Value) -> Option<&str> {
    live.get("metadata")?.get("resourceVersion")?.as_str()
}

/// Whether every workload (Deployment, StatefulSet, DaemonSet) of the
/// service's recorded release manifest exists and is ready. A release
/// without a recorded manifest is not known to be ready.
pub async fn readiness<K: KarmadaOps>(karmada: &K, rec: &ServiceRecord) -> Readiness {
    let Some(text) = &rec.manifest else {
        return Readiness::NotReady(format!("{} has no recorded release", rec.service));
    };
    let objects = match manifest::parse(text) {
        Ok(o) => o,
        Err(e) => {
            return Readiness::Unknown(StepError::terminal(
                Reason::Manifest,
                format!("stored manifest of {} unreadable: {e}", rec.release),
            ));
        }
    };
    for o in &objects {
        if !is_workload(o) {
            continue;
        }
        let Some(r) = manifest::object_ref(o, &rec.namespace) else {
            continue;
        };
        let label = format!("{}/{}", r.kind, r.name);
        match karmada.get_cached(&r).await.map(|(live, _)| live) {
            Err(e) => return Readiness::Unknown(e.into()),
            Ok(None) => return Readiness::NotReady(format!("{label} does not exist")),
            Ok(Some(live)) => {
                if let Err(why) = workload_ready(&live) {
                    return Readiness::NotReady(format!("{label} {why}"));
                }
            }
        }
    }
    Readiness::Ready
}

/// Who owns the release `release` in `namespace`, from its labels.
pub async fn ownership<K: KarmadaOps>(
    karmada: &K,
    namespace: &str,
    release: &str,
    owner: &Owner,
) -> Ownership {
    match karmada.release_labels(namespace, release).await {
        Err(e) => Ownership::Unknown(e.into()),
        Ok(labels) => owner_of(labels.as_ref(), owner),
    }
}

/// The rule: smo's marks naming this graph are ours; smo's marks naming
/// another graph are that graph's; anything else is not smo's.
pub fn owner_of(labels: Option<&BTreeMap<String, String>>, owner: &Owner) -> Ownership {
    let Some(labels) = labels else {
        return Ownership::Absent;
    };
    if labels.get(MANAGED_BY_LABEL).map(String::as_str) != Some(MANAGED_BY) {
        return Ownership::Foreign;
    }
    let (project, graph) = (labels.get(PROJECT_LABEL), labels.get(GRAPH_LABEL));
    if project == Some(&label_value(&owner.project)) && graph == Some(&label_value(&owner.graph)) {
        Ownership::Ours
    } else {
        Ownership::OtherGraph(format!(
            "{}/{}",
            project.map_or("?", String::as_str),
            graph.map_or("?", String::as_str)
        ))
    }
}

fn is_workload(o: &Value) -> bool {
    o["apiVersion"] == "apps/v1"
        && matches!(
            o["kind"].as_str(),
            Some("Deployment" | "StatefulSet" | "DaemonSet")
        )
}

fn int(v: &Value, pointer: &str) -> Option<i64> {
    v.pointer(pointer).and_then(Value::as_i64)
}

/// Readiness of one live workload. On Karmada the status is the aggregate
/// of the member clusters'.
///
/// - Deployment (wanted = `spec.replicas`, 1 when unset): ready when
///   `status.readyReplicas >= wanted`, or when the controller caught up
///   with the spec (`status.observedGeneration >= metadata.generation`)
///   and `status.availableReplicas >= wanted`. Scaled to zero is ready.
/// - StatefulSet: `status.readyReplicas >= spec.replicas` (1 when unset).
/// - DaemonSet: `status.numberReady >= status.desiredNumberScheduled`, and
///   at least one scheduled once the controller has seen it.
pub fn workload_ready(live: &Value) -> Result<(), String> {
    let ready = int(live, "/status/readyReplicas").unwrap_or(0);
    match live["kind"].as_str() {
        Some("Deployment") => {
            let wanted = int(live, "/spec/replicas").unwrap_or(1);
            let available = int(live, "/status/availableReplicas").unwrap_or(0);
            let caught_up = match (
                int(live, "/status/observedGeneration"),
                int(live, "/metadata/generation"),
            ) {
                (Some(observed), Some(generation)) => observed >= generation,
                (_, None) => true,
                (None, Some(_)) => false,
            };
            if ready >= wanted || (caught_up && available >= wanted) {
                Ok(())
            } else {
                Err(format!("has {ready} of {wanted} replicas ready"))
            }
        }
        Some("StatefulSet") => {
            let wanted = int(live, "/spec/replicas").unwrap_or(1);
            if ready >= wanted {
                Ok(())
            } else {
                Err(format!("has {ready} of {wanted} replicas ready"))
            }
        }
        Some("DaemonSet") => {
            let desired = int(live, "/status/desiredNumberScheduled");
            let number_ready = int(live, "/status/numberReady").unwrap_or(0);
            match desired {
                Some(d) if number_ready >= d => Ok(()),
                Some(d) => Err(format!("has {number_ready} of {d} pods ready")),
                None => Err("has no status yet".into()),
            }
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::karmada::ObjectRef;
    use crate::reconcile::actions::fakes::FakeKarmada;
    use crate::reconcile::actions::install::tests::record;
    use serde_json::json;

    #[test]
    fn ownership_is_read_from_smos_marks() {
        let owner = Owner {
            project: "p".into(),
            graph: "g".into(),
        };
        assert_eq!(owner_of(None, &owner), Ownership::Absent);
        let ours = owner.labels();
        assert_eq!(owner_of(Some(&ours), &owner), Ownership::Ours);
        let other = Owner {
            project: "p".into(),
            graph: "h".into(),
        }
        .labels();
        assert_eq!(
            owner_of(Some(&other), &owner),
            Ownership::OtherGraph("p/h".into())
        );
        let helm_only = BTreeMap::from([("owner".to_owned(), "helm".to_owned())]);
        assert_eq!(owner_of(Some(&helm_only), &owner), Ownership::Foreign);
    }

    #[test]
    fn workload_readiness_rules() {
        let ok = |v: Value| workload_ready(&v).is_ok();
        assert!(ok(
            json!({"kind": "Deployment", "spec": {"replicas": 2}, "status": {"readyReplicas": 2}})
        ));
        assert!(!ok(
            json!({"kind": "Deployment", "spec": {"replicas": 2}, "status": {"readyReplicas": 1}})
        ));
        assert!(ok(
            json!({"kind": "Deployment", "spec": {"replicas": 0}, "status": {}})
        ));
        assert!(ok(
            json!({"kind": "Deployment", "metadata": {"generation": 2}, "spec": {"replicas": 1},
            "status": {"observedGeneration": 2, "availableReplicas": 1}})
        ));
        assert!(!ok(
            json!({"kind": "Deployment", "metadata": {"generation": 3}, "spec": {"replicas": 1},
            "status": {"observedGeneration": 2, "availableReplicas": 1}})
        ));
        assert!(ok(
            json!({"kind": "StatefulSet", "spec": {"replicas": 3}, "status": {"readyReplicas": 3}})
        ));
        assert!(!ok(
            json!({"kind": "StatefulSet", "spec": {"replicas": 3}, "status": {"readyReplicas": 2}})
        ));
        assert!(!ok(json!({"kind": "StatefulSet", "status": {}})));
        assert!(ok(
            json!({"kind": "DaemonSet", "status": {"desiredNumberScheduled": 2, "numberReady": 2}})
        ));
        assert!(!ok(
            json!({"kind": "DaemonSet", "status": {"desiredNumberScheduled": 2, "numberReady": 1}})
        ));
        assert!(!ok(json!({"kind": "DaemonSet", "status": {}})));
    }

    const MANIFEST: &str = "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: front\nspec:\n  replicas: 1\n---\napiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: store\nspec:\n  replicas: 1\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n";

    fn r(kind: &str, name: &str) -> ObjectRef {
        ObjectRef {
            api_version: "apps/v1".into(),
            kind: kind.into(),
            namespace: Some("p".into()),
            name: name.into(),
        }
    }

    #[tokio::test]
    async fn a_dependency_is_ready_only_when_every_workload_of_its_release_is() {
        let k = FakeKarmada::default();
        let mut rec = record();
        rec.service = "db".into();
        rec.manifest = Some(MANIFEST.into());
        // Nothing live: the Deployment is missing.
        assert!(
            matches!(readiness(&k, &rec).await, Readiness::NotReady(w) if w.contains("Deployment/front does not exist"))
        );
        k.put(
            r("Deployment", "front"),
            json!({"kind": "Deployment", "spec": {"replicas": 1}, "status": {"readyReplicas": 1}}),
        );
        // The StatefulSet, not named after the service, is missing.
        assert!(
            matches!(readiness(&k, &rec).await, Readiness::NotReady(w) if w.contains("StatefulSet/store"))
        );
        k.put(
            r("StatefulSet", "store"),
            json!({"kind": "StatefulSet", "spec": {"replicas": 1}, "status": {"readyReplicas": 0}}),
        );
        assert!(
            matches!(readiness(&k, &rec).await, Readiness::NotReady(w) if w.contains("0 of 1"))
        );
        k.put(
            r("StatefulSet", "store"),
            json!({"kind": "StatefulSet", "spec": {"replicas": 1}, "status": {"readyReplicas": 1}}),
        );
        assert_eq!(readiness(&k, &rec).await, Readiness::Ready);
        k.fail_next("get", true);
        assert!(matches!(readiness(&k, &rec).await, Readiness::Unknown(e) if e.transient));
        rec.manifest = None;
        assert!(matches!(readiness(&k, &rec).await, Readiness::NotReady(_)));
    }

    #[tokio::test]
    async fn drift_names_changed_fields_and_missing_objects() {
        let k = FakeKarmada::default();
        let mut rec = record();
        rec.namespace = "p".into();
        rec.manifest = Some("---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: front\nspec:\n  replicas: 1\n".into());
        assert_eq!(
            drift(&k, &rec, false, &CleanMemo::default()).await.unwrap(),
            ["Deployment/front is missing"]
        );
        k.put(
            r("Deployment", "front"),
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "front", "namespace": "p"}, "spec": {"replicas": 4}}),
        );
        assert_eq!(
            drift(&k, &rec, false, &CleanMemo::default()).await.unwrap(),
            ["Deployment/front/spec/replicas"]
        );
        assert!(
            drift(&k, &rec, true, &CleanMemo::default())
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn a_release_found_in_sync_is_compared_again_only_when_an_object_changed() {
        let k = FakeKarmada::default();
        k.watched.store(true, std::sync::atomic::Ordering::SeqCst);
        let memo = CleanMemo::default();
        let mut rec = record();
        rec.namespace = "p".into();
        rec.manifest = Some("---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: front\nspec:\n  replicas: 1\n".into());
        let live = |rv: &str, replicas: u32| {
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "front", "namespace": "p", "resourceVersion": rv},
            "spec": {"replicas": replicas}})
        };
        k.put(r("Deployment", "front"), live("1", 1));
        assert!(drift(&k, &rec, false, &memo).await.unwrap().is_empty());
        assert_eq!(memo.len(), 1, "remembered as clean");
        // The same version: not compared (the object is made to differ
        // without a new version, which a real server never does, to see it).
        k.put(r("Deployment", "front"), live("1", 9));
        assert!(drift(&k, &rec, false, &memo).await.unwrap().is_empty());
        // A new version is compared, and drift is found and forgotten.
        k.put(r("Deployment", "front"), live("2", 9));
        let found = drift(&k, &rec, false, &memo).await.unwrap();
        assert_eq!(found, ["Deployment/front/spec/replicas"]);
        assert!(memo.is_empty());
        // Another manifest, or ignoring replicas, is another check.
        k.put(r("Deployment", "front"), live("3", 1));
        assert!(drift(&k, &rec, false, &memo).await.unwrap().is_empty());
        k.put(r("Deployment", "front"), live("3", 9));
        let found = drift(&k, &rec, false, &memo).await.unwrap();
        assert!(found.is_empty(), "same version, same manifest: {found:?}");
        rec.manifest = Some(rec.manifest.unwrap().replace("replicas: 1", "replicas: 2"));
        let found = drift(&k, &rec, false, &memo).await.unwrap();
        assert_eq!(found, ["Deployment/front/spec/replicas"]);
        // A missing object is always compared.
        k.objects.lock().unwrap().clear();
        assert_eq!(
            drift(&k, &rec, true, &memo).await.unwrap(),
            ["Deployment/front is missing"]
        );
    }
}
