//! The one place that talks to HiGHS (shared by placement and scaling).
//!
//! Models are built with good_lp, then handed to HiGHS through
//! `HighsProblem::try_into_inner` so that the model status and the MIP gap,
//! which good_lp's solution type hides, can be reported.
//!
//! HiGHS facts this module encodes: it keeps one thread pool per process and
//! errors when a later solve asks for a different non-zero thread count, so
//! every solve passes [`HIGHS_THREADS`]; a positive gap stops with an
//! "optimal" status and a non-zero `mip_gap` (success); a time limit without
//! a feasible point leaves no primal solution (an error for the caller).

use good_lp::solvers::highs::HighsProblem;
use highs::{HighsModelStatus, HighsOptionValue, HighsSolutionStatus};

use super::bounded;

/// One thread: deterministic, and this daemon runs on small (2-core)
/// machines where the reconciler and the HTTP endpoint need the other core.
pub(crate) const HIGHS_THREADS: i32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finish {
    Optimal,
    GapLimit,
    TimeLimit,
}

#[derive(Debug)]
pub(crate) struct Solved {
    pub finish: Finish,
    /// Relative gap (0 when proven optimal).
    pub gap: f64,
    /// HiGHS's proven lower bound on the model objective, when it has one.
    pub bound: Option<f64>,
    pub columns: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Failure {
    Infeasible,
    /// The limit struck before any feasible point was known.
    NoSolutionInTime,
    Other(String),
}

pub(crate) fn solve(
    problem: HighsProblem,
    time_limit_s: f64,
    mip_gap: f64,
    initial: Option<&[f64]>,
    small: bool,
) -> Result<Solved, Failure> {
    let deadline =
        std::time::Instant::now() + std::time::Duration::from_secs_f64(time_limit_s.max(0.001));
    solve_until(problem, deadline, mip_gap, initial, small)
}

/// Solves given up on past their limit and still running (see [`bounded`]).
static RUNAWAY: bounded::Runaway = bounded::Runaway::new();

/// [`solve`] with an absolute deadline for the whole call. HiGHS runs on
/// its own thread; still running [`bounded::grace`] past the deadline, it
/// is left to finish on its own and the call fails with
/// [`Failure::NoSolutionInTime`] (callers then answer with their start).
pub(crate) fn solve_until(
    problem: HighsProblem,
    deadline: std::time::Instant,
    mip_gap: f64,
    initial: Option<&[f64]>,
    small: bool,
) -> Result<Solved, Failure> {
    let initial = initial.map(<[f64]>::to_vec);
    let budget = deadline.saturating_duration_since(std::time::Instant::now());
    let grace = bounded::grace(budget);
    match bounded::run(&RUNAWAY, "highs", deadline, grace, move || {
        solve_here(problem, deadline, mip_gap, initial.as_deref(), small)
    }) {
        Ok(r) => r,
        Err(bounded::Refused::Abandoned | bounded::Refused::TooManyRunaway) => {
            Err(Failure::NoSolutionInTime)
        }
        Err(bounded::Refused::Panicked) => Err(Failure::Other("HiGHS solve panicked".into())),
        Err(bounded::Refused::NoThread(e)) => Err(Failure::Other(format!(
            "could not start a thread for HiGHS: {e}"
        ))),
    }
}

/// [`solve_until`] on the calling thread.
fn solve_here(
    problem: HighsProblem,
    deadline: std::time::Instant,
    mip_gap: f64,
    initial: Option<&[f64]>,
    small: bool,
) -> Result<Solved, Failure> {
    let mut model = problem
        .try_into_inner()
        .map_err(|e| Failure::Other(e.to_string()))?;
    set(&mut model, "threads", HIGHS_THREADS)?;
    // Measured from here, after the (sometimes costly) hand-over of the
    // model to HiGHS, so that the caller's wall-clock budget holds.
    let time_limit_s = deadline
        .saturating_duration_since(std::time::Instant::now())
        .as_secs_f64();
    set(&mut model, "time_limit", time_limit_s.max(0.001))?;
    set(&mut model, "mip_rel_gap", mip_gap.max(0.0))?;
    if small {
        // Measured on 5-service graphs over 50 clusters: presolve and the
        // feasibility-jump heuristic cost more than they save on models this
        // small (fleet of 20 graphs 1.6 s → 1.1 s), and a small cut pool
        // stops the separation rounds that took some graphs to 0.4 s with
        // thousands of cuts (40 graphs 2.2 s → 1.25 s, same answers).
        set(&mut model, "presolve", c"off")?;
        set(&mut model, "mip_heuristic_run_feasibility_jump", false)?;
        set(&mut model, "mip_pool_soft_limit", 20)?;
    }
    if let Some(cols) = initial {
        // A rejected warm start only costs speed, never correctness.
        let _ = model.try_set_solution(Some(cols), None, None, None);
    }
    let solved = model
        .try_solve()
        .map_err(|e| Failure::Other(format!("HiGHS failed: {e:?}")))?;
    let finish = match solved.status() {
        HighsModelStatus::Infeasible | HighsModelStatus::UnboundedOrInfeasible => {
            return Err(Failure::Infeasible);
        }
        HighsModelStatus::Optimal
        | HighsModelStatus::ObjectiveBound
        | HighsModelStatus::ObjectiveTarget => Finish::Optimal,
        HighsModelStatus::ReachedTimeLimit
        | HighsModelStatus::ReachedIterationLimit
        | HighsModelStatus::ReachedSolutionLimit
        | HighsModelStatus::ReachedInterrupt
        | HighsModelStatus::ReachedMemoryLimit => Finish::TimeLimit,
        other => return Err(Failure::Other(format!("HiGHS status {other:?}"))),
    };
    if solved.primal_solution_status() != HighsSolutionStatus::Feasible {
        return match finish {
            Finish::TimeLimit => Err(Failure::NoSolutionInTime),
            _ => Err(Failure::Other("HiGHS reported no feasible solution".into())),
        };
    }
    let raw_gap = solved.mip_gap();
    // An LP (no integer columns) reports an infinite gap; solved, it is
    // exact. Cut short by the limit before any bound existed (seen when a
    // large model gets little time), the gap is unknown: report 100% rather
    // than claim optimality.
    let gap = if raw_gap.is_finite() {
        raw_gap.max(0.0)
    } else if finish == Finish::TimeLimit {
        1.0
    } else {
        0.0
    };
    let finish = match finish {
        Finish::Optimal if gap > 1e-9 => Finish::GapLimit,
        f => f,
    };
    let bound = solved
        .double_info_value(c"mip_dual_bound")
        .ok()
        .filter(|b| b.is_finite());
    Ok(Solved {
        finish,
        gap,
        bound,
        columns: solved.get_solution().columns().to_vec(),
    })
}

fn set<V: HighsOptionValue>(model: &mut highs::Model, key: &str, value: V) -> Result<(), Failure> {
    model
        .try_set_option(key, value)
        .map_err(|_| Failure::Other(format!("HiGHS rejected option {key}")))
}
