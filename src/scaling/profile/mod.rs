//! Learning a service's capacity model from its history (`smo profile`).
//! Pure code, no I/O: the CLI reads three range queries from Prometheus
//! and hands their series here, each as `(unix seconds, value)` points.
//!
//! Observations: at every evaluation time present in all three queries,
//! the request rate, the replicas and the CPU cores the service used, each
//! summed over the series of its query (a service on several clusters has
//! one series per cluster). Times with no replica, or a non-finite value,
//! are dropped.
//!
//! Saturation criterion: an observation is saturated when the CPU used per
//! replica (`cpu / replicas`) is at least `saturation × cpu_request`, the
//! CPU one replica asks for (default 0.8 of the intent's cores). Only then
//! does the rate measure what the replicas *can* serve; below it, the rate
//! is whatever the clients sent. The least-squares line
//! `rate ≈ alpha·replicas + beta` through the saturated observations is
//! the capacity at saturation, the scaler's `alpha·replicas + beta ≥ rate`.
//!
//! Not enough data (every reason is reported, not only the first): fewer
//! saturated observations than required, fewer than two distinct replica
//! counts among them when there are some (a line needs two), or a fitted `alpha ≤ 0` (capacity
//! that does not grow with replicas is not a model the scaler can use).

pub mod fit;
pub mod report;
pub mod svg;

use fit::{Fit, least_squares};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// One series of a range query: `(unix seconds, value)` in time order.
pub type Points = Vec<(f64, f64)>;

/// A line needs two distinct x values.
pub const MIN_REPLICA_COUNTS: usize = 2;

/// One evaluation time of the three queries.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Observation {
    /// Unix seconds.
    pub time: f64,
    /// Requests per second.
    pub rate: f64,
    pub replicas: f64,
    /// CPU cores used by all replicas together.
    pub cpu: f64,
}

impl Observation {
    pub fn cpu_per_replica(&self) -> f64 {
        self.cpu / self.replicas
    }
}

/// When an observation counts as saturated, and how much data a fit needs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Criterion {
    /// Fraction of `cpu_request` one replica must use (e.g. 0.8).
    pub saturation: f64,
    /// CPU cores one replica asks for.
    pub cpu_request: f64,
    /// Fewest saturated observations a fit is made from.
    pub min_samples: usize,
}

impl Criterion {
    /// CPU cores per replica at and above which a replica is saturated.
    pub fn threshold(&self) -> f64 {
        self.saturation * self.cpu_request
    }

    pub fn is_saturated(&self, o: &Observation) -> bool {
        o.cpu_per_replica() >= self.threshold()
    }
}

/// Why no model is suggested.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Missing {
    #[error(
        "the {query} query returned no data in the window; check the query and the window (--since)"
    )]
    NoData { query: &'static str },
    #[error(
        "only {saturated} saturated sample(s) of {total} (at least {needed} needed): the service rarely used {threshold:.3} CPU cores per replica; profile a longer window (--since) or a busier period, or lower --saturation"
    )]
    TooFewSaturated {
        saturated: usize,
        total: usize,
        needed: usize,
        threshold: f64,
    },
    #[error(
        "the saturated samples show {seen} distinct replica count(s) {counts:?} (at least {needed} needed): the history must include saturation at different replica counts"
    )]
    TooFewReplicaCounts {
        seen: usize,
        counts: Vec<u32>,
        needed: usize,
    },
    #[error(
        "the fitted alpha is {alpha:.3} (not positive): in these samples capacity does not grow with replicas, so alpha·replicas + beta is no model for this service"
    )]
    NonPositiveAlpha { alpha: f64 },
}

/// What the history says about a service.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub observations: Vec<Observation>,
    /// Index into `observations` of the saturated ones.
    pub saturated: Vec<usize>,
    /// Distinct replica counts among the saturated observations.
    pub replica_counts: Vec<u32>,
    /// The least-squares line through the saturated observations, when
    /// one is determined (even when `missing` is not empty, for a plot).
    pub fit: Option<Fit>,
    /// Empty when `fit` is a usable suggestion.
    pub missing: Vec<Missing>,
}

impl Profile {
    /// A usable suggestion: a fit and nothing missing.
    pub fn suggestion(&self) -> Option<Fit> {
        self.fit.filter(|_| self.missing.is_empty())
    }
}

/// Sums each query's series per evaluation time and keeps the times all
/// three have, with a positive replica count and finite values. Times are
/// matched to the millisecond (the three range queries share start and
/// step, so Prometheus evaluates them at the same instants).
pub fn observations(rate: &[Points], replicas: &[Points], cpu: &[Points]) -> Vec<Observation> {
    let (rate, replicas, cpu) = (summed(rate), summed(replicas), summed(cpu));
    rate.iter()
        .filter_map(|(&key, &(time, r))| {
            let (_, n) = replicas.get(&key)?;
            let (_, c) = cpu.get(&key)?;
            let o = Observation {
                time,
                rate: r,
                replicas: *n,
                cpu: *c,
            };
            let finite = o.rate.is_finite() && o.replicas.is_finite() && o.cpu.is_finite();
            (finite && o.replicas > 0.0).then_some(o)
        })
        .collect()
}

/// Millisecond key → (time, sum of the values of every series then).
fn summed(series: &[Points]) -> BTreeMap<i64, (f64, f64)> {
    let mut sums: BTreeMap<i64, (f64, f64)> = BTreeMap::new();
    for &(time, value) in series.iter().flatten() {
        let entry = sums
            .entry((time * 1000.0).round() as i64)
            .or_insert((time, 0.0));
        entry.1 += value;
    }
    sums
}

/// Fits the capacity model on the saturated observations. `empty` names
/// the queries that returned no series at all (reported as such).
pub fn profile(
    observations: Vec<Observation>,
    criterion: &Criterion,
    empty: &[&'static str],
) -> Profile {
    let saturated: Vec<usize> = observations
        .iter()
        .enumerate()
        .filter(|(_, o)| criterion.is_saturated(o))
        .map(|(i, _)| i)
        .collect();
    let replica_counts: Vec<u32> = saturated
        .iter()
        .map(|&i| observations[i].replicas.round() as u32)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let points: Vec<(f64, f64)> = saturated
        .iter()
        .map(|&i| (observations[i].replicas, observations[i].rate))
        .collect();
    let fit = least_squares(&points);
    let mut missing: Vec<Missing> = empty
        .iter()
        .map(|&query| Missing::NoData { query })
        .collect();
    if saturated.len() < criterion.min_samples {
        missing.push(Missing::TooFewSaturated {
            saturated: saturated.len(),
            total: observations.len(),
            needed: criterion.min_samples,
            threshold: criterion.threshold(),
        });
    }
    // With no saturated sample at all, counting replica counts says
    // nothing the line above has not.
    if !saturated.is_empty() && replica_counts.len() < MIN_REPLICA_COUNTS {
        missing.push(Missing::TooFewReplicaCounts {
            seen: replica_counts.len(),
            counts: replica_counts.clone(),
            needed: MIN_REPLICA_COUNTS,
        });
    }
    if let Some(f) = fit.filter(|f| f.alpha <= 0.0)
        && missing.is_empty()
    {
        missing.push(Missing::NonPositiveAlpha { alpha: f.alpha });
    }
    Profile {
        observations,
        saturated,
        replica_counts,
        fit,
        missing,
    }
}

#[cfg(test)]
mod tests;
