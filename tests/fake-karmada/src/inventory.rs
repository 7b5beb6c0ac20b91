//! Inventory files (the `inventory.schema.json` format of smo) and the
//! Karmada `Cluster` objects seeded from them.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::Error;
use crate::util::now_rfc3339;

/// An allocatable/allocated pair in Kubernetes quantity notation
/// (`"8"`, `"2500m"`, `"32Gi"`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourcePair {
    /// What the cluster can hand out.
    pub allocatable: String,
    /// What is already handed out.
    pub allocated: String,
}

impl ResourcePair {
    /// Builds a pair from two quantities.
    pub fn new(allocatable: impl Into<String>, allocated: impl Into<String>) -> Self {
        Self {
            allocatable: allocatable.into(),
            allocated: allocated.into(),
        }
    }
}

/// The resource summary of one member cluster.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ClusterResources {
    /// CPU cores.
    pub cpu: ResourcePair,
    /// Memory bytes.
    pub memory: ResourcePair,
    /// `nvidia.com/gpu` devices; absent when the cluster has none.
    #[serde(default)]
    pub gpu: Option<ResourcePair>,
}

/// One inventory entry: a member cluster.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ClusterSpec {
    /// Cluster name (the `Cluster` object's name).
    pub name: String,
    /// Whether the `Ready` condition is `True`.
    #[serde(default = "default_ready")]
    pub ready: bool,
    /// Resource summary.
    #[serde(flatten)]
    pub resources: ClusterResources,
}

fn default_ready() -> bool {
    true
}

/// An inventory file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Inventory {
    /// Member clusters.
    pub clusters: Vec<ClusterSpec>,
}

impl Inventory {
    /// Parses an inventory document (YAML or JSON) and checks quantities.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let inv: Inventory =
            serde_saphyr::from_str(text).map_err(|e| Error::Inventory(e.to_string()))?;
        for c in &inv.clusters {
            c.resources.validate(&c.name)?;
        }
        Ok(inv)
    }

    /// Reads and parses an inventory file.
    pub fn load(path: &std::path::Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            what: format!("reading inventory {}", path.display()),
            source,
        })?;
        Self::parse(&text)
    }
}

/// Whether `q` is a Kubernetes quantity the fake understands
/// (decimal number with an optional SI or binary suffix).
pub(crate) fn is_quantity(q: &str) -> bool {
    let suffixes = [
        "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E", "",
    ];
    suffixes.iter().any(|s| {
        q.strip_suffix(s).is_some_and(|num| {
            let mut parts = num.splitn(2, '.');
            let int = parts.next().unwrap_or("");
            let frac = parts.next();
            (!int.is_empty() || frac.is_some_and(|f| !f.is_empty()))
                && int.chars().all(|c| c.is_ascii_digit())
                && frac.is_none_or(|f| f.chars().all(|c| c.is_ascii_digit()))
        })
    })
}

impl ClusterResources {
    pub(crate) fn validate(&self, cluster: &str) -> Result<(), Error> {
        let mut pairs = vec![("cpu", &self.cpu), ("memory", &self.memory)];
        if let Some(g) = &self.gpu {
            pairs.push(("gpu", g));
        }
        for (what, p) in pairs {
            for q in [&p.allocatable, &p.allocated] {
                if !is_quantity(q) {
                    return Err(Error::Inventory(format!(
                        "cluster {cluster}: {what} quantity {q:?} is not in Kubernetes notation (e.g. \"8\", \"2500m\", \"32Gi\")"
                    )));
                }
            }
        }
        Ok(())
    }

    pub(crate) fn summary(&self) -> Value {
        let mut allocatable =
            json!({"cpu": self.cpu.allocatable, "memory": self.memory.allocatable});
        let mut allocated = json!({"cpu": self.cpu.allocated, "memory": self.memory.allocated});
        if let Some(g) = &self.gpu {
            allocatable["nvidia.com/gpu"] = json!(g.allocatable);
            allocated["nvidia.com/gpu"] = json!(g.allocated);
        }
        json!({"allocatable": allocatable, "allocated": allocated})
    }
}

pub(crate) fn ready_condition(ready: bool) -> Value {
    let (status, reason, message) = if ready {
        (
            "True",
            "ClusterReady",
            "cluster is healthy and ready to accept workloads",
        )
    } else {
        ("False", "ClusterNotReachable", "cluster is not reachable")
    };
    json!({
        "type": "Ready",
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": now_rfc3339(),
    })
}

/// The `Cluster` object for an inventory entry.
pub(crate) fn cluster_object(c: &ClusterSpec) -> Value {
    json!({
        "apiVersion": "cluster.karmada.io/v1alpha1",
        "kind": "Cluster",
        "metadata": {"name": c.name, "labels": {"fake-karmada/seeded": "true"}},
        "spec": {
            "syncMode": "Push",
            "apiEndpoint": format!("https://{}.member.invalid", c.name),
        },
        "status": {
            "kubernetesVersion": format!("v1.{}.0", crate::server::KUBE_MINOR),
            "conditions": [ready_condition(c.ready)],
            "resourceSummary": c.resources.summary(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_format() {
        let inv = Inventory::parse(
            "clusters:\n  - name: brussels-edge\n    ready: true\n    cpu: {allocatable: \"8\", allocated: \"2500m\"}\n    memory: {allocatable: \"32Gi\", allocated: \"4Gi\"}\n    gpu: {allocatable: \"1\", allocated: \"0\"}\n  - name: b\n    cpu: {allocatable: \"4\", allocated: \"0\"}\n    memory: {allocatable: \"8Gi\", allocated: \"0\"}\n",
        )
        .unwrap();
        assert_eq!(inv.clusters.len(), 2);
        assert_eq!(inv.clusters[0].resources.cpu.allocated, "2500m");
        assert!(inv.clusters[1].ready);
        assert!(inv.clusters[1].resources.gpu.is_none());
        let obj = cluster_object(&inv.clusters[0]);
        assert_eq!(
            obj["status"]["resourceSummary"]["allocatable"]["nvidia.com/gpu"],
            "1"
        );
    }

    #[test]
    fn rejects_bad_quantities() {
        assert!(is_quantity("2500m") && is_quantity("32Gi") && is_quantity("0.5"));
        assert!(!is_quantity("lots") && !is_quantity("") && !is_quantity("1.2.3"));
        let bad = "clusters:\n  - name: x\n    cpu: {allocatable: \"many\", allocated: \"0\"}\n    memory: {allocatable: \"1Gi\", allocated: \"0\"}\n";
        assert!(Inventory::parse(bad).is_err());
    }
}
