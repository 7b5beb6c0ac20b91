//! Offline cluster inventory (`inventory.schema.json`): the same facts as
//! Karmada's `Cluster.status.resourceSummary`, for `smo plan`, `smo render`
//! and tests.

use crate::units::quantity_of;
use crate::validate::findings::{Finding, Pos, Severity};
use crate::validate::schema::SchemaKind;
use crate::validate::{read_document, typed};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

/// Allocatable and allocated amounts of one resource, in base units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Resource {
    pub allocatable: f64,
    pub allocated: f64,
}

impl Resource {
    /// What is left; never negative.
    pub fn free(&self) -> f64 {
        (self.allocatable - self.allocated).max(0.0)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InventoryCluster {
    pub name: String,
    pub ready: bool,
    pub cpu: Resource,
    pub memory: Resource,
    pub gpu: Resource,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Inventory {
    pub clusters: Vec<InventoryCluster>,
}

#[derive(Debug, Deserialize)]
struct RawInventory {
    clusters: Vec<RawCluster>,
}

#[derive(Debug, Deserialize)]
struct RawCluster {
    name: String,
    ready: bool,
    cpu: RawResource,
    memory: RawResource,
    gpu: Option<RawResource>,
}

#[derive(Debug, Deserialize)]
struct RawResource {
    allocatable: Value,
    allocated: Option<Value>,
}

/// Reads and validates an inventory file. Errors are findings.
pub fn load(path: &Path) -> Result<Inventory, Vec<Finding>> {
    let shown = path.display().to_string();
    let doc = read_document(path, &shown)?.ok_or_else(|| {
        vec![Finding::new(
            &shown,
            Pos { line: 1, column: 1 },
            "",
            Severity::Error,
            "inventory file is empty",
        )]
    })?;
    let (raw, mut findings) = typed::<RawInventory>(SchemaKind::Inventory, &doc, &shown);
    let Some(raw) = raw else { return Err(findings) };
    let mut clusters = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, c) in raw.clusters.into_iter().enumerate() {
        let base = format!("/clusters/{i}");
        let mut error =
            |pointer: String, message: String| findings.push(doc.error(&shown, &pointer, message));
        if !seen.insert(c.name.clone()) {
            error(
                format!("{base}/name"),
                format!("cluster `{}` is listed twice", c.name),
            );
        }
        let mut resource = |r: &RawResource, what: &str| -> Resource {
            let mut q = |v: &Value, field: &str| {
                quantity_of(v).unwrap_or_else(|e| {
                    error(format!("{base}/{what}/{field}"), e.to_string());
                    0.0
                })
            };
            Resource {
                allocatable: q(&r.allocatable, "allocatable"),
                allocated: r.allocated.as_ref().map_or(0.0, |v| q(v, "allocated")),
            }
        };
        let cpu = resource(&c.cpu, "cpu");
        let memory = resource(&c.memory, "memory");
        let gpu = c
            .gpu
            .as_ref()
            .map(|g| resource(g, "gpu"))
            .unwrap_or_default();
        clusters.push(InventoryCluster {
            name: c.name,
            ready: c.ready,
            cpu,
            memory,
            gpu,
        });
    }
    if findings.iter().any(Finding::is_error) {
        return Err(findings);
    }
    Ok(Inventory { clusters })
}
