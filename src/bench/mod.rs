//! Benchmark instances and runners for `smo bench`.
//!
//! Instances are random but deterministic (splitmix64 from a seed) and
//! feasible by construction: every service first gets a "planted" cluster
//! (GPU services on GPU clusters), capacity is the planted usage plus slack
//! so that total capacity is about 1.5× demand, and edge latency classes are
//! only as strict as the planted clusters allow. About 2·N edges, 10% GPU
//! services, one cluster in four with GPUs, clusters grouped in regions
//! (a few ms apart inside a region, tens of ms between regions, 5% of pairs
//! unknown), and a current placement equal to the planted one with 10% of
//! the services displaced. With 10 or more clusters every tenth cluster is
//! drained (NotReady), so the services on it must move, as after a failure.
//!
//! Runners return a [`Report`] whose `Display` is the one line the CLI
//! prints; timing uses `Instant` only (no other I/O here).

pub mod reference;

use std::fmt;
use std::time::Instant;

use crate::placement::{
    Cluster, Edge, FleetGraph, LatencyClass, LatencyEntry, LatencyMatrix, PlacementError,
    PlacementOptions, PlacementOutcome, PlacementProblem, Service, StrategyKind, Weights, place,
    place_fleet,
};
use crate::scaling::{ScalingOptions, ScalingProblem, ScalingService, scale};

/// splitmix64: tiny, fast, good enough for instance generation, and stable
/// across platforms and crate versions (unlike an external RNG's streams).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
}

const MI: u64 = 1024 * 1024;

/// Clusters with coordinates (for latency) and GPU flags; capacity is set
/// later from the planted usage.
fn clusters(rng: &mut SplitMix64, m: usize) -> (Vec<Cluster>, LatencyMatrix) {
    let regions = m.div_ceil(5).max(1);
    let centres: Vec<(f64, f64)> = (0..regions)
        .map(|_| (rng.range(0.0, 120.0), rng.range(0.0, 60.0)))
        .collect();
    let mut pos = Vec::with_capacity(m);
    let cl: Vec<Cluster> = (0..m)
        .map(|i| {
            let (cx, cy) = centres[rng.below(regions)];
            pos.push((cx + rng.range(-3.0, 3.0), cy + rng.range(-3.0, 3.0)));
            Cluster {
                name: format!("c{i:03}"),
                ready: true,
                schedulable: true,
                free_cpu: 0.0,
                free_memory_bytes: 0,
                free_gpu: 0,
                carbon_intensity: rng.range(50.0, 500.0).round(),
                cost_per_cpu_hour: (rng.range(0.02, 0.08) * 1000.0).round() / 1000.0,
                location: None,
            }
        })
        .collect();
    let mut entries = Vec::new();
    for a in 0..m {
        for b in a + 1..m {
            if rng.unit() < 0.05 {
                continue;
            }
            let d = ((pos[a].0 - pos[b].0).powi(2) + (pos[a].1 - pos[b].1).powi(2)).sqrt();
            entries.push(LatencyEntry {
                from: cl[a].name.clone(),
                to: cl[b].name.clone(),
                ms: (d + 1.0).round(),
            });
        }
    }
    (cl, LatencyMatrix { entries })
}

fn mark_drained(cl: &mut [Cluster]) {
    let m = cl.len();
    for (i, c) in cl.iter_mut().enumerate() {
        c.ready = !drained(i, m);
    }
}

fn is_gpu_cluster(i: usize) -> bool {
    i.is_multiple_of(4)
}

/// Services, edges and planted clusters of one graph.
fn graph(
    rng: &mut SplitMix64,
    n: usize,
    m: usize,
    lat: &dyn Fn(usize, usize) -> Option<f64>,
) -> (PlacementProblem, Vec<usize>) {
    let gpu_clusters: Vec<usize> = (0..m)
        .filter(|&i| is_gpu_cluster(i) && !drained(i, m))
        .collect();
    let mut planted = Vec::with_capacity(n);
    let services: Vec<Service> = (0..n)
        .map(|i| {
            let gpu = rng.unit() < 0.1;
            let p = if gpu {
                gpu_clusters[rng.below(gpu_clusters.len())]
            } else {
                rng.below(m)
            };
            planted.push(p);
            Service {
                id: format!("s{i:04}"),
                cpu: [0.25, 0.5, 0.5, 1.0, 1.0, 2.0][rng.below(6)],
                memory_bytes: 256 * MI * [1, 2, 4, 8][rng.below(4)],
                gpu,
                replicas: [1, 1, 1, 1, 2, 3][rng.below(6)],
                pinned: Vec::new(),
                current: Vec::new(),
            }
        })
        .collect();
    let mut edges = Vec::new();
    if n >= 2 {
        for _ in 0..2 * n {
            let caller = rng.below(n);
            let callee = (caller + 1 + rng.below(n - 1)) % n;
            let ms = if planted[caller] == planted[callee] {
                Some(0.0)
            } else {
                lat(planted[caller], planted[callee])
            };
            let roll = rng.unit();
            let latency = match ms {
                Some(ms) if ms < 10.0 && roll < 0.1 => LatencyClass::Ultralow,
                Some(ms) if ms <= 30.0 && roll < 0.4 => LatencyClass::Low,
                _ => LatencyClass::BestEffort,
            };
            edges.push(Edge {
                caller,
                callee,
                latency,
                traffic: 1.0 + rng.below(3) as f64,
            });
        }
    }
    (
        PlacementProblem {
            services,
            edges,
            ..PlacementProblem::default()
        },
        planted,
    )
}

fn latency_lookup(
    cl: &[Cluster],
    lm: &LatencyMatrix,
) -> impl Fn(usize, usize) -> Option<f64> + use<> {
    let m = cl.len();
    let mut table = vec![None; m * m];
    for e in &lm.entries {
        let a: usize = e.from[1..].parse().unwrap_or(0);
        let b: usize = e.to[1..].parse().unwrap_or(0);
        table[a * m + b] = Some(e.ms);
        table[b * m + a] = Some(e.ms);
    }
    move |a, b| if a == b { Some(0.0) } else { table[a * m + b] }
}

/// Marks 10% of services displaced from their planted cluster and returns
/// the current cluster per service.
fn displace(
    rng: &mut SplitMix64,
    p: &mut PlacementProblem,
    planted: &[usize],
    cl: &[Cluster],
) -> Vec<usize> {
    let mut cur = Vec::with_capacity(planted.len());
    for (s, &pc) in p.services.iter_mut().zip(planted) {
        let c = if rng.unit() < 0.1 {
            rng.below(cl.len())
        } else {
            pc
        };
        s.current = vec![cl[c].name.clone()];
        cur.push(c);
    }
    cur
}

/// Sets capacities: planted usage plus slack to ≈ 1.5× total demand, minus
/// what the graphs currently use (the inventory's "free" excludes it).
fn size_clusters(
    rng: &mut SplitMix64,
    cl: &mut [Cluster],
    graphs: &[(&PlacementProblem, &[usize], &[usize])],
) {
    let m = cl.len();
    let mut planted = vec![[0.0f64; 3]; m];
    let mut current = vec![[0.0f64; 3]; m];
    let mut total = [0.0f64; 3];
    for (p, pl, cur) in graphs {
        for ((s, &a), &b) in p.services.iter().zip(pl.iter()).zip(cur.iter()) {
            let r = f64::from(s.replicas);
            let d = [
                s.cpu * r,
                s.memory_bytes as f64 * r,
                if s.gpu { r } else { 0.0 },
            ];
            for k in 0..3 {
                planted[a][k] += d[k];
                current[b][k] += d[k];
                total[k] += d[k];
            }
        }
    }
    let gpu_clusters = (0..m).filter(|&i| is_gpu_cluster(i)).count().max(1) as f64;
    for (i, c) in cl.iter_mut().enumerate() {
        let f = rng.range(0.5, 1.5);
        // 20% headroom over the planted usage everywhere plus 0.3× the
        // average demand spread unevenly: 1.5× demand in total.
        let cap_cpu = 1.2 * planted[i][0] + 0.3 * total[0] / m as f64 * f;
        let cap_mem = 1.2 * planted[i][1] + 0.3 * total[1] / m as f64 * f;
        let cap_gpu = if is_gpu_cluster(i) {
            planted[i][2] + (0.5 * total[2] / gpu_clusters).ceil()
        } else {
            0.0
        };
        c.free_cpu = ((cap_cpu - current[i][0]).max(0.0) * 100.0).floor() / 100.0;
        c.free_memory_bytes = (cap_mem - current[i][1]).max(0.0) as u64;
        c.free_gpu = (cap_gpu - current[i][2]).max(0.0) as u32;
    }
}

/// Clusters whose index is this modulo 10 are drained (NotReady) when
/// there are at least 10: their services must move, as after a failure.
fn drained(i: usize, m: usize) -> bool {
    m >= 10 && i % 10 == 9
}

/// A feasible single-graph instance.
pub fn placement_instance(n: usize, m: usize, seed: u64) -> PlacementProblem {
    let mut rng = SplitMix64::new(seed);
    let m = m.max(1);
    let (mut cl, lm) = clusters(&mut rng, m);
    let lat = latency_lookup(&cl, &lm);
    let (mut p, planted) = graph(&mut rng, n, m, &lat);
    let cur = displace(&mut rng, &mut p, &planted, &cl);
    size_clusters(&mut rng, &mut cl, &[(&p, &planted, &cur)]);
    mark_drained(&mut cl);
    p.clusters = cl;
    p.latency = lm;
    p
}

/// A feasible fleet: `g` graphs sharing `m` clusters.
pub fn fleet_instance(g: usize, n: usize, m: usize, seed: u64) -> (Vec<Cluster>, Vec<FleetGraph>) {
    let mut rng = SplitMix64::new(seed);
    let m = m.max(1);
    let (mut cl, lm) = clusters(&mut rng, m);
    let lat = latency_lookup(&cl, &lm);
    let mut gs = Vec::with_capacity(g);
    for _ in 0..g {
        let (mut p, planted) = graph(&mut rng, n, m, &lat);
        let cur = displace(&mut rng, &mut p, &planted, &cl);
        gs.push((p, planted, cur));
    }
    let refs: Vec<(&PlacementProblem, &[usize], &[usize])> = gs
        .iter()
        .map(|(p, a, b)| (p, a.as_slice(), b.as_slice()))
        .collect();
    size_clusters(&mut rng, &mut cl, &refs);
    mark_drained(&mut cl);
    let graphs = gs
        .into_iter()
        .enumerate()
        .map(|(i, (mut p, _, _))| {
            p.latency = lm.clone();
            FleetGraph {
                name: format!("g{i:03}"),
                problem: p,
                options: PlacementOptions::default(),
            }
        })
        .collect();
    (cl, graphs)
}

/// The original SMO's model: CPU and GPU capacity plus movement only (no
/// edges, no memory, no co-location, no energy/cost/balance terms).
pub fn smo_model(mut p: PlacementProblem, opts: &mut PlacementOptions) -> PlacementProblem {
    p.edges.clear();
    p.co_location.clear();
    for s in &mut p.services {
        s.memory_bytes = 0;
    }
    opts.weights = Weights {
        movement: 1.0,
        traffic: 0.0,
        energy: 0.0,
        cost: 0.0,
        balance: 0.0,
    };
    p
}

/// A scaling instance: capacity 1.5× what the rates need.
pub fn scaling_instance(n: usize, seed: u64) -> ScalingProblem {
    let mut rng = SplitMix64::new(seed);
    let mut need_cpu = 0.0;
    let services = (0..n)
        .map(|i| {
            let max = 2 + rng.below(9) as u32;
            let alpha = rng.range(5.0, 50.0);
            let beta = rng.range(-5.0, 5.0);
            let rate = rng.range(0.0, alpha * f64::from(max) + beta).max(0.0);
            let s = ScalingService {
                id: format!("s{i:04}"),
                cpu: [0.25, 0.5, 1.0][rng.below(3)],
                min_replicas: 1,
                max_replicas: max,
                alpha,
                beta,
                rate,
                current_replicas: 1 + rng.below(max as usize) as u32,
            };
            need_cpu += s.cpu * crate::scaling::needed_replicas(&s) as f64;
            s
        })
        .collect();
    ScalingProblem {
        services,
        cpu_capacity: (need_cpu * 1.5).ceil(),
    }
}

/// One benchmark result line.
#[derive(Debug, Clone, PartialEq)]
pub struct Report(pub String);

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn gap_str(g: Option<f64>) -> String {
    g.map_or("-".to_string(), |g| format!("{:.4}", g))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    Full,
    Smo,
}

impl ModelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Full => "full",
            ModelKind::Smo => "smo",
        }
    }
}

/// The placement instance `smo bench placement` solves, with its options.
pub fn placement_case(
    n: usize,
    m: usize,
    seed: u64,
    model: ModelKind,
    mut opts: PlacementOptions,
) -> (PlacementProblem, PlacementOptions) {
    let mut p = placement_instance(n, m, seed);
    if model == ModelKind::Smo {
        p = smo_model(p, &mut opts);
    }
    (p, opts)
}

/// `smo bench placement`. `ref_gap` is the distance to the best known
/// objective of the same instance (see [`reference`]).
pub fn run_placement(
    n: usize,
    m: usize,
    seed: u64,
    strategy: StrategyKind,
    model: ModelKind,
    mut opts: PlacementOptions,
) -> Result<(Report, PlacementOutcome), PlacementError> {
    opts.strategy = strategy;
    let (p, opts) = placement_case(n, m, seed, model, opts);
    let o = place(&p, &opts)?;
    let fp = reference::fingerprint(&p, &opts);
    let ref_gap = reference::ref_gap(n, m, seed, model.as_str(), &fp, o.objective.total);
    let line = format!(
        "placement services={n} clusters={m} strategy={strategy} model={} status={} build_ms={} solve_ms={} objective={:.4} gap={} ref_gap={ref_gap}",
        model.as_str(),
        o.solve.status,
        o.solve.build_millis,
        o.solve.solve_millis,
        o.objective.total,
        gap_str(o.solve.gap)
    );
    Ok((Report(line), o))
}

/// `smo bench fleet`.
pub fn run_fleet(g: usize, n: usize, m: usize, seed: u64) -> Result<Report, PlacementError> {
    let (cl, graphs) = fleet_instance(g, n, m, seed);
    let t0 = Instant::now();
    let results = place_fleet(&cl, &graphs);
    let total_ms = t0.elapsed().as_millis();
    let mut objective = 0.0;
    let mut worst_gap: f64 = 0.0;
    let mut build = 0;
    let mut solve = 0;
    let mut failed = 0;
    for r in &results {
        match r {
            Ok(o) => {
                objective += o.objective.total;
                worst_gap = worst_gap.max(o.solve.gap.unwrap_or(0.0));
                build += o.solve.build_millis;
                solve += o.solve.solve_millis;
            }
            Err(_) => failed += 1,
        }
    }
    if failed > 0
        && let Some(Err(e)) = results.into_iter().find(Result::is_err)
    {
        return Err(e);
    }
    Ok(Report(format!(
        "fleet graphs={g} services={n} clusters={m} strategy=milp model=full status=ok total_ms={total_ms} build_ms={build} solve_ms={solve} objective={objective:.4} gap={}",
        gap_str(Some(worst_gap))
    )))
}

/// `smo bench scaling`; `capacity` overrides the generated CPU capacity
/// (to exercise the coupled MILP, which only runs when capacity binds).
pub fn run_scaling(
    n: usize,
    seed: u64,
    capacity: Option<f64>,
) -> Result<Report, crate::scaling::ScalingError> {
    let mut p = scaling_instance(n, seed);
    if let Some(c) = capacity {
        p.cpu_capacity = c;
    }
    let t0 = Instant::now();
    let d = scale(&p, &ScalingOptions::default())?;
    let ms = t0.elapsed().as_secs_f64() * 1000.0;
    Ok(Report(format!(
        "scaling services={n} status={} capacity={} solve_ms={ms:.3} objective={:.4}",
        if d.capacity_bound {
            "capacity-bound"
        } else {
            "optimal"
        },
        p.cpu_capacity,
        d.objective
    )))
}
