//! Room for a graph that cannot be placed on its own (issue 17's fleet
//! placement, in the daemon): the graphs running now keep their recorded
//! placements, and when flexible graphs (no pinned service) hold the
//! capacity the graph needs, the fleet planner's repair rule
//! ([`make_room`]) re-places as few of them as it can.
//!
//! The graph takes its placement at once; each graph that moves gets a
//! [`MoveRecord`], written in the same transaction, which its own
//! reconcile takes (see `placed`). Nothing else writes another graph's
//! records, and a crash between the two leaves the request, which the
//! next start carries out.
//!
//! One room at a time: while any move is still pending, no new room is
//! made (the inventory does not show the capacity being freed yet, and a
//! second plan on it could move a graph twice). The graph waits and tries
//! again.

use super::batch::blocking;
use super::engine::World;
use super::placed::placement_inputs_hash;
use crate::desired::Graph;
use crate::keys::GraphKey;
use crate::placement::{FleetGraph, make_room};
use crate::plan::problem;
use crate::release::Placement;
use crate::store::records::{GraphRecord, MoveRecord, ServicePhase, ServiceRecord};
use crate::store::{Store, StoreError};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// What [`make`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Room {
    /// The graph's placement and the moves that make room for it (none
    /// when it fits as the others are).
    Made {
        placement: Placement,
        moves: Vec<MoveRecord>,
    },
    /// Moving flexible graphs would not help.
    None,
    /// Moves asked earlier are not made yet (their graphs, by key).
    Pending(Vec<String>),
}

/// Looks for room for `graph` (currently at `current`) among the graphs
/// recorded in `store` (off the async workers: it solves placements).
pub async fn make(
    world: &World,
    graph: &Graph,
    current: &Placement,
    store: &Arc<Store>,
    now: u64,
) -> Result<Room, StoreError> {
    let (records, services, pending) =
        blocking(store, |s| Ok((s.graphs()?, s.services()?, s.moves()?))).await?;
    if !pending.is_empty() {
        return Ok(Room::Pending(pending.iter().map(MoveRecord::key).collect()));
    }
    let target = GraphKey::new(&graph.project, graph.id());
    let recorded: BTreeMap<String, GraphRecord> =
        records.into_iter().map(|r| (r.key(), r)).collect();
    let running: BTreeSet<String> = services
        .iter()
        .filter(|s| s.phase == ServicePhase::Deployed)
        .map(ServiceRecord::key)
        .collect();
    let others: Vec<(Graph, Placement)> = world
        .desired
        .valid_graphs()
        .filter(|g| GraphKey::new(&g.project, g.id()) != target)
        .filter_map(|g| {
            let rec = recorded.get(&GraphKey::new(&g.project, g.id()).to_string())?;
            let held = holding(g, &rec.placement, &running);
            (!held.is_empty()).then(|| (g.clone(), held))
        })
        .collect();
    let (facts, settings) = (world.clusters.clone(), world.desired.settings.clone());
    let current = holding(graph, current, &running);
    let graph = graph.clone();
    match tokio::task::spawn_blocking(move || {
        room_among(&graph, &current, &others, &facts, &settings, now)
    })
    .await
    {
        Ok(room) => Ok(room),
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// The part of a recorded placement that holds capacity now: services
/// deployed (the inventory counts them as allocated). A service waiting
/// for its trigger, suspended, failed or not installed yet holds nothing,
/// and counting it would let the planner hand out capacity that is not
/// there when its graph moves.
fn holding(graph: &Graph, placement: &Placement, running: &BTreeSet<String>) -> Placement {
    let key = GraphKey::new(&graph.project, graph.id());
    placement
        .iter()
        .filter(|(service, _)| running.contains(&key.service(service.as_str()).to_string()))
        .map(|(s, c)| (s.clone(), c.clone()))
        .collect()
}

/// [`make`] on given records (pure, blocking); `current` and the others'
/// placements are what they hold now (see `holding`).
pub fn room_among(
    graph: &Graph,
    current: &Placement,
    others: &[(Graph, Placement)],
    facts: &[crate::observe::clusters::ClusterFacts],
    settings: &crate::spec::settings::Settings,
    now: u64,
) -> Room {
    let (clusters, latency) = problem::clusters(facts);
    let fleet_graph = |g: &Graph, at: &Placement| {
        let (problem, options, _notes) =
            problem::problem(g, &clusters, &latency, Some(at), settings);
        FleetGraph {
            name: GraphKey::new(&g.project, g.id()).to_string(),
            problem,
            options,
        }
    };
    let mut fleet: Vec<FleetGraph> = others.iter().map(|(g, at)| fleet_graph(g, at)).collect();
    fleet.push(fleet_graph(graph, current));
    let Some(room) = make_room(&clusters, &fleet, others.len()) else {
        return Room::None;
    };
    let placement_of = |o: &crate::placement::PlacementOutcome| -> Placement {
        o.services
            .iter()
            .map(|s| (s.id.clone(), s.clusters.clone()))
            .collect()
    };
    let for_graph = GraphKey::new(&graph.project, graph.id()).to_string();
    let moves = room
        .moved
        .iter()
        .map(|(h, o)| {
            let g = &others[*h].0;
            MoveRecord {
                project: g.project.clone(),
                graph: g.id().to_owned(),
                placement: placement_of(o),
                inputs_hash: placement_inputs_hash(g),
                for_graph: for_graph.clone(),
                requested_at: now,
            }
        })
        .collect();
    Room::Made {
        placement: placement_of(&room.outcome),
        moves,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::clusters::ClusterFacts;

    const GI: f64 = 1024.0 * 1024.0 * 1024.0;

    /// Loads descriptors `(graph id, service id, cpu intent, pin)` of
    /// project `p` from a temporary root.
    fn graphs(specs: &[(&str, &str, &str, Option<&str>)]) -> Vec<Graph> {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("projects/p");
        std::fs::create_dir_all(&project).unwrap();
        for (id, service, cpu, pin) in specs {
            let pin = pin.map_or_else(String::new, |c| format!("\n          clusters: [{c}]"));
            let yaml = format!(
                "hdaGraph:
  imVersion: 0.4.0
  id: {id}
  version: \"1\"
  designer: t
  hdaGraphIntent: {{}}
  services:
    - id: {service}
      deployment:
        trigger: {{auto: {{dependencies: []}}}}
        intent:
          compute: {{cpu: {cpu}, ram: small, storage: small, gpu: {{enabled: false}}}}{pin}
      artifact:
        ociImage: oci://r.example/c/{service}
        ociConfig: {{type: App, implementer: HELM}}
        ociRun: {{name: HELM, version: v3}}
"
            );
            std::fs::write(project.join(format!("{id}.yaml")), yaml).unwrap();
        }
        let state = crate::desired::loader::load_root(dir.path()).unwrap();
        let out: Vec<Graph> = state.valid_graphs().cloned().collect();
        assert_eq!(out.len(), specs.len(), "{:?}", state.findings);
        out
    }

    fn cluster(name: &str, free_cpu: f64) -> ClusterFacts {
        ClusterFacts {
            name: name.into(),
            ready: true,
            schedulable: true,
            free_cpu,
            free_memory: 64.0 * GI,
            free_gpu: 0.0,
            allocatable_cpu: 8.0,
            allocatable_memory: 64.0 * GI,
            carbon_intensity: None,
            cost_per_cpu_hour: None,
            location: Default::default(),
            latency_ms: BTreeMap::new(),
        }
    }

    fn at(service: &str, cluster: &str) -> Placement {
        BTreeMap::from([(service.to_owned(), vec![cluster.to_owned()])])
    }

    /// The flexible graph fills the edge cluster (the inventory counts it),
    /// the steady one runs on the far cluster; the core has room.
    fn running() -> (Vec<Graph>, Vec<ClusterFacts>) {
        let g = graphs(&[
            ("a-flex", "web", "medium", None),
            ("b-steady", "db", "small", None),
            ("z-pinned", "camera", "medium", Some("a-edge")),
        ]);
        let facts = vec![
            cluster("a-edge", 0.5),
            cluster("b-core", 6.0),
            cluster("c-far", 0.0),
        ];
        (g, facts)
    }

    #[test]
    fn the_flexible_graph_in_the_way_is_asked_to_move_and_nothing_else() {
        let (g, facts) = running();
        let others = [
            (g[0].clone(), at("web", "a-edge")),
            (g[1].clone(), at("db", "c-far")),
        ];
        let settings = crate::spec::settings::Settings::default();
        let room = room_among(&g[2], &Placement::new(), &others, &facts, &settings, 7);
        let Room::Made { placement, moves } = room else {
            panic!("no room: {room:?}")
        };
        assert_eq!(placement, at("camera", "a-edge"));
        assert_eq!(
            moves,
            [MoveRecord {
                project: "p".into(),
                graph: "a-flex".into(),
                placement: at("web", "b-core"),
                inputs_hash: placement_inputs_hash(&g[0]),
                for_graph: "p/z-pinned".into(),
                requested_at: 7,
            }]
        );
    }

    #[test]
    fn no_room_when_moving_every_flexible_graph_would_not_be_enough() {
        let (g, mut facts) = running();
        // The core is full too: the flexible graph has nowhere to go.
        facts[1].free_cpu = 1.0;
        let others = [
            (g[0].clone(), at("web", "a-edge")),
            (g[1].clone(), at("db", "c-far")),
        ];
        let settings = crate::spec::settings::Settings::default();
        let room = room_among(&g[2], &Placement::new(), &others, &facts, &settings, 7);
        assert_eq!(room, Room::None);
    }

    fn move_of(graph: &str, cluster: &str) -> MoveRecord {
        MoveRecord {
            project: "p".into(),
            graph: graph.into(),
            placement: at("web", cluster),
            inputs_hash: "h".into(),
            for_graph: "p/z-pinned".into(),
            requested_at: 1,
        }
    }

    #[tokio::test]
    async fn a_move_is_written_with_the_placement_and_taken_only_as_read() {
        use super::super::batch::Batch;
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(Store::path_in(dir.path())).unwrap());
        let pinned = GraphKey::new("p", "z-pinned");
        let mut b = Batch::load(&store, &pinned).await.unwrap();
        b.graph = Some(GraphRecord::new("p", "z-pinned", "z.yaml", 1));
        b.moves = vec![move_of("a-flex", "b-core")];
        b.commit(&store, 2).await.unwrap();
        assert_eq!(store.moves().unwrap(), [move_of("a-flex", "b-core")]);
        let asked = store.events(10).unwrap();
        assert_eq!(
            asked[0].kind(),
            Some(crate::store::Kind::ReplacementRequested)
        );
        assert_eq!(asked[0].graph, "a-flex");

        // The moving graph read the request; another one replaced it
        // before its commit: the newer request stays.
        let flex = GraphKey::new("p", "a-flex");
        let mut b = Batch::load(&store, &flex).await.unwrap();
        assert_eq!(b.move_asked, Some(move_of("a-flex", "b-core")));
        b.graph = Some(GraphRecord::new("p", "a-flex", "a.yaml", 1));
        b.move_taken = true;
        store
            .write(|tx| tx.put_move(&move_of("a-flex", "c-far")))
            .unwrap();
        b.commit(&store, 3).await.unwrap();
        assert_eq!(store.moves().unwrap(), [move_of("a-flex", "c-far")]);

        let mut b = Batch::load(&store, &flex).await.unwrap();
        b.move_taken = true;
        b.commit(&store, 4).await.unwrap();
        assert!(store.moves().unwrap().is_empty());
    }

    #[test]
    fn only_deployed_services_hold_capacity() {
        let (g, _) = running();
        let placement = at("web", "a-edge");
        let none = BTreeSet::new();
        assert!(holding(&g[0], &placement, &none).is_empty());
        let deployed = BTreeSet::from(["p/a-flex/web".to_owned()]);
        assert_eq!(holding(&g[0], &placement, &deployed), placement);
    }
}
