//! Scaling engine: replica counts for the services of one graph on one
//! cluster. Pure code, no I/O.
//!
//! Model, per service s: integer `r_s ∈ [min_s, max_s]` (the maximum is
//! enforced, unlike the original SMO), `alpha_s·r_s + beta_s ≥ rate_s`, and
//! `Σ cpu_s·r_s ≤ capacity`; minimise
//! `w_cpu · Σ cpu_s·r_s / capacity + w_change · Σ |r_s − current_s| / Σ max_s`
//! (the original's weights 0.4/0.4 by default).
//!
//! Solution method: the services only interact through the capacity row.
//! Each service's cost is convex piecewise linear in `r_s`, so without the
//! capacity row its optimum is closed-form (see [`unconstrained`]). When the
//! sum of those optima fits, that is the exact optimum of the whole model —
//! the common case, and O(n). Only when capacity binds is the coupled model
//! solved as a MILP with HiGHS.
//!
//! Infeasibility (a rate above what `max` replicas serve, or minimum
//! replicas beyond capacity) is a distinct outcome asking for re-placement,
//! naming the service and the reason. Stabilisation of scale-downs lives in
//! [`stabilise`].

pub mod profile;
pub mod query;
pub mod stabilise;

#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;

use good_lp::solvers::highs::highs;
use good_lp::{Expression, ProblemVariables, SolverModel, variable};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::placement::solver::{self, Failure};

/// One service's capacity model and current state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScalingService {
    pub id: String,
    /// CPU cores per replica.
    pub cpu: f64,
    pub min_replicas: u32,
    pub max_replicas: u32,
    /// Requests per second one more replica serves.
    pub alpha: f64,
    pub beta: f64,
    /// Observed request rate.
    pub rate: f64,
    pub current_replicas: u32,
}

/// The services of one graph on one cluster and the CPU available to them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScalingProblem {
    pub services: Vec<ScalingService>,
    /// CPU cores available to these services on the cluster (free capacity
    /// plus what they use now).
    pub cpu_capacity: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ScalingOptions {
    /// Weight of normalised CPU.
    pub cpu_weight: f64,
    /// Weight of normalised replica change.
    pub change_weight: f64,
    /// Only used when capacity binds and the MILP runs.
    pub time_limit_s: f64,
}

impl Default for ScalingOptions {
    fn default() -> Self {
        // The original SMO's weights.
        ScalingOptions {
            cpu_weight: 0.4,
            change_weight: 0.4,
            time_limit_s: 5.0,
        }
    }
}

/// Replicas chosen per service (input order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScalingDecision {
    pub replicas: Vec<u32>,
    pub objective: f64,
    /// Whether the capacity row bound and the MILP ran.
    pub capacity_bound: bool,
}

/// Why the services cannot be scaled where they are.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ReplacementReason {
    #[error(
        "service {service} needs {needed} replicas to serve {rate} req/s but maxReplicas is {max}; re-placement needed"
    )]
    RateAboveMax {
        service: String,
        needed: u64,
        rate: f64,
        max: u32,
    },
    #[error(
        "services need {needed:.2} CPU at their minimum replicas but {capacity:.2} is available; \
         re-placement needed (largest: {service})"
    )]
    Capacity {
        service: String,
        needed: f64,
        capacity: f64,
    },
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum ScalingError {
    /// Distinct outcome: the reconciler should re-place the graph.
    #[error(transparent)]
    NeedsReplacement(#[from] ReplacementReason),
    #[error("invalid scaling input for service {service}: {reason}")]
    InvalidInput { service: String, reason: String },
    #[error("the scaling solver failed: {0}")]
    Solver(String),
}

/// Smallest replica count satisfying `alpha·r + beta ≥ rate` and `r ≥ min`
/// (may exceed `max`; the caller decides). A tolerance of 1e-9 keeps a rate
/// exactly on the line from needing one more replica.
pub fn needed_replicas(s: &ScalingService) -> u64 {
    let need = ((s.rate - s.beta) / s.alpha - 1e-9).ceil();
    let need = if need.is_finite() && need > 0.0 {
        need as u64
    } else {
        0
    };
    need.max(u64::from(s.min_replicas))
}

/// Per-service optimum without the capacity row. The cost is
/// `a·r + b·|r − current|` with `a = w_cpu·cpu/C`, `b = w_change/Σmax`: above
/// the current count both terms grow, so never go higher than needed; below
/// it, going down saves `a` and costs `b` per replica, so go down to the
/// needed count only when `a > b` (ties keep the current count: less churn).
fn unconstrained(s: &ScalingService, need: u32, a: f64, b: f64) -> u32 {
    let cur = s.current_replicas.clamp(need, s.max_replicas);
    if a > b { need } else { cur }
}

/// Chooses replica counts for the services of one graph on one cluster.
pub fn scale(
    problem: &ScalingProblem,
    opts: &ScalingOptions,
) -> Result<ScalingDecision, ScalingError> {
    let cap = problem.cpu_capacity;
    let mut needs = Vec::with_capacity(problem.services.len());
    for s in &problem.services {
        let bad = |reason: &str| ScalingError::InvalidInput {
            service: s.id.clone(),
            reason: reason.into(),
        };
        if !(s.alpha.is_finite() && s.alpha > 0.0) {
            return Err(bad("alpha must be positive"));
        }
        if !(s.cpu.is_finite() && s.cpu >= 0.0 && s.rate.is_finite() && s.beta.is_finite()) {
            return Err(bad("cpu, rate and beta must be finite, cpu non-negative"));
        }
        if s.min_replicas > s.max_replicas {
            return Err(bad("minReplicas exceeds maxReplicas"));
        }
        let need = needed_replicas(s);
        if need > u64::from(s.max_replicas) {
            return Err(ReplacementReason::RateAboveMax {
                service: s.id.clone(),
                needed: need,
                rate: s.rate,
                max: s.max_replicas,
            }
            .into());
        }
        needs.push(need as u32);
    }
    let min_cpu = cpu_used(problem, &needs);
    if min_cpu > cap + 1e-9 {
        let largest = problem
            .services
            .iter()
            .zip(&needs)
            .max_by(|x, y| (x.0.cpu * f64::from(*x.1)).total_cmp(&(y.0.cpu * f64::from(*y.1))))
            .map(|x| x.0.id.clone())
            .unwrap_or_default();
        return Err(ReplacementReason::Capacity {
            service: largest,
            needed: min_cpu,
            capacity: cap,
        }
        .into());
    }
    let sum_max = max_replicas_sum(problem);
    let cap_norm = if cap > 1e-9 { cap } else { 1.0 };
    let b = opts.change_weight / sum_max;
    let replicas: Vec<u32> = problem
        .services
        .iter()
        .zip(&needs)
        .map(|(s, &n)| unconstrained(s, n, opts.cpu_weight * s.cpu / cap_norm, b))
        .collect();
    if cpu_used(problem, &replicas) <= cap + 1e-9 {
        let objective = objective(problem, opts, &replicas);
        return Ok(ScalingDecision {
            replicas,
            objective,
            capacity_bound: false,
        });
    }
    let replicas = coupled(problem, opts, &needs, cap_norm, b)?;
    let objective = objective(problem, opts, &replicas);
    Ok(ScalingDecision {
        replicas,
        objective,
        capacity_bound: true,
    })
}

/// CPU taken by `replicas` of each service.
fn cpu_used(problem: &ScalingProblem, replicas: &[u32]) -> f64 {
    problem
        .services
        .iter()
        .zip(replicas)
        .map(|(s, &r)| s.cpu * f64::from(r))
        .sum()
}

/// The change term's normaliser: the sum of the services' maxima (at
/// least 1).
fn max_replicas_sum(problem: &ScalingProblem) -> f64 {
    problem
        .services
        .iter()
        .map(|s| f64::from(s.max_replicas))
        .sum::<f64>()
        .max(1.0)
}

/// The objective of a replica vector (for reports and tests).
pub fn objective(problem: &ScalingProblem, opts: &ScalingOptions, replicas: &[u32]) -> f64 {
    let cap = if problem.cpu_capacity > 1e-9 {
        problem.cpu_capacity
    } else {
        1.0
    };
    let sum_max = max_replicas_sum(problem);
    let cpu = cpu_used(problem, replicas);
    let change: f64 = problem
        .services
        .iter()
        .zip(replicas)
        .map(|(s, &r)| (f64::from(r) - f64::from(s.current_replicas)).abs())
        .sum();
    opts.cpu_weight * cpu / cap + opts.change_weight * change / sum_max
}

/// The full MILP, used only when the capacity row binds.
fn coupled(
    problem: &ScalingProblem,
    opts: &ScalingOptions,
    needs: &[u32],
    cap: f64,
    b: f64,
) -> Result<Vec<u32>, ScalingError> {
    let mut vars = ProblemVariables::new();
    let mut objective = Expression::default();
    let mut capacity = Expression::default();
    let mut rs = Vec::new();
    let mut rows = Vec::new();
    for (s, &n) in problem.services.iter().zip(needs) {
        let r = vars.add(
            variable()
                .integer()
                .clamp(f64::from(n), f64::from(s.max_replicas)),
        );
        let d = vars.add(variable().min(0.0));
        let cur = f64::from(s.current_replicas);
        rows.push((Expression::from(d) - r).geq(-cur));
        rows.push((Expression::from(d) + r).geq(cur));
        objective.add_mul(opts.cpu_weight * s.cpu / cap, r);
        objective.add_mul(b, d);
        capacity.add_mul(s.cpu, r);
        rs.push(r);
    }
    let mut model = vars.minimise(objective).using(highs);
    for row in rows {
        model.add_constraint(row);
    }
    model.add_constraint(capacity.leq(problem.cpu_capacity));
    // Exact (gap 0): these models are small knapsacks.
    let solved =
        solver::solve(model, opts.time_limit_s, 0.0, None, false).map_err(|f| match f {
            Failure::Infeasible | Failure::NoSolutionInTime => {
                ScalingError::Solver(format!("{f:?}"))
            }
            Failure::Other(m) => ScalingError::Solver(m),
        })?;
    // r columns were added first of each (r, d) pair.
    Ok((0..rs.len())
        .map(|i| solved.columns[2 * i].round() as u32)
        .collect())
}
