//! `clusters/<name>.yaml`: what Karmada does not know about a member
//! cluster (location, energy, cost, latency, cordon, reserve).

use crate::units::quantity_of;
use crate::validate::findings::Finding;
use crate::validate::yaml::Document;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Location {
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub zone: Option<String>,
    #[serde(default)]
    pub site: Option<String>,
}

/// Validated cluster metadata.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterMeta {
    pub name: String,
    pub location: Location,
    /// Overrides GPU detection from the inventory.
    pub gpu: Option<bool>,
    pub carbon_intensity: Option<f64>,
    pub cost_per_cpu_hour: Option<f64>,
    pub latency_ms: BTreeMap<String, f64>,
    pub schedulable: bool,
    /// Cores kept free for workloads smo does not manage.
    pub reserve_cpu: f64,
    /// Bytes kept free for workloads smo does not manage.
    pub reserve_memory: f64,
}

#[derive(Debug, Deserialize)]
pub struct RawClusterFile {
    cluster: RawCluster,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCluster {
    name: String,
    #[serde(default)]
    location: Location,
    gpu: Option<bool>,
    carbon_intensity: Option<f64>,
    cost_per_cpu_hour: Option<f64>,
    #[serde(default)]
    latency_ms: BTreeMap<String, f64>,
    schedulable: Option<bool>,
    #[serde(default)]
    reserve: RawReserve,
}

#[derive(Debug, Default, Deserialize)]
struct RawReserve {
    cpu: Option<Value>,
    memory: Option<Value>,
}

impl RawClusterFile {
    /// Second stage. `stem` is the file name without extension, which must
    /// equal the cluster name so that a reader finds a cluster's file.
    pub fn validate(
        self,
        stem: &str,
        doc: &Document,
        file: &str,
    ) -> (Option<ClusterMeta>, Vec<Finding>) {
        let mut out = Vec::new();
        let c = self.cluster;
        let mut error =
            |pointer: &str, message: String| out.push(doc.error(file, pointer, message));
        if c.name != stem {
            error(
                "/cluster/name",
                format!(
                    "cluster name `{}` differs from the file name `{stem}`; rename one of them",
                    c.name
                ),
            );
        }
        let mut quantity = |v: &Option<Value>, pointer: &str| match v {
            None => 0.0,
            Some(v) => quantity_of(v).unwrap_or_else(|e| {
                error(pointer, e.to_string());
                0.0
            }),
        };
        let reserve_cpu = quantity(&c.reserve.cpu, "/cluster/reserve/cpu");
        let reserve_memory = quantity(&c.reserve.memory, "/cluster/reserve/memory");
        if out.iter().any(Finding::is_error) {
            return (None, out);
        }
        let meta = ClusterMeta {
            name: c.name,
            location: c.location,
            gpu: c.gpu,
            carbon_intensity: c.carbon_intensity,
            cost_per_cpu_hour: c.cost_per_cpu_hour,
            latency_ms: c.latency_ms,
            schedulable: c.schedulable.unwrap_or(true),
            reserve_cpu,
            reserve_memory,
        };
        (Some(meta), out)
    }
}
