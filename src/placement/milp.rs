//! The `milp` strategy: the full placement model on good_lp + HiGHS.
//!
//! Formulation (s = service, c = cluster, only eligible pairs get a column):
//! - co-located services share one set of columns (the group's first member
//!   stands for the group), which removes the equality rows altogether;
//! - `Σ_c x[s,c] = k_s`;
//! - capacity rows per cluster and resource, only where the demand of all
//!   services that could go there exceeds the capacity (others never bind);
//! - latency: for an edge a → b of class q and each cluster c of a,
//!   `x[a,c] ≤ Σ_{d: (c,d) satisfies q} x[b,d]` — every caller copy reaches a
//!   callee copy; O(edges × clusters) rows instead of one row per forbidden
//!   cluster pair;
//! - cross-cluster traffic, aggregated per caller and cluster:
//!   `u[a,c] ≥ Σ_{e=(a,b)} w_e (x[a,c] − x[b,c])`, `u ≥ 0`. At integer points
//!   `u[a,c]` is exactly the traffic of a's copy on c whose callee is
//!   elsewhere. One continuous column per caller and cluster rather than per
//!   edge and cluster halves the auxiliary columns; where no callee can share
//!   the cluster, `u` is replaced by a constant coefficient on `x`;
//! - balance: `U ≥ cpu_c(x) / capacity_c` for every cluster;
//! - energy, cost and movement are linear in `x`.
//!
//! Tie-breaking and symmetry: every `x[s,c]` carries an extra cost of
//! `TIE × c / clusters`, so among equally good answers the one using
//! clusters earlier in name order wins, and identical clusters are no
//! longer interchangeable for the branch-and-bound.
//!
//! A warm start (first-fit or the current placement, whichever is feasible
//! and better) is passed to HiGHS, so a time-limited solve is never worse
//! than that start.

use std::collections::{BTreeMap, BTreeSet};

use good_lp::solvers::highs::highs;
use good_lp::{Constraint, Expression, ProblemVariables, SolverModel, Variable, variable};

use super::check::{Assignment, carbon, cost};
use super::instance::Instance;
use super::model::{LatencyClass, Weights};
use super::mps;
use super::solver::{self, Failure, Solved};

/// Tie-break cost per `x` column, scaled by the cluster's rank. Small
/// enough to stay far below any real term (1000 services add at most 0.001).
pub(crate) const TIE: f64 = 1e-6;

/// One traffic column per (caller, callee, cluster) instead of per
/// (caller, cluster): more columns, tighter LP relaxation.
const PER_CALLEE: bool = true;

/// Models up to this many columns skip presolve (see `solver::solve`).
const SMALL_MODEL_COLUMNS: usize = 2000;

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// An x column with the cluster it stands for.
type Col = (usize, Variable);

/// Which constraint families to include (diagnosis drops some).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Families {
    pub capacity: bool,
    pub latency: bool,
}

pub(crate) const ALL: Families = Families {
    capacity: true,
    latency: true,
};

/// Where each column sits, to write warm starts and read answers.
struct Layout {
    /// Column index of x[rep][c].
    x: Vec<Vec<Option<usize>>>,
    /// Per column: `None` for an x column, else how to derive its value.
    aux: Vec<Option<Aux>>,
    reps: Vec<usize>,
}

enum Aux {
    /// u[rep, c] = max(0, Σ w (x[rep,c] − x[callee,c])).
    Traffic {
        rep: usize,
        c: usize,
        /// `None`: all callees of `rep` (aggregated form).
        callee: Option<usize>,
    },
    Balance,
    /// The constant column (always 1).
    One,
}

struct Cols {
    vars: ProblemVariables,
    n: usize,
}

impl Cols {
    fn add(&mut self, def: good_lp::VariableDefinition) -> (Variable, usize) {
        let v = self.vars.add(def);
        self.n += 1;
        (v, self.n - 1)
    }
}

/// Representative (first group member) of each service.
pub(crate) fn representatives(inst: &Instance<'_>) -> Vec<usize> {
    (0..inst.n_services())
        .map(|s| inst.group_of[s].map_or(s, |g| inst.groups[g][0]))
        .collect()
}

/// Aggregated traffic weight from each representative to the others.
fn callee_weights(inst: &Instance<'_>, rep: &[usize]) -> Vec<BTreeMap<usize, f64>> {
    let mut out = vec![BTreeMap::new(); inst.n_services()];
    for e in &inst.edges {
        let (a, b) = (rep[e.caller], rep[e.callee]);
        if a != b && e.traffic > 0.0 {
            *out[a].entry(b).or_insert(0.0) += e.traffic;
        }
    }
    out
}

// Rows and columns are indexed by cluster across several parallel tables
// (`xv`, `inst.capacity`, `inst.latency`); index loops read clearer here.
#[allow(clippy::needless_range_loop)]
fn formulate(
    inst: &Instance<'_>,
    w: &Weights,
    fam: Families,
    fixed: Option<&Fixed<'_>>,
) -> Formulation {
    let (ns, nc) = (inst.n_services(), inst.n_clusters());
    let rep = representatives(inst);
    let reps: Vec<usize> = (0..ns).filter(|&s| rep[s] == s).collect();
    let members = |r: usize| -> Vec<usize> {
        inst.group_of[r].map_or_else(|| vec![r], |g| inst.groups[g].clone())
    };
    let mut cols = Cols {
        vars: ProblemVariables::new(),
        n: 0,
    };
    let mut xv: Vec<Vec<Option<Variable>>> = vec![vec![None; nc]; ns];
    let mut xi: Vec<Vec<Option<usize>>> = vec![vec![None; nc]; ns];
    let mut aux = Vec::new();
    let mut objective = Expression::default();
    // Demand of each representative's group: cpu, memory, gpu.
    let mut dem = vec![[0.0f64; 3]; ns];
    for &r in &reps {
        let m = members(r);
        for &t in &m {
            let d = inst.demand[t];
            dem[r][0] += d.cpu;
            dem[r][1] += d.memory;
            dem[r][2] += d.gpu;
        }
        let pinned = fixed.filter(|f| !f.free[r]).map(|f| &f.assignment[r]);
        for c in 0..nc {
            if !inst.group_eligible(r, c) || pinned.is_some_and(|p| !p.contains(&c)) {
                continue;
            }
            // A unit outside the neighbourhood keeps its clusters: its
            // columns are constants (HiGHS's presolve folds them in).
            let def = if pinned.is_some() {
                variable().clamp(1.0, 1.0)
            } else {
                variable().binary()
            };
            let (v, i) = cols.add(def);
            aux.push(None);
            xv[r][c] = Some(v);
            xi[r][c] = Some(i);
            let mut coef = TIE * c as f64 / nc as f64;
            for &t in &m {
                let cpu = inst.demand[t].cpu;
                coef += w.energy * carbon(inst, c) * cpu + w.cost * cost(inst, c) * cpu;
                if inst.current[t].contains(&c) {
                    coef -= w.movement;
                }
            }
            objective.add_mul(coef, v);
        }
    }
    // Movement is Σ (|current| − chosen current clusters): the constant part
    // goes in as a column fixed at 1, so that HiGHS's relative gap is
    // measured against the true objective (HiGHS drops expression constants).
    let lost_if_all_move: f64 =
        (0..ns).map(|s| inst.current[s].len() as f64).sum::<f64>() * w.movement;
    if lost_if_all_move > 0.0 {
        let (one, _) = cols.add(variable().clamp(1.0, 1.0));
        aux.push(Some(Aux::One));
        objective.add_mul(lost_if_all_move, one);
    }
    let mut constraints = Vec::new();
    for &r in &reps {
        let sum: Expression = xv[r].iter().flatten().copied().sum();
        constraints.push(sum.eq(inst.k[r] as f64));
    }

    if fam.capacity {
        for c in 0..nc {
            let cap = inst.capacity[c];
            // Memory rows in GiB: byte-sized coefficients (1e9) next to
            // CPU-sized ones (1e-1) hurt HiGHS's numerics.
            let scale = [1.0, 1.0 / GIB, 1.0];
            for (res, limit) in [cap.cpu, cap.memory, cap.gpu].into_iter().enumerate() {
                let limit = limit * scale[res];
                let terms: Vec<(f64, Variable)> = reps
                    .iter()
                    .filter_map(|&r| xv[r][c].map(|v| (dem[r][res] * scale[res], v)))
                    .filter(|(d, _)| *d > 0.0)
                    .collect();
                let most: f64 = terms.iter().map(|t| t.0).sum();
                if most > limit + 1e-9 {
                    let mut e = Expression::default();
                    for (d, v) in terms {
                        e.add_mul(d, v);
                    }
                    constraints.push(e.leq(limit));
                }
            }
        }
    }

    if fam.latency {
        let mut seen = BTreeSet::new();
        for e in &inst.edges {
            let (a, b) = (rep[e.caller], rep[e.callee]);
            if e.class == LatencyClass::BestEffort || a == b || !seen.insert((a, b, e.class)) {
                continue;
            }
            for c in 0..nc {
                let Some(xa) = xv[a][c] else { continue };
                let (reach, blocked): (Vec<Col>, Vec<Col>) = (0..nc)
                    .filter_map(|d| xv[b][d].map(|v| (d, v)))
                    .partition(|&(d, _)| inst.allowed(e.class, c, d));
                if blocked.is_empty() {
                    continue;
                }
                // With k_b = 1, `x[a,c] ≤ Σ_reach x[b,d]` equals
                // `x[a,c] + Σ_blocked x[b,d] ≤ 1`; use the shorter row.
                if inst.k[b] == 1 && blocked.len() < reach.len() {
                    let lhs: Expression = blocked.into_iter().map(|p| p.1).sum::<Expression>() + xa;
                    constraints.push(lhs.leq(1.0));
                } else {
                    let rhs: Expression = reach.into_iter().map(|p| p.1).sum();
                    constraints.push(Expression::from(xa).leq(rhs));
                }
            }
        }
    }

    if w.traffic > 0.0 {
        let weights = callee_weights(inst, &rep);
        for &a in &reps {
            if weights[a].is_empty() {
                continue;
            }
            let blocks: Vec<Vec<(usize, f64)>> = if PER_CALLEE {
                weights[a].iter().map(|(&b, &wb)| vec![(b, wb)]).collect()
            } else {
                vec![weights[a].iter().map(|(&b, &wb)| (b, wb)).collect()]
            };
            for c in 0..nc {
                let Some(xa) = xv[a][c] else { continue };
                for block in &blocks {
                    let total: f64 = block.iter().map(|p| p.1).sum();
                    let local: Vec<(f64, Variable)> = block
                        .iter()
                        .filter_map(|&(b, wb)| xv[b][c].map(|v| (wb, v)))
                        .collect();
                    if local.is_empty() {
                        // No callee can join a here: the traffic is a constant of x.
                        objective.add_mul(w.traffic * total, xa);
                        continue;
                    }
                    let (u, _) = cols.add(variable().min(0.0));
                    let callee = if PER_CALLEE { Some(block[0].0) } else { None };
                    aux.push(Some(Aux::Traffic { rep: a, c, callee }));
                    let mut rhs = Expression::default();
                    rhs.add_mul(total, xa);
                    for (wb, v) in local {
                        rhs.add_mul(-wb, v);
                    }
                    constraints.push(Expression::from(u).geq(rhs));
                    objective.add_mul(w.traffic, u);
                }
            }
        }
    }

    if w.balance > 0.0 {
        let (u, _) = cols.add(variable().min(0.0));
        aux.push(Some(Aux::Balance));
        objective.add_mul(w.balance, u);
        for c in 0..nc {
            let cap = inst.capacity[c].cpu;
            if cap <= 1e-9 {
                continue;
            }
            let mut e = Expression::default();
            let mut any = false;
            for &r in &reps {
                if let Some(v) = xv[r][c]
                    && dem[r][0] > 0.0
                {
                    e.add_mul(dem[r][0] / cap, v);
                    any = true;
                }
            }
            if any {
                constraints.push(e.leq(u));
            }
        }
        // Valid cuts: the maximum is at least each group's own share of the
        // cluster it lands on. The per-cluster rows alone let the LP spread
        // groups thinly and see almost no imbalance; these rows close part
        // of that gap (measured: fleet of 200 five-service graphs 16.3 s
        // without these rows, 11.1 s with them).
        for &r in &reps {
            let mut e = Expression::default();
            let mut any = false;
            for c in 0..nc {
                let cap = inst.capacity[c].cpu;
                if let Some(v) = xv[r][c]
                    && cap > 1e-9
                    && dem[r][0] > 0.0
                {
                    e.add_mul(dem[r][0] / cap, v);
                    any = true;
                }
            }
            if any && inst.k[r] == 1 {
                constraints.push(e.leq(u));
            }
        }
    }

    Formulation {
        vars: cols.vars,
        objective,
        constraints,
        layout: Layout { x: xi, aux, reps },
    }
}

/// A neighbourhood search's model: units (by representative) outside
/// `free` keep their clusters in `assignment`.
pub(crate) struct Fixed<'a> {
    pub assignment: &'a Assignment,
    pub free: Vec<bool>,
}

/// The model as good_lp parts, before it is handed to a solver.
struct Formulation {
    vars: ProblemVariables,
    objective: Expression,
    constraints: Vec<Constraint>,
    layout: Layout,
}

fn build(
    inst: &Instance<'_>,
    w: &Weights,
    fam: Families,
    fixed: Option<&Fixed<'_>>,
) -> (good_lp::solvers::highs::HighsProblem, Layout) {
    let f = formulate(inst, w, fam, fixed);
    let mut problem = f.vars.minimise(f.objective).using(highs);
    for c in f.constraints {
        problem.add_constraint(c);
    }
    (problem, f.layout)
}

/// The exact model [`solve`] hands to HiGHS (every family), as free MPS.
/// Columns are named `x_s<service>_c<cluster>` (a co-location group's
/// first member stands for the group), `u_s<caller>_c<cluster>_t<callee>`
/// (traffic leaving the cluster), `balance` and `one` (fixed at 1, carries
/// the constant part of the movement cost); a comment header maps indices
/// to names. The objective is smo's objective plus the tie-break costs
/// (under `TIE` per chosen column).
pub(crate) fn export_mps(inst: &Instance<'_>, w: &Weights) -> String {
    let f = formulate(inst, w, ALL, None);
    let columns = f.layout.column_names();
    let mut out = String::from("* smo placement model (see `smo bench placement --help`)\n");
    for (s, svc) in inst.problem.services.iter().enumerate() {
        out.push_str(&format!("* service s{s} = {}\n", svc.id));
    }
    for (c, &i) in inst.order.iter().enumerate() {
        out.push_str(&format!(
            "* cluster c{c} = {}\n",
            inst.problem.clusters[i].name
        ));
    }
    out.push_str(&mps::write(&mps::Model {
        name: "smo-placement",
        vars: &f.vars,
        columns: &columns,
        objective: &f.objective,
        constraints: &f.constraints,
    }));
    out
}

/// A solution of the [`export_mps`] model, as `name value` lines (the
/// columns of assignment `a`), for a solver's start.
pub(crate) fn export_start(inst: &Instance<'_>, w: &Weights, a: &Assignment) -> String {
    let f = formulate(inst, w, ALL, None);
    let names = f.layout.column_names();
    let values = f.layout.warm_start(inst, a);
    names
        .iter()
        .zip(values)
        .map(|(n, v)| format!("{n} {v}\n"))
        .collect()
}

impl Layout {
    /// One name per column, in column order (see [`export_mps`]).
    fn column_names(&self) -> Vec<String> {
        let mut names = vec![String::new(); self.aux.len()];
        for (s, row) in self.x.iter().enumerate() {
            for (c, i) in row.iter().enumerate() {
                if let Some(i) = i {
                    names[*i] = format!("x_s{s}_c{c}");
                }
            }
        }
        for (i, aux) in self.aux.iter().enumerate() {
            names[i] = match aux {
                None => continue,
                Some(Aux::Traffic { rep, c, callee }) => match callee {
                    Some(b) => format!("u_s{rep}_c{c}_t{b}"),
                    None => format!("u_s{rep}_c{c}"),
                },
                Some(Aux::Balance) => "balance".into(),
                Some(Aux::One) => "one".into(),
            };
        }
        names
    }

    fn warm_start(&self, inst: &Instance<'_>, a: &Assignment) -> Vec<f64> {
        let rep = representatives(inst);
        let weights = callee_weights(inst, &rep);
        let mut cols = vec![0.0; self.aux.len()];
        for &r in &self.reps {
            for &c in &a[r] {
                if let Some(i) = self.x[r][c] {
                    cols[i] = 1.0;
                }
            }
        }
        let mut used = vec![0.0; inst.n_clusters()];
        for (s, cl) in a.iter().enumerate() {
            for &c in cl {
                used[c] += inst.demand[s].cpu;
            }
        }
        for (i, aux) in self.aux.iter().enumerate() {
            let Some(aux) = aux else { continue };
            cols[i] = match aux {
                Aux::Traffic { rep, c, callee } => {
                    if !a[*rep].contains(c) {
                        0.0
                    } else {
                        weights[*rep]
                            .iter()
                            .filter(|(b, _)| callee.is_none_or(|x| x == **b) && !a[**b].contains(c))
                            .map(|(_, wb)| wb)
                            .sum()
                    }
                }
                Aux::One => 1.0,
                Aux::Balance => used
                    .iter()
                    .zip(&inst.capacity)
                    .filter(|(_, cap)| cap.cpu > 1e-9)
                    .map(|(u, cap)| u / cap.cpu)
                    .fold(0.0, f64::max),
            };
        }
        cols
    }

    fn extract(&self, inst: &Instance<'_>, cols: &[f64]) -> Assignment {
        let mut a: Assignment = vec![Vec::new(); inst.n_services()];
        for &r in &self.reps {
            let chosen: Vec<usize> = (0..inst.n_clusters())
                .filter(|&c| self.x[r][c].is_some_and(|i| cols[i] > 0.5))
                .collect();
            match inst.group_of[r] {
                Some(g) => {
                    for &t in &inst.groups[g] {
                        a[t] = chosen.clone();
                    }
                }
                None => a[r] = chosen,
            }
        }
        a
    }
}

/// Solves the model; returns the assignment, solver stats and build time.
pub(crate) fn solve(
    inst: &Instance<'_>,
    w: &Weights,
    fam: Families,
    time_limit_s: f64,
    mip_gap: f64,
    warm: Option<&Assignment>,
) -> Result<(Assignment, Solved, u64), Failure> {
    solve_fixed(inst, w, fam, None, time_limit_s, mip_gap, warm)
}

/// [`solve`] with the units outside a neighbourhood kept where they are.
pub(crate) fn solve_fixed(
    inst: &Instance<'_>,
    w: &Weights,
    fam: Families,
    fixed: Option<&Fixed<'_>>,
    time_limit_s: f64,
    mip_gap: f64,
    warm: Option<&Assignment>,
) -> Result<(Assignment, Solved, u64), Failure> {
    let t0 = std::time::Instant::now();
    let (problem, layout) = build(inst, w, fam, fixed);
    let start = warm.map(|a| layout.warm_start(inst, a));
    let build_ms = t0.elapsed().as_millis() as u64;
    let deadline = t0 + std::time::Duration::from_secs_f64(time_limit_s.max(0.01));
    let small = layout.aux.len() <= SMALL_MODEL_COLUMNS;
    let mut solved = solver::solve_until(problem, deadline, mip_gap, start.as_deref(), small)?;
    // The bound covers the tie-break costs too; each chosen column adds at
    // most TIE, so the true objective's bound is lower by at most this.
    let ties: usize = layout.reps.iter().map(|&r| inst.k[r]).sum();
    solved.bound = solved.bound.map(|b| b - TIE * ties as f64);
    let a = layout.extract(inst, &solved.columns);
    Ok((a, solved, build_ms))
}
