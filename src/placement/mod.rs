//! Placement engine: decides on which member cluster(s) each service of a
//! graph runs. Pure code: no I/O, no clock other than the solver's own time
//! limit and the reported timings.
//!
//! Entry points: [`place`] for one graph, [`place_fleet`] for every graph
//! of the desired state on shared clusters (see [`fleet`]).
//!
//! Pipeline of [`place`]: index the problem ([`instance`]), run the cheap
//! infeasibility checks ([`precheck`]), run the strategy (`first-fit` or
//! `milp`, behind [`PlacementStrategy`]), verify the answer against every constraint
//! ([`check`]) — an answer that breaks one is an error, never returned — and
//! explain it ([`explain`]).
//!
//! Determinism: clusters are processed in name order and services in input
//! order; HiGHS runs single-threaded with a fixed model, so the same input
//! gives the same answer. The exceptions are time-bounded: a solve cut
//! short by the time limit, and the neighbourhood search ([`lns`]) that
//! graphs of 20 services or more get, where wall-clock time decides where
//! they stop (the answer is always valid; its quality, not its validity,
//! depends on machine speed). Ties go to the cluster earlier in name order.

mod anneal;
mod bounded;
mod check;
mod construct;
mod error;
mod exact;
mod explain;
mod first_fit;
mod fleet;
mod instance;
mod lns;
mod local;
mod milp;
mod model;
mod mps;
mod precheck;
mod ruin;
pub(crate) mod solver;
mod units;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_construct;
#[cfg(test)]
mod tests_fleet;
#[cfg(test)]
mod tests_mps;

pub use error::{Infeasibility, PlacementError};
pub use fleet::{FleetGraph, FleetModel, Room, make_room, place_fleet, place_fleet_models};
pub use model::*;

use check::{Assignment, effective_weights, evaluate, violation};
use instance::Instance;
use solver::{Failure, Finish};
use std::time::{Duration, Instant};

/// Share of the time limit kept back from the MILP for the local search on
/// its answer, verification and explanation (about 1-3 ms at 100 services;
/// at 1000 the overshoot reserve below dominates), so that the whole call
/// stays within the limit.
const POLISH_SHARE: f64 = 0.01;

/// HiGHS checks its time limit between LP solves, which take much longer on
/// bigger models: measured overshoot 1.0-1.7 s at 1000 services × 50
/// clusters (50,000 pairs) and 5-10 ms at 100 × 10 (1,000 pairs). The
/// reserve for it is linear plus quadratic in the pairs (LP time grows
/// faster than linearly): 5 ms + 0.8 ms at 1,000 pairs, 0.25 s + 2 s at
/// 50,000. Every ms counts at 100 × 10 and 0.3 s: HiGHS's bound improves
/// sharply after about 250 ms of solving (reported gap 0.53 → 0.16), which
/// a reserve of 35-55 ms missed.
const OVERSHOOT_PER_PAIR_S: f64 = 5e-6;
const OVERSHOOT_QUADRATIC_S: f64 = 2.0;
const OVERSHOOT_REF_PAIRS: f64 = 50_000.0;

/// Share of the time limit the local search on the warm start may use
/// (it normally stops well before: a few passes over the services).
const WARM_SEARCH_SHARE: f64 = 0.1;

/// Share of the time limit the constructive search may use. It normally
/// needs about one node per service (a few ms at 1000 services); the share
/// only bounds its backtracking on tight instances.
const CONSTRUCT_SHARE: f64 = 0.2;

/// Share of the time limit by which the annealing of the start ends at
/// the latest; it ends sooner when a round finds nothing better (see
/// [`anneal`]). On graphs the full model cannot close in time the
/// annealing is most of the answer's quality: on the 100 × 10 benchmark
/// graph at 0.3 s, 0.9 of the budget brings the answer half a point of
/// percentage closer to the optimum on average than 0.55 did. The MILP
/// then gets the rest, for its bound and a last improvement, and all of
/// it when the annealing settled early.
const ANNEAL_SHARE: f64 = 0.9;
/// The neighbourhood search after the annealing: until this share of the
/// time limit at the latest, and for at most [`LNS_SPAN`] of it (after the
/// annealing it seldom finds more, so it must not hold up the MILP).
const LNS_SHARE: f64 = 0.93;
const LNS_SPAN: f64 = 0.01;

/// Smaller graphs are solved whole (the MILP closes them quickly).
const LNS_MIN_SERVICES: usize = 20;

/// What a strategy hands back before verification and explanation.
pub(crate) struct Assigned {
    pub assignment: Assignment,
    pub status: SolveStatus,
    pub gap: Option<f64>,
    pub build_ms: u64,
    pub warnings: Vec<String>,
}

/// A way of choosing clusters. Implementations must return a complete
/// assignment satisfying every constraint, or an error.
pub(crate) trait PlacementStrategy {
    fn kind(&self) -> StrategyKind;
    fn assign(
        &self,
        inst: &Instance<'_>,
        opts: &PlacementOptions,
    ) -> Result<Assigned, PlacementError>;
}

struct FirstFit;

impl PlacementStrategy for FirstFit {
    fn kind(&self) -> StrategyKind {
        StrategyKind::FirstFit
    }

    /// The original heuristic; where it finds no cluster for a service
    /// (it ignores latency classes and never backtracks), the constructive
    /// search answers instead, with a warning, so that `first-fit` too has
    /// an answer whenever one exists. Its verdict of infeasibility is
    /// reported with the constraint families, as the MILP's is.
    fn assign(
        &self,
        inst: &Instance<'_>,
        opts: &PlacementOptions,
    ) -> Result<Assigned, PlacementError> {
        let failed = match first_fit::run(inst, false) {
            Ok(assignment) => {
                return Ok(Assigned {
                    assignment,
                    status: SolveStatus::Heuristic,
                    gap: None,
                    build_ms: 0,
                    warnings: Vec::new(),
                });
            }
            Err(e) => e,
        };
        let w = effective_weights(inst, opts);
        let deadline =
            Instant::now() + Duration::from_secs_f64(opts.time_limit_s.max(0.0) * CONSTRUCT_SHARE);
        match construct::search(inst, &w, deadline) {
            construct::Outcome::Found(assignment) => Ok(Assigned {
                assignment,
                status: SolveStatus::Heuristic,
                gap: None,
                build_ms: 0,
                warnings: vec![format!(
                    "{failed}; answered with the constructive search's placement instead"
                )],
            }),
            construct::Outcome::Infeasible => Err(PlacementError::SolverInfeasible {
                families: diagnose(inst, opts),
            }),
            construct::Outcome::GaveUp => Err(failed),
        }
    }
}

struct Milp {
    /// Solve small graphs by exact enumeration (see [`exact`]) instead of
    /// HiGHS; off only in tests that check the MILP formulation itself.
    enumerate: bool,
}

impl PlacementStrategy for Milp {
    fn kind(&self) -> StrategyKind {
        StrategyKind::Milp
    }

    fn assign(
        &self,
        inst: &Instance<'_>,
        opts: &PlacementOptions,
    ) -> Result<Assigned, PlacementError> {
        let started = Instant::now();
        let limit = opts.time_limit_s.max(0.0);
        let deadline = started + Duration::from_secs_f64(limit);
        let w = effective_weights(inst, opts);
        // Warm start: the best of first-fit, the greedy repair of the
        // current placement (the current placement itself when valid), the
        // cheapest-cluster greedy, the strict-latency-component greedy and
        // the constructive search, which finds a valid start whenever one
        // exists within its budget (and proves infeasibility when its
        // search space runs out).
        let ff = first_fit::first_fit(inst).ok();
        let kept = first_fit::keep_current(inst).ok();
        let cheap = first_fit::cheapest(inst, &w).ok();
        let strict = first_fit::strict_components(inst, &w).ok();
        let built = match construct::search(
            inst,
            &w,
            Instant::now() + Duration::from_secs_f64(limit * CONSTRUCT_SHARE),
        ) {
            construct::Outcome::Found(a) => Some(a),
            construct::Outcome::Infeasible => {
                return Err(PlacementError::SolverInfeasible {
                    families: diagnose(inst, opts),
                });
            }
            construct::Outcome::GaveUp => None,
        };
        let warm = [built, ff, kept, cheap, strict]
            .into_iter()
            .flatten()
            .min_by(|a, b| {
                evaluate(inst, &w, a)
                    .total
                    .total_cmp(&evaluate(inst, &w, b).total)
            });
        // No heuristic found a feasible point (long chains of strict
        // latency edges defeat greedy passes): spend up to a third of the
        // budget on the pure feasibility problem, whose first feasible
        // point is optimal, and start the real solve from it.
        let mut warm = warm
            .or_else(|| {
                milp::solve(inst, &NO_OBJECTIVE, milp::ALL, limit / 3.0, 1.0, None)
                    .ok()
                    .map(|r| r.0)
            })
            .filter(|a| violation(inst, a).is_none());
        // Polish the start: HiGHS then starts from a better incumbent, which
        // on large graphs is most of the answer's quality.
        if let Some(wa) = warm.as_mut() {
            let until = Instant::now() + Duration::from_secs_f64(limit * WARM_SEARCH_SHARE);
            local::improve(inst, &w, wa, until);
            if self.enumerate
                && let Some(best) = exact::solve(inst, &w, wa)
            {
                return Ok(Assigned {
                    assignment: best,
                    status: SolveStatus::Optimal,
                    gap: Some(0.0),
                    build_ms: 0,
                    warnings: Vec::new(),
                });
            }
        }
        // Annealing, then a large-neighbourhood search on the start: most
        // of the answer's quality on graphs the full model cannot close in
        // time.
        if let Some(wa) = warm.as_mut()
            && inst.n_services() >= LNS_MIN_SERVICES
        {
            let until = started + Duration::from_secs_f64(limit * ANNEAL_SHARE);
            let a = anneal::improve(inst, &w, wa, until);
            tracing::debug!(
                rounds = a.rounds,
                moves = a.moves,
                accepted = a.accepted,
                start = a.start,
                end = a.end,
                "annealed"
            );
            let until = (started + Duration::from_secs_f64(limit * LNS_SHARE))
                .min(Instant::now() + Duration::from_secs_f64(limit * LNS_SPAN));
            local::improve(inst, &w, wa, until);
            lns::improve(inst, &w, wa, until);
        }
        let pairs = (inst.n_services() * inst.n_clusters()) as f64;
        let reserve = Duration::from_secs_f64(
            (limit * POLISH_SHARE
                + pairs * OVERSHOOT_PER_PAIR_S
                + OVERSHOOT_QUADRATIC_S * (pairs / OVERSHOOT_REF_PAIRS).powi(2))
            .min(limit / 2.0),
        );
        let time_left = (deadline
            .checked_sub(reserve)
            .unwrap_or(deadline)
            .saturating_duration_since(Instant::now()))
        .as_secs_f64()
        .max(0.01);
        match milp::solve(inst, &w, milp::ALL, time_left, opts.mip_gap, warm.as_ref()) {
            Ok((a, solved, build_ms)) => {
                let mut warnings = Vec::new();
                let mut assignment = a;
                // HiGHS keeps the warm start as incumbent, so this only
                // matters if it rejected the start; never answer worse.
                if let Some(wa) = warm
                    && evaluate(inst, &w, &wa).total + 1e-9 < evaluate(inst, &w, &assignment).total
                {
                    warnings.push(
                        "solver answer was worse than its warm start; kept the warm start".into(),
                    );
                    assignment = wa;
                }
                let mut gap = solved.gap;
                if solved.finish != Finish::Optimal && violation(inst, &assignment).is_none() {
                    local::improve(inst, &w, &mut assignment, deadline);
                }
                if solved.finish != Finish::Optimal {
                    // Same definition as HiGHS's gap, for the final answer
                    // (improved or not), against the better of HiGHS's
                    // proven bound and the separable bound (the only one
                    // when HiGHS was cut off before its root bound).
                    let obj = evaluate(inst, &w, &assignment).total;
                    let bounds = solved.bound.into_iter();
                    for b in bounds.chain([check::separable_bound(inst, &w)]) {
                        if obj.abs() > 1e-9 {
                            gap = gap.min(((obj - b) / obj.abs()).max(0.0));
                        }
                    }
                }
                let status = match solved.finish {
                    Finish::Optimal => SolveStatus::Optimal,
                    Finish::GapLimit => SolveStatus::GapLimit,
                    Finish::TimeLimit => {
                        warnings.push(format!(
                            "time limit of {}s reached; answer within {:.1}% of optimal",
                            opts.time_limit_s,
                            gap * 100.0
                        ));
                        SolveStatus::TimeLimit
                    }
                };
                Ok(Assigned {
                    assignment,
                    status,
                    gap: Some(gap),
                    build_ms,
                    warnings,
                })
            }
            Err(Failure::Infeasible) => Err(PlacementError::SolverInfeasible {
                families: diagnose(inst, opts),
            }),
            // The warm start is valid (checked above before polishing):
            // HiGHS found nothing better in time, the start is the answer.
            Err(Failure::NoSolutionInTime) if warm.is_some() => Ok(Assigned {
                assignment: warm.unwrap_or_default(),
                status: SolveStatus::Heuristic,
                gap: None,
                build_ms: 0,
                warnings: vec![format!(
                    "MILP found no feasible answer within {}s; answered with the heuristic searches' placement",
                    opts.time_limit_s
                )],
            }),
            Err(Failure::NoSolutionInTime) => {
                let assignment = first_fit::run(inst, true)?;
                Ok(Assigned {
                    assignment,
                    status: SolveStatus::Heuristic,
                    gap: None,
                    build_ms: 0,
                    warnings: vec![format!(
                        "MILP found no feasible answer within {}s; fell back to first-fit",
                        opts.time_limit_s
                    )],
                })
            }
            Err(Failure::Other(m)) => Err(PlacementError::Solver(m)),
        }
    }
}

/// Every weight zero: the pure feasibility problem, whose first feasible
/// point is optimal.
const NO_OBJECTIVE: Weights = Weights {
    movement: 0.0,
    traffic: 0.0,
    energy: 0.0,
    cost: 0.0,
    balance: 0.0,
};

/// Names the constraint families of an infeasible model: a family counts as
/// involved when dropping it makes the model feasible; if no single family
/// does, all present ones are named.
fn diagnose(inst: &Instance<'_>, opts: &PlacementOptions) -> Vec<String> {
    let limit = opts.time_limit_s.min(2.0);
    let feasible_without = |fam| milp::solve(inst, &NO_OBJECTIVE, fam, limit, 1.0, None).is_ok();
    let has_latency = inst
        .edges
        .iter()
        .any(|e| e.class != LatencyClass::BestEffort);
    let mut out = vec!["exactly k clusters per service".to_string()];
    if inst.problem.services.iter().any(|s| !s.pinned.is_empty()) {
        out.push("pins".into());
    }
    if !inst.groups.is_empty() {
        out.push("co-location".into());
    }
    let cap = feasible_without(milp::Families {
        capacity: false,
        latency: true,
    });
    let lat = has_latency
        && feasible_without(milp::Families {
            capacity: true,
            latency: false,
        });
    if cap || !lat {
        out.push("capacity (CPU, memory, GPU)".into());
    }
    if has_latency && (lat || !cap) {
        out.push("latency classes".into());
    }
    out
}

/// The full placement model of one graph, exactly as the `milp` strategy
/// hands it to HiGHS, in free MPS format (see [`milp::export_mps`]). The
/// model's optimum is the best answer [`place`] can give, plus tie-break
/// costs below 1e-6 per chosen service copy.
pub fn export_mps(
    problem: &PlacementProblem,
    opts: &PlacementOptions,
) -> Result<String, PlacementError> {
    export_mps_on(problem, opts, None)
}

/// [`export_mps`] with each cluster's capacity given, as a fleet places a
/// graph (see [`place_fleet_models`]).
pub fn export_mps_on(
    problem: &PlacementProblem,
    opts: &PlacementOptions,
    capacity: Option<&[[f64; 3]]>,
) -> Result<String, PlacementError> {
    let inst = Instance::with_capacity(problem, opts, capacity)?;
    let w = effective_weights(&inst, opts);
    Ok(milp::export_mps(&inst, &w))
}

/// An answer of [`place`] as a start for the [`export_mps`] model
/// (`name value` lines).
pub fn export_start(
    problem: &PlacementProblem,
    opts: &PlacementOptions,
    outcome: &PlacementOutcome,
) -> Result<String, PlacementError> {
    let inst = Instance::with_capacity(problem, opts, None)?;
    let w = effective_weights(&inst, opts);
    let mut a: Assignment = vec![Vec::new(); inst.n_services()];
    for placed in &outcome.services {
        let Some(s) = problem.services.iter().position(|s| s.id == placed.id) else {
            continue;
        };
        a[s] = placed
            .clusters
            .iter()
            .filter_map(|n| inst.names.iter().position(|m| m == n))
            .collect();
    }
    Ok(milp::export_start(&inst, &w, &a))
}

/// Places one graph.
pub fn place(
    problem: &PlacementProblem,
    opts: &PlacementOptions,
) -> Result<PlacementOutcome, PlacementError> {
    place_with(problem, opts, true)
}

/// [`place`], with the exact enumeration of small graphs switchable (tests
/// turn it off to check the MILP itself against brute force).
pub(crate) fn place_with(
    problem: &PlacementProblem,
    opts: &PlacementOptions,
    enumerate: bool,
) -> Result<PlacementOutcome, PlacementError> {
    place_inner(problem, opts, enumerate, None)
}

/// [`place`] with the capacity of each cluster (in `problem.clusters`
/// order, `[cpu, memory bytes, gpus]`) given, the graph's own current
/// usage already included: the fleet planner keeps this account itself.
pub(crate) fn place_on(
    problem: &PlacementProblem,
    opts: &PlacementOptions,
    capacity: &[[f64; 3]],
) -> Result<PlacementOutcome, PlacementError> {
    place_inner(problem, opts, true, Some(capacity))
}

fn place_inner(
    problem: &PlacementProblem,
    opts: &PlacementOptions,
    enumerate: bool,
    capacity: Option<&[[f64; 3]]>,
) -> Result<PlacementOutcome, PlacementError> {
    let t0 = Instant::now();
    let inst = Instance::with_capacity(problem, opts, capacity)?;
    precheck::check(&inst)?;
    let strategy: &dyn PlacementStrategy = match opts.strategy {
        StrategyKind::Milp => &Milp { enumerate },
        StrategyKind::FirstFit => &FirstFit,
    };
    let assigned = strategy.assign(&inst, opts)?;
    let solve_done = t0.elapsed().as_millis() as u64;
    if let Some(v) = violation(&inst, &assigned.assignment) {
        return Err(PlacementError::Solver(format!(
            "internal error: the answer breaks a constraint: {v}"
        )));
    }
    let w = effective_weights(&inst, opts);
    let objective = evaluate(&inst, &w, &assigned.assignment);
    let services = explain::explain(&inst, &assigned.assignment, &objective, strategy.kind());
    Ok(PlacementOutcome {
        strategy: strategy.kind(),
        services,
        objective,
        solve: SolveStats {
            status: assigned.status,
            millis: solve_done,
            build_millis: assigned.build_ms,
            solve_millis: solve_done.saturating_sub(assigned.build_ms),
            gap: assigned.gap,
        },
        warnings: assigned.warnings,
    })
}
