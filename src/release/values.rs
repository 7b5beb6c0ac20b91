//! Helm values smo sets for each service, and the hash of a release's
//! inputs. Pure.
//!
//! Values (DESIGN.md "HDAG descriptor"): the descriptor's `valuesOverwrite`
//! with, in the placement scope (`voChartOverwrite` for WOT implementers,
//! the top level otherwise):
//! - `clustersAffinity`: the clusters the service was placed on;
//! - `serviceImportClusters`: the clusters of the services that call this
//!   one (they list it in `connectionPoints`), sorted, without duplicates.
//!
//! - `computeResources`: what the compute intent translates to (`cpu` and
//!   `memory` as Kubernetes quantities, `gpu` as a device count), so that
//!   the workload requests what placement reserved for it and editing an
//!   intent upgrades the release. A dedicated key, because charts give
//!   `resources` their own shapes.
//!
//! With `useStaticPlacement` the cluster lists are the descriptor's, as the
//! original SMO did: the operator wrote them themselves.
//!
//! The input hash covers everything that changes what helm would install:
//! chart reference, chart version, the chart's own content when it is a
//! local directory, the namespace and the values. Two equal hashes mean
//! `helm upgrade` would be a no-op, so the reconciler skips the call.

use crate::descriptor::model::{Implementer, Service};
use crate::desired::Graph;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// Placement of one graph: service id → clusters.
pub type Placement = BTreeMap<String, Vec<String>>;

/// The values of every service of `graph`, in descriptor order.
pub fn values(graph: &Graph, placement: &Placement) -> Vec<Value> {
    let hda = &graph.descriptor.hda_graph;
    let static_placement = hda.hda_graph_intent.use_static_placement.0;
    let imports = import_clusters(&hda.services, placement);
    hda.services
        .iter()
        .zip(&graph.resources)
        .map(|(s, r)| {
            let mut values = s.artifact.values_overwrite.clone();
            let scope = scope_mut(s, &mut values);
            scope.insert(
                "computeResources".into(),
                serde_json::json!({
                    "cpu": cpu_quantity(r.cpu_cores),
                    "memory": memory_quantity(r.memory_bytes),
                    "gpu": u8::from(r.gpu),
                }),
            );
            if !static_placement {
                let clusters = placement.get(s.id.as_str()).cloned().unwrap_or_default();
                scope.insert("clustersAffinity".into(), strings(clusters));
                let importers = imports.get(s.id.as_str()).cloned().unwrap_or_default();
                scope.insert(
                    "serviceImportClusters".into(),
                    strings(importers.into_iter().collect()),
                );
            }
            Value::Object(values)
        })
        .collect()
}

/// Cores as Kubernetes writes them: whole cores plain, else millicores.
pub fn cpu_quantity(cores: f64) -> String {
    #[allow(clippy::cast_possible_truncation)]
    let milli = (cores * 1000.0).round() as i64;
    if milli % 1000 == 0 {
        format!("{}", milli / 1000)
    } else {
        format!("{milli}m")
    }
}

/// Bytes in the largest binary unit that divides them exactly.
pub fn memory_quantity(bytes: f64) -> String {
    #[allow(clippy::cast_possible_truncation)]
    let b = bytes.round() as i64;
    for (unit, size) in [
        ("Ti", 1i64 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ] {
        if b != 0 && b % size == 0 {
            return format!("{}{unit}", b / size);
        }
    }
    b.to_string()
}

fn strings(v: Vec<String>) -> Value {
    Value::Array(v.into_iter().map(Value::String).collect())
}

fn scope_mut<'a>(s: &Service, values: &'a mut Map<String, Value>) -> &'a mut Map<String, Value> {
    match s.artifact.oci_config.implementer {
        Implementer::Helm => values,
        Implementer::Wot => {
            let entry = values
                .entry("voChartOverwrite")
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                // The schema requires an object; a scalar here would be
                // lost either way, and the chart expects a map.
                *entry = Value::Object(Map::new());
            }
            entry.as_object_mut().expect("made an object above")
        }
    }
}

/// Callee → clusters of its callers.
fn import_clusters<'a>(
    services: &'a [Service],
    placement: &Placement,
) -> BTreeMap<&'a str, BTreeSet<String>> {
    let mut out: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for caller in services {
        let Some(clusters) = placement.get(caller.id.as_str()) else {
            continue;
        };
        for callee in &caller.deployment.intent.connection_points {
            if let Some(target) = services.iter().find(|t| t.id.as_str() == callee) {
                out.entry(target.id.as_str())
                    .or_default()
                    .extend(clusters.iter().cloned());
            }
        }
    }
    out
}

pub use crate::digest::canonical_json;

/// What a release is made of; its hash decides whether helm runs.
#[derive(Debug, Clone, Copy)]
pub struct HashInputs<'a> {
    pub chart: &'a str,
    pub version: Option<&'a str>,
    /// Digest of a local chart directory's files; `None` for OCI charts
    /// (their content is fixed by reference and version).
    pub chart_digest: Option<&'a str>,
    pub namespace: &'a str,
    pub values: &'a Value,
}

/// Hex SHA-256 of the release inputs.
pub fn input_hash(i: &HashInputs<'_>) -> String {
    let mut h = Sha256::new();
    // Length-prefixed fields: no two different inputs hash the same text.
    for part in [
        i.chart,
        i.version.unwrap_or(""),
        i.chart_digest.unwrap_or(""),
        i.namespace,
        &canonical_json(i.values),
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    hex(&h.finalize())
}

pub(crate) use crate::digest::hex;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::loader::load_files;
    use serde_json::json;

    fn graph(yaml: &str) -> Graph {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("g.yaml");
        std::fs::write(&p, yaml).unwrap();
        let state = load_files(&[p]).unwrap();
        assert!(!state.has_errors(), "{:?}", state.findings);
        state.valid_graphs().next().unwrap().clone()
    }

    const G: &str = r"
hdaGraph:
  imVersion: 0.4.0
  id: g
  services:
    - id: front
      deployment:
        intent:
          compute: {cpu: small, ram: small, storage: small, gpu: {enabled: False}}
          connectionPoints: [back, vo]
      artifact:
        ociImage: oci://127.0.0.1:5000/charts/front
        valuesOverwrite: {service: {port: 80}, clustersAffinity: [stale]}
    - id: back
      deployment:
        intent:
          compute: {cpu: small, ram: small, storage: small, gpu: {enabled: False}}
      artifact:
        ociImage: oci://127.0.0.1:5000/charts/back
    - id: vo
      deployment:
        intent:
          compute: {cpu: light, ram: light, storage: small, gpu: {enabled: False}}
          connectionPoints: [back]
      artifact:
        ociImage: oci://127.0.0.1:5000/charts/vo
        ociConfig: {type: VO, implementer: WOT}
        valuesOverwrite: {voChartOverwrite: {thing: {title: t}}}
";

    fn placement(pairs: &[(&str, &[&str])]) -> Placement {
        pairs
            .iter()
            .map(|(s, cs)| {
                (
                    (*s).to_owned(),
                    cs.iter().map(|c| (*c).to_owned()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn values_carry_affinity_and_sorted_unique_import_clusters() {
        let g = graph(G);
        let p = placement(&[("front", &["b"]), ("back", &["a"]), ("vo", &["b"])]);
        let v = values(&g, &p);
        assert_eq!(
            v[0],
            json!({
                "service": {"port": 80},
                "clustersAffinity": ["b"],
                "serviceImportClusters": [],
                "computeResources": {"cpu": "1", "memory": "1Gi", "gpu": 0},
            })
        );
        // front and vo both call back, both from cluster b: listed once.
        assert_eq!(v[1]["clustersAffinity"], json!(["a"]));
        assert_eq!(v[1]["serviceImportClusters"], json!(["b"]));
        // WOT: under voChartOverwrite, the rest kept.
        assert_eq!(
            v[2],
            json!({"voChartOverwrite": {
                "thing": {"title": "t"},
                "clustersAffinity": ["b"],
                "serviceImportClusters": ["b"],
                "computeResources": {"cpu": "500m", "memory": "500Mi", "gpu": 0},
            }})
        );
    }

    #[test]
    fn static_placement_keeps_the_descriptor_values() {
        let g = graph(
            r"
hdaGraph:
  imVersion: 0.4.0
  id: g
  hdaGraphIntent: {useStaticPlacement: True}
  services:
    - id: front
      deployment:
        intent:
          compute: {cpu: small, ram: small, storage: small, gpu: {enabled: False}}
      artifact:
        ociImage: oci://127.0.0.1:5000/charts/front
        valuesOverwrite: {clustersAffinity: [chosen-by-hand]}
",
        );
        let p = placement(&[("front", &["b"])]);
        let v = values(&g, &p);
        assert_eq!(v[0]["clustersAffinity"], json!(["chosen-by-hand"]));
        assert!(v[0].get("serviceImportClusters").is_none());
    }

    #[test]
    fn quantities_are_written_as_kubernetes_does() {
        assert_eq!(cpu_quantity(0.5), "500m");
        assert_eq!(cpu_quantity(4.0), "4");
        assert_eq!(cpu_quantity(1.25), "1250m");
        assert_eq!(memory_quantity(512.0 * 1024.0 * 1024.0), "512Mi");
        assert_eq!(memory_quantity(8.0 * 1024.0 * 1024.0 * 1024.0), "8Gi");
        assert_eq!(memory_quantity(1000.0), "1000");
    }

    #[test]
    fn hash_ignores_key_order_and_sees_every_input() {
        let a = json!({"x": 1, "y": {"b": 2, "a": [1, 2]}});
        let b: Value = serde_json::from_str(r#"{"y": {"a": [1, 2], "b": 2}, "x": 1}"#).unwrap();
        let base = HashInputs {
            chart: "oci://r/c",
            version: Some("1.0.0"),
            chart_digest: None,
            namespace: "p",
            values: &a,
        };
        let h = input_hash(&base);
        assert_eq!(h, input_hash(&HashInputs { values: &b, ..base }));
        assert_eq!(h.len(), 64);
        let c = json!({"x": 2, "y": {"b": 2, "a": [1, 2]}});
        let changed = [
            input_hash(&HashInputs { values: &c, ..base }),
            input_hash(&HashInputs {
                version: Some("1.0.1"),
                ..base
            }),
            input_hash(&HashInputs {
                version: None,
                ..base
            }),
            input_hash(&HashInputs {
                chart_digest: Some("d"),
                ..base
            }),
            input_hash(&HashInputs {
                namespace: "q",
                ..base
            }),
            input_hash(&HashInputs {
                chart: "oci://r/d",
                ..base
            }),
        ];
        for (i, other) in changed.iter().enumerate() {
            assert_ne!(&h, other, "input {i} not covered");
        }
    }
}
