//! Errors of the placement engine. An infeasible graph is always an error
//! that names what cannot be met; no partial placement is ever returned.

use thiserror::Error;

/// A reason, found before solving, why no placement can exist.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum Infeasibility {
    #[error("service {service} needs a GPU; no ready, schedulable cluster has a free GPU")]
    NoGpu { service: String },
    #[error("service {service} has no eligible cluster ({reasons})")]
    NoEligibleCluster { service: String, reasons: String },
    #[error(
        "graph demands {demand} {resource}, free {resource} in eligible clusters is {available}"
    )]
    Shortfall {
        resource: &'static str,
        demand: String,
        available: String,
    },
    #[error("{a} and {b} must be co-located but no cluster is eligible for both")]
    CoLocationNoCommonCluster { a: String, b: String },
    #[error(
        "{a} and {b} must be co-located but no cluster fits both (needs {needs} {resource}, best has {best})"
    )]
    CoLocationUnfit {
        a: String,
        b: String,
        resource: &'static str,
        needs: String,
        best: String,
    },
    #[error("ultralow latency between {a} and {b} is impossible: no cluster pair under 10 ms")]
    Ultralow { a: String, b: String },
    #[error(
        "low latency between {a} and {b} is impossible: no shared cluster and no cluster pair within {threshold_ms} ms"
    )]
    Low {
        a: String,
        b: String,
        threshold_ms: String,
    },
}

/// Errors of [`super::place`] and [`super::place_fleet`].
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PlacementError {
    /// The input itself is inconsistent (a bug in translation, not in the
    /// descriptor): duplicate ids, edges to unknown services, …
    #[error("invalid placement input: {0}")]
    InvalidInput(String),
    /// A pre-solve check proved the graph cannot be placed.
    #[error("{0}")]
    Infeasible(#[from] Infeasibility),
    /// The solver proved the model infeasible although every cheap check
    /// passed: the named constraint families interact.
    #[error(
        "no placement satisfies all constraints together (the solver proved it infeasible); \
         constraint families involved: {}; relax one of them (pins, co-location, latency classes) or free capacity",
        families.join(", ")
    )]
    SolverInfeasible { families: Vec<String> },
    /// First-fit (alone or as the fallback) found no cluster for a service.
    #[error("first-fit found no cluster for service {service}{}", if *after_timeout { " after the MILP hit its time limit without a feasible answer; raise the time limit" } else { "" })]
    FirstFitFailed {
        service: String,
        after_timeout: bool,
    },
    /// HiGHS failed for another reason.
    #[error("the MILP solver failed: {0}")]
    Solver(String),
    /// In a fleet, graph `graph` failed.
    #[error("graph {graph}: {source}")]
    Graph {
        graph: String,
        #[source]
        source: Box<PlacementError>,
    },
}
