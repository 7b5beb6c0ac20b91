//! Plain input and output types of the placement engine.
//!
//! The lead's intent translation fills these from descriptors and the
//! cluster inventory; nothing here parses YAML or Kubernetes quantities.
//! All types are serde-serialisable so `smo plan --format json` can print
//! the outcome directly (field names in camelCase).
//!
//! Units: CPU in cores (`f64`), memory in bytes (`u64`), GPUs as a count,
//! latency in milliseconds, carbon intensity in gCO2/kWh, cost in currency
//! units per CPU-hour.

use serde::{Deserialize, Serialize};

/// Latency quality of service of a connection edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LatencyClass {
    /// Both ends on clusters less than [`ULTRALOW_MS`] apart (or the same one).
    Ultralow,
    /// Same cluster, or a neighbour within `PlacementOptions::low_latency_ms`.
    Low,
    /// Anything, including pairs of unknown latency.
    BestEffort,
}

/// `ultralow` means strictly under this many milliseconds between the two
/// clusters; the NEPHELE information model defines the class this way.
pub const ULTRALOW_MS: f64 = 10.0;

/// A connection edge: `caller` calls `callee` (indices into
/// `PlacementProblem::services`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Edge {
    pub caller: usize,
    pub callee: usize,
    pub latency: LatencyClass,
    /// Relative traffic on this edge; 1.0 when the descriptor says nothing.
    #[serde(default = "one")]
    pub traffic: f64,
}

fn one() -> f64 {
    1.0
}

/// One service after intent translation.
///
/// Replica semantics: every cluster a service is placed on runs all of its
/// `replicas` (high availability places a full copy on a second cluster so
/// that either can serve alone), so capacity is charged `replicas ×` the
/// per-replica request on each chosen cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    pub id: String,
    /// CPU cores per replica.
    pub cpu: f64,
    /// Memory bytes per replica.
    pub memory_bytes: u64,
    /// Needs one GPU per replica.
    pub gpu: bool,
    pub replicas: u32,
    /// When non-empty the service may only run on these clusters.
    #[serde(default)]
    pub pinned: Vec<String>,
    /// Clusters it runs on now (empty for a new service).
    #[serde(default)]
    pub current: Vec<String>,
}

/// One member cluster as the inventory describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    pub name: String,
    pub ready: bool,
    pub schedulable: bool,
    /// Free CPU cores: allocatable − allocated − reserve. The graph's own
    /// current usage is counted as allocated here; the engine adds it back.
    pub free_cpu: f64,
    pub free_memory_bytes: u64,
    pub free_gpu: u32,
    /// gCO2/kWh.
    #[serde(default)]
    pub carbon_intensity: f64,
    /// Currency units per CPU-hour.
    #[serde(default)]
    pub cost_per_cpu_hour: f64,
    #[serde(default)]
    pub location: Option<String>,
}

/// Symmetric latency between clusters in milliseconds. Pairs not listed are
/// unknown (only `best-effort` edges may cross them); a cluster to itself is
/// always 0. When both directions are given the larger value counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyMatrix {
    pub entries: Vec<LatencyEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyEntry {
    pub from: String,
    pub to: String,
    pub ms: f64,
}

/// Graph-level intent flags that change the model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphFlags {
    /// Each service on 2 distinct clusters when at least 2 are eligible.
    pub high_availability: bool,
    /// Every edge of the graph becomes `ultralow`.
    pub high_performance: bool,
    /// Multiplies the energy weight by [`ENERGY_EFFICIENCY_FACTOR`].
    pub energy_efficiency: bool,
}

/// `energyEfficiency.enabled` multiplies the energy weight by this: large
/// enough that 100 gCO2/kWh on one core outweighs one cross-cluster edge
/// with default weights (0.002 × 4 × 100 = 0.8 > 0.5), small enough that
/// it does not override movement of a whole service by itself.
pub const ENERGY_EFFICIENCY_FACTOR: f64 = 4.0;

/// Everything the engine needs to place one graph.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlacementProblem {
    pub services: Vec<Service>,
    pub edges: Vec<Edge>,
    /// Groups of service indices that must share their cluster(s).
    #[serde(default)]
    pub co_location: Vec<Vec<usize>>,
    pub clusters: Vec<Cluster>,
    #[serde(default)]
    pub latency: LatencyMatrix,
    #[serde(default)]
    pub flags: GraphFlags,
}

/// Which strategy places the graph.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StrategyKind {
    #[default]
    Milp,
    FirstFit,
}

impl std::fmt::Display for StrategyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StrategyKind::Milp => "milp",
            StrategyKind::FirstFit => "first-fit",
        })
    }
}

/// Objective weights. One objective point is roughly "one service moved";
/// the other defaults are scaled to be comparable with it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Weights {
    /// Per service placement lost (a current cluster no longer chosen).
    pub movement: f64,
    /// Per unit of traffic on an edge whose ends are on different clusters.
    pub traffic: f64,
    /// Per gCO2/kWh × CPU core placed.
    pub energy: f64,
    /// Per currency-unit-per-hour × CPU core placed.
    pub cost: f64,
    /// Times the maximum share of a cluster's free CPU the graph takes (0..1).
    pub balance: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            movement: 1.0,
            traffic: 0.5,
            // 200 gCO2/kWh × 1 core = 0.4 points.
            energy: 0.002,
            // 0.04 per CPU-hour × 1 core = 0.4 points.
            cost: 10.0,
            balance: 1.0,
        }
    }
}

/// Tunables of one placement run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PlacementOptions {
    pub strategy: StrategyKind,
    pub weights: Weights,
    /// Wall-clock limit of the MILP solve, seconds.
    pub time_limit_s: f64,
    /// Relative MIP gap at which the solver may stop (0.01 = 1%).
    pub mip_gap: f64,
    /// A `low` edge may cross clusters at most this far apart (ms). 30 ms is
    /// a neighbouring region in the same continent on public backbones.
    pub low_latency_ms: f64,
}

impl Default for PlacementOptions {
    fn default() -> Self {
        PlacementOptions {
            strategy: StrategyKind::Milp,
            weights: Weights::default(),
            time_limit_s: 10.0,
            mip_gap: 0.01,
            low_latency_ms: 30.0,
        }
    }
}

/// One term of the objective: the raw quantity, its weight and the product.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Term {
    pub raw: f64,
    pub weight: f64,
    pub weighted: f64,
}

/// The objective of a placement broken down by term.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectiveBreakdown {
    pub total: f64,
    /// Raw: service placements lost relative to the current placement.
    pub movement: Term,
    /// Raw: traffic-weighted count of cross-cluster caller copies.
    pub traffic: Term,
    /// Raw: Σ gCO2/kWh × CPU cores.
    pub energy: Term,
    /// Raw: Σ cost per CPU-hour × CPU cores.
    pub cost: Term,
    /// Raw: maximum share of a cluster's free CPU taken by the graph.
    pub balance: Term,
}

/// How the answer was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SolveStatus {
    /// Proven optimal.
    Optimal,
    /// Within the configured relative gap.
    GapLimit,
    /// Best answer found when the time limit struck.
    TimeLimit,
    /// A heuristic answer (first-fit), no optimality claim.
    Heuristic,
}

impl std::fmt::Display for SolveStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SolveStatus::Optimal => "optimal",
            SolveStatus::GapLimit => "gap-limit",
            SolveStatus::TimeLimit => "time-limit",
            SolveStatus::Heuristic => "heuristic",
        })
    }
}

/// Solve statistics.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SolveStats {
    pub status: SolveStatus,
    /// Model building plus solving, milliseconds.
    pub millis: u64,
    pub build_millis: u64,
    pub solve_millis: u64,
    /// Relative MIP gap reported by the solver; `None` for heuristics.
    pub gap: Option<f64>,
}

/// Why a cluster was not chosen for a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rejection {
    pub cluster: String,
    pub reason: String,
    /// Objective change had the service gone there instead (eligible
    /// clusters only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<f64>,
}

/// Where one service goes and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePlacement {
    pub id: String,
    pub clusters: Vec<String>,
    /// Replicas on each chosen cluster.
    pub replicas: u32,
    /// CPU cores per replica.
    pub cpu: f64,
    pub memory_bytes: u64,
    pub gpu: bool,
    pub reason: String,
    pub rejected: Vec<Rejection>,
}

/// The answer for one graph: every service placed, never a partial answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlacementOutcome {
    pub strategy: StrategyKind,
    /// In the order of `PlacementProblem::services`.
    pub services: Vec<ServicePlacement>,
    pub objective: ObjectiveBreakdown,
    pub solve: SolveStats,
    /// E.g. the MILP fell back to first-fit.
    pub warnings: Vec<String>,
}

impl PlacementOutcome {
    /// Cluster names per service, in service order.
    pub fn assignment(&self) -> Vec<Vec<String>> {
        self.services.iter().map(|s| s.clusters.clone()).collect()
    }
}
