//! Deployment readiness, as the status aggregated by Karmada shows it.

use super::{Karmada, KarmadaError, classify};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;

impl Karmada {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

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
}
