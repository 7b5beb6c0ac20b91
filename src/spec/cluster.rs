//! `clusters/<name>.yaml`: what Karmada does not know about a member
//! cluster (location, energy, cost, latency, cordon, reserve), and
//! optionally how to create it with NFVCL ([`NfvclProvision`]).

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
    /// When set, smo creates (and scales, and deletes) the cluster itself
    /// through NFVCL instead of expecting it to exist.
    pub provision: Option<NfvclProvision>,
}

/// `cluster.provision`: the cluster as an NFVCL K8s blueprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionSpec {
    pub nfvcl: NfvclProvision,
}

/// An NFVCL K8s blueprint on one OpenStack VIM area.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NfvclProvision {
    pub vim: Vim,
    /// NFVCL topology area of the VIM; masters and workers go there.
    pub area: u32,
    /// VIM network the nodes are managed through.
    pub mgmt_net: String,
    #[serde(default = "default_cni")]
    pub cni: String,
    pub master_flavor: Flavor,
    pub worker_flavor: Flavor,
    /// Worker nodes; changed in place with add_node / del_workers.
    pub workers: u32,
}

fn default_cni() -> String {
    "flannel".into()
}

/// The OpenStack VIM that NFVCL creates the nodes on. The password is
/// never here, only the file that holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Vim {
    pub name: String,
    /// Keystone URL.
    pub url: String,
    pub tenant: String,
    pub user: String,
    pub password_file: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Flavor {
    pub vcpu: u32,
    pub memory_mb: u64,
    pub storage_gb: u64,
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
    provision: Option<ProvisionSpec>,
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
        if let Some(p) = &c.provision {
            let p = &p.nfvcl;
            // The schema cannot see the file system; a relative path would
            // depend on the daemon's working directory.
            if !p.vim.password_file.starts_with('/') {
                error(
                    "/cluster/provision/nfvcl/vim/passwordFile",
                    format!(
                        "passwordFile `{}` must be an absolute path, e.g. /etc/smo/credentials/vim-password",
                        p.vim.password_file
                    ),
                );
            }
        }
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
            provision: c.provision.map(|p| p.nfvcl),
        };
        (Some(meta), out)
    }
}
