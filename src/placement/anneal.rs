//! Simulated annealing over a complete, valid assignment: random moves of
//! one copy of a unit (a service or a co-location group) to another
//! cluster, alone or with some of its neighbours, or swaps of two units
//! between clusters, each checked against every constraint (eligibility,
//! capacity, latency classes, one copy per cluster) and priced exactly by
//! the incremental objective of [`super::local`]; a worsening move is
//! accepted with probability `exp(-Δ/T)`, the temperature falling
//! geometrically over a round. Rounds repeat, cooler, while they improve.
//! The best assignment seen is the answer.
//!
//! Why: the traffic term is a graph-partition objective, whose LP bound is
//! weak; HiGHS and the sub-MILPs of the neighbourhood search spend most of
//! a short budget proving little. Hundreds of thousands of priced moves
//! reach a near-optimal assignment on the benchmark graphs within tens of
//! milliseconds, and the MILP then starts from it.
//!
//! Deterministic when the rounds end by their move budget (fixed seeds),
//! as they do on graphs of a few dozen services; on larger ones the
//! deadline decides how many moves are made, so, as with the other
//! searches bounded by the time limit, an answer may differ between runs
//! and machines. Every answer is
//! valid: only checked moves are applied.

use std::time::Instant;

use super::check::{Assignment, evaluate};
use super::instance::Instance;
use super::lns::Rng;
use super::local::State;
use super::model::Weights;
use super::ruin::Scratch;

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
/// One proposal in this many moves a unit together with up to
/// [`GROUP_MAX`]` - 1` of its neighbours on the same cluster: services
/// joined by traffic or a strict latency class rarely gain when moved one
/// at a time. Measured on the 100 × 10 benchmark graph: the mean distance
/// to the best known answer at 0.3 s fell from 1.5 % to 0.9 %, at 3 s from
/// 0.9 % to 0.35 % (one in 2 to 4, groups of 3 to 5 tried: within noise).
const GROUP_ONE_IN: usize = 4;
const GROUP_MAX: usize = 3;
/// One proposal in this many is a ruin and recreate ([`super::ruin`]).
/// Measured on the 100 × 10 benchmark graph at 0.3 s, mean distance to the
/// optimum and runs within 1 % of it: without it 1.4 % (6 of 30); one in
/// 32, 1.0 % (16 of 30); one in 16, 0.9 % (25 of 40); one in 8, 0.8 % (22
/// of 30); one in 4, 0.7 % (28 of 30); one in 2, 0.7 % (70 of 70). One in
/// 2 also did best at 300 × 20 (3 s) and 1000 × 50 (10 s).
const RUIN_ONE_IN: usize = 2;
/// What a ruin and recreate counts for in a round's budget, in plain
/// moves: about what it costs (the 100 × 10 benchmark graph in 0.27 s:
/// 1.07 million plain moves, or 325,000 proposals one in four of which
/// ruins and recreates).
const RUIN_WORK: f64 = 10.0;
/// Moves of each chain in a round, per service and cluster: a round on
/// the 100 × 10 benchmark graph is 2 million moves (about 0.3 s).
const MOVES_PER_PAIR: f64 = 2000.0;
/// The starting temperature of later rounds, as a share of the first's.
const REHEAT: f64 = 0.3;
/// A new best must be better by this much (rounding noise is no gain).
const MIN_GAIN: f64 = 1e-7;

/// A proposal: one unit's copy moved, two units swapped, or a group of
/// neighbours moved together (made in order).
#[derive(Clone)]
enum Moves {
    One(usize, usize, usize),
    Two([(usize, usize, usize); 2]),
    Many(Vec<(usize, usize, usize)>),
}

/// What the search did, for tests and figures.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Stats {
    pub rounds: usize,
    pub moves: usize,
    pub accepted: usize,
    /// Objective of the start and of the answer.
    pub start: f64,
    pub end: f64,
}

/// Improves the valid assignment `a` in place until `deadline`; it stays
/// valid and never gets worse. Anneals in rounds: the first from the
/// full starting temperature, each later one from the best so far at a
/// lower one ([`REHEAT`]); a round that finds nothing better ends the
/// search, so a graph the search has settled costs a few rounds, not the
/// whole budget. Each round runs one chain per core (at most
/// [`MAX_CHAINS`]), each with its own seed, and keeps the best: one
/// chain's answer varies by a percent or two between runs; the best of
/// several varies less.
pub(crate) fn improve(
    inst: &Instance<'_>,
    w: &Weights,
    a: &mut Assignment,
    deadline: Instant,
) -> Stats {
    let chains = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .clamp(1, MAX_CHAINS);
    let start = evaluate(inst, w, a).total;
    let mut total = Stats {
        start,
        end: start,
        ..Stats::default()
    };
    let max_moves = MOVES_PER_PAIR * (inst.n_services() * inst.n_clusters()) as f64;
    let reheat = REHEAT;
    for round in 0u64.. {
        let heat = if round == 0 { 1.0 } else { reheat };
        let r = best_of_chains(
            inst,
            w,
            a,
            deadline,
            chains,
            Schedule {
                heat,
                max_moves,
                seed: round * MAX_CHAINS as u64,
            },
        );
        total.rounds += 1;
        total.moves += r.moves;
        total.accepted += r.accepted;
        let gained = r.end < total.end - MIN_GAIN;
        total.end = total.end.min(r.end);
        if !gained || Instant::now() >= deadline {
            break;
        }
    }
    total
}

/// How one round anneals.
#[derive(Clone, Copy)]
struct Schedule {
    /// The starting temperature, as a share of [`T_START_SHARE`]'s.
    heat: f64,
    /// Moves of each chain, at most.
    max_moves: f64,
    /// Seed of the round's first chain.
    seed: u64,
}

/// Runs `chains` chains from `a` side by side and keeps the best answer.
fn best_of_chains(
    inst: &Instance<'_>,
    w: &Weights,
    a: &mut Assignment,
    deadline: Instant,
    chains: usize,
    plan: Schedule,
) -> Stats {
    if chains == 1 {
        return chain(inst, w, a, deadline, plan);
    }
    let runs: Vec<(Assignment, Stats)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..chains)
            .map(|i| {
                let mut mine = a.clone();
                let plan = Schedule {
                    seed: plan.seed + i as u64,
                    ..plan
                };
                scope.spawn(move || {
                    let stats = chain(inst, w, &mut mine, deadline, plan);
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
    plan: Schedule,
) -> Stats {
    let seed = plan.seed;
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
        // A ruin and recreate, or a random copy of a random unit to a
        // random cluster, alone, with some of its neighbours on the same
        // cluster, or swapped with a random unit there: the moves and
        // their gain, if valid.
        let nbrs = neighbours(inst, &st);
        let mut scratch = Scratch::new(&st);
        let mut propose =
            |st: &mut State<'_, '_>, rng: &mut Rng, ruin: bool| -> Option<(Moves, f64)> {
                if ruin {
                    let moves = st.ruin_recreate(&nbrs, rng, &mut scratch)?;
                    return st.gain_of(&moves).map(|g| (Moves::Many(moves), g));
                }
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
                if rng.below(GROUP_ONE_IN) == 0 && !nbrs[u].is_empty() {
                    let size = 2 + rng.below(GROUP_MAX - 1);
                    let moves: Vec<_> = group(st, &nbrs, u, c, size, rng)
                        .into_iter()
                        .map(|v| (v, c, d))
                        .collect();
                    if moves.len() < 2 {
                        return None;
                    }
                    return st.gain_of(&moves).map(|g| (Moves::Many(moves), g));
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
            let ruin = rng.below(RUIN_ONE_IN) == 0;
            if let Some((_, g)) = propose(&mut st, &mut rng, ruin) {
                sizes += g.abs();
                probes += 1;
            }
        }
        if probes == 0 || sizes <= 0.0 {
            return stats;
        }
        let t_start = plan.heat * T_START_SHARE * sizes / probes as f64;
        let mut t = t_start;
        let mut current = start;
        let mut work = 0.0;
        loop {
            if stats.moves.is_multiple_of(CLOCK_EVERY) {
                // The schedule follows whichever budget runs out first.
                let frac = (began.elapsed().as_secs_f64() / budget).max(work / plan.max_moves);
                if frac >= 1.0 {
                    break;
                }
                t = t_start * T_END_SHARE.powf(frac);
            }
            stats.moves += 1;
            let ruin = rng.below(RUIN_ONE_IN) == 0;
            work += if ruin { RUIN_WORK } else { 1.0 };
            let Some((moves, gain)) = propose(&mut st, &mut rng, ruin) else {
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
                Moves::Two(all) => all.into_iter().for_each(|(u, c, d)| st.apply(u, c, d)),
                Moves::Many(all) => all.into_iter().for_each(|(u, c, d)| st.apply(u, c, d)),
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

/// `u` and up to `size - 1` units linked to it by edges (breadth-first,
/// each unit's neighbours from a random one on) that have a copy on `c`.
fn group(
    st: &State<'_, '_>,
    nbrs: &[Vec<usize>],
    u: usize,
    c: usize,
    size: usize,
    rng: &mut Rng,
) -> Vec<usize> {
    let mut out = vec![u];
    let mut next = 0;
    while next < out.len() && out.len() < size {
        let n = &nbrs[out[next]];
        next += 1;
        let from = rng.below(n.len());
        for j in 0..n.len() {
            let v = n[(from + j) % n.len()];
            if out.len() < size && !out.contains(&v) && st.a[st.units[v][0]].contains(&c) {
                out.push(v);
            }
        }
    }
    out
}

/// Units linked to each unit by a connection edge.
pub(super) fn neighbours(inst: &Instance<'_>, st: &State<'_, '_>) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new(); st.units.len()];
    for e in &inst.edges {
        let (a, b) = (st.unit_of[e.caller], st.unit_of[e.callee]);
        if a != b {
            out[a].push(b);
            out[b].push(a);
        }
    }
    for n in &mut out {
        n.sort_unstable();
        n.dedup();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::PlacementOptions;
    use crate::placement::check::{effective_weights, violation};
    use crate::placement::construct::{self, Outcome};
    use std::time::Duration;

    fn start(n: usize, m: usize) -> (crate::placement::PlacementProblem, PlacementOptions) {
        (
            crate::bench::placement_instance(n, m, 1),
            PlacementOptions::default(),
        )
    }

    /// The constructive search's answer (a valid start).
    fn built(inst: &Instance<'_>, w: &Weights) -> Assignment {
        let far = Instant::now() + Duration::from_secs(3600);
        match construct::search(inst, w, far) {
            Outcome::Found(a) => a,
            _ => panic!("no start"),
        }
    }

    #[test]
    fn a_group_is_the_unit_and_linked_units_on_the_same_cluster() {
        let (p, opts) = start(40, 5);
        let inst = Instance::new(&p, &opts).unwrap();
        let w = effective_weights(&inst, &opts);
        let mut a = built(&inst, &w);
        let st = State::new(&inst, &w, &mut a);
        let nbrs = neighbours(&inst, &st);
        let mut rng = Rng(7);
        let mut grown = 0;
        for u in 0..st.units.len() {
            for &c in &st.a[st.units[u][0]].clone() {
                for size in 2..=4 {
                    let g = group(&st, &nbrs, u, c, size, &mut rng);
                    assert_eq!(g[0], u);
                    assert!(g.len() <= size, "{g:?}");
                    for (i, &v) in g.iter().enumerate() {
                        assert!(st.a[st.units[v][0]].contains(&c), "{v} is not on {c}");
                        assert!(!g[..i].contains(&v), "{v} twice in {g:?}");
                        if i > 0 {
                            assert!(g[..i].iter().any(|x| nbrs[*x].contains(&v)), "{g:?}");
                        }
                    }
                    grown += usize::from(g.len() > 1);
                }
            }
        }
        assert!(grown > 0, "no unit had a neighbour on its cluster");
    }

    #[test]
    fn a_settled_graph_ends_the_search_before_its_deadline_and_repeats() {
        // An hour's deadline: returning at all shows the rounds stopped
        // because one found nothing better; by move budget, so the same
        // start gives the same answer.
        let (p, opts) = start(20, 5);
        let inst = Instance::new(&p, &opts).unwrap();
        let w = effective_weights(&inst, &opts);
        let first = built(&inst, &w);
        let far = Instant::now() + Duration::from_secs(3600);
        let mut answers = Vec::new();
        for _ in 0..2 {
            let mut a = first.clone();
            let stats = improve(&inst, &w, &mut a, far);
            assert!(stats.rounds >= 2, "{stats:?}");
            assert!(stats.end < stats.start, "{stats:?}");
            assert_eq!(violation(&inst, &a), None);
            answers.push(a);
        }
        assert_eq!(answers[0], answers[1]);
    }
}
