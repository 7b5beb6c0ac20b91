//! The PropagationPolicy smo generates for a release whose chart carries
//! none (setting `propagationPolicy.generate`, default on): without one,
//! Karmada would keep the release's objects on the control plane and run
//! nothing. Pure.
//!
//! It selects every namespaced object of the release's manifest, except
//! objects Karmada does not propagate (the policies themselves), and sends
//! them to the clusters the service was placed on.

use serde_json::{Value, json};

pub const API_VERSION: &str = "policy.karmada.io/v1alpha1";

/// Kinds never propagated to member clusters.
const CONTROL_PLANE_KINDS: &[&str] = &[
    "PropagationPolicy",
    "ClusterPropagationPolicy",
    "OverridePolicy",
    "ClusterOverridePolicy",
    "Namespace",
];

/// The policy named after the release, in its namespace.
pub fn policy(release: &str, namespace: &str, clusters: &[String], objects: &[Value]) -> Value {
    let mut selectors: Vec<Value> = objects
        .iter()
        .filter(|o| {
            o["kind"]
                .as_str()
                .is_some_and(|k| !CONTROL_PLANE_KINDS.contains(&k))
                && o["metadata"]["name"].is_string()
                && o["apiVersion"].is_string()
        })
        .map(|o| {
            json!({
                "apiVersion": o["apiVersion"],
                "kind": o["kind"],
                "name": o["metadata"]["name"],
            })
        })
        .collect();
    selectors.sort_by_key(|s| s.to_string());
    selectors.dedup();
    json!({
        "apiVersion": API_VERSION,
        "kind": "PropagationPolicy",
        "metadata": {"name": release, "namespace": namespace},
        "spec": {
            "resourceSelectors": selectors,
            "placement": {"clusterAffinity": {"clusterNames": clusters}},
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_the_release_objects_and_targets_the_placed_clusters() {
        let objects = vec![
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}}),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}}),
        ];
        let p = policy("web", "shop", &["a".into(), "b".into()], &objects);
        assert_eq!(p["metadata"], json!({"name": "web", "namespace": "shop"}));
        assert_eq!(
            p["spec"]["resourceSelectors"],
            json!([
                {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                {"apiVersion": "v1", "kind": "Service", "name": "web"},
            ])
        );
        assert_eq!(
            p["spec"]["placement"]["clusterAffinity"]["clusterNames"],
            json!(["a", "b"])
        );
    }
}
