//! Exact branch-and-bound for small graphs (every service on one cluster,
//! a handful of services): the typical graph of a fleet.
//!
//! Why not the MILP: with 5 services on 50 clusters the load-balance term
//! (a maximum) leaves the LP relaxation weak and HiGHS spent about 55 ms per
//! graph proving a 1% gap; a depth-first search over clusters with a
//! separable bound proves optimality (gap 0) in well under a millisecond.
//!
//! It minimises exactly the MILP's objective, tie-break included (`TIE ×
//! rank / clusters` per chosen cluster), so it returns the answer the MILP
//! would return at gap 0. Deterministic: fixed unit and cluster orders, only
//! strictly better solutions replace the incumbent. It starts from a valid
//! incumbent (the warm start): if nothing beats it, the start is optimal.
//! A node budget bounds the work; past it, the caller falls back to the
//! MILP.

use super::check::{Assignment, carbon, cost};
use super::instance::Instance;
use super::milp::TIE;
use super::model::{LatencyClass, Weights};
use super::units::{CAP_CPU_MIN, CAP_EPS, Units, capacities};

/// Graphs with more placement units than this go to the MILP: the search
/// grows as clusters^units in the worst case.
const MAX_UNITS: usize = 12;

/// Search nodes before giving up. Measured on the fleet benchmark (5
/// services × 50 clusters) the search needs at most a few thousand nodes;
/// a million nodes is a few tens of ms, well under what the MILP needs.
const NODE_LIMIT: usize = 1_000_000;

struct Search<'a> {
    inst: &'a Instance<'a>,
    w_balance: f64,
    order: Vec<usize>,
    members: Vec<Vec<usize>>,
    dem: Vec<[f64; 3]>,
    cap: Vec<[f64; 3]>,
    eligible: Vec<Vec<usize>>,
    unary: Vec<Vec<f64>>,
    /// Per unit: (other unit, traffic weight) for traffic between them.
    traffic: Vec<Vec<(usize, f64)>>,
    /// Per unit: (other unit, class, this unit is the caller).
    latency: Vec<Vec<(usize, LatencyClass, bool)>>,
    at: Vec<Option<usize>>,
    used: Vec<[f64; 3]>,
    best: f64,
    best_at: Option<Vec<usize>>,
    nodes: usize,
}

/// The optimal assignment if the instance qualifies and the search ends
/// within its budget; `None` otherwise. `start` must be valid.
pub(crate) fn solve(inst: &Instance<'_>, w: &Weights, start: &Assignment) -> Option<Assignment> {
    let (ns, nc) = (inst.n_services(), inst.n_clusters());
    if (0..ns).any(|s| inst.k[s] != 1 || start[s].len() != 1) {
        return None;
    }
    let Units {
        members: units,
        unit_of,
        demand: dem,
    } = Units::of(inst);
    if units.len() > MAX_UNITS {
        return None;
    }
    let nu = units.len();
    let cap = capacities(inst);
    // Same coefficients as the MILP's x columns (movement as lost current
    // clusters, so the constant part is included).
    let unary: Vec<Vec<f64>> = units
        .iter()
        .map(|m| {
            (0..nc)
                .map(|c| {
                    let mut v = TIE * c as f64 / nc as f64;
                    for &t in m {
                        let cpu = inst.demand[t].cpu;
                        v += w.energy * carbon(inst, c) * cpu + w.cost * cost(inst, c) * cpu;
                        let lost = inst.current[t].iter().filter(|&&x| x != c).count();
                        v += w.movement * lost as f64;
                    }
                    v
                })
                .collect()
        })
        .collect();
    let mut eligible: Vec<Vec<usize>> = units
        .iter()
        .zip(&dem)
        .map(|(m, d)| {
            (0..nc)
                .filter(|&c| inst.group_eligible(m[0], c))
                .filter(|&c| (0..3).all(|r| dem_fits(d[r], cap[c][r])))
                .collect()
        })
        .collect();
    // Cheapest clusters first: good incumbents early, more pruning.
    for (u, el) in eligible.iter_mut().enumerate() {
        el.sort_by(|&a, &b| unary[u][a].total_cmp(&unary[u][b]).then(a.cmp(&b)));
    }
    let mut traffic: Vec<Vec<(usize, f64)>> = vec![Vec::new(); nu];
    let mut latency: Vec<Vec<(usize, LatencyClass, bool)>> = vec![Vec::new(); nu];
    for e in &inst.edges {
        let (a, b) = (unit_of[e.caller], unit_of[e.callee]);
        if a == b {
            continue;
        }
        if e.traffic > 0.0 && w.traffic > 0.0 {
            traffic[a].push((b, w.traffic * e.traffic));
            traffic[b].push((a, w.traffic * e.traffic));
        }
        if e.class != LatencyClass::BestEffort {
            latency[a].push((b, e.class, true));
            latency[b].push((a, e.class, false));
        }
    }
    // Most connected and largest units first: their choices constrain and
    // price the rest.
    let mut order: Vec<usize> = (0..nu).collect();
    let weight = |u: usize| traffic[u].iter().map(|p| p.1).sum::<f64>() + latency[u].len() as f64;
    order.sort_by(|&a, &b| {
        weight(b)
            .total_cmp(&weight(a))
            .then(dem[b][0].total_cmp(&dem[a][0]))
            .then(a.cmp(&b))
    });
    let mut search = Search {
        inst,
        w_balance: w.balance,
        order,
        members: units,
        dem,
        cap,
        eligible,
        unary,
        traffic,
        latency,
        at: vec![None; nu],
        used: vec![[0.0; 3]; nc],
        best: 0.0,
        best_at: None,
        nodes: 0,
    };
    let start_at: Vec<usize> = search.members.iter().map(|m| start[m[0]][0]).collect();
    search.best = search.value(&start_at);
    search.dfs(0, 0.0);
    if search.nodes > NODE_LIMIT {
        return None;
    }
    let chosen = search.best_at.unwrap_or(start_at);
    let mut a: Assignment = vec![Vec::new(); ns];
    for (u, m) in search.members.iter().enumerate() {
        for &t in m {
            a[t] = vec![chosen[u]];
        }
    }
    Some(a)
}

fn dem_fits(d: f64, cap: f64) -> bool {
    d <= 0.0 || d <= cap + CAP_EPS
}

impl Search<'_> {
    /// Objective (tie-break included) of a complete choice.
    fn value(&self, at: &[usize]) -> f64 {
        let nc = self.cap.len();
        let mut v = 0.0;
        let mut cpu = vec![0.0; nc];
        for (u, &c) in at.iter().enumerate() {
            v += self.unary[u][c];
            cpu[c] += self.dem[u][0];
            for &(o, wt) in &self.traffic[u] {
                // Each pair is listed from both ends: count it once.
                if o > u && at[o] != c {
                    v += wt;
                }
            }
        }
        v + self.w_balance * max_util(&cpu, &self.cap)
    }

    fn dfs(&mut self, depth: usize, partial: f64) {
        self.nodes += 1;
        if self.nodes > NODE_LIMIT {
            return;
        }
        if depth == self.order.len() {
            let cpu: Vec<f64> = self.used.iter().map(|u| u[0]).collect();
            let v = partial + self.w_balance * max_util(&cpu, &self.cap);
            if v < self.best {
                self.best = v;
                self.best_at = Some(self.at.iter().map(|c| c.unwrap_or(0)).collect());
            }
            return;
        }
        // Bound: each unplaced unit at its cheapest cluster given the placed
        // neighbours (traffic between unplaced units counted as 0), plus the
        // current maximum utilisation (it only grows).
        let cpu: Vec<f64> = self.used.iter().map(|u| u[0]).collect();
        let bal = self.w_balance * max_util(&cpu, &self.cap);
        let mut bound = partial + bal;
        for &u in &self.order[depth..] {
            let cheapest = self.eligible[u]
                .iter()
                .map(|&c| self.unary[u][c] + self.placed_traffic(u, c))
                .fold(f64::INFINITY, f64::min);
            bound += cheapest;
        }
        if bound >= self.best {
            return;
        }
        let u = self.order[depth];
        for i in 0..self.eligible[u].len() {
            let c = self.eligible[u][i];
            if !(0..3).all(|r| dem_fits(self.dem[u][r], self.cap[c][r] - self.used[c][r])) {
                continue;
            }
            if !self.latency_ok(u, c) {
                continue;
            }
            let add = self.unary[u][c] + self.placed_traffic(u, c);
            if partial + add + bal >= self.best {
                continue;
            }
            self.at[u] = Some(c);
            for r in 0..3 {
                self.used[c][r] += self.dem[u][r];
            }
            self.dfs(depth + 1, partial + add);
            for r in 0..3 {
                self.used[c][r] -= self.dem[u][r];
            }
            self.at[u] = None;
            if self.nodes > NODE_LIMIT {
                return;
            }
        }
    }

    /// Traffic between `u` on `c` and its already placed neighbours.
    fn placed_traffic(&self, u: usize, c: usize) -> f64 {
        self.traffic[u]
            .iter()
            .filter(|&&(o, _)| self.at[o].is_some_and(|d| d != c))
            .map(|p| p.1)
            .sum()
    }

    fn latency_ok(&self, u: usize, c: usize) -> bool {
        self.latency[u]
            .iter()
            .all(|&(o, class, caller)| match self.at[o] {
                None => true,
                Some(d) if caller => self.inst.allowed(class, c, d),
                Some(d) => self.inst.allowed(class, d, c),
            })
    }
}

fn max_util(cpu: &[f64], cap: &[[f64; 3]]) -> f64 {
    cpu.iter()
        .zip(cap)
        .filter(|(_, k)| k[0] > CAP_CPU_MIN)
        .map(|(u, k)| u / k[0])
        .fold(0.0, f64::max)
}
