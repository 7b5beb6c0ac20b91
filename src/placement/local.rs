//! Local search over a complete, valid assignment, with two kinds of move
//! that keep every constraint and must strictly lower the objective of
//! [`evaluate`](super::check::evaluate):
//! - 1-opt: move one copy of a unit (a service, or a whole co-location
//!   group) to another cluster;
//! - go home: move a unit back to one of its current clusters while moving
//!   one unit that occupies that cluster elsewhere (capacity usually blocks
//!   the plain move: the home cluster filled up with services placed there
//!   by a greedy start).
//!
//! Why: on large graphs the MILP's LP bound is weak (cross-cluster traffic
//! is a graph-partition objective) and HiGHS spends its budget without
//! improving the warm start much; these cheap moves fix the obvious
//! mistakes of the greedy starts and of a time-limited incumbent. It runs
//! on the warm start (so HiGHS starts from a better incumbent) and on the
//! solver's answer (so a gap-limited answer is polished).
//!
//! Deterministic: units in input order, clusters in name order, a fixed
//! number of passes. The deadline only cuts a pass short, like the solver's
//! own time limit.

use std::time::Instant;

use super::check::{Assignment, carbon, cost, cross};
use super::instance::Instance;
use super::model::Weights;
use super::units::{CAP_CPU_MIN, CAP_EPS, Units, capacities};

/// Passes over all units. Measured on the 1000 × 50 benchmark: the third
/// pass finds few moves and the fifth almost none; more only cost time.
const MAX_PASSES: usize = 5;

/// A move must gain at least this much, so that rounding noise never
/// makes the search cycle or leave an equally good tie-broken answer.
const MIN_GAIN: f64 = 1e-7;

pub(super) struct State<'a, 'i> {
    pub(super) inst: &'a Instance<'i>,
    pub(super) w: &'a Weights,
    pub(super) a: &'a mut Assignment,
    pub(super) units: Vec<Vec<usize>>,
    /// Unit of each service.
    pub(super) unit_of: Vec<usize>,
    /// Edges touching each unit, edges inside the unit left out (its
    /// members share clusters: no traffic, no latency issue).
    pub(super) incident: Vec<Vec<usize>>,
    pub(super) dem: Vec<[f64; 3]>,
    pub(super) cap: Vec<[f64; 3]>,
    pub(super) used: Vec<[f64; 3]>,
    pub(super) eligible: Vec<Vec<bool>>,
    /// Units with a copy on each cluster.
    pub(super) on: Vec<Vec<usize>>,
}

/// Improves `a` in place; returns whether anything changed. `a` must be
/// valid (as checked by `violation`); it stays valid.
pub(crate) fn improve(
    inst: &Instance<'_>,
    w: &Weights,
    a: &mut Assignment,
    deadline: Instant,
) -> bool {
    let mut st = State::new(inst, w, a);
    let mut changed = false;
    for _ in 0..MAX_PASSES {
        let mut moved_any = false;
        for u in 0..st.units.len() {
            if Instant::now() >= deadline {
                return changed;
            }
            while st.best_single(u) || st.go_home(u) {
                changed = true;
                moved_any = true;
            }
        }
        if !moved_any {
            break;
        }
    }
    changed
}

impl<'a, 'i> State<'a, 'i> {
    pub(super) fn new(inst: &'a Instance<'i>, w: &'a Weights, a: &'a mut Assignment) -> Self {
        let nc = inst.n_clusters();
        let Units {
            members: units,
            unit_of,
            demand: dem,
        } = Units::of(inst);
        let mut incident: Vec<Vec<usize>> = vec![Vec::new(); units.len()];
        for (i, e) in inst.edges.iter().enumerate() {
            let (uc, ue) = (unit_of[e.caller], unit_of[e.callee]);
            if uc != ue {
                incident[uc].push(i);
                incident[ue].push(i);
            }
        }
        let cap = capacities(inst);
        let mut used = vec![[0.0f64; 3]; nc];
        for (s, cl) in a.iter().enumerate() {
            let d = inst.demand[s];
            for &c in cl {
                used[c][0] += d.cpu;
                used[c][1] += d.memory;
                used[c][2] += d.gpu;
            }
        }
        let mut on = vec![Vec::new(); nc];
        for (u, m) in units.iter().enumerate() {
            for &c in &a[m[0]] {
                on[c].push(u);
            }
        }
        let eligible = units
            .iter()
            .map(|m| (0..nc).map(|c| inst.group_eligible(m[0], c)).collect())
            .collect();
        State {
            inst,
            w,
            a,
            units,
            unit_of,
            incident,
            dem,
            cap,
            used,
            eligible,
            on,
        }
    }

    fn max_util(&self) -> f64 {
        self.used
            .iter()
            .zip(&self.cap)
            .filter(|(_, k)| k[0] > CAP_CPU_MIN)
            .map(|(u, k)| u[0] / k[0])
            .fold(0.0, f64::max)
    }

    fn traffic(&self, u: usize) -> f64 {
        self.incident[u]
            .iter()
            .map(|&e| cross(self.inst, self.a, e))
            .sum()
    }

    fn fits(&self, u: usize, d: usize) -> bool {
        self.fits_in(u, d, &self.used)
    }

    /// Whether unit `u` fits on `d` with `used` taken there.
    pub(super) fn fits_in(&self, u: usize, d: usize, used: &[[f64; 3]]) -> bool {
        (0..3).all(|r| {
            self.dem[u][r] <= 0.0 || used[d][r] + self.dem[u][r] <= self.cap[d][r] + CAP_EPS
        })
    }

    /// Moves u's copy from c to d (no checks).
    pub(super) fn apply(&mut self, u: usize, c: usize, d: usize) {
        for &t in &self.units[u] {
            let list = &mut self.a[t];
            if let Some(p) = list.iter().position(|&x| x == c) {
                list[p] = d;
                list.sort_unstable();
            }
        }
        for r in 0..3 {
            self.used[c][r] -= self.dem[u][r];
            self.used[d][r] += self.dem[u][r];
        }
        self.on[c].retain(|&x| x != u);
        self.on[d].push(u);
    }

    /// The price of the terms linear in the assignment (energy, cost,
    /// movement) of u's copy on d: one move for each member with a current
    /// cluster that d is not.
    pub(super) fn linear_price(&self, u: usize, d: usize) -> f64 {
        let (inst, w) = (self.inst, self.w);
        let mut price = 0.0;
        for &t in &self.units[u] {
            let cpu = inst.demand[t].cpu;
            price += (w.energy * carbon(inst, d) + w.cost * cost(inst, d)) * cpu;
            if !inst.current[t].is_empty() && !inst.current[t].contains(&d) {
                price += w.movement;
            }
        }
        price
    }

    /// The decrease of the terms linear in the assignment if u's copy on c
    /// moves to d.
    fn linear_gain(&self, u: usize, c: usize, d: usize) -> f64 {
        self.linear_price(u, c) - self.linear_price(u, d)
    }

    /// The objective's decrease if u's copy on c moves to d, or `None` if
    /// the move breaks a constraint. Leaves the state as it found it.
    pub(super) fn gain(&mut self, u: usize, c: usize, d: usize) -> Option<f64> {
        let lead = self.units[u][0];
        if !self.eligible[u][d] || self.a[lead].contains(&d) || !self.fits(u, d) {
            return None;
        }
        let (inst, w) = (self.inst, self.w);
        let mut gain = self.linear_gain(u, c, d);
        let traffic_before = self.traffic(u);
        let bal_before = if w.balance > 0.0 {
            self.max_util()
        } else {
            0.0
        };
        self.apply(u, c, d);
        let ok = self.incident[u]
            .iter()
            .all(|&e| latency_ok(inst, self.a, e));
        if ok {
            gain += w.traffic * (traffic_before - self.traffic(u));
            if w.balance > 0.0 {
                gain += w.balance * (bal_before - self.max_util());
            }
        }
        self.apply(u, d, c);
        ok.then_some(gain)
    }

    /// The objective's decrease if the moves `(unit, from, to)` are made
    /// together (a swap: each may need the room another frees), or `None`
    /// if the result breaks a constraint. Leaves the state as it found it.
    pub(super) fn gain_of(&mut self, moves: &[(usize, usize, usize)]) -> Option<f64> {
        let (inst, w) = (self.inst, self.w);
        let mut gain = 0.0;
        let mut edges: Vec<usize> = Vec::new();
        let mut touched: Vec<usize> = Vec::new();
        for &(u, c, d) in moves {
            if !self.eligible[u][d] {
                return None;
            }
            gain += self.linear_gain(u, c, d);
            edges.extend_from_slice(&self.incident[u]);
            touched.extend([c, d]);
        }
        edges.sort_unstable();
        edges.dedup();
        touched.sort_unstable();
        touched.dedup();
        let traffic = |st: &Self| -> f64 { edges.iter().map(|&e| cross(st.inst, st.a, e)).sum() };
        let traffic_before = traffic(self);
        let bal_before = if w.balance > 0.0 {
            self.max_util()
        } else {
            0.0
        };
        let used_before: Vec<[f64; 3]> = touched.iter().map(|&x| self.used[x]).collect();
        let mut applied = 0;
        let mut ok = true;
        for &(u, c, d) in moves {
            let lead = self.units[u][0];
            if !self.a[lead].contains(&c) || self.a[lead].contains(&d) {
                ok = false;
                break;
            }
            self.apply(u, c, d);
            applied += 1;
        }
        // Capacity where usage grew, then every latency class touched.
        ok =
            ok && touched.iter().zip(&used_before).all(|(&x, before)| {
                (0..3).all(|r| {
                    self.used[x][r] <= before[r] + CAP_EPS
                        || self.used[x][r] <= self.cap[x][r] + CAP_EPS
                })
            }) && edges.iter().all(|&e| latency_ok(inst, self.a, e));
        if ok {
            gain += w.traffic * (traffic_before - traffic(self));
            if w.balance > 0.0 {
                gain += w.balance * (bal_before - self.max_util());
            }
        }
        for &(u, c, d) in moves[..applied].iter().rev() {
            self.apply(u, d, c);
        }
        ok.then_some(gain)
    }

    /// Applies the best improving 1-opt move of u, if any.
    fn best_single(&mut self, u: usize) -> bool {
        let nc = self.cap.len();
        let lead = self.units[u][0];
        for i in 0..self.a[lead].len() {
            let c = self.a[lead][i];
            let mut best: Option<(f64, usize)> = None;
            for d in 0..nc {
                if let Some(g) = self.gain(u, c, d)
                    && g > MIN_GAIN
                    && best.is_none_or(|(b, _)| g > b + MIN_GAIN)
                {
                    best = Some((g, d));
                }
            }
            if let Some((_, d)) = best {
                self.apply(u, c, d);
                return true;
            }
        }
        false
    }

    /// Tries to bring u back to a current cluster h by moving one unit v
    /// off h to its best other cluster; applies the first pair that gains.
    fn go_home(&mut self, u: usize) -> bool {
        if self.w.movement <= 0.0 {
            return false;
        }
        let nc = self.cap.len();
        let lead = self.units[u][0];
        let homes: Vec<usize> = self.units[u]
            .iter()
            .flat_map(|&t| self.inst.current[t].iter().copied())
            .filter(|h| !self.a[lead].contains(h) && self.eligible[u][*h])
            .collect();
        for h in homes {
            let away: Vec<usize> = self.a[lead].clone();
            let occupants: Vec<usize> = self.on[h].iter().copied().filter(|&v| v != u).collect();
            for v in occupants {
                let mut best: Option<(f64, usize, usize)> = None;
                for e in 0..nc {
                    let Some(gv) = self.gain(v, h, e) else {
                        continue;
                    };
                    self.apply(v, h, e);
                    for &c in &away {
                        if let Some(gu) = self.gain(u, c, h)
                            && gv + gu > MIN_GAIN
                            && best.is_none_or(|(b, _, _)| gv + gu > b + MIN_GAIN)
                        {
                            best = Some((gv + gu, e, c));
                        }
                    }
                    self.apply(v, e, h);
                }
                if let Some((_, e, c)) = best {
                    self.apply(v, h, e);
                    self.apply(u, c, h);
                    return true;
                }
            }
        }
        false
    }
}

/// Every caller copy of edge `e` reaches a callee copy within its class.
fn latency_ok(inst: &Instance<'_>, a: &Assignment, e: usize) -> bool {
    let e = &inst.edges[e];
    a[e.caller]
        .iter()
        .all(|&c| a[e.callee].iter().any(|&d| inst.allowed(e.class, c, d)))
}
