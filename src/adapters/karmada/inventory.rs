//! Reading the member clusters' inventory: Karmada `Cluster` objects and
//! their resource summaries.

use super::{Karmada, KarmadaError, classify, split_api_version};
use crate::spec::inventory::{Inventory, InventoryCluster, Resource};
use crate::units::quantity_of;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use serde_json::Value;

const CLUSTER_API_VERSION: &str = "cluster.karmada.io/v1alpha1";

impl Karmada {
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
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &cluster_resource());
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| classify("list", "Karmada clusters", e))?;
        let inv = inventory_of(list.items.iter(), gpu_resource);
        tracing::debug!(clusters = inv.clusters.len(), "inventory read");
        Ok(inv)
    }

    /// The inventory from the clusters' watch cache when it is synced
    /// (starting the watch on the first call), otherwise as
    /// [`Karmada::inventory`]. Without watch caches, always the latter.
    pub async fn inventory_cached(&self, gpu_resource: &str) -> Result<Inventory, KarmadaError> {
        if let Some(w) = &self.watches {
            w.watch_clusters(&cluster_resource());
            if let Some(objects) = w.clusters() {
                return Ok(inventory_of(
                    objects.iter().map(AsRef::as_ref),
                    gpu_resource,
                ));
            }
        }
        self.inventory(gpu_resource).await
    }
}

fn cluster_resource() -> ApiResource {
    let (group, version) = split_api_version(CLUSTER_API_VERSION);
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(group, version, "Cluster"),
        "clusters",
    )
}

/// The inventory of these `Cluster` objects, sorted by name (see
/// [`Karmada::inventory`]).
fn inventory_of<'a>(
    objects: impl Iterator<Item = &'a DynamicObject>,
    gpu_resource: &str,
) -> Inventory {
    let mut clusters: Vec<InventoryCluster> = objects
        .filter_map(|c| {
            let name = c.metadata.name.clone()?;
            Some(cluster_of(name, &c.data, gpu_resource))
        })
        .collect();
    clusters.sort_by(|a, b| a.name.cmp(&b.name));
    Inventory { clusters }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
