//! The indexed, pre-computed form of a [`PlacementProblem`] that every
//! strategy works on.
//!
//! Invariants established here and relied upon elsewhere:
//! - clusters are indexed in name order (the documented stable order, used
//!   for every tie-break);
//! - `capacity` is free capacity plus what this graph currently uses there
//!   (a re-placement may keep its own resources);
//! - `eligible[s][c]` is `Ok(())` or the *first* reason, in a fixed order, why
//!   service `s` may never run on cluster `c`;
//! - edges carry their effective class (`highPerformance` already applied)
//!   and `allowed` answers whether two clusters satisfy a class.

use std::collections::HashMap;

use super::error::PlacementError;
use super::model::{LatencyClass, PlacementOptions, PlacementProblem, ULTRALOW_MS};

/// Free capacity of one cluster as seen by the graph being placed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Capacity {
    pub cpu: f64,
    pub memory: f64,
    pub gpu: f64,
}

/// Per-service demand on each cluster it is placed on (replicas counted).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Demand {
    pub cpu: f64,
    pub memory: f64,
    pub gpu: f64,
}

#[derive(Debug, Clone)]
pub(crate) struct IEdge {
    pub caller: usize,
    pub callee: usize,
    pub class: LatencyClass,
    pub traffic: f64,
}

#[derive(Debug, Clone)]
pub(crate) struct Instance<'a> {
    pub problem: &'a PlacementProblem,
    /// Cluster index (name order) → index in `problem.clusters`.
    pub order: Vec<usize>,
    pub names: Vec<&'a str>,
    pub capacity: Vec<Capacity>,
    pub demand: Vec<Demand>,
    pub eligible: Vec<Vec<Result<(), String>>>,
    /// Clusters each service must be on (1, or 2 with high availability).
    pub k: Vec<usize>,
    /// Current clusters per service (indices, sorted); unknown names dropped.
    pub current: Vec<Vec<usize>>,
    pub edges: Vec<IEdge>,
    /// Latency in ms between cluster indices; `None` = unknown.
    pub latency: Vec<Vec<Option<f64>>>,
    pub low_latency_ms: f64,
    /// Co-location group of each service (index into `groups`), if any.
    pub group_of: Vec<Option<usize>>,
    /// Merged co-location groups (transitively closed), members sorted.
    pub groups: Vec<Vec<usize>>,
}

const EPS: f64 = 1e-9;

impl<'a> Instance<'a> {
    /// Only the tests index a problem on its own; the engine goes through
    /// [`Instance::with_capacity`].
    #[cfg(test)]
    pub fn new(
        problem: &'a PlacementProblem,
        opts: &PlacementOptions,
    ) -> Result<Self, PlacementError> {
        Self::with_capacity(problem, opts, None)
    }

    /// [`Instance::new`], with each cluster's capacity (in
    /// `problem.clusters` order, the graph's own usage included) given
    /// instead of derived from free capacity plus current usage.
    pub fn with_capacity(
        problem: &'a PlacementProblem,
        opts: &PlacementOptions,
        given: Option<&[[f64; 3]]>,
    ) -> Result<Self, PlacementError> {
        let invalid = |m: String| Err(PlacementError::InvalidInput(m));
        let ns = problem.services.len();
        let mut order: Vec<usize> = (0..problem.clusters.len()).collect();
        order.sort_by(|&a, &b| problem.clusters[a].name.cmp(&problem.clusters[b].name));
        let names: Vec<&str> = order
            .iter()
            .map(|&i| problem.clusters[i].name.as_str())
            .collect();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return invalid("duplicate cluster name".into());
        }
        let index: HashMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        let mut seen = HashMap::new();
        for (i, s) in problem.services.iter().enumerate() {
            if seen.insert(s.id.as_str(), i).is_some() {
                return invalid(format!("duplicate service id {}", s.id));
            }
            if !(s.cpu.is_finite() && s.cpu >= 0.0) {
                return invalid(format!("service {} has an invalid CPU request", s.id));
            }
            if s.replicas == 0 {
                return invalid(format!("service {} has 0 replicas", s.id));
            }
        }
        for e in &problem.edges {
            if e.caller >= ns || e.callee >= ns {
                return invalid("connection edge refers to an unknown service".into());
            }
            if !(e.traffic.is_finite() && e.traffic >= 0.0) {
                return invalid("connection edge has an invalid traffic weight".into());
            }
        }
        for g in &problem.co_location {
            if g.iter().any(|&s| s >= ns) {
                return invalid("co-location group refers to an unknown service".into());
            }
        }

        let demand: Vec<Demand> = problem
            .services
            .iter()
            .map(|s| {
                let r = f64::from(s.replicas);
                Demand {
                    cpu: s.cpu * r,
                    memory: s.memory_bytes as f64 * r,
                    gpu: if s.gpu { r } else { 0.0 },
                }
            })
            .collect();
        let current: Vec<Vec<usize>> = problem
            .services
            .iter()
            .map(|s| {
                let mut v: Vec<usize> = s
                    .current
                    .iter()
                    .filter_map(|n| index.get(n.as_str()).copied())
                    .collect();
                v.sort_unstable();
                v.dedup();
                v
            })
            .collect();
        let mut capacity: Vec<Capacity> = order
            .iter()
            .map(|&i| {
                let c = &problem.clusters[i];
                Capacity {
                    cpu: c.free_cpu.max(0.0),
                    memory: c.free_memory_bytes as f64,
                    gpu: f64::from(c.free_gpu),
                }
            })
            .collect();
        if let Some(given) = given {
            if given.len() != order.len() {
                return invalid("capacity given for a different number of clusters".into());
            }
            for (cap, &i) in capacity.iter_mut().zip(&order) {
                let [cpu, memory, gpu] = given[i];
                *cap = Capacity {
                    cpu: cpu.max(0.0),
                    memory: memory.max(0.0),
                    gpu: gpu.max(0.0),
                };
            }
        }
        for (s, cur) in current.iter().enumerate().filter(|_| given.is_none()) {
            for &c in cur {
                capacity[c].cpu += demand[s].cpu;
                capacity[c].memory += demand[s].memory;
                capacity[c].gpu += demand[s].gpu;
            }
        }

        let nc = names.len();
        let mut latency = vec![vec![None; nc]; nc];
        for (c, row) in latency.iter_mut().enumerate() {
            row[c] = Some(0.0);
        }
        for e in &problem.latency.entries {
            if let (Some(&a), Some(&b)) = (index.get(e.from.as_str()), index.get(e.to.as_str()))
                && a != b
                && e.ms.is_finite()
            {
                let v = latency[a][b].map_or(e.ms, |old: f64| old.max(e.ms));
                latency[a][b] = Some(v);
                latency[b][a] = Some(v);
            }
        }

        let eligible = problem
            .services
            .iter()
            .enumerate()
            .map(|(s, svc)| {
                (0..nc)
                    .map(|c| {
                        let cl = &problem.clusters[order[c]];
                        let cap = capacity[c];
                        let d = demand[s];
                        if !cl.ready {
                            Err("not ready".to_string())
                        } else if !cl.schedulable {
                            Err("cordoned (not schedulable)".to_string())
                        } else if !svc.pinned.is_empty()
                            && !svc.pinned.iter().any(|p| p == &cl.name)
                        {
                            Err(format!(
                                "not among pinned clusters {}",
                                svc.pinned.join(", ")
                            ))
                        } else if svc.gpu && cap.gpu < 1.0 - EPS {
                            Err("no free GPU".to_string())
                        } else if d.cpu > cap.cpu + EPS {
                            Err(format!(
                                "not enough CPU (needs {}, free {})",
                                fmt_num(d.cpu),
                                fmt_num(cap.cpu)
                            ))
                        } else if d.memory > cap.memory + 0.5 {
                            Err(format!(
                                "not enough memory (needs {}, free {})",
                                fmt_bytes(d.memory),
                                fmt_bytes(cap.memory)
                            ))
                        } else if d.gpu > cap.gpu + EPS {
                            Err(format!(
                                "not enough GPUs (needs {}, free {})",
                                d.gpu, cap.gpu
                            ))
                        } else {
                            Ok(())
                        }
                    })
                    .collect()
            })
            .collect::<Vec<Vec<_>>>();

        let (group_of, groups) = merge_groups(ns, &problem.co_location);
        // k counts clusters eligible for the whole co-location group, so that
        // all members of a group always get the same k.
        let k = (0..ns)
            .map(|s| {
                let members: &[usize] = match group_of[s] {
                    Some(g) => &groups[g],
                    None => std::slice::from_ref(&s),
                };
                let n = (0..nc)
                    .filter(|&c| members.iter().all(|&t| eligible[t][c].is_ok()))
                    .count();
                if problem.flags.high_availability && n >= 2 {
                    2
                } else {
                    1
                }
            })
            .collect();

        let edges = problem
            .edges
            .iter()
            .filter(|e| e.caller != e.callee)
            .map(|e| IEdge {
                caller: e.caller,
                callee: e.callee,
                class: if problem.flags.high_performance {
                    LatencyClass::Ultralow
                } else {
                    e.latency
                },
                traffic: e.traffic,
            })
            .collect();

        Ok(Instance {
            problem,
            order,
            names,
            capacity,
            demand,
            eligible,
            k,
            current,
            edges,
            latency,
            low_latency_ms: opts.low_latency_ms,
            group_of,
            groups,
        })
    }

    pub fn n_services(&self) -> usize {
        self.demand.len()
    }

    pub fn n_clusters(&self) -> usize {
        self.names.len()
    }

    pub fn is_eligible(&self, s: usize, c: usize) -> bool {
        self.eligible[s][c].is_ok()
    }

    pub fn service_id(&self, s: usize) -> &str {
        &self.problem.services[s].id
    }

    /// Whether a caller on `a` and a callee on `b` satisfy `class`.
    pub fn allowed(&self, class: LatencyClass, a: usize, b: usize) -> bool {
        if a == b {
            return true;
        }
        match (class, self.latency[a][b]) {
            (LatencyClass::BestEffort, _) => true,
            (_, None) => false,
            (LatencyClass::Ultralow, Some(ms)) => ms < ULTRALOW_MS,
            (LatencyClass::Low, Some(ms)) => ms <= self.low_latency_ms,
        }
    }

    /// Clusters eligible for every member of the service's co-location group.
    pub fn group_eligible(&self, s: usize, c: usize) -> bool {
        match self.group_of[s] {
            Some(g) => self.groups[g].iter().all(|&t| self.is_eligible(t, c)),
            None => self.is_eligible(s, c),
        }
    }
}

/// Union-find over co-location groups so that overlapping groups merge.
fn merge_groups(ns: usize, groups: &[Vec<usize>]) -> (Vec<Option<usize>>, Vec<Vec<usize>>) {
    let mut parent: Vec<usize> = (0..ns).collect();
    fn find(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            p[x] = p[p[x]];
            x = p[x];
        }
        x
    }
    let mut in_group = vec![false; ns];
    for g in groups {
        if g.len() < 2 {
            continue;
        }
        for &s in g {
            in_group[s] = true;
        }
        for w in g.windows(2) {
            let (a, b) = (find(&mut parent, w[0]), find(&mut parent, w[1]));
            if a != b {
                parent[a.max(b)] = a.min(b);
            }
        }
    }
    let mut root_index: HashMap<usize, usize> = HashMap::new();
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut group_of = vec![None; ns];
    for s in 0..ns {
        if !in_group[s] {
            continue;
        }
        let r = find(&mut parent, s);
        let gi = *root_index.entry(r).or_insert_with(|| {
            out.push(Vec::new());
            out.len() - 1
        });
        out[gi].push(s);
        group_of[s] = Some(gi);
    }
    (group_of, out)
}

/// Numbers in messages: at most two decimals, no trailing zeros.
pub(crate) fn fmt_num(x: f64) -> String {
    let s = format!("{x:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.to_string() }
}

pub(crate) fn fmt_bytes(b: f64) -> String {
    const GI: f64 = 1024.0 * 1024.0 * 1024.0;
    const MI: f64 = 1024.0 * 1024.0;
    if b >= GI {
        format!("{}Gi", fmt_num(b / GI))
    } else {
        format!("{}Mi", fmt_num(b / MI))
    }
}
