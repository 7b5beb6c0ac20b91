//! Constructive search: a complete, valid assignment whenever one exists
//! within a node budget, built before the MILP so that HiGHS always starts
//! from an incumbent (and the answer never depends on HiGHS finding one).
//!
//! Why: the greedy starts of [`super::first_fit`] commit to one cluster per
//! service in a fixed order and never undo a choice; with strict latency
//! classes, pins and tight capacity they fail on instances that are
//! feasible (the benchmark sizes 100 × 10 and up failed every time).
//!
//! How: depth-first search over placement units (a service, or a whole
//! co-location group), with
//! - forward checking: every unplaced unit keeps a domain of clusters that
//!   are eligible, still have room for it, and satisfy the latency class of
//!   each edge to an already placed unit; a placement that empties a domain
//!   (fewer clusters left than the unit needs) is undone at once;
//! - most-constrained unit first (smallest domain, then most strict edges,
//!   then largest CPU demand, then input order);
//! - cheapest cluster first (energy, cost, movement and traffic to placed
//!   neighbours, as first-fit's `cheapest` scores them), so the first leaf
//!   is already a reasonable answer;
//! - chronological backtracking, bounded by [`NODE_LIMIT`] and a deadline.
//!
//! Every pruning rule is a necessary condition of validity, and every set
//! of `k` clusters of a domain is tried, so a search that ends without an
//! answer *and* without hitting its budget is a proof that no valid
//! assignment exists ([`Outcome::Infeasible`]). Deterministic: fixed orders,
//! the deadline only cuts the search short.

use std::time::Instant;

use super::check::{Assignment, carbon, cost};
use super::instance::Instance;
use super::model::{LatencyClass, Weights};
use super::units::{CAP_EPS, Units, capacities};

/// Search nodes before giving up. A feasible benchmark instance (1000
/// services × 50 clusters) needs about one node per unit when the ordering
/// is right; the rest is room for backtracking on tight instances, and a
/// node costs at most a few µs at that size.
const NODE_LIMIT: usize = 200_000;

/// What the search concluded.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    Found(Assignment),
    /// The whole search space was covered: no valid assignment exists.
    Infeasible,
    /// The node budget or the deadline ended the search first.
    GaveUp,
}

/// A strict-latency edge seen from one unit.
#[derive(Clone, Copy)]
struct Link {
    other: usize,
    class: LatencyClass,
    /// This unit is the caller.
    caller: bool,
}

struct Search<'a, 'i> {
    inst: &'a Instance<'i>,
    w: &'a Weights,
    members: Vec<Vec<usize>>,
    dem: Vec<[f64; 3]>,
    k: Vec<usize>,
    links: Vec<Vec<Link>>,
    traffic: Vec<Vec<(usize, f64)>>,
    left: Vec<[f64; 3]>,
    at: Vec<Option<Vec<usize>>>,
    dom: Vec<Vec<bool>>,
    size: Vec<usize>,
    /// Domain removals, undone on backtrack.
    trail: Vec<(usize, usize)>,
    nodes: usize,
    deadline: Instant,
    gave_up: bool,
}

/// Runs the search until `deadline` (or the node budget).
pub(crate) fn search(inst: &Instance<'_>, w: &Weights, deadline: Instant) -> Outcome {
    let nc = inst.n_clusters();
    let Units {
        members,
        unit_of,
        demand: dem,
    } = Units::of(inst);
    let nu = members.len();
    let k: Vec<usize> = members.iter().map(|m| inst.k[m[0]]).collect();
    if k.iter().any(|&x| x > 2) {
        return Outcome::GaveUp;
    }
    let mut links: Vec<Vec<Link>> = vec![Vec::new(); nu];
    let mut traffic: Vec<Vec<(usize, f64)>> = vec![Vec::new(); nu];
    for e in &inst.edges {
        let (a, b) = (unit_of[e.caller], unit_of[e.callee]);
        if a == b {
            continue;
        }
        if e.class != LatencyClass::BestEffort {
            links[a].push(Link {
                other: b,
                class: e.class,
                caller: true,
            });
            links[b].push(Link {
                other: a,
                class: e.class,
                caller: false,
            });
        }
        if e.traffic > 0.0 {
            traffic[a].push((b, e.traffic));
            traffic[b].push((a, e.traffic));
        }
    }
    let left = capacities(inst);
    let dom: Vec<Vec<bool>> = (0..nu)
        .map(|u| {
            (0..nc)
                .map(|c| inst.group_eligible(members[u][0], c) && fits(&dem[u], &left[c]))
                .collect()
        })
        .collect();
    let size = dom
        .iter()
        .map(|d| d.iter().filter(|&&x| x).count())
        .collect();
    let mut s = Search {
        inst,
        w,
        members,
        dem,
        k,
        links,
        traffic,
        left,
        at: vec![None; nu],
        dom,
        size,
        trail: Vec::new(),
        nodes: 0,
        deadline,
        gave_up: false,
    };
    if (0..nu).any(|u| s.size[u] < s.k[u]) {
        return Outcome::Infeasible;
    }
    if s.dfs() {
        let mut a: Assignment = vec![Vec::new(); inst.n_services()];
        for (u, m) in s.members.iter().enumerate() {
            for &t in m {
                a[t] = s.at[u].clone().unwrap_or_default();
            }
        }
        Outcome::Found(a)
    } else if s.gave_up {
        Outcome::GaveUp
    } else {
        Outcome::Infeasible
    }
}

fn fits(d: &[f64; 3], left: &[f64; 3]) -> bool {
    (0..3).all(|r| d[r] <= 0.0 || d[r] <= left[r] + CAP_EPS)
}

impl Search<'_, '_> {
    fn dfs(&mut self) -> bool {
        self.nodes += 1;
        // The clock every 64 nodes: reading it costs more than a node of a
        // small graph, and 64 nodes take well under a millisecond.
        if self.nodes > NODE_LIMIT
            || (self.nodes.is_multiple_of(64) && Instant::now() >= self.deadline)
        {
            self.gave_up = true;
            return false;
        }
        let Some(u) = self.pick() else {
            return true;
        };
        for cand in self.candidates(u) {
            let mark = self.trail.len();
            if self.assign(u, &cand) && self.dfs() {
                return true;
            }
            self.unassign(u, &cand, mark);
            if self.gave_up {
                return false;
            }
        }
        false
    }

    /// The most constrained unplaced unit.
    fn pick(&self) -> Option<usize> {
        (0..self.members.len())
            .filter(|&u| self.at[u].is_none())
            .min_by(|&a, &b| {
                (self.size[a] - self.k[a])
                    .cmp(&(self.size[b] - self.k[b]))
                    .then(self.links[b].len().cmp(&self.links[a].len()))
                    .then(self.dem[b][0].total_cmp(&self.dem[a][0]))
                    .then(a.cmp(&b))
            })
    }

    /// Objective contribution of a copy of `u` on `c`, given what is placed.
    fn score(&self, u: usize, c: usize) -> f64 {
        let (inst, w) = (self.inst, self.w);
        let mut v = 0.0;
        for &t in &self.members[u] {
            let cpu = inst.demand[t].cpu;
            v += (w.energy * carbon(inst, c) + w.cost * cost(inst, c)) * cpu;
            if !inst.current[t].is_empty() && !inst.current[t].contains(&c) {
                v += w.movement;
            }
        }
        for &(o, t) in &self.traffic[u] {
            if let Some(cl) = &self.at[o]
                && !cl.contains(&c)
            {
                v += w.traffic * t;
            }
        }
        v
    }

    /// Every set of `k` clusters of the domain that also covers the placed
    /// callers (a callee with two copies), cheapest first.
    fn candidates(&self, u: usize) -> Vec<Vec<usize>> {
        let nc = self.inst.n_clusters();
        let cs: Vec<usize> = (0..nc).filter(|&c| self.dom[u][c]).collect();
        let score: Vec<f64> = (0..nc)
            .map(|c| {
                if self.dom[u][c] {
                    self.score(u, c)
                } else {
                    0.0
                }
            })
            .collect();
        let mut out: Vec<(f64, Vec<usize>)> = if self.k[u] == 1 {
            cs.iter().map(|&c| (score[c], vec![c])).collect()
        } else {
            let mut v = Vec::new();
            for (i, &a) in cs.iter().enumerate() {
                for &b in &cs[i + 1..] {
                    let set = vec![a, b];
                    if self.callers_covered(u, &set) {
                        v.push((score[a] + score[b], set));
                    }
                }
            }
            v
        };
        out.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
        out.into_iter().map(|p| p.1).collect()
    }

    /// Every copy of every placed caller of `u` reaches a cluster of `set`.
    fn callers_covered(&self, u: usize, set: &[usize]) -> bool {
        self.links[u].iter().filter(|l| !l.caller).all(|l| {
            self.at[l.other].as_ref().is_none_or(|from| {
                from.iter()
                    .all(|&c| set.iter().any(|&d| self.inst.allowed(l.class, c, d)))
            })
        })
    }

    /// Whether `c` stays in the domain of unplaced `v` given that its
    /// neighbour `l.other` (placed) is on `on`.
    fn compatible(&self, v: usize, l: Link, c: usize, on: &[usize]) -> bool {
        if l.caller {
            // v's copy on c must reach a copy of its callee.
            on.iter().any(|&d| self.inst.allowed(l.class, c, d))
        } else if self.k[v] == 1 {
            // v's only copy must be reachable from every caller copy.
            on.iter().all(|&d| self.inst.allowed(l.class, d, c))
        } else {
            // Two copies cover the callers together: checked per set.
            true
        }
    }

    fn remove(&mut self, v: usize, c: usize) {
        self.dom[v][c] = false;
        self.size[v] -= 1;
        self.trail.push((v, c));
    }

    /// Places `u` on `set` and filters the other domains; false when one
    /// of them can no longer hold its unit (the caller then undoes).
    fn assign(&mut self, u: usize, set: &[usize]) -> bool {
        for &c in set {
            for r in 0..3 {
                self.left[c][r] -= self.dem[u][r];
            }
        }
        self.at[u] = Some(set.to_vec());
        let nu = self.members.len();
        for &c in set {
            for v in 0..nu {
                if self.at[v].is_none() && self.dom[v][c] && !fits(&self.dem[v], &self.left[c]) {
                    self.remove(v, c);
                }
            }
        }
        for i in 0..self.links[u].len() {
            let l = self.links[u][i];
            let v = l.other;
            if self.at[v].is_some() {
                continue;
            }
            // The link as seen from v: v is the caller when u is not.
            let back = Link {
                other: u,
                class: l.class,
                caller: !l.caller,
            };
            for c in 0..self.inst.n_clusters() {
                if self.dom[v][c] && !self.compatible(v, back, c, set) {
                    self.remove(v, c);
                }
            }
        }
        (0..nu).all(|v| self.at[v].is_some() || self.size[v] >= self.k[v])
    }

    fn unassign(&mut self, u: usize, set: &[usize], mark: usize) {
        while self.trail.len() > mark {
            if let Some((v, c)) = self.trail.pop() {
                self.dom[v][c] = true;
                self.size[v] += 1;
            }
        }
        for &c in set {
            for r in 0..3 {
                self.left[c][r] += self.dem[u][r];
            }
        }
        self.at[u] = None;
    }
}
