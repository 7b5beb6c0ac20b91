//! Constraint checking and objective evaluation of a complete assignment.
//!
//! An assignment is, per service, the sorted cluster indices it runs on.
//! Every strategy's answer goes through [`violation`] before it is returned
//! (a solver answer that breaks a constraint is a bug, reported as such), and
//! [`evaluate`] is the single definition of the objective: the MILP's
//! coefficients are derived to match it, and explanations diff it.

use super::instance::{Instance, fmt_num};
use super::model::{ENERGY_EFFICIENCY_FACTOR, ObjectiveBreakdown, PlacementOptions, Term, Weights};

pub(crate) type Assignment = Vec<Vec<usize>>;

const EPS: f64 = 1e-6;

/// The first constraint the assignment breaks, if any.
pub(crate) fn violation(inst: &Instance<'_>, a: &Assignment) -> Option<String> {
    let nc = inst.n_clusters();
    let mut used = vec![(0.0, 0.0, 0.0); nc];
    for (s, cl) in a.iter().enumerate() {
        let id = inst.service_id(s);
        if cl.len() != inst.k[s] {
            return Some(format!(
                "service {id} is on {} clusters, needs {}",
                cl.len(),
                inst.k[s]
            ));
        }
        if cl.windows(2).any(|w| w[0] >= w[1]) {
            return Some(format!("service {id} has unsorted or repeated clusters"));
        }
        for &c in cl {
            if let Err(r) = &inst.eligible[s][c] {
                return Some(format!(
                    "service {id} on ineligible cluster {}: {r}",
                    inst.names[c]
                ));
            }
            let d = inst.demand[s];
            used[c].0 += d.cpu;
            used[c].1 += d.memory;
            used[c].2 += d.gpu;
        }
    }
    for (c, u) in used.iter().enumerate() {
        let cap = inst.capacity[c];
        if u.0 > cap.cpu + EPS || u.1 > cap.memory + 0.5 || u.2 > cap.gpu + EPS {
            return Some(format!("cluster {} over capacity", inst.names[c]));
        }
    }
    for g in &inst.groups {
        if g.iter().any(|&t| a[t] != a[g[0]]) {
            return Some(format!(
                "co-location group of {} split",
                inst.service_id(g[0])
            ));
        }
    }
    for e in &inst.edges {
        for &c in &a[e.caller] {
            if !a[e.callee].iter().any(|&d| inst.allowed(e.class, c, d)) {
                return Some(format!(
                    "edge {} → {} breaks its latency class from {}",
                    inst.service_id(e.caller),
                    inst.service_id(e.callee),
                    inst.names[c]
                ));
            }
        }
    }
    None
}

/// Weights after graph flags (energyEfficiency).
pub(crate) fn effective_weights(inst: &Instance<'_>, opts: &PlacementOptions) -> Weights {
    let mut w = opts.weights;
    if inst.problem.flags.energy_efficiency {
        w.energy *= ENERGY_EFFICIENCY_FACTOR;
    }
    w
}

/// Carbon and cost of cluster `c` (by index).
pub(crate) fn carbon(inst: &Instance<'_>, c: usize) -> f64 {
    inst.problem.clusters[inst.order[c]].carbon_intensity
}

pub(crate) fn cost(inst: &Instance<'_>, c: usize) -> f64 {
    inst.problem.clusters[inst.order[c]].cost_per_cpu_hour
}

/// Raw movement of service `s`: current clusters it no longer runs on.
pub(crate) fn moved(inst: &Instance<'_>, s: usize, clusters: &[usize]) -> f64 {
    inst.current[s]
        .iter()
        .filter(|c| !clusters.contains(c))
        .count() as f64
}

/// Raw traffic of one edge: caller copies without a callee copy alongside.
pub(crate) fn cross(inst: &Instance<'_>, a: &Assignment, e: usize) -> f64 {
    let e = &inst.edges[e];
    let n = a[e.caller]
        .iter()
        .filter(|c| !a[e.callee].contains(c))
        .count();
    n as f64 * e.traffic
}

/// The objective of a complete assignment, term by term.
pub(crate) fn evaluate(inst: &Instance<'_>, w: &Weights, a: &Assignment) -> ObjectiveBreakdown {
    let nc = inst.n_clusters();
    let mut movement = 0.0;
    let mut energy = 0.0;
    let mut cost_raw = 0.0;
    let mut used = vec![0.0; nc];
    for (s, cl) in a.iter().enumerate() {
        movement += moved(inst, s, cl);
        for &c in cl {
            let cpu = inst.demand[s].cpu;
            energy += carbon(inst, c) * cpu;
            cost_raw += cost(inst, c) * cpu;
            used[c] += cpu;
        }
    }
    let traffic: f64 = (0..inst.edges.len()).map(|e| cross(inst, a, e)).sum();
    let balance = used
        .iter()
        .zip(&inst.capacity)
        .filter(|(_, cap)| cap.cpu > EPS)
        .map(|(u, cap)| u / cap.cpu)
        .fold(0.0, f64::max);
    let term = |raw: f64, weight: f64| Term {
        raw,
        weight,
        weighted: raw * weight,
    };
    let b = ObjectiveBreakdown {
        total: 0.0,
        movement: term(movement, w.movement),
        traffic: term(traffic, w.traffic),
        energy: term(energy, w.energy),
        cost: term(cost_raw, w.cost),
        balance: term(balance, w.balance),
    };
    ObjectiveBreakdown {
        total: b.movement.weighted
            + b.traffic.weighted
            + b.energy.weighted
            + b.cost.weighted
            + b.balance.weighted,
        ..b
    }
}

/// A lower bound on the objective of every valid assignment, from each term
/// minimised on its own and each service on its own (capacity, latency,
/// co-location and traffic ignored): energy and cost at the cheapest
/// eligible clusters, the current clusters that cannot be kept, and the
/// average CPU utilisation (the maximum is at least the average). Cheap and
/// always available, unlike a solver's bound.
pub(crate) fn separable_bound(inst: &Instance<'_>, w: &Weights) -> f64 {
    let ws = [w.movement, w.traffic, w.energy, w.cost, w.balance];
    if ws.iter().any(|&x| x < 0.0) {
        // A negative weight rewards a term: minimising each alone proves
        // nothing about the sum.
        return f64::NEG_INFINITY;
    }
    let nc = inst.n_clusters();
    let mut v = 0.0;
    let mut cpu_total = 0.0;
    for s in 0..inst.n_services() {
        let cpu = inst.demand[s].cpu;
        let k = inst.k[s];
        let mut unit: Vec<f64> = (0..nc)
            .filter(|&c| inst.is_eligible(s, c))
            .map(|c| (w.energy * carbon(inst, c) + w.cost * cost(inst, c)) * cpu)
            .collect();
        unit.sort_by(f64::total_cmp);
        v += unit.iter().take(k).sum::<f64>();
        let cur = &inst.current[s];
        let lost = cur.iter().filter(|&&c| !inst.is_eligible(s, c)).count();
        v += w.movement * lost.max(cur.len().saturating_sub(k)) as f64;
        // A cluster below EPS of CPU (left out of the balance term) can
        // only host services below 2·EPS; those are left out here too.
        if cpu > 2.0 * EPS {
            cpu_total += cpu * k as f64;
        }
    }
    let cap_total: f64 = inst
        .capacity
        .iter()
        .map(|c| c.cpu)
        .filter(|&c| c > EPS)
        .sum();
    if cap_total > 0.0 {
        v += w.balance * cpu_total / cap_total;
    }
    v
}

/// Human description of the difference between two breakdowns, largest
/// weighted change first, e.g. "+2 cross-cluster edges, +120 gCO2/kWh·CPU".
pub(crate) fn describe_delta(base: &ObjectiveBreakdown, other: &ObjectiveBreakdown) -> String {
    let mut parts: Vec<(f64, String)> = Vec::new();
    let mut push = |bt: Term, ot: Term, unit: &str| {
        let d = ot.raw - bt.raw;
        if d.abs() > 1e-9 && (ot.weighted - bt.weighted).abs() > 1e-12 {
            let sign = if d > 0.0 { "+" } else { "-" };
            parts.push((
                (ot.weighted - bt.weighted).abs(),
                format!("{sign}{} {unit}", fmt_num(d.abs())),
            ));
        }
    };
    push(base.movement, other.movement, "moved");
    push(base.traffic, other.traffic, "cross-cluster traffic");
    push(base.energy, other.energy, "gCO2/kWh·CPU");
    push(base.cost, other.cost, "cost/h");
    push(base.balance, other.balance, "max utilisation");
    parts.sort_by(|a, b| b.0.total_cmp(&a.0));
    let d = other.total - base.total;
    let head = format!(
        "objective {}{}",
        if d >= 0.0 { "+" } else { "-" },
        fmt_num(d.abs())
    );
    if parts.is_empty() {
        head
    } else {
        format!(
            "{head} ({})",
            parts
                .into_iter()
                .map(|p| p.1)
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}
