//! Local search over a complete, valid assignment: move one copy of a
//! service (its whole co-location group) to another cluster whenever that
//! keeps every constraint and strictly lowers the objective of
//! [`evaluate`](super::check::evaluate).
//!
//! Why: on large graphs the MILP's LP bound is weak (cross-cluster traffic
//! is a graph-partition objective) and HiGHS spends its budget without
//! improving the warm start much; cheap 1-opt moves fix the obvious
//! mistakes of the greedy starts and of a time-limited incumbent. It runs
//! on the warm start (so HiGHS starts from a better incumbent) and on the
//! solver's answer (so a gap-limited answer is polished).
//!
//! Deterministic: services in input order, target clusters in name order,
//! first improvement, a fixed number of passes. The deadline only cuts a
//! pass short, like the solver's own time limit.

use std::time::Instant;

use super::check::{Assignment, carbon, cost, cross};
use super::instance::Instance;
use super::model::Weights;

/// Passes over all services. Measured on the 1000 × 50 benchmark: the
/// third pass finds few moves and the fifth almost none; more passes only
/// cost time.
const MAX_PASSES: usize = 5;

/// A move must gain at least this much, so that rounding noise never
/// makes the search cycle or leave an equally good tie-broken answer.
const MIN_GAIN: f64 = 1e-7;

/// Capacity tolerance: stricter than the checker's, so that an accepted
/// move can never fail verification.
const CAP_EPS: f64 = 1e-9;

/// Improves `a` in place; returns whether anything changed. `a` must be
/// valid (as checked by `violation`); it stays valid.
// Index loops over clusters read clearer against the parallel tables.
#[allow(clippy::needless_range_loop)]
pub(crate) fn improve(
    inst: &Instance<'_>,
    w: &Weights,
    a: &mut Assignment,
    deadline: Instant,
) -> bool {
    let (ns, nc) = (inst.n_services(), inst.n_clusters());
    // Units: each ungrouped service, or a whole co-location group.
    let mut units: Vec<Vec<usize>> = Vec::new();
    for s in 0..ns {
        match inst.group_of[s] {
            Some(g) if inst.groups[g][0] != s => {}
            Some(g) => units.push(inst.groups[g].clone()),
            None => units.push(vec![s]),
        }
    }
    let mut unit_of = vec![0; ns];
    for (u, m) in units.iter().enumerate() {
        for &t in m {
            unit_of[t] = u;
        }
    }
    // Edges touching each unit (once each; edges inside a unit never cost
    // traffic and never break latency, the members share clusters).
    let mut incident: Vec<Vec<usize>> = vec![Vec::new(); units.len()];
    for (i, e) in inst.edges.iter().enumerate() {
        let (uc, ue) = (unit_of[e.caller], unit_of[e.callee]);
        if uc != ue {
            incident[uc].push(i);
            incident[ue].push(i);
        }
    }
    let dem: Vec<[f64; 3]> = units
        .iter()
        .map(|m| {
            m.iter().fold([0.0; 3], |acc, &t| {
                let d = inst.demand[t];
                [acc[0] + d.cpu, acc[1] + d.memory, acc[2] + d.gpu]
            })
        })
        .collect();
    let cap: Vec<[f64; 3]> = inst
        .capacity
        .iter()
        .map(|c| [c.cpu, c.memory, c.gpu])
        .collect();
    let mut used = vec![[0.0f64; 3]; nc];
    for (s, cl) in a.iter().enumerate() {
        let d = inst.demand[s];
        for &c in cl {
            used[c][0] += d.cpu;
            used[c][1] += d.memory;
            used[c][2] += d.gpu;
        }
    }
    let util = |used: &[[f64; 3]], c: usize| {
        if inst.capacity[c].cpu > 1e-6 {
            used[c][0] / inst.capacity[c].cpu
        } else {
            0.0
        }
    };
    let eligible: Vec<Vec<bool>> = units
        .iter()
        .map(|m| (0..nc).map(|c| inst.group_eligible(m[0], c)).collect())
        .collect();

    let mut changed = false;
    for _ in 0..MAX_PASSES {
        let mut moved_any = false;
        for u in 0..units.len() {
            if Instant::now() >= deadline {
                return changed;
            }
            let members = &units[u];
            let lead = members[0];
            let mut i = 0;
            while i < a[lead].len() {
                let c = a[lead][i];
                let mut best: Option<(f64, usize)> = None;
                let max_before = if w.balance > 0.0 {
                    (0..nc).map(|x| util(&used, x)).fold(0.0, f64::max)
                } else {
                    0.0
                };
                let traffic_before: f64 = incident[u].iter().map(|&e| cross(inst, a, e)).sum();
                for d in 0..nc {
                    if !eligible[u][d] || a[lead].contains(&d) {
                        continue;
                    }
                    if (0..3)
                        .any(|r| used[d][r] + dem[u][r] > cap[d][r] + CAP_EPS && dem[u][r] > 0.0)
                    {
                        continue;
                    }
                    let mut gain = 0.0;
                    for &t in members {
                        let cpu = inst.demand[t].cpu;
                        gain += (w.energy * (carbon(inst, c) - carbon(inst, d))
                            + w.cost * (cost(inst, c) - cost(inst, d)))
                            * cpu;
                        // Leaving a current cluster is one more move;
                        // arriving on one is one fewer.
                        if inst.current[t].contains(&c) {
                            gain -= w.movement;
                        }
                        if inst.current[t].contains(&d) {
                            gain += w.movement;
                        }
                    }
                    // Try the move to price traffic and check latency.
                    for &t in members {
                        set_copy(&mut a[t], c, d);
                    }
                    let ok = incident[u].iter().all(|&e| latency_ok(inst, a, e));
                    if ok {
                        let after: f64 = incident[u].iter().map(|&e| cross(inst, a, e)).sum();
                        gain += w.traffic * (traffic_before - after);
                    }
                    for &t in members {
                        set_copy(&mut a[t], d, c);
                    }
                    if !ok {
                        continue;
                    }
                    if w.balance > 0.0 {
                        for r in 0..3 {
                            used[c][r] -= dem[u][r];
                            used[d][r] += dem[u][r];
                        }
                        let max_after = (0..nc).map(|x| util(&used, x)).fold(0.0, f64::max);
                        for r in 0..3 {
                            used[c][r] += dem[u][r];
                            used[d][r] -= dem[u][r];
                        }
                        gain += w.balance * (max_before - max_after);
                    }
                    if gain > MIN_GAIN && best.is_none_or(|(g, _)| gain > g + MIN_GAIN) {
                        best = Some((gain, d));
                    }
                }
                if let Some((_, d)) = best {
                    for &t in members {
                        set_copy(&mut a[t], c, d);
                    }
                    for r in 0..3 {
                        used[c][r] -= dem[u][r];
                        used[d][r] += dem[u][r];
                    }
                    changed = true;
                    moved_any = true;
                    // The copy list was re-sorted: look at it from the start.
                    i = 0;
                    continue;
                }
                i += 1;
            }
        }
        if !moved_any {
            break;
        }
    }
    changed
}

/// Replaces cluster `from` by `to` in a sorted copy list, keeping it sorted.
fn set_copy(list: &mut [usize], from: usize, to: usize) {
    if let Some(p) = list.iter().position(|&x| x == from) {
        list[p] = to;
        list.sort_unstable();
    }
}

/// Every caller copy of edge `e` reaches a callee copy within its class.
fn latency_ok(inst: &Instance<'_>, a: &Assignment, e: usize) -> bool {
    let e = &inst.edges[e];
    a[e.caller]
        .iter()
        .all(|&c| a[e.callee].iter().any(|&d| inst.allowed(e.class, c, d)))
}
