//! Large-neighbourhood search around a valid assignment: free a small set
//! of units (a service, or a whole co-location group), keep every other
//! unit where it is, and solve that sub-model exactly with the MILP; keep
//! the answer when it is better. Repeated until the deadline.
//!
//! Why: on graphs of 100+ services HiGHS needs minutes on the full model to
//! find answers that a few dozen small sub-models find in a second (the
//! full model's LP bound is weak: cross-cluster traffic is a
//! graph-partition objective), while the 1-opt moves of [`local`] stop at
//! the first local optimum. Measured with `smo bench placement` against
//! `benches/placement-reference.json`.
//!
//! Neighbourhoods, in turn: units linked by connection edges, grown
//! breadth-first from a random unit (traffic and latency couple them); every
//! unit on two random clusters (they can swap places); random units. Their
//! size adapts: it grows while sub-models solve to optimality within their
//! step, and shrinks when they hit it. Seeded, so two runs with the same
//! wall-clock budget usually agree; like the solver's own time limit, the
//! deadline decides where it stops.
//!
//! [`local`]: super::local

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::check::{Assignment, evaluate, violation};
use super::instance::Instance;
use super::milp::{self, ALL, Fixed};
use super::model::Weights;
use super::solver::Finish;

/// Starting neighbourhood size, in units.
const START_SIZE: usize = 16;
const MIN_SIZE: usize = 4;
/// Below this much time left, no sub-model is started.
const MIN_STEP: Duration = Duration::from_millis(5);
/// One sub-model gets at most this share of the time left.
const STEP_SHARE: f64 = 0.25;
const MAX_STEP_S: f64 = 0.5;
/// A sub-model's answer must gain at least this much.
const MIN_GAIN: f64 = 1e-7;

/// splitmix64 (deterministic across platforms).
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// What the search did, for tests and figures.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stats {
    pub steps: usize,
    pub improved: usize,
}

/// Improves the valid assignment `a` in place until `deadline`.
pub(crate) fn improve(
    inst: &Instance<'_>,
    w: &Weights,
    a: &mut Assignment,
    deadline: Instant,
) -> Stats {
    let rep = milp::representatives(inst);
    let reps: Vec<usize> = (0..inst.n_services()).filter(|&s| rep[s] == s).collect();
    let mut stats = Stats::default();
    if reps.len() < 2 {
        return stats;
    }
    let mut adjacent = vec![Vec::new(); inst.n_services()];
    for e in &inst.edges {
        let (x, y) = (rep[e.caller], rep[e.callee]);
        if x != y {
            adjacent[x].push(y);
            adjacent[y].push(x);
        }
    }
    let mut rng = Rng(0x5EED ^ (reps.len() as u64) << 16 ^ inst.n_clusters() as u64);
    let mut size = START_SIZE.min(reps.len());
    let mut best = evaluate(inst, w, a).total;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left < MIN_STEP {
            break;
        }
        let free = match stats.steps % 3 {
            0 => connected(&reps, &adjacent, size, &mut rng),
            1 => on_two_clusters(inst, &reps, a, size, &mut rng),
            _ => random(&reps, size, &mut rng),
        };
        let mut flags = vec![false; inst.n_services()];
        for r in free {
            flags[r] = true;
        }
        let step = (left.as_secs_f64() * STEP_SHARE).clamp(MIN_STEP.as_secs_f64(), MAX_STEP_S);
        let fixed = Fixed {
            assignment: a,
            free: flags,
        };
        stats.steps += 1;
        let Ok((b, solved, _)) = milp::solve_fixed(inst, w, ALL, Some(&fixed), step, 0.0, Some(a))
        else {
            size = (size * 4 / 5).max(MIN_SIZE);
            continue;
        };
        size = if solved.finish == Finish::TimeLimit {
            (size * 4 / 5).max(MIN_SIZE)
        } else {
            (size * 5 / 4 + 1).min(reps.len())
        };
        let total = evaluate(inst, w, &b).total;
        if total < best - MIN_GAIN && violation(inst, &b).is_none() {
            best = total;
            *a = b;
            stats.improved += 1;
        }
    }
    stats
}

/// Up to `size` units linked by edges, breadth-first from a random one
/// (restarting from another random unit when a component runs out).
fn connected(reps: &[usize], adjacent: &[Vec<usize>], size: usize, rng: &mut Rng) -> Vec<usize> {
    let mut taken = vec![false; adjacent.len()];
    let mut out = Vec::with_capacity(size);
    let mut queue = VecDeque::new();
    while out.len() < size {
        if queue.is_empty() {
            let start = reps[rng.below(reps.len())];
            if taken[start] {
                // A random restart may hit taken units; scan for a free one.
                match reps.iter().find(|&&r| !taken[r]) {
                    Some(&r) => queue.push_back(r),
                    None => break,
                }
            } else {
                queue.push_back(start);
            }
        }
        let Some(u) = queue.pop_front() else { break };
        if taken[u] {
            continue;
        }
        taken[u] = true;
        out.push(u);
        for &v in &adjacent[u] {
            if !taken[v] {
                queue.push_back(v);
            }
        }
    }
    out
}

/// Units with a copy on one of two random clusters (at most `size`, then
/// topped up with random units).
fn on_two_clusters(
    inst: &Instance<'_>,
    reps: &[usize],
    a: &Assignment,
    size: usize,
    rng: &mut Rng,
) -> Vec<usize> {
    let nc = inst.n_clusters();
    let (c1, c2) = (rng.below(nc), rng.below(nc));
    let mut on: Vec<usize> = reps
        .iter()
        .copied()
        .filter(|&r| a[r].contains(&c1) || a[r].contains(&c2))
        .collect();
    // Keep a random subset when the clusters hold more than `size` units.
    while on.len() > size {
        let i = rng.below(on.len());
        on.swap_remove(i);
    }
    if on.len() < size {
        for r in random(reps, size - on.len(), rng) {
            if !on.contains(&r) {
                on.push(r);
            }
        }
    }
    on
}

fn random(reps: &[usize], size: usize, rng: &mut Rng) -> Vec<usize> {
    let mut pool = reps.to_vec();
    let mut out = Vec::with_capacity(size);
    while out.len() < size && !pool.is_empty() {
        let i = rng.below(pool.len());
        out.push(pool.swap_remove(i));
    }
    out
}
