//! Inventory files (the `inventory.schema.json` format of smo) and the
//! Karmada `Cluster` objects seeded from them.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::Error;
use crate::util::now_rfc3339;

/// An allocatable/allocated pair in Kubernetes quantity notation
/// (`"8"`, `"2500m"`, `"32Gi"`; YAML numbers are accepted and kept as
/// written). As in the schema, `allocated` may be absent; it is then left
/// out of the `Cluster`'s `resourceSummary.allocated`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourcePair {
    /// What the cluster can hand out.
    #[serde(deserialize_with = "quantity")]
    pub allocatable: String,
    /// What is already handed out.
    #[serde(default, deserialize_with = "optional_quantity")]
    pub allocated: Option<String>,
}

impl ResourcePair {
    /// Builds a pair from two quantities.
    pub fn new(allocatable: impl Into<String>, allocated: impl Into<String>) -> Self {
        Self {
            allocatable: allocatable.into(),
            allocated: Some(allocated.into()),
        }
    }

    /// A pair with nothing reported as allocated.
    pub fn allocatable_only(allocatable: impl Into<String>) -> Self {
        Self {
            allocatable: allocatable.into(),
            allocated: None,
        }
    }
}

/// A quantity written as a YAML string or number.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawQuantity {
    Text(String),
    Int(i64),
    Float(f64),
}

impl From<RawQuantity> for String {
    fn from(q: RawQuantity) -> Self {
        match q {
            RawQuantity::Text(s) => s,
            RawQuantity::Int(i) => i.to_string(),
            RawQuantity::Float(f) => f.to_string(),
        }
    }
}

fn quantity<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    RawQuantity::deserialize(d).map(String::from)
}

fn optional_quantity<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<RawQuantity>::deserialize(d).map(|q| q.map(String::from))
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
/// The schema's pattern `^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(([KMGTPE]i)|[mkMGTPE]|[eE][+-]?[0-9]+)?$`,
/// plus Kubernetes' `n` and `u` suffixes.
pub(crate) fn is_quantity(q: &str) -> bool {
    let q = q.strip_prefix('+').unwrap_or(q);
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let number = |num: &str| match num.split_once('.') {
        Some((int, frac)) => {
            (digits(int) && (frac.is_empty() || digits(frac))) || (int.is_empty() && digits(frac))
        }
        None => digits(num),
    };
    let suffixes = [
        "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E", "",
    ];
    if suffixes
        .iter()
        .any(|s| q.strip_suffix(s).is_some_and(number))
    {
        return true;
    }
    // Decimal exponent: 1e3, 1.5E-2.
    match q.find(['e', 'E']) {
        Some(i) => {
            let exp = &q[i + 1..];
            let exp = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            number(&q[..i]) && digits(exp)
        }
        None => false,
    }
}

impl ClusterResources {
    pub(crate) fn validate(&self, cluster: &str) -> Result<(), Error> {
        let mut pairs = vec![("cpu", &self.cpu), ("memory", &self.memory)];
        if let Some(g) = &self.gpu {
            pairs.push(("gpu", g));
        }
        for (what, p) in pairs {
            for q in std::iter::once(&p.allocatable).chain(p.allocated.as_ref()) {
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
        if let Some(g) = &self.gpu {
            allocatable["nvidia.com/gpu"] = json!(g.allocatable);
        }
        let mut allocated = serde_json::Map::new();
        let named = [
            ("cpu", Some(&self.cpu)),
            ("memory", Some(&self.memory)),
            ("nvidia.com/gpu", self.gpu.as_ref()),
        ];
        for (name, pair) in named {
            if let Some(q) = pair.and_then(|p| p.allocated.as_ref()) {
                allocated.insert(name.to_string(), json!(q));
            }
        }
        let mut summary = json!({"allocatable": allocatable});
        if !allocated.is_empty() {
            summary["allocated"] = Value::Object(allocated);
        }
        summary
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
        assert_eq!(
            inv.clusters[0].resources.cpu.allocated.as_deref(),
            Some("2500m")
        );
        assert!(inv.clusters[1].ready);
        assert!(inv.clusters[1].resources.gpu.is_none());
        let obj = cluster_object(&inv.clusters[0]);
        assert_eq!(
            obj["status"]["resourceSummary"]["allocatable"]["nvidia.com/gpu"],
            "1"
        );
    }

    #[test]
    fn accepts_the_example_state_root_style() {
        // Unquoted YAML numbers and quantities, allocated left out.
        let inv = Inventory::parse(
            "clusters:\n  - name: athens-core\n    ready: true\n    cpu: {allocatable: 6, allocated: 1}\n    memory: {allocatable: 32Gi}\n    gpu: {allocatable: 0.5, allocated: \"0\"}\n",
        )
        .unwrap();
        let r = &inv.clusters[0].resources;
        assert_eq!(r.cpu.allocatable, "6");
        assert_eq!(r.memory.allocated, None);
        assert_eq!(r.gpu.as_ref().map(|g| g.allocatable.as_str()), Some("0.5"));
        let summary = r.summary();
        assert_eq!(
            summary["allocated"],
            json!({"cpu": "1", "nvidia.com/gpu": "0"})
        );
        assert_eq!(summary["allocatable"]["memory"], "32Gi");
    }

    #[test]
    fn rejects_bad_quantities() {
        for ok in [
            "2500m", "32Gi", "0.5", "+1", ".5", "5.", "1e3", "1.5E-2", "64G", "100n",
        ] {
            assert!(is_quantity(ok), "{ok}");
        }
        for bad in ["lots", "", "1.2.3", "Gi", ".", "1e", "1Gb", "-1", "1 Gi"] {
            assert!(!is_quantity(bad), "{bad}");
        }
        let bad = "clusters:\n  - name: x\n    cpu: {allocatable: \"many\", allocated: \"0\"}\n    memory: {allocatable: \"1Gi\", allocated: \"0\"}\n";
        assert!(Inventory::parse(bad).is_err());
    }
}
