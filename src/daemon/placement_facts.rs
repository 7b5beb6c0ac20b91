//! The placements in force and the scaler's decisions, shared on Karmada
//! ([`crate::ha::facts`]) when leader election is on. A new leader's store
//! knows its predecessor's releases (the sweep records them from their
//! labels) but not where each graph was placed nor how far each service was
//! scaled: without these it could place a graph anew, and the upgrade of
//! its first pass would reset every scaled service to its chart's replicas
//! (smo re-asserts the scaler's replicas after an upgrade only when it
//! knows them). The leader shares them (at most once per round, when the
//! store changed); a new leader adopts, before its first pass, what its own
//! records lack.

use crate::ha::facts::Facts;
use crate::store::Store;
use crate::store::records::{GraphRecord, ScaleRecord};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The ConfigMap's name in the `ha` namespace.
pub const NAME: &str = "smo-placements";

/// One graph's shared facts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphFacts {
    pub project: String,
    pub graph: String,
    pub placement: BTreeMap<String, Vec<String>>,
    pub placement_inputs_hash: Option<String>,
    #[serde(default)]
    pub placement_revision: Option<String>,
    /// The scaler's last decision for each scaled service.
    #[serde(default)]
    pub scales: Vec<ScaleRecord>,
}

/// The facts of the graphs a store records.
pub fn facts_of(graphs: &[GraphRecord], scales: &[ScaleRecord]) -> Vec<GraphFacts> {
    let mut out: BTreeMap<(String, String), GraphFacts> = graphs
        .iter()
        .filter(|g| !g.placement.is_empty())
        .map(|g| {
            (
                (g.project.clone(), g.graph.clone()),
                GraphFacts {
                    project: g.project.clone(),
                    graph: g.graph.clone(),
                    placement: g.placement.clone(),
                    placement_inputs_hash: g.placement_inputs_hash.clone(),
                    placement_revision: g.placement_revision.clone(),
                    scales: Vec::new(),
                },
            )
        })
        .collect();
    for s in scales {
        if let Some(f) = out.get_mut(&(s.project.clone(), s.graph.clone())) {
            f.scales.push(s.clone());
        }
    }
    out.into_values().collect()
}

/// What a store takes from the shared facts: a placement for each declared
/// graph whose record has none, and the scaler's decision for each service
/// of such a graph that has none. Records it already holds are never
/// overwritten (they are at least as recent as anything another instance
/// shared), and a graph its desired state does not declare gets no record
/// (that would make it a removal).
pub fn adopt(
    shared: &[GraphFacts],
    declared: &std::collections::BTreeSet<String>,
    graphs: &BTreeMap<String, GraphRecord>,
    scales: &BTreeMap<String, ScaleRecord>,
    now: u64,
) -> (Vec<GraphRecord>, Vec<ScaleRecord>) {
    let mut g_out = Vec::new();
    let mut s_out = Vec::new();
    for f in shared {
        let key = crate::store::records::graph_key(&f.project, &f.graph);
        if !declared.contains(&key) {
            continue;
        }
        let mut rec = graphs
            .get(&key)
            .cloned()
            .unwrap_or_else(|| GraphRecord::new(&f.project, &f.graph, "", now));
        if rec.placement.is_empty() && !f.placement.is_empty() {
            rec.placement = f.placement.clone();
            rec.placement_inputs_hash = f.placement_inputs_hash.clone();
            rec.placement_revision = f.placement_revision.clone();
            g_out.push(rec);
        }
        s_out.extend(
            f.scales
                .iter()
                .filter(|s| !scales.contains_key(&s.key()))
                .cloned(),
        );
    }
    (g_out, s_out)
}

pub(super) struct SharedPlacements {
    facts: Facts<GraphFacts>,
    /// The store generation and the facts last shared.
    shared: Option<(u64, Vec<GraphFacts>)>,
}

impl SharedPlacements {
    pub(super) fn new(facts: Facts<GraphFacts>) -> Self {
        SharedPlacements {
            facts,
            shared: None,
        }
    }

    /// Shares the store's facts if they changed since the last time.
    pub(super) async fn share(&mut self, store: &Arc<Store>) {
        let generation = store.generation();
        if self.shared.as_ref().is_some_and(|(g, _)| *g == generation) {
            return;
        }
        let s = Arc::clone(store);
        let read = tokio::task::spawn_blocking(move || {
            Ok::<_, crate::store::StoreError>((s.graphs()?, s.scales()?))
        })
        .await;
        let (graphs, scales) = match read {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return tracing::warn!(error = %e, "placements not shared"),
            Err(e) => return tracing::warn!(error = %e, "placements not shared"),
        };
        let facts = facts_of(&graphs, &scales);
        if self.shared.as_ref().is_some_and(|(_, f)| *f == facts) {
            self.shared = Some((generation, facts));
            return;
        }
        match self.facts.write(&facts).await {
            Ok(_) => self.shared = Some((generation, facts)),
            Err(e) => tracing::warn!(error = %e, "placements not shared; tried again next round"),
        }
    }

    /// Takes what the store lacks from the shared facts (a new leader,
    /// before its first pass). A failure is logged: the pass then places
    /// and scales from what the store knows.
    pub(super) async fn adopt(
        &mut self,
        store: &Arc<Store>,
        desired: &crate::desired::DesiredState,
    ) {
        self.shared = None;
        let declared: std::collections::BTreeSet<String> = desired
            .graphs
            .iter()
            .filter_map(|e| {
                Some(crate::store::records::graph_key(
                    &e.project,
                    e.id.as_deref()?,
                ))
            })
            .collect();
        let read = match self.facts.read().await {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => return tracing::warn!(error = %e, "shared placements not read"),
        };
        let s = Arc::clone(store);
        let now = super::now();
        let job = move || {
            let graphs = s.graphs()?.into_iter().map(|g| (g.key(), g)).collect();
            let scales = s.scales()?.into_iter().map(|r| (r.key(), r)).collect();
            let (g, sv) = adopt(&read.records, &declared, &graphs, &scales, now);
            if !g.is_empty() || !sv.is_empty() {
                s.write(|tx| {
                    for r in &g {
                        tx.put_graph(r)?;
                    }
                    for r in &sv {
                        tx.adopt_scale(r)?;
                    }
                    Ok(())
                })?;
            }
            Ok::<_, crate::store::StoreError>((g.len(), sv.len()))
        };
        match tokio::task::spawn_blocking(job).await {
            Ok(Ok((0, 0))) => {}
            Ok(Ok((graphs, scales))) => tracing::info!(
                graphs,
                scales,
                "adopted the placements and scaling decisions another instance shared"
            ),
            Ok(Err(e)) => tracing::warn!(error = %e, "shared placements not adopted"),
            Err(e) => tracing::warn!(error = %e, "shared placements not adopted"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(name: &str, placement: &[(&str, &str)]) -> GraphRecord {
        let mut g = GraphRecord::new("p", name, "f.yaml", 1);
        g.placement = placement
            .iter()
            .map(|(s, c)| ((*s).to_owned(), vec![(*c).to_owned()]))
            .collect();
        g.placement_inputs_hash = Some(format!("h-{name}"));
        g
    }

    fn scale(graph: &str, service: &str, replicas: u32) -> ScaleRecord {
        ScaleRecord {
            project: "p".into(),
            graph: graph.into(),
            service: service.into(),
            replicas,
            per_cluster: BTreeMap::from([("edge-1".to_owned(), replicas)]),
            rate: Some(12.5),
            note: None,
            at: 1,
        }
    }

    #[test]
    fn facts_round_trip_into_a_store_that_lacks_them_and_never_overwrite() {
        let leader_graphs = [
            graph("g1", &[("web", "edge-1")]),
            graph("g2", &[("db", "core")]),
        ];
        let leader_scales = [scale("g1", "web", 3), scale("g2", "db", 2)];
        let shared = facts_of(&leader_graphs, &leader_scales);
        assert_eq!(shared.len(), 2);
        assert_eq!(shared[0].scales, [scale("g1", "web", 3)]);

        // The successor: g1 unknown (no record), g2 placed elsewhere by
        // itself already, with its own decision for db.
        let own_g2 = graph("g2", &[("db", "edge-2")]);
        let graphs = BTreeMap::from([(own_g2.key(), own_g2)]);
        let own_db = scale("g2", "db", 5);
        let scales = BTreeMap::from([(own_db.key(), own_db)]);
        let declared = ["p/g1", "p/g2"].iter().map(|k| (*k).to_owned()).collect();
        let (g, s) = adopt(&shared, &declared, &graphs, &scales, 9);
        assert_eq!(g.len(), 1, "only the graph without a placement");
        assert_eq!(g[0].graph, "g1");
        assert_eq!(g[0].placement["web"], ["edge-1"]);
        assert_eq!(g[0].placement_inputs_hash.as_deref(), Some("h-g1"));
        assert_eq!(s, [scale("g1", "web", 3)], "its own decision for db stays");
        // An undeclared graph gets no record.
        let only_g2 = std::collections::BTreeSet::from(["p/g2".to_owned()]);
        assert_eq!(adopt(&shared, &only_g2, &graphs, &scales, 9).0, []);
    }
}
