//! The constructive search against brute force on random small instances
//! (seeded, so a failure names its case): it answers exactly when an
//! answer exists, its answers are valid, and "infeasible" is only said of
//! instances that have no valid assignment.

use super::check::violation;
use super::construct::{self, Outcome};
use super::instance::Instance;
use super::tests::{assert_valid, brute_force, cluster, svc};
use super::*;
use crate::bench::SplitMix64;
use std::time::{Duration, Instant};

const GI: u64 = 1024 * 1024 * 1024;

/// Up to 6 services on up to 4 clusters, often tight: capacity, GPUs,
/// pins, strict latency classes, co-location and high availability.
fn instance(rng: &mut SplitMix64) -> PlacementProblem {
    let nc = 1 + rng.below(4);
    let ns = 1 + rng.below(6);
    let names: Vec<String> = (0..nc).map(|i| format!("c{i}")).collect();
    let clusters = names
        .iter()
        .map(|n| {
            let mut c = cluster(n, [0.0, 1.0, 2.0, 3.0, 4.0, 6.0][rng.below(6)]);
            c.free_gpu = [0, 0, 1, 2][rng.below(4)];
            c.free_memory_bytes = GI * (2 + rng.below(8) as u64);
            c.ready = rng.unit() > 0.1;
            c.schedulable = rng.unit() > 0.1;
            c.carbon_intensity = rng.range(50.0, 500.0).round();
            c
        })
        .collect();
    let services = (0..ns)
        .map(|i| {
            let mut s = svc(&format!("s{i}"), [0.5, 1.0, 1.0, 2.0][rng.below(4)]);
            s.replicas = 1 + rng.below(2) as u32;
            s.gpu = rng.unit() < 0.15;
            s.memory_bytes = GI * [1, 1, 2][rng.below(3)];
            if rng.unit() < 0.15 {
                s.pinned = vec![names[rng.below(nc)].clone()];
            }
            if rng.unit() < 0.5 {
                s.current = vec![names[rng.below(nc)].clone()];
            }
            s
        })
        .collect();
    let mut entries = Vec::new();
    for a in 0..nc {
        for b in a + 1..nc {
            if rng.unit() < 0.7 {
                entries.push(LatencyEntry {
                    from: names[a].clone(),
                    to: names[b].clone(),
                    ms: (1 + rng.below(60)) as f64,
                });
            }
        }
    }
    let mut edges = Vec::new();
    if ns >= 2 {
        for _ in 0..rng.below(8) {
            let caller = rng.below(ns);
            let callee = (caller + 1 + rng.below(ns - 1)) % ns;
            let latency = [
                LatencyClass::BestEffort,
                LatencyClass::Low,
                LatencyClass::Ultralow,
            ][rng.below(3)];
            edges.push(Edge {
                caller,
                callee,
                latency,
                traffic: (1 + rng.below(3)) as f64,
            });
        }
    }
    let co_location = if ns >= 2 && rng.unit() < 0.15 {
        vec![vec![0, 1]]
    } else {
        vec![]
    };
    PlacementProblem {
        services,
        edges,
        co_location,
        clusters,
        latency: LatencyMatrix { entries },
        flags: GraphFlags {
            high_availability: rng.unit() < 0.2,
            high_performance: rng.unit() < 0.1,
            energy_efficiency: rng.unit() < 0.3,
        },
    }
}

#[test]
fn constructive_search_answers_whenever_brute_force_does() {
    let opts = PlacementOptions::default();
    let far = Instant::now() + Duration::from_secs(3600);
    let (mut feasible, mut infeasible) = (0, 0);
    for case in 0..400u64 {
        let mut rng = SplitMix64::new(case);
        let p = instance(&mut rng);
        let inst = Instance::new(&p, &opts).unwrap();
        let best = brute_force(&p, &opts);
        let w = check::effective_weights(&inst, &opts);
        match construct::search(&inst, &w, far) {
            Outcome::Found(a) => {
                assert_eq!(violation(&inst, &a), None, "case {case}");
                assert!(best.is_some(), "case {case}: answered an infeasible one");
                feasible += 1;
            }
            Outcome::Infeasible => {
                assert_eq!(
                    best, None,
                    "case {case}: said infeasible, brute force found one"
                );
                infeasible += 1;
            }
            Outcome::GaveUp => panic!("case {case}: gave up on a tiny instance"),
        }
        // And through the whole pipeline: an answer whenever one exists.
        match place(&p, &opts) {
            Ok(o) => assert_valid(&p, &opts, &o),
            Err(e) => assert!(best.is_none(), "case {case}: {e}"),
        }
    }
    // The generator must exercise both sides.
    assert!(
        feasible > 100 && infeasible > 20,
        "{feasible} / {infeasible}"
    );
}

#[test]
fn benchmark_sizes_get_an_answer_from_the_constructive_search() {
    // The full model at the sizes where every greedy start failed.
    let opts = PlacementOptions::default();
    let far = Instant::now() + Duration::from_secs(3600);
    for (n, m) in [(100, 10), (300, 20)] {
        let p = crate::bench::placement_instance(n, m, 1);
        let inst = Instance::new(&p, &opts).unwrap();
        let w = check::effective_weights(&inst, &opts);
        match construct::search(&inst, &w, far) {
            Outcome::Found(a) => assert_eq!(violation(&inst, &a), None, "{n}×{m}"),
            other => panic!("{n}×{m}: {other:?}"),
        }
    }
}

#[test]
fn first_fit_answers_where_the_original_heuristic_finds_no_cluster() {
    // At 100×10 the original heuristic fails (it ignores latency classes);
    // the strategy answers with the constructive search and says so.
    let opts = PlacementOptions {
        strategy: StrategyKind::FirstFit,
        ..PlacementOptions::default()
    };
    let p = crate::bench::placement_instance(100, 10, 1);
    let inst = Instance::new(&p, &opts).unwrap();
    assert!(
        super::first_fit::first_fit(&inst).is_err(),
        "the instance no longer exercises the fallback"
    );
    let o = place(&p, &opts).expect("an answer");
    assert!(
        o.warnings.iter().any(|w| w.contains("constructive search")),
        "{:?}",
        o.warnings
    );
}

#[test]
fn neighbourhood_search_keeps_answers_valid_and_never_worse() {
    // From the constructive search's answer (valid, far from optimal), the
    // search must improve some instances and break none.
    let opts = PlacementOptions::default();
    let far = Instant::now() + Duration::from_secs(3600);
    let mut improved = 0;
    for seed in 1..=3 {
        let p = crate::bench::placement_instance(40, 6, seed);
        let inst = Instance::new(&p, &opts).unwrap();
        let w = check::effective_weights(&inst, &opts);
        let Outcome::Found(mut a) = construct::search(&inst, &w, far) else {
            panic!("seed {seed}: no start");
        };
        let before = check::evaluate(&inst, &w, &a).total;
        let until = Instant::now() + Duration::from_millis(400);
        let stats = super::lns::improve(&inst, &w, &mut a, until);
        assert!(stats.steps > 0, "seed {seed}");
        assert_eq!(violation(&inst, &a), None, "seed {seed}");
        let after = check::evaluate(&inst, &w, &a).total;
        assert!(after <= before + 1e-9, "seed {seed}: {before} -> {after}");
        improved += usize::from(stats.improved > 0 && after < before);
    }
    assert!(improved > 0, "the search improved no instance");
}

#[test]
fn annealing_keeps_answers_valid_never_worse_and_finds_small_optima() {
    // Tight small instances (capacity, GPUs, pins, strict latency classes,
    // co-location, high availability): from the constructive search's
    // answer, every annealed answer must be valid and no worse; of the
    // starts that are not optimal already (most are, on instances this
    // small), most reach the brute-force optimum (the rest need a change
    // of more than two units at once).
    let opts = PlacementOptions::default();
    let far = Instant::now() + Duration::from_secs(3600);
    let (mut runs, mut improvable, mut optimal) = (0, 0, 0);
    for case in 0..400u64 {
        let mut rng = SplitMix64::new(case);
        let p = instance(&mut rng);
        let inst = Instance::new(&p, &opts).unwrap();
        let w = check::effective_weights(&inst, &opts);
        let Outcome::Found(mut a) = construct::search(&inst, &w, far) else {
            continue;
        };
        let best = brute_force(&p, &opts).expect("the search found an answer");
        let before = check::evaluate(&inst, &w, &a).total;
        let until = Instant::now() + Duration::from_millis(20);
        let stats = super::anneal::improve(&inst, &w, &mut a, until);
        assert_eq!(violation(&inst, &a), None, "case {case}");
        let after = check::evaluate(&inst, &w, &a).total;
        assert!(after <= before + 1e-9, "case {case}: {before} -> {after}");
        assert!((stats.end - after).abs() < 1e-6, "case {case}: {stats:?}");
        runs += 1;
        if before > best + 1e-6 {
            improvable += 1;
            optimal += usize::from(after <= best + 1e-6);
        }
    }
    eprintln!("annealing: {optimal} of {improvable} suboptimal starts made optimal ({runs} cases)");
    assert!(runs >= 150, "only {runs} feasible cases");
    assert!(improvable >= 10, "only {improvable} suboptimal starts");
    assert!(
        optimal * 2 >= improvable,
        "{optimal} of {improvable} suboptimal starts made optimal"
    );
}

#[test]
fn annealing_improves_the_benchmark_graphs_start() {
    let opts = PlacementOptions::default();
    let far = Instant::now() + Duration::from_secs(3600);
    for seed in 1..=3 {
        let p = crate::bench::placement_instance(60, 8, seed);
        let inst = Instance::new(&p, &opts).unwrap();
        let w = check::effective_weights(&inst, &opts);
        let Outcome::Found(mut a) = construct::search(&inst, &w, far) else {
            panic!("seed {seed}: no start");
        };
        let before = check::evaluate(&inst, &w, &a).total;
        let until = Instant::now() + Duration::from_millis(300);
        let stats = super::anneal::improve(&inst, &w, &mut a, until);
        assert!(stats.moves > 1000, "seed {seed}: {stats:?}");
        assert_eq!(violation(&inst, &a), None, "seed {seed}");
        let after = check::evaluate(&inst, &w, &a).total;
        assert!(after < before, "seed {seed}: {before} -> {after}");
    }
}
