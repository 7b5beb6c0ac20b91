//! Tests of the placement engine: one table row per infeasibility message,
//! the Brussels numbers, brute-force optimality on small instances, and
//! properties (validity checked independently of `check.rs`, infeasibility
//! agreement with brute force, determinism).

use super::check::{Assignment, evaluate, violation};
use super::instance::Instance;
use super::*;
use proptest::prelude::*;

const GI: u64 = 1024 * 1024 * 1024;

pub(super) fn svc(id: &str, cpu: f64) -> Service {
    Service {
        id: id.into(),
        cpu,
        memory_bytes: GI / 2,
        gpu: false,
        replicas: 1,
        pinned: vec![],
        current: vec![],
    }
}

pub(super) fn cluster(name: &str, cpu: f64) -> Cluster {
    Cluster {
        name: name.into(),
        ready: true,
        schedulable: true,
        free_cpu: cpu,
        free_memory_bytes: 64 * GI,
        free_gpu: 0,
        carbon_intensity: 100.0,
        cost_per_cpu_hour: 0.04,
        location: None,
    }
}

fn edge(caller: usize, callee: usize, latency: LatencyClass) -> Edge {
    Edge {
        caller,
        callee,
        latency,
        traffic: 1.0,
    }
}

fn lat(from: &str, to: &str, ms: f64) -> LatencyEntry {
    LatencyEntry {
        from: from.into(),
        to: to.into(),
        ms,
    }
}

fn problem(services: Vec<Service>, clusters: Vec<Cluster>) -> PlacementProblem {
    PlacementProblem {
        services,
        clusters,
        ..PlacementProblem::default()
    }
}

pub(super) fn exact() -> PlacementOptions {
    PlacementOptions {
        mip_gap: 0.0,
        ..PlacementOptions::default()
    }
}

// ---------------------------------------------------------------- messages

#[test]
fn infeasibility_messages() {
    let mut gpu = problem(
        vec![svc("ml-inference", 1.0)],
        vec![cluster("a", 8.0), cluster("b", 8.0)],
    );
    gpu.services[0].gpu = true;

    let shortfall = problem(
        (0..5).map(|i| svc(&format!("s{i}"), 8.0)).collect(),
        (0..4).map(|i| cluster(&format!("c{i}"), 8.0)).collect(),
    );

    let mut coloc = problem(
        vec![svc("image-detection", 1.0), svc("noise-reduction", 1.0)],
        vec![cluster("a", 1.5), cluster("b", 1.5)],
    );
    coloc.co_location = vec![vec![0, 1]];

    let mut coloc_pins = coloc.clone();
    coloc_pins.clusters = vec![cluster("a", 4.0), cluster("b", 4.0)];
    coloc_pins.services[0].pinned = vec!["a".into()];
    coloc_pins.services[1].pinned = vec!["b".into()];

    let mut ultralow = problem(
        vec![svc("a", 1.0), svc("b", 1.0)],
        vec![cluster("x", 4.0), cluster("y", 4.0)],
    );
    ultralow.services[0].pinned = vec!["x".into()];
    ultralow.services[1].pinned = vec!["y".into()];
    ultralow.edges = vec![edge(0, 1, LatencyClass::Ultralow)];
    ultralow.latency.entries = vec![lat("x", "y", 20.0)];

    let mut low = ultralow.clone();
    low.edges = vec![edge(0, 1, LatencyClass::Low)];
    low.latency.entries = vec![lat("x", "y", 50.0)];

    let mut cordoned = problem(
        vec![svc("web", 1.0)],
        vec![cluster("a", 4.0), cluster("b", 4.0)],
    );
    cordoned.clusters[0].schedulable = false;
    cordoned.clusters[1].ready = false;

    let rows: Vec<(&str, PlacementProblem, &str)> = vec![
        (
            "gpu",
            gpu,
            "service ml-inference needs a GPU; no ready, schedulable cluster has a free GPU",
        ),
        (
            "cpu shortfall",
            shortfall,
            "graph demands 40 CPU, free CPU in eligible clusters is 32",
        ),
        (
            "co-location capacity",
            coloc,
            "image-detection and noise-reduction must be co-located but no cluster fits both (needs 2 CPU, best has 1.5)",
        ),
        (
            "co-location pins",
            coloc_pins,
            "image-detection and noise-reduction must be co-located but no cluster is eligible for both",
        ),
        (
            "ultralow",
            ultralow,
            "ultralow latency between a and b is impossible: no cluster pair under 10 ms",
        ),
        (
            "low",
            low,
            "low latency between a and b is impossible: no shared cluster and no cluster pair within 30 ms",
        ),
        (
            "no eligible cluster",
            cordoned,
            "service web has no eligible cluster (a: cordoned (not schedulable); b: not ready)",
        ),
    ];
    for (name, p, want) in rows {
        for strategy in [StrategyKind::Milp, StrategyKind::FirstFit] {
            let err = place(
                &p,
                &PlacementOptions {
                    strategy,
                    ..PlacementOptions::default()
                },
            )
            .unwrap_err();
            assert!(
                matches!(err, PlacementError::Infeasible(_)),
                "{name}: {err:?}"
            );
            assert_eq!(err.to_string(), want, "{name}");
        }
    }
}

#[test]
fn solver_infeasible_names_the_families() {
    // Every cheap check passes (3 CPU demanded, 3 free, each fits alone),
    // but 1-CPU services cannot be packed into two 1.5-CPU clusters.
    let p = problem(
        vec![svc("a", 1.0), svc("b", 1.0), svc("c", 1.0)],
        vec![cluster("x", 1.5), cluster("y", 1.5)],
    );
    let err = place(&p, &PlacementOptions::default()).unwrap_err();
    match &err {
        PlacementError::SolverInfeasible { families } => {
            assert!(
                families.iter().any(|f| f.starts_with("capacity")),
                "{families:?}"
            )
        }
        other => panic!("expected SolverInfeasible, got {other:?}"),
    }
    assert!(err.to_string().contains("constraint families involved"));
    let ff = place(
        &p,
        &PlacementOptions {
            strategy: StrategyKind::FirstFit,
            ..PlacementOptions::default()
        },
    );
    // First-fit stops at `c`; the constructive search then proves the
    // instance infeasible, and says why as the MILP does.
    match ff.unwrap_err() {
        PlacementError::SolverInfeasible { families } => {
            assert!(
                families.iter().any(|f| f.starts_with("capacity")),
                "{families:?}"
            );
        }
        other => panic!("expected SolverInfeasible from first-fit, got {other:?}"),
    }
}

#[test]
fn solver_infeasible_blames_latency_when_only_latency_conflicts() {
    // a must be ultralow-close to b and c; b and c are pinned far apart
    // from each other; each pair alone is satisfiable.
    let mut p = problem(
        vec![svc("a", 1.0), svc("b", 1.0), svc("c", 1.0)],
        vec![cluster("x", 8.0), cluster("y", 8.0), cluster("z", 8.0)],
    );
    p.services[1].pinned = vec!["x".into()];
    p.services[2].pinned = vec!["z".into()];
    p.edges = vec![
        edge(0, 1, LatencyClass::Ultralow),
        edge(0, 2, LatencyClass::Ultralow),
    ];
    p.latency.entries = vec![
        lat("x", "y", 50.0),
        lat("y", "z", 50.0),
        lat("x", "z", 50.0),
    ];
    let err = place(&p, &PlacementOptions::default()).unwrap_err();
    let PlacementError::SolverInfeasible { families } = err else {
        panic!("{err:?}")
    };
    assert!(
        families.contains(&"latency classes".to_string()),
        "{families:?}"
    );
    assert!(
        !families.iter().any(|f| f.starts_with("capacity")),
        "{families:?}"
    );
}

// ---------------------------------------------------------------- Brussels

fn brussels() -> PlacementProblem {
    let mut p = problem(
        vec![
            svc("image-compression-vo", 0.5),
            svc("noise-reduction", 1.0),
            svc("image-detection", 1.0),
        ],
        vec![cluster("brussels-1", 4.0), cluster("brussels-2", 6.0)],
    );
    p.edges = vec![
        edge(0, 1, LatencyClass::Low),
        edge(1, 2, LatencyClass::BestEffort),
    ];
    p.latency.entries = vec![lat("brussels-1", "brussels-2", 5.0)];
    p
}

#[test]
fn brussels_places_everything_within_capacity() {
    for strategy in [StrategyKind::Milp, StrategyKind::FirstFit] {
        let p = brussels();
        let opts = PlacementOptions {
            strategy,
            ..exact()
        };
        let o = place(&p, &opts).unwrap();
        assert_valid(&p, &opts, &o);
        assert_eq!(o.services.len(), 3);
        for s in &o.services {
            assert_eq!(s.clusters.len(), 1);
            assert_eq!(s.rejected.len(), 1, "the other cluster is explained");
            assert!(!s.reason.is_empty());
        }
    }
    // First-fit: name order, everything fits on brussels-1 (2.5 ≤ 4 CPU).
    let ff = place(
        &brussels(),
        &PlacementOptions {
            strategy: StrategyKind::FirstFit,
            ..exact()
        },
    )
    .unwrap();
    assert!(ff.services.iter().all(|s| s.clusters == ["brussels-1"]));
}

#[test]
fn brussels_capacity_forces_a_split_and_ha_doubles() {
    // With 3 replicas each: 1.5 + 3 + 3 = 7.5 CPU; neither cluster holds all.
    let mut p = brussels();
    for s in &mut p.services {
        s.replicas = 3;
    }
    let o = place(&p, &exact()).unwrap();
    assert_valid(&p, &exact(), &o);
    let on = |c: &str| o.services.iter().filter(|s| s.clusters[0] == c).count();
    assert!(on("brussels-1") >= 1 && on("brussels-2") >= 1);

    let mut ha = brussels();
    ha.flags.high_availability = true;
    let o = place(&ha, &exact()).unwrap();
    assert_valid(&ha, &exact(), &o);
    assert!(
        o.services
            .iter()
            .all(|s| s.clusters == ["brussels-1", "brussels-2"])
    );
}

#[test]
fn gpu_service_goes_to_the_gpu_cluster_and_energy_flag_moves_load() {
    let mut p = problem(
        vec![svc("ml-inference", 2.0), svc("frontend", 1.0)],
        vec![cluster("cpu-only", 16.0), cluster("gpu-site", 16.0)],
    );
    p.services[0].gpu = true;
    p.clusters[1].free_gpu = 1;
    p.clusters[0].carbon_intensity = 50.0;
    p.clusters[1].carbon_intensity = 450.0;
    let o = place(&p, &exact()).unwrap();
    assert_eq!(o.services[0].clusters, ["gpu-site"]);
    assert_eq!(o.services[0].rejected[0].reason, "no free GPU");
    // frontend alone: 400 gCO2/kWh × 1 CPU × 0.002 = 0.8 > nothing else
    // differs but balance, so it goes to the clean cluster.
    assert_eq!(o.services[1].clusters, ["cpu-only"]);
    assert!(
        o.services[1].rejected[0].reason.contains("gCO2/kWh"),
        "{}",
        o.services[1].rejected[0].reason
    );
}

#[test]
fn movement_keeps_current_placement_when_otherwise_equal() {
    let mut p = problem(
        vec![svc("a", 1.0)],
        vec![cluster("x", 8.0), cluster("y", 8.0)],
    );
    p.services[0].current = vec!["y".into()];
    let o = place(&p, &exact()).unwrap();
    assert_eq!(o.services[0].clusters, ["y"]);
    assert!(
        o.services[0].reason.starts_with("kept where it runs"),
        "{}",
        o.services[0].reason
    );
    // The graph's own usage counts as free: y has 0.5 free + 1 in use.
    p.clusters[1].free_cpu = 0.5;
    let o = place(&p, &exact()).unwrap();
    assert_eq!(o.services[0].clusters, ["y"]);
}

#[test]
fn high_performance_makes_every_edge_ultralow() {
    let mut p = problem(
        vec![svc("a", 3.0), svc("b", 3.0)],
        vec![cluster("x", 4.0), cluster("y", 4.0)],
    );
    p.edges = vec![edge(0, 1, LatencyClass::BestEffort)];
    p.latency.entries = vec![lat("x", "y", 20.0)];
    assert!(place(&p, &exact()).is_ok());
    p.flags.high_performance = true;
    let err = place(&p, &exact()).unwrap_err();
    assert!(
        matches!(err, PlacementError::SolverInfeasible { .. }),
        "{err:?}"
    );
}

#[test]
fn fleet_graphs_see_capacity_taken_by_earlier_ones() {
    let clusters = vec![cluster("a", 2.0), cluster("b", 2.0)];
    let g = |name: &str| FleetGraph {
        name: name.into(),
        problem: PlacementProblem {
            services: vec![svc("s", 2.0)],
            ..PlacementProblem::default()
        },
        options: exact(),
    };
    let out = place_fleet(&clusters, &[g("one"), g("two"), g("three")]);
    // Name order decides, not input order: "two" comes last and finds
    // nothing left (releasing another graph cannot help: it would not fit
    // back).
    let c1 = &out[0].as_ref().unwrap().services[0].clusters;
    let c3 = &out[2].as_ref().unwrap().services[0].clusters;
    assert_ne!(c1, c3);
    let err = out[1].as_ref().unwrap_err();
    assert!(err.to_string().starts_with("graph two: "), "{err}");
}

// ---------------------------------------------------------------- checker

/// Validity checked from the public types only (independent of check.rs).
pub(super) fn assert_valid(p: &PlacementProblem, opts: &PlacementOptions, o: &PlacementOutcome) {
    assert_eq!(o.services.len(), p.services.len());
    let idx = |n: &str| {
        p.clusters
            .iter()
            .position(|c| c.name == n)
            .expect("known cluster")
    };
    let mut cap: Vec<(f64, f64, f64)> = p
        .clusters
        .iter()
        .map(|c| {
            (
                c.free_cpu,
                c.free_memory_bytes as f64,
                f64::from(c.free_gpu),
            )
        })
        .collect();
    let demand = |s: &Service| {
        let r = f64::from(s.replicas);
        (
            s.cpu * r,
            s.memory_bytes as f64 * r,
            if s.gpu { r } else { 0.0 },
        )
    };
    for s in &p.services {
        for c in &s.current {
            if let Some(i) = p.clusters.iter().position(|x| &x.name == c) {
                let d = demand(s);
                cap[i].0 += d.0;
                cap[i].1 += d.1;
                cap[i].2 += d.2;
            }
        }
    }
    for (s, placed) in p.services.iter().zip(&o.services) {
        assert_eq!(s.id, placed.id);
        let mut sorted = placed.clusters.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), placed.clusters.len(), "distinct clusters");
        let k = placed.clusters.len();
        assert!(
            k == 1 || (p.flags.high_availability && k == 2),
            "{} on {k} clusters",
            s.id
        );
        for c in &placed.clusters {
            let i = idx(c);
            assert!(
                p.clusters[i].ready && p.clusters[i].schedulable,
                "{} on unusable {c}",
                s.id
            );
            assert!(
                s.pinned.is_empty() || s.pinned.contains(c),
                "{} not on its pins",
                s.id
            );
            let d = demand(s);
            cap[i].0 -= d.0;
            cap[i].1 -= d.1;
            cap[i].2 -= d.2;
        }
    }
    for (i, c) in cap.iter().enumerate() {
        assert!(
            c.0 > -1e-6 && c.1 > -1.0 && c.2 > -1e-6,
            "cluster {} over capacity: {c:?}",
            p.clusters[i].name
        );
    }
    for g in &p.co_location {
        for w in g.windows(2) {
            assert_eq!(
                o.services[w[0]].clusters, o.services[w[1]].clusters,
                "co-location"
            );
        }
    }
    let latency = |a: &str, b: &str| -> Option<f64> {
        if a == b {
            return Some(0.0);
        }
        p.latency
            .entries
            .iter()
            .filter(|e| (e.from == a && e.to == b) || (e.from == b && e.to == a))
            .map(|e| e.ms)
            .reduce(f64::max)
    };
    for e in &p.edges {
        if e.caller == e.callee {
            continue;
        }
        let class = if p.flags.high_performance {
            LatencyClass::Ultralow
        } else {
            e.latency
        };
        for a in &o.services[e.caller].clusters {
            let ok = o.services[e.callee]
                .clusters
                .iter()
                .any(|b| match (class, latency(a, b)) {
                    (LatencyClass::BestEffort, _) => true,
                    (_, None) => false,
                    (LatencyClass::Ultralow, Some(ms)) => ms < 10.0,
                    (LatencyClass::Low, Some(ms)) => ms <= opts.low_latency_ms,
                });
            assert!(ok, "edge {} → {} breaks {class:?}", e.caller, e.callee);
        }
    }
}

// ---------------------------------------------------------------- brute force

/// The best objective over every valid assignment, or None if none exists.
pub(super) fn brute_force(p: &PlacementProblem, opts: &PlacementOptions) -> Option<f64> {
    let inst = Instance::new(p, opts).unwrap();
    let nc = inst.n_clusters();
    let options: Vec<Vec<Vec<usize>>> = (0..inst.n_services())
        .map(|s| {
            if inst.k[s] == 1 {
                (0..nc).map(|c| vec![c]).collect()
            } else {
                (0..nc)
                    .flat_map(|a| (a + 1..nc).map(move |b| vec![a, b]))
                    .collect()
            }
        })
        .collect();
    let w = check::effective_weights(&inst, opts);
    let mut best: Option<f64> = None;
    let mut pick = vec![0usize; options.len()];
    loop {
        let a: Assignment = pick
            .iter()
            .zip(&options)
            .map(|(&i, o)| o[i].clone())
            .collect();
        if violation(&inst, &a).is_none() {
            let v = evaluate(&inst, &w, &a).total;
            best = Some(best.map_or(v, |b: f64| b.min(v)));
        }
        let mut i = 0;
        while i < pick.len() {
            pick[i] += 1;
            if pick[i] < options[i].len() {
                break;
            }
            pick[i] = 0;
            i += 1;
        }
        if i == pick.len() {
            return best;
        }
    }
}

fn arb_instance() -> impl Strategy<Value = PlacementProblem> {
    let names = ["x", "y", "z"];
    let service = (
        0usize..4,
        1u32..3,
        0u32..100,
        0usize..4,
        0usize..4,
        0usize..4,
    )
        .prop_map(move |(cpu, replicas, gpu_roll, pin, cur, mem)| {
            let mut s = svc("s", [0.5, 1.0, 1.0, 2.0][cpu]);
            s.replicas = replicas;
            s.gpu = gpu_roll < 15;
            s.memory_bytes = GI * [1, 1, 2, 4][mem];
            if pin < names.len() && gpu_roll % 7 == 0 {
                s.pinned = vec![names[pin].into(), names[(pin + 1) % 3].into()];
            }
            if cur < names.len() {
                s.current = vec![names[cur].into()];
            }
            s
        });
    let cl = (0u32..8, 0u32..3, 0u32..20, 50u32..500, 1u32..8, 4u64..12).prop_map(
        |(cpu, gpu, roll, carbon, cost, mem)| {
            let mut c = cluster("c", f64::from(cpu));
            c.free_gpu = gpu;
            c.ready = roll != 0;
            c.schedulable = roll != 1;
            c.carbon_intensity = f64::from(carbon);
            c.cost_per_cpu_hour = f64::from(cost) / 100.0;
            c.free_memory_bytes = mem * GI;
            c
        },
    );
    let class = prop_oneof![
        Just(LatencyClass::BestEffort),
        Just(LatencyClass::Low),
        Just(LatencyClass::Ultralow)
    ];
    (
        proptest::collection::vec(service, 1..=6),
        proptest::collection::vec(cl, 1..=3),
        proptest::collection::vec((0usize..6, 0usize..6, class, 1u32..4), 0..8),
        proptest::collection::vec(prop_oneof![Just(None), (1u32..60).prop_map(Some)], 3),
        (0u32..10, 0u32..10, 0u32..10, 0u32..10),
    )
        .prop_map(
            move |(mut services, mut clusters, edges, lats, (ha, hp, ee, co))| {
                for (i, s) in services.iter_mut().enumerate() {
                    s.id = format!("s{i}");
                }
                for (i, c) in clusters.iter_mut().enumerate() {
                    c.name = names[i].into();
                }
                let n = services.len();
                let nc = clusters.len();
                let pairs = [("x", "y"), ("y", "z"), ("x", "z")];
                let entries = pairs
                    .iter()
                    .zip(&lats)
                    .filter_map(|(&(a, b), l)| l.map(|ms| lat(a, b, f64::from(ms))))
                    .collect();
                let edges = edges
                    .into_iter()
                    .filter(|(a, b, _, _)| a < &n && b < &n && a != b)
                    .map(|(a, b, c, t)| Edge {
                        caller: a,
                        callee: b,
                        latency: c,
                        traffic: f64::from(t),
                    })
                    .collect();
                let co_location = if co < 2 && n >= 2 {
                    vec![vec![0, 1]]
                } else {
                    vec![]
                };
                let _ = nc;
                PlacementProblem {
                    services,
                    edges,
                    co_location,
                    clusters,
                    latency: LatencyMatrix { entries },
                    flags: GraphFlags {
                        high_availability: ha < 3,
                        high_performance: hp < 1,
                        energy_efficiency: ee < 3,
                    },
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Feasible ⇔ answered; every answer valid; the MILP (gap 0) matches
    /// brute force; the reported objective is the evaluator's. Once through
    /// `place` (small graphs take the exact enumeration) and once with the
    /// enumeration off, so that the MILP formulation itself is checked.
    #[test]
    fn milp_matches_brute_force_and_is_valid(p in arb_instance(), enumerate in any::<bool>()) {
        let opts = exact();
        let best = brute_force(&p, &opts);
        if let (Some(best), Ok(inst)) = (best, Instance::new(&p, &opts)) {
            let w = check::effective_weights(&inst, &opts);
            let lb = check::separable_bound(&inst, &w);
            prop_assert!(lb <= best + 1e-9, "bound {lb} above the optimum {best}");
        }
        match place_with(&p, &opts, enumerate) {
            Ok(o) => {
                assert_valid(&p, &opts, &o);
                let best = best.expect("answered an instance brute force finds infeasible");
                // The tie-break adds at most 6 × 1e-6.
                prop_assert!((o.objective.total - best).abs() < 1e-4, "milp {} vs brute force {}", o.objective.total, best);
                for s in &o.services {
                    prop_assert_eq!(s.rejected.len(), p.clusters.len() - s.clusters.len());
                }
            }
            Err(e) => {
                prop_assert!(best.is_none(), "reported infeasible ({e}) but brute force found {best:?}");
                let expected = matches!(e, PlacementError::Infeasible(_) | PlacementError::SolverInfeasible { .. });
                prop_assert!(expected, "{e:?}");
            }
        }
    }

    /// First-fit answers are valid; it never answers an infeasible instance.
    #[test]
    fn first_fit_is_valid(p in arb_instance()) {
        let opts = PlacementOptions { strategy: StrategyKind::FirstFit, ..PlacementOptions::default() };
        if let Ok(o) = place(&p, &opts) {
            assert_valid(&p, &opts, &o);
            prop_assert!(brute_force(&p, &opts).is_some());
        }
    }

    /// Same input, same answer (and same explanations).
    #[test]
    fn repeated_solves_are_identical(p in arb_instance()) {
        let opts = PlacementOptions::default();
        let a = place(&p, &opts).map(|o| (o.services, o.objective.total));
        let b = place(&p, &opts).map(|o| (o.services, o.objective.total));
        prop_assert_eq!(a, b);
    }
}

#[test]
fn bench_instances_are_feasible_and_milp_beats_first_fit() {
    for seed in 1..4 {
        let p = crate::bench::placement_instance(40, 6, seed);
        let ff = place(
            &p,
            &PlacementOptions {
                strategy: StrategyKind::FirstFit,
                ..PlacementOptions::default()
            },
        );
        let milp = place(&p, &PlacementOptions::default()).unwrap();
        assert_valid(&p, &PlacementOptions::default(), &milp);
        if let Ok(ff) = ff {
            // First-fit is scored under the same objective; the MILP starts from it.
            let inst = Instance::new(&p, &PlacementOptions::default()).unwrap();
            let w = check::effective_weights(&inst, &PlacementOptions::default());
            let to_idx = |o: &PlacementOutcome| -> Assignment {
                o.services
                    .iter()
                    .map(|s| {
                        s.clusters
                            .iter()
                            .map(|c| inst.names.iter().position(|n| n == c).unwrap())
                            .collect()
                    })
                    .collect()
            };
            let ffv = evaluate(&inst, &w, &to_idx(&ff)).total;
            assert!(
                milp.objective.total <= ffv + 1e-6,
                "milp {} vs first-fit {ffv}",
                milp.objective.total
            );
        }
    }
}

#[test]
fn local_search_keeps_validity_and_never_worsens() {
    // Co-location and high availability exercise the group and k = 2 moves.
    let (mut runs, mut improved) = (0, 0);
    for seed in 1..9 {
        let mut p = crate::bench::placement_instance(60, 8, seed);
        p.co_location.push(vec![0, 1]);
        p.flags.high_availability = seed % 2 == 0;
        if p.flags.high_availability {
            // Two copies of everything need about twice the room.
            for c in &mut p.clusters {
                c.free_cpu *= 3.0;
                c.free_memory_bytes *= 3;
                c.free_gpu *= 3;
            }
            // Strict edges with two copies each defeat the greedy starts.
            for e in &mut p.edges {
                e.latency = LatencyClass::BestEffort;
            }
            // As do GPU services with one or two GPU clusters.
            for s in &mut p.services {
                s.gpu = false;
            }
        }
        let opts = PlacementOptions::default();
        let Ok(inst) = Instance::new(&p, &opts) else {
            continue;
        };
        let w = check::effective_weights(&inst, &opts);
        for start in [first_fit::first_fit(&inst), first_fit::keep_current(&inst)]
            .into_iter()
            .flatten()
        {
            let before = evaluate(&inst, &w, &start).total;
            let mut a = start.clone();
            let far = std::time::Instant::now() + std::time::Duration::from_secs(60);
            let changed = local::improve(&inst, &w, &mut a, far);
            runs += 1;
            improved += usize::from(changed);
            assert_eq!(violation(&inst, &a), None, "seed {seed}");
            let after = evaluate(&inst, &w, &a).total;
            assert!(after <= before + 1e-9, "seed {seed}: {after} > {before}");
            assert_eq!(changed, a != start);
            // Deterministic: the same start gives the same answer.
            let mut again = start.clone();
            local::improve(&inst, &w, &mut again, far);
            assert_eq!(again, a);
        }
    }
    assert!(runs > 0 && improved > 0, "{runs} runs, {improved} improved");
}

#[test]
fn enumeration_matches_the_milp_on_fleet_graphs() {
    // 5 services on 50 clusters, as in the fleet benchmark: the exact search
    // and the MILP at gap 0 reach the same objective (up to the tie-break).
    let (clusters, graphs) = crate::bench::fleet_instance(8, 5, 50, 3);
    for g in &graphs {
        let mut p = g.problem.clone();
        p.clusters = clusters.clone();
        let by_search = place_with(&p, &exact(), true).unwrap();
        let by_milp = place_with(&p, &exact(), false).unwrap();
        assert_valid(&p, &exact(), &by_search);
        assert_eq!(by_search.solve.gap, Some(0.0));
        assert!(
            (by_search.objective.total - by_milp.objective.total).abs() < 1e-4,
            "{}: search {} vs milp {}",
            g.name,
            by_search.objective.total,
            by_milp.objective.total
        );
    }
}
