//! Cluster facts: capacity and readiness from the inventory merged with
//! `clusters/*.yaml` metadata (location, energy, cost, latency, cordon,
//! reserve, GPU override).
//!
//! Invariants: free capacity is never negative and already excludes the
//! reserve; the latency matrix is symmetric (when two files disagree, the
//! larger figure wins: a latency class must hold in both directions); a
//! cluster with a GPU override of `false` has no free GPU.

use crate::spec::cluster::{ClusterMeta, Location};
use crate::spec::inventory::Inventory;
use serde::Serialize;
use std::collections::BTreeMap;

/// Everything the planner knows about one member cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterFacts {
    pub name: String,
    pub ready: bool,
    pub schedulable: bool,
    pub free_cpu: f64,
    pub free_memory: f64,
    pub free_gpu: f64,
    pub allocatable_cpu: f64,
    pub allocatable_memory: f64,
    pub carbon_intensity: Option<f64>,
    pub cost_per_cpu_hour: Option<f64>,
    pub location: Location,
    /// Round-trip latency to other clusters in milliseconds; a missing
    /// entry is unknown.
    pub latency_ms: BTreeMap<String, f64>,
}

/// Something worth telling the operator about the merge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MergeNote {
    pub cluster: String,
    pub message: String,
}

/// Merges inventory and metadata. Clusters come in inventory order; metadata
/// for clusters the inventory does not list is reported, not invented.
pub fn merge(
    inventory: &Inventory,
    meta: &BTreeMap<String, ClusterMeta>,
) -> (Vec<ClusterFacts>, Vec<MergeNote>) {
    let mut notes = Vec::new();
    let mut facts: Vec<ClusterFacts> = inventory
        .clusters
        .iter()
        .map(|c| {
            let m = meta.get(&c.name);
            let reserve_cpu = m.map_or(0.0, |m| m.reserve_cpu);
            let reserve_memory = m.map_or(0.0, |m| m.reserve_memory);
            let gpu_allowed = m.and_then(|m| m.gpu).unwrap_or(true);
            if m.and_then(|m| m.gpu) == Some(true) && c.gpu.allocatable <= 0.0 {
                notes.push(MergeNote {
                    cluster: c.name.clone(),
                    message: "declared gpu: true but reports no allocatable GPU; GPU services cannot be placed there".into(),
                });
            }
            ClusterFacts {
                name: c.name.clone(),
                ready: c.ready,
                schedulable: m.is_none_or(|m| m.schedulable),
                free_cpu: (c.cpu.free() - reserve_cpu).max(0.0),
                free_memory: (c.memory.free() - reserve_memory).max(0.0),
                free_gpu: if gpu_allowed { c.gpu.free() } else { 0.0 },
                allocatable_cpu: c.cpu.allocatable,
                allocatable_memory: c.memory.allocatable,
                carbon_intensity: m.and_then(|m| m.carbon_intensity),
                cost_per_cpu_hour: m.and_then(|m| m.cost_per_cpu_hour),
                location: m.map(|m| m.location.clone()).unwrap_or_default(),
                latency_ms: BTreeMap::new(),
            }
        })
        .collect();

    let known: Vec<String> = facts.iter().map(|f| f.name.clone()).collect();
    for name in meta.keys().filter(|n| !known.contains(n)) {
        notes.push(MergeNote {
            cluster: name.clone(),
            message: "described under clusters/ but absent from the inventory; it is not used"
                .into(),
        });
    }

    // Symmetric latency: the larger of the two directions when both are set.
    let mut matrix: BTreeMap<(String, String), f64> = BTreeMap::new();
    for m in meta.values() {
        for (other, ms) in &m.latency_ms {
            let key = if m.name <= *other {
                (m.name.clone(), other.clone())
            } else {
                (other.clone(), m.name.clone())
            };
            let slot = matrix.entry(key).or_insert(*ms);
            if *ms > *slot {
                *slot = *ms;
            }
        }
    }
    for f in &mut facts {
        for ((a, b), ms) in &matrix {
            if *a == f.name && known.contains(b) {
                f.latency_ms.insert(b.clone(), *ms);
            } else if *b == f.name && known.contains(a) {
                f.latency_ms.insert(a.clone(), *ms);
            }
        }
    }
    (facts, notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::inventory::{InventoryCluster, Resource};

    fn inv(name: &str, cpu: (f64, f64), gpu: f64) -> InventoryCluster {
        InventoryCluster {
            name: name.into(),
            ready: true,
            cpu: Resource {
                allocatable: cpu.0,
                allocated: cpu.1,
            },
            memory: Resource {
                allocatable: 8e9,
                allocated: 1e9,
            },
            gpu: Resource {
                allocatable: gpu,
                allocated: 0.0,
            },
        }
    }

    fn meta(name: &str) -> ClusterMeta {
        ClusterMeta {
            name: name.into(),
            location: Location::default(),
            gpu: None,
            carbon_intensity: None,
            cost_per_cpu_hour: None,
            latency_ms: BTreeMap::new(),
            schedulable: true,
            reserve_cpu: 0.0,
            reserve_memory: 0.0,
            provision: None,
        }
    }

    #[test]
    fn reserve_is_subtracted_and_never_goes_negative() {
        let inventory = Inventory {
            clusters: vec![inv("a", (4.0, 1.0), 0.0), inv("b", (2.0, 1.5), 0.0)],
        };
        let mut m = BTreeMap::new();
        m.insert(
            "a".into(),
            ClusterMeta {
                reserve_cpu: 0.5,
                reserve_memory: 1e9,
                ..meta("a")
            },
        );
        m.insert(
            "b".into(),
            ClusterMeta {
                reserve_cpu: 1.0,
                schedulable: false,
                ..meta("b")
            },
        );
        let (facts, notes) = merge(&inventory, &m);
        assert!(notes.is_empty());
        assert_eq!(facts[0].free_cpu, 2.5);
        assert_eq!(facts[0].free_memory, 6e9);
        assert_eq!(facts[1].free_cpu, 0.0);
        assert!(!facts[1].schedulable);
    }

    #[test]
    fn latency_is_symmetric_and_conservative() {
        let inventory = Inventory {
            clusters: vec![
                inv("a", (1.0, 0.0), 0.0),
                inv("b", (1.0, 0.0), 0.0),
                inv("c", (1.0, 0.0), 0.0),
            ],
        };
        let mut m = BTreeMap::new();
        let mut a = meta("a");
        a.latency_ms.insert("b".into(), 5.0);
        a.latency_ms.insert("c".into(), 30.0);
        let mut b = meta("b");
        b.latency_ms.insert("a".into(), 12.0);
        m.insert("a".into(), a);
        m.insert("b".into(), b);
        let (facts, _) = merge(&inventory, &m);
        assert_eq!(facts[0].latency_ms["b"], 12.0);
        assert_eq!(facts[1].latency_ms["a"], 12.0);
        assert_eq!(facts[2].latency_ms["a"], 30.0);
        assert!(!facts[1].latency_ms.contains_key("c"));
    }

    #[test]
    fn gpu_override_and_unknown_metadata_are_reported() {
        let inventory = Inventory {
            clusters: vec![inv("a", (1.0, 0.0), 2.0), inv("b", (1.0, 0.0), 0.0)],
        };
        let mut m = BTreeMap::new();
        m.insert(
            "a".into(),
            ClusterMeta {
                gpu: Some(false),
                ..meta("a")
            },
        );
        m.insert(
            "b".into(),
            ClusterMeta {
                gpu: Some(true),
                ..meta("b")
            },
        );
        m.insert("ghost".into(), meta("ghost"));
        let (facts, notes) = merge(&inventory, &m);
        assert_eq!(facts[0].free_gpu, 0.0);
        let clusters: Vec<&str> = notes.iter().map(|n| n.cluster.as_str()).collect();
        assert_eq!(clusters, vec!["b", "ghost"]);
    }
}
