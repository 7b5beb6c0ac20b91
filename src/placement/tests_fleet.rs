//! Fleet placement: pinned demand reserved first, flexible graphs moved
//! only to make room, and the same plan for every input order.

use super::tests::{assert_valid, cluster, exact, svc};
use super::*;
use std::collections::BTreeMap;

fn fleet_graph(name: &str, services: Vec<Service>) -> FleetGraph {
    FleetGraph {
        name: name.into(),
        problem: PlacementProblem {
            services,
            ..PlacementProblem::default()
        },
        options: exact(),
    }
}

fn pinned(mut s: Service, to: &str) -> Service {
    s.pinned = vec![to.into()];
    s
}

/// An edge cluster that sorts first (so it wins ties) and a core cluster.
fn edge_and_core() -> Vec<Cluster> {
    vec![cluster("a-edge", 2.0), cluster("b-core", 2.0)]
}

/// Name → clusters of each service, for every graph that was placed.
fn plan(clusters: &[Cluster], graphs: &[FleetGraph]) -> BTreeMap<String, Vec<Vec<String>>> {
    graphs
        .iter()
        .zip(place_fleet(clusters, graphs))
        .map(|(g, r)| {
            let o = r.unwrap_or_else(|e| panic!("{e}"));
            let mut p = g.problem.clone();
            p.clusters = clusters.to_vec();
            assert_valid(&p, &g.options, &o);
            (g.name.clone(), o.assignment())
        })
        .collect()
}

#[test]
fn graph_pinned_to_a_small_edge_cluster_is_placed_although_a_flexible_graph_comes_first() {
    let clusters = edge_and_core();
    let flexible = fleet_graph("aaa-flexible", vec![svc("web", 2.0)]);
    let edge = fleet_graph("zzz-edge", vec![pinned(svc("camera", 2.0), "a-edge")]);
    // On its own the flexible graph takes the edge cluster: placed first,
    // it would leave the pinned graph nothing.
    let mut alone = flexible.problem.clone();
    alone.clusters = clusters.clone();
    assert_eq!(place(&alone, &exact()).unwrap().assignment(), [["a-edge"]]);

    let got = plan(&clusters, &[flexible, edge]);
    assert_eq!(got["zzz-edge"], [["a-edge"]]);
    assert_eq!(got["aaa-flexible"], [["b-core"]]);
}

#[test]
fn flexible_graph_running_on_the_pinned_cluster_moves_and_nothing_else_does() {
    // The flexible graph runs on the edge cluster now (the inventory counts
    // its usage as allocated, so nothing is free there); a new pinned graph
    // needs that cluster. A third graph on the core cluster stays put.
    let mut clusters = edge_and_core();
    clusters[0].free_cpu = 0.0;
    clusters[1].free_cpu = 3.0;
    clusters.push(cluster("c-far", 1.0));
    let mut web = svc("web", 2.0);
    web.current = vec!["a-edge".into()];
    let mut db = svc("db", 1.0);
    db.current = vec!["c-far".into()];
    let graphs = [
        fleet_graph("aaa-flexible", vec![web]),
        fleet_graph("bbb-steady", vec![db]),
        fleet_graph("zzz-edge", vec![pinned(svc("camera", 2.0), "a-edge")]),
    ];
    let out = place_fleet(&clusters, &graphs);
    let moved = out[0].as_ref().unwrap();
    assert_eq!(moved.assignment(), [["b-core"]]);
    assert_eq!(moved.objective.movement.raw, 1.0, "the move is counted");
    let steady = out[1].as_ref().unwrap();
    assert_eq!(steady.assignment(), [["c-far"]]);
    assert_eq!(steady.objective.movement.raw, 0.0);
    assert_eq!(out[2].as_ref().unwrap().assignment(), [["a-edge"]]);
}

#[test]
fn fleet_plan_is_the_same_for_every_input_order() {
    let mut clusters = edge_and_core();
    clusters[1].free_cpu = 4.0;
    clusters.push(cluster("c-gpu", 3.0));
    clusters[2].free_gpu = 1;
    let mut ml = svc("ml", 1.0);
    ml.gpu = true;
    let mut ha = fleet_graph("ha", vec![svc("api", 1.0)]);
    ha.problem.flags.high_availability = true;
    let graphs = vec![
        fleet_graph("flex-a", vec![svc("a", 2.0)]),
        fleet_graph("flex-b", vec![svc("b", 1.0), ml]),
        fleet_graph("edge", vec![pinned(svc("cam", 1.0), "a-edge")]),
        ha,
    ];
    let want = plan(&clusters, &graphs);
    let mut perm: Vec<usize> = (0..graphs.len()).collect();
    let mut seen = 0;
    // Heap's algorithm: every permutation once.
    let mut c = vec![0; perm.len()];
    let mut check = |perm: &[usize]| {
        let shuffled: Vec<FleetGraph> = perm.iter().map(|&i| graphs[i].clone()).collect();
        assert_eq!(plan(&clusters, &shuffled), want, "order {perm:?}");
        seen += 1;
    };
    check(&perm);
    let mut i = 0;
    while i < perm.len() {
        if c[i] < i {
            perm.swap(if i % 2 == 0 { 0 } else { c[i] }, i);
            check(&perm);
            c[i] += 1;
            i = 0;
        } else {
            c[i] = 0;
            i += 1;
        }
    }
    assert_eq!(seen, 24);
}

/// The running graphs of the daemon's case: a flexible graph fills the
/// edge cluster, a steady one runs far away; the inventory counts both.
fn running() -> (Vec<Cluster>, Vec<FleetGraph>) {
    let mut clusters = edge_and_core();
    clusters[0].free_cpu = 0.0;
    clusters[1].free_cpu = 3.0;
    clusters.push(cluster("c-far", 0.0));
    let mut web = svc("web", 2.0);
    web.current = vec!["a-edge".into()];
    let mut db = svc("db", 1.0);
    db.current = vec!["c-far".into()];
    let graphs = vec![
        fleet_graph("aaa-flexible", vec![web]),
        fleet_graph("bbb-steady", vec![db]),
    ];
    (clusters, graphs)
}

#[test]
fn room_is_made_by_moving_only_the_flexible_graph_in_the_way() {
    let (clusters, mut graphs) = running();
    graphs.push(fleet_graph(
        "zzz-edge",
        vec![pinned(svc("camera", 2.0), "a-edge")],
    ));
    let room = make_room(&clusters, &graphs, 2).expect("room by moving aaa-flexible");
    assert_eq!(room.outcome.assignment(), [["a-edge"]]);
    let moved: Vec<(usize, Vec<Vec<String>>)> = room
        .moved
        .iter()
        .map(|(h, o)| (*h, o.assignment()))
        .collect();
    assert_eq!(moved, [(0, vec![vec!["b-core".to_owned()]])]);
}

#[test]
fn room_needs_no_move_when_the_graph_fits_and_none_when_nothing_helps() {
    let (clusters, mut graphs) = running();
    graphs.push(fleet_graph("zzz-core", vec![svc("api", 1.0)]));
    let room = make_room(&clusters, &graphs, 2).expect("fits on b-core");
    assert_eq!(room.outcome.assignment(), [["b-core"]]);
    assert!(room.moved.is_empty());

    // The edge cluster has 2 CPUs in all: even with the flexible graph
    // gone, 3 do not fit, so nothing moves.
    let (clusters, mut graphs) = running();
    graphs.push(fleet_graph(
        "zzz-edge",
        vec![pinned(svc("camera", 3.0), "a-edge")],
    ));
    assert!(make_room(&clusters, &graphs, 2).is_none());
}
