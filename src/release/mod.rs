//! Release inputs: for every service of a placed graph, what `helm upgrade
//! --install` receives (release name = service id, namespace = project,
//! chart, version, values) and the hash that tells whether anything changed.

pub mod chart;
pub mod values;

use crate::desired::Graph;
use chart::{ChartError, ChartRef};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
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

/// How a record holds inputs it only knows from a release's label (see
/// [`crate::adapters::karmada::INPUTS_LABEL`]): a prefix of the hash.
const FROM_LABEL: &str = "label:";

/// The recorded inputs of a release found live with this inputs label.
pub fn inputs_from_label(label: &str) -> String {
    format!("{FROM_LABEL}{label}")
}

/// Whether recorded inputs are `wanted`: equal, or a label's prefix of it.
pub fn same_inputs(recorded: Option<&str>, wanted: &str) -> bool {
    match recorded {
        None => false,
        Some(r) => match r.strip_prefix(FROM_LABEL) {
            Some(prefix) => prefix.len() >= 32 && wanted.starts_with(prefix),
            None => r == wanted,
        },
    }
}

/// Whether recorded inputs were only taken from a release's label (the
/// record then lacks the release's manifest too).
pub fn inputs_from_a_label(recorded: Option<&str>) -> bool {
    recorded.is_some_and(|r| r.starts_with(FROM_LABEL))
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

/// Local charts resolved (walked, checked and hashed) during one snapshot
/// of the desired state, by where they were declared: a resync of
/// thousands of services walks each chart once, not once per graph. The
/// daemon keeps one per snapshot (a new revision starts empty, so an edited
/// chart is read again); an entry holds only charts that resolved.
///
/// It also keeps each graph's release inputs for the placement they were
/// made for ([`inputs_memo`]): a resync of an unchanged snapshot makes
/// them again for nothing (values and their hash were a fifth of its CPU).
#[derive(Debug, Default)]
pub struct ChartMemo(Mutex<HashMap<ChartKey, ChartRef>>, Mutex<InputsMemo>);

/// Release inputs by graph (`project/id`): the descriptor they were made
/// from (compared by pointer) and the placement.
type InputsMemo = HashMap<
    String,
    (
        Arc<crate::descriptor::Descriptor>,
        Placement,
        Arc<Vec<ReleaseInput>>,
    ),
>;

/// (the chart as declared, joined to its descriptor's directory; the
/// version): what [`chart::resolve`] reads. Graphs of one folder naming one
/// chart share it.
type ChartKey = (PathBuf, Option<String>);

impl ChartMemo {
    fn get(&self, key: &ChartKey) -> Option<ChartRef> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }

    fn put(&self, key: ChartKey, chart: ChartRef) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, chart);
    }

    fn inputs(&self) -> std::sync::MutexGuard<'_, InputsMemo> {
        self.1.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The inputs [`inputs_memo`] kept for this graph and placement (no
    /// file is read: callers ask before moving the work off the async
    /// workers).
    pub fn kept_inputs(
        &self,
        graph: &Graph,
        placement: &Placement,
    ) -> Option<Arc<Vec<ReleaseInput>>> {
        let key = format!("{}/{}", graph.project, graph.id());
        let memo = self.inputs();
        let (descriptor, placed, inputs) = memo.get(&key)?;
        (Arc::ptr_eq(descriptor, &graph.descriptor) && placed == placement)
            .then(|| Arc::clone(inputs))
    }
}

/// [`inputs_with`], kept in `memo` for the graph's descriptor and
/// placement: a graph reconciled again in the same snapshot with the same
/// placement reuses them. Failures are not kept.
pub fn inputs_memo(
    graph: &Graph,
    placement: &Placement,
    root: &Path,
    memo: &ChartMemo,
) -> Result<Arc<Vec<ReleaseInput>>, ChartError> {
    if let Some(inputs) = memo.kept_inputs(graph, placement) {
        return Ok(inputs);
    }
    let inputs = Arc::new(inputs_with(graph, placement, root, memo)?);
    memo.inputs().insert(
        format!("{}/{}", graph.project, graph.id()),
        (
            Arc::clone(&graph.descriptor),
            placement.clone(),
            Arc::clone(&inputs),
        ),
    );
    Ok(inputs)
}

/// The release inputs of every service of `graph` (descriptor order), with
/// local charts read from `root`.
pub fn inputs(
    graph: &Graph,
    placement: &Placement,
    root: &Path,
) -> Result<Vec<ReleaseInput>, ChartError> {
    inputs_with(graph, placement, root, &ChartMemo::default())
}

/// [`inputs`], with the local charts already resolved in `memo` reused.
pub fn inputs_with(
    graph: &Graph,
    placement: &Placement,
    root: &Path,
    memo: &ChartMemo,
) -> Result<Vec<ReleaseInput>, ChartError> {
    let values = values::values(graph, placement);
    // Services of a graph often share one local chart: its files are
    // walked and hashed once, not once per service.
    let (base, file) = graph.chart_base(root);
    let declared_dir = base.join(file);
    let declared_dir = declared_dir.parent().unwrap_or(base);
    graph
        .descriptor
        .hda_graph
        .services
        .iter()
        .zip(values)
        .map(|(s, values)| {
            let key = (
                declared_dir.join(s.artifact.oci_image.as_str()),
                s.artifact.version.clone(),
            );
            let chart = match memo.get(&key) {
                Some(c) => c,
                None => {
                    let c = chart::resolve(base, file, s)?;
                    if c.digest.is_some() {
                        memo.put(key, c.clone());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn chart_digests(graph: &Graph, root: &Path, memo: &ChartMemo) -> Vec<String> {
        let placement: Placement = graph
            .descriptor
            .hda_graph
            .services
            .iter()
            .map(|s| (s.id.to_string(), vec!["c".to_owned()]))
            .collect();
        inputs_with(graph, &placement, root, memo)
            .unwrap()
            .into_iter()
            .map(|i| i.chart.digest.unwrap_or_default())
            .collect()
    }

    #[test]
    fn a_memo_reads_each_local_chart_once_and_a_new_one_reads_it_again() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("state-example");
        let root = tempfile::tempdir().unwrap();
        fake_karmada::testing::copy_dir(&example, root.path());
        let state = crate::desired::loader::load_root(root.path()).unwrap();
        let graph = state.valid_graphs().find(|g| g.project == "demo2").unwrap();
        let memo = ChartMemo::default();
        let first = chart_digests(graph, root.path(), &memo);
        assert!(first.iter().all(|d| !d.is_empty()), "{first:?}");
        // Its services share one chart: read once.
        assert_eq!(memo.0.lock().unwrap().len(), 1);
        let chart = root
            .path()
            .join("projects/demo2/charts/service/values.yaml");
        let mut text = std::fs::read_to_string(&chart).unwrap();
        text.push_str("\n# edited\n");
        std::fs::write(&chart, text).unwrap();
        // The same snapshot: the memo answers.
        assert_eq!(chart_digests(graph, root.path(), &memo), first);
        // A new snapshot reads the edited chart.
        let fresh = chart_digests(graph, root.path(), &ChartMemo::default());
        assert_ne!(fresh, first);
    }

    #[test]
    fn inputs_are_kept_for_one_descriptor_and_placement() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("state-example");
        let state = crate::desired::loader::load_root(&example).unwrap();
        let graph = state.valid_graphs().find(|g| g.project == "demo2").unwrap();
        let on = |cluster: &str| -> Placement {
            graph
                .descriptor
                .hda_graph
                .services
                .iter()
                .map(|s| (s.id.to_string(), vec![cluster.to_owned()]))
                .collect()
        };
        let memo = ChartMemo::default();
        let first = inputs_memo(graph, &on("a"), &example, &memo).unwrap();
        let again = inputs_memo(graph, &on("a"), &example, &memo).unwrap();
        assert!(Arc::ptr_eq(&first, &again), "kept");
        assert_eq!(*first, inputs(graph, &on("a"), &example).unwrap());
        // Another placement is made afresh, and is what `inputs` makes.
        let moved = inputs_memo(graph, &on("b"), &example, &memo).unwrap();
        assert!(!Arc::ptr_eq(&first, &moved));
        assert_eq!(*moved, inputs(graph, &on("b"), &example).unwrap());
        assert_ne!(first[0].hash, moved[0].hash);
        // So is another descriptor (a new snapshot of the same graph).
        let mut edited = graph.clone();
        edited.descriptor = Arc::new((*graph.descriptor).clone());
        let fresh = inputs_memo(&edited, &on("b"), &example, &memo).unwrap();
        assert!(!Arc::ptr_eq(&fresh, &moved));
    }
}

#[cfg(test)]
mod inputs_tests {
    use super::*;

    #[test]
    fn inputs_known_from_a_label_match_the_hash_they_are_a_prefix_of() {
        let hash = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let label = crate::adapters::karmada::inputs_label(hash);
        assert_eq!(label.len(), 32);
        let recorded = inputs_from_label(&label);
        assert!(same_inputs(Some(&recorded), hash));
        assert!(inputs_from_a_label(Some(&recorded)));
        assert!(!same_inputs(Some(&recorded), &hash.replace('0', "f")));
        assert!(same_inputs(Some(hash), hash) && !inputs_from_a_label(Some(hash)));
        assert!(!same_inputs(None, hash));
        // A short label vouches for nothing.
        assert!(!same_inputs(Some(&inputs_from_label("0123")), hash));
    }
}
