//! Release inputs: for every service of a placed graph, what `helm upgrade
//! --install` receives (release name = service id, namespace = project,
//! chart, version, values) and the hash that tells whether anything changed.

pub mod chart;
pub mod values;

use crate::desired::Graph;
use chart::{ChartError, ChartRef};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
pub use values::Placement;

/// One service's release, ready for helm.
#[derive(Debug, Clone, PartialEq)]
pub struct ReleaseInput {
    pub service: String,
    pub release: String,
    pub namespace: String,
    pub chart: ChartRef,
    pub values: Value,
    pub hash: String,
}

impl ReleaseInput {
    pub fn spec(&self) -> crate::adapters::helm::ReleaseSpec<'_> {
        crate::adapters::helm::ReleaseSpec {
            name: &self.release,
            namespace: &self.namespace,
            chart: &self.chart.chart,
            version: self.chart.version.as_deref(),
            values: &self.values,
            labels: &crate::adapters::helm::NO_LABELS,
        }
    }
}

/// The release inputs of every service of `graph` (descriptor order), with
/// local charts read from `root`.
pub fn inputs(
    graph: &Graph,
    placement: &Placement,
    root: &Path,
) -> Result<Vec<ReleaseInput>, ChartError> {
    let values = values::values(graph, placement);
    // Services of a graph often share one local chart: its files are
    // walked and hashed once per call, not once per service.
    let mut local: HashMap<(&str, Option<&str>), ChartRef> = HashMap::new();
    graph
        .descriptor
        .hda_graph
        .services
        .iter()
        .zip(values)
        .map(|(s, values)| {
            let (base, file) = graph.chart_base(root);
            let key = (s.artifact.oci_image.as_str(), s.artifact.version.as_deref());
            let chart = match local.get(&key) {
                Some(c) => c.clone(),
                None => {
                    let c = chart::resolve(base, file, s)?;
                    if c.digest.is_some() {
                        local.insert(key, c.clone());
                    }
                    c
                }
            };
            let hash = values::input_hash(&values::HashInputs {
                chart: &chart.chart_identity(),
                version: chart.version.as_deref(),
                chart_digest: chart.digest.as_deref(),
                namespace: &graph.project,
                values: &values,
            });
            Ok(ReleaseInput {
                service: s.id.to_string(),
                release: s.id.to_string(),
                namespace: graph.project.clone(),
                chart,
                values,
                hash,
            })
        })
        .collect()
}

impl ChartRef {
    /// What identifies the chart in the hash: the OCI reference, or for a
    /// local chart only its content (a Git checkout lives in a directory
    /// named after the revision; moving it must not upgrade anything).
    fn chart_identity(&self) -> String {
        if self.digest.is_some() {
            "local".to_owned()
        } else {
            self.chart.clone()
        }
    }
}
