//! Simulated annealing over a complete, valid assignment: random moves of
//! one copy of a unit (a service or a co-location group) to another
//! cluster, or swaps of two units between clusters, each checked against every constraint (eligibility, capacity,
//! latency classes, one copy per cluster) and priced exactly by the
//! incremental objective of [`super::local`]; a worsening move is accepted
//! with probability `exp(-Δ/T)`, the temperature falling geometrically over
//! the budget. The best assignment seen is the answer.
//!
//! Why: the traffic term is a graph-partition objective, whose LP bound is
//! weak; HiGHS and the sub-MILPs of the neighbourhood search spend most of
//! a short budget proving little. Hundreds of thousands of priced moves
//! reach a near-optimal assignment on the benchmark graphs within tens of
//! milliseconds, and the MILP then starts from it.
//!
//! Deterministic for a given number of moves (a fixed seed); the deadline
//! decides how many are made, so, as with the other searches bounded by
//! the time limit, an answer may differ between machines. Every answer is
//! valid: only checked moves are applied.

use std::time::Instant;

use super::check::{Assignment, evaluate};
use super::instance::Instance;
use super::lns::Rng;
use super::local::State;
use super::model::Weights;

/// Chains run side by side, at most (one per core).
const MAX_CHAINS: usize = 2;
/// Moves sampled to size the starting temperature.
const PROBES: usize = 200;
/// Starting temperature, as a share of the mean size of a probe's change
/// (0.2 to 2 tried on the benchmark graphs: 1 was best on average).
const T_START_SHARE: f64 = 1.0;
/// The final temperature, as a share of the starting one.
const T_END_SHARE: f64 = 1e-3;
/// The clock is read (and the temperature lowered) every this many moves.
const CLOCK_EVERY: usize = 256;
/// One proposal in this many is a swap of two units between clusters
/// (on tight clusters a plain move rarely fits).
const SWAP_ONE_IN: usize = 4;
/// A new best must be better by this much (rounding noise is no gain).
const MIN_GAIN: f64 = 1e-7;

/// A proposal: one unit's copy moved, or two units swapped (in order).
#[derive(Clone, Copy)]
enum Moves {
    One(usize, usize, usize),
    Two([(usize, usize, usize); 2]),
}

/// What the search did, for tests and figures.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Stats {
    pub moves: usize,
    pub accepted: usize,
    /// Objective of the start and of the answer.
    pub start: f64,
    pub end: f64,
}

/// Improves the valid assignment `a` in place until `deadline`; it stays
/// valid and never gets worse. Runs one chain per core (at most
/// [`MAX_CHAINS`]), each from `a` with its own seed, and keeps the best:
/// one chain's answer varies by a percent or two between runs; the best
/// of several varies less.
pub(crate) fn improve(
    inst: &Instance<'_>,
    w: &Weights,
    a: &mut Assignment,
    deadline: Instant,
) -> Stats {
    let chains = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .clamp(1, MAX_CHAINS);
    if chains == 1 {
        return chain(inst, w, a, deadline, 0);
    }
    let runs: Vec<(Assignment, Stats)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..chains)
            .map(|i| {
                let mut mine = a.clone();
                scope.spawn(move || {
                    let stats = chain(inst, w, &mut mine, deadline, i as u64);
                    (mine, stats)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });
    let moves = runs.iter().map(|(_, s)| s.moves).sum();
    let accepted = runs.iter().map(|(_, s)| s.accepted).sum();
    let (best, stats) = runs
        .into_iter()
        .min_by(|x, y| x.1.end.total_cmp(&y.1.end))
        .expect("at least one chain");
    *a = best;
    Stats {
        moves,
        accepted,
        ..stats
    }
}

/// One annealing chain (`seed` tells chains apart).
fn chain(
    inst: &Instance<'_>,
    w: &Weights,
    a: &mut Assignment,
    deadline: Instant,
    seed: u64,
) -> Stats {
    let start = evaluate(inst, w, a).total;
    let mut stats = Stats {
        start,
        end: start,
        ..Stats::default()
    };
    let nc = inst.n_clusters();
    if nc < 2 {
        return stats;
    }
    let began = Instant::now();
    let budget = deadline.saturating_duration_since(began).as_secs_f64();
    if budget <= 0.0 {
        return stats;
    }
    let mut rng = Rng(0x00A1_1EA1 ^ (inst.n_services() as u64) << 20 ^ nc as u64 ^ seed << 40);
    // The walk changes `a` itself; the start is kept to answer with when
    // nothing better was found.
    let start_a = a.clone();
    let mut best_a = a.clone();
    let mut best = start;
    {
        let mut st = State::new(inst, w, a);
        let n_units = st.units.len();
        if n_units == 0 {
            return stats;
        }
        // A random copy of a random unit to a random cluster, or swapped
        // with a random unit there: the moves and their gain, if valid.
        let propose = |st: &mut State<'_, '_>, rng: &mut Rng| -> Option<(Moves, f64)> {
            let u = rng.below(n_units);
            let lead = st.units[u][0];
            let copies = st.a[lead].len();
            if copies == 0 {
                return None;
            }
            let c = st.a[lead][rng.below(copies)];
            let d = rng.below(nc);
            if d == c {
                return None;
            }
            if rng.below(SWAP_ONE_IN) == 0 && !st.on[d].is_empty() {
                let v = st.on[d][rng.below(st.on[d].len())];
                if v == u {
                    return None;
                }
                let moves = [(v, d, c), (u, c, d)];
                return st.gain_of(&moves).map(|g| (Moves::Two(moves), g));
            }
            st.gain(u, c, d).map(|g| (Moves::One(u, c, d), g))
        };
        let mut sizes = 0.0;
        let mut probes = 0usize;
        for _ in 0..PROBES * 10 {
            if probes == PROBES {
                break;
            }
            if let Some((_, g)) = propose(&mut st, &mut rng) {
                sizes += g.abs();
                probes += 1;
            }
        }
        if probes == 0 || sizes <= 0.0 {
            return stats;
        }
        let t_start = T_START_SHARE * sizes / probes as f64;
        let mut t = t_start;
        let mut current = start;
        loop {
            if stats.moves.is_multiple_of(CLOCK_EVERY) {
                let frac = began.elapsed().as_secs_f64() / budget;
                if frac >= 1.0 {
                    break;
                }
                t = t_start * T_END_SHARE.powf(frac);
            }
            stats.moves += 1;
            let Some((moves, gain)) = propose(&mut st, &mut rng) else {
                continue;
            };
            let take = gain > 0.0 || {
                let r = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
                r < (gain / t).exp()
            };
            if !take {
                continue;
            }
            match moves {
                Moves::One(u, c, d) => st.apply(u, c, d),
                Moves::Two(both) => {
                    for (u, c, d) in both {
                        st.apply(u, c, d);
                    }
                }
            }
            stats.accepted += 1;
            current -= gain;
            if current < best - MIN_GAIN {
                best = current;
                best_a.clone_from(st.a);
            }
        }
    }
    // The incremental sum drifts by rounding; the answer is priced again.
    let exact = evaluate(inst, w, &best_a).total;
    if exact < start - MIN_GAIN {
        *a = best_a;
        stats.end = exact;
    } else {
        *a = start_a;
    }
    stats
}
