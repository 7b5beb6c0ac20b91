//! Profile tests: joining series, the saturation criterion, and the
//! verdicts on known histories.

use super::*;

fn series(points: &[(f64, f64)]) -> Points {
    points.to_vec()
}

const CRITERION: Criterion = Criterion {
    saturation: 0.8,
    cpu_request: 0.5,
    min_samples: 10,
};

/// A history of `alpha·r + beta` at saturation (0.45 cores per replica)
/// for each replica count in `counts`, `per_count` times, with noise
/// `noise(i)` (relative), and as many idle observations (0.1 cores per
/// replica, a fifth of the capacity) in between.
fn history(
    alpha: f64,
    beta: f64,
    counts: &[u32],
    per_count: usize,
    noise: impl Fn(usize) -> f64,
) -> Vec<Observation> {
    let mut out = Vec::new();
    let mut t = 0.0;
    for &r in counts {
        let r = f64::from(r);
        for i in 0..per_count {
            t += 60.0;
            out.push(Observation {
                time: t,
                rate: (alpha * r + beta) * (1.0 + noise(out.len() + i)),
                replicas: r,
                cpu: 0.45 * r,
            });
            t += 60.0;
            out.push(Observation {
                time: t,
                rate: 0.2 * (alpha * r + beta),
                replicas: r,
                cpu: 0.1 * r,
            });
        }
    }
    out
}

#[test]
fn known_alpha_and_beta_are_recovered_from_saturated_samples_only() {
    let p = profile(
        history(30.0, -10.0, &[1, 2, 3, 4], 5, |_| 0.0),
        &CRITERION,
        &[],
    );
    assert!(p.missing.is_empty(), "{:?}", p.missing);
    let fit = p.suggestion().unwrap();
    assert!((fit.alpha - 30.0).abs() < 1e-9, "{fit:?}");
    assert!((fit.beta + 10.0).abs() < 1e-9, "{fit:?}");
    assert_eq!(p.saturated.len(), 20);
    assert_eq!(p.observations.len(), 40);
    assert_eq!(p.replica_counts, vec![1, 2, 3, 4]);
}

#[test]
fn noisy_history_lands_within_ten_percent() {
    // Alternating ±8 %: the idle points (a fifth of capacity) would pull
    // the line far down if they were counted.
    let p = profile(
        history(50.0, 20.0, &[2, 5, 3, 6, 1, 4], 12, |i| {
            if i % 2 == 0 { 0.08 } else { -0.08 }
        }),
        &CRITERION,
        &[],
    );
    let fit = p.suggestion().expect("a suggestion");
    assert!((fit.alpha - 50.0).abs() < 5.0, "{fit:?}");
    assert!((fit.beta - 20.0).abs() < 2.0, "{fit:?}");
    assert!(fit.r2 > 0.9, "{fit:?}");
}

#[test]
fn the_criterion_is_inclusive_at_the_threshold() {
    let at = |cpu| Observation {
        time: 0.0,
        rate: 1.0,
        replicas: 2.0,
        cpu,
    };
    assert!(CRITERION.is_saturated(&at(0.8)));
    assert!(!CRITERION.is_saturated(&at(0.79)));
}

#[test]
fn an_idle_service_has_not_enough_data() {
    let mut h = history(10.0, 0.0, &[1, 2], 20, |_| 0.0);
    h.retain(|o| o.cpu_per_replica() < 0.2);
    let p = profile(h, &CRITERION, &[]);
    assert_eq!(p.suggestion(), None);
    assert_eq!(
        p.missing,
        vec![Missing::TooFewSaturated {
            saturated: 0,
            total: 40,
            needed: 10,
            threshold: 0.4
        }]
    );
    assert!(
        p.missing[0]
            .to_string()
            .contains("only 0 saturated sample(s) of 40")
    );
}

#[test]
fn saturation_at_one_replica_count_only_is_not_enough() {
    let p = profile(history(10.0, 0.0, &[3], 20, |_| 0.0), &CRITERION, &[]);
    assert_eq!(p.suggestion(), None);
    assert_eq!(
        p.missing,
        vec![Missing::TooFewReplicaCounts {
            seen: 1,
            counts: vec![3],
            needed: 2
        }]
    );
    assert!(p.missing[0].to_string().contains("[3]"), "{}", p.missing[0]);
}

#[test]
fn too_few_saturated_samples_are_not_enough() {
    let p = profile(history(10.0, 0.0, &[1, 2], 4, |_| 0.0), &CRITERION, &[]);
    assert!(p.fit.is_some());
    assert_eq!(p.suggestion(), None);
    assert!(
        matches!(
            p.missing[..],
            [Missing::TooFewSaturated {
                saturated: 8,
                needed: 10,
                ..
            }]
        ),
        "{:?}",
        p.missing
    );
}

#[test]
fn capacity_falling_with_replicas_is_no_model() {
    let p = profile(
        history(-5.0, 100.0, &[1, 2, 3], 5, |_| 0.0),
        &CRITERION,
        &[],
    );
    assert_eq!(p.suggestion(), None);
    assert!(
        matches!(p.missing[..], [Missing::NonPositiveAlpha { alpha }] if (alpha + 5.0).abs() < 1e-9),
        "{:?}",
        p.missing
    );
}

#[test]
fn an_empty_query_is_named() {
    let p = profile(Vec::new(), &CRITERION, &["cpu"]);
    assert_eq!(p.missing[0], Missing::NoData { query: "cpu" });
    assert!(
        p.missing[0]
            .to_string()
            .contains("the cpu query returned no data")
    );
}

#[test]
fn series_are_summed_per_time_and_joined_on_common_times() {
    let rate = [series(&[(0.0, 10.0), (60.0, 20.0), (120.0, 30.0)])];
    // Two clusters: replicas and CPU add up.
    let replicas = [
        series(&[(0.0, 1.0), (60.0, 1.0), (120.0, 0.0)]),
        series(&[(0.0, 2.0), (60.0, 1.0), (120.0, 0.0)]),
    ];
    let cpu = [
        series(&[(0.0, 0.5), (60.000_4, 0.25)]),
        series(&[(0.0, 1.0), (60.0, 0.25)]),
    ];
    let obs = observations(&rate, &replicas, &cpu);
    assert_eq!(
        obs,
        vec![
            Observation {
                time: 0.0,
                rate: 10.0,
                replicas: 3.0,
                cpu: 1.5
            },
            Observation {
                time: 60.0,
                rate: 20.0,
                replicas: 2.0,
                cpu: 0.5
            },
        ],
        "t=120 has no CPU and no replica"
    );
}

#[test]
fn non_finite_values_are_dropped() {
    let rate = [series(&[(0.0, f64::NAN), (60.0, 5.0)])];
    let replicas = [series(&[(0.0, 1.0), (60.0, 1.0)])];
    let cpu = [series(&[(0.0, 1.0), (60.0, f64::INFINITY)])];
    assert!(observations(&rate, &replicas, &cpu).is_empty());
}
