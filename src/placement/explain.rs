//! Explanations of a complete, valid assignment.
//!
//! For every service: a one-line reason for its cluster(s), and for every
//! other cluster (name order) either the first reason it is ineligible or
//! what moving the service (with its co-location group) there would change:
//! a broken constraint, or the objective delta by term. Deltas are computed
//! locally (only the moved group's terms, incident edges and the two
//! clusters' utilisation change), so explaining 1000 × 50 stays cheap.

use super::check::{Assignment, carbon, cost, describe_delta, moved};
use super::instance::Instance;
use super::model::{ObjectiveBreakdown, Rejection, ServicePlacement, StrategyKind, Term};

pub(crate) fn explain(
    inst: &Instance<'_>,
    a: &Assignment,
    base: &ObjectiveBreakdown,
    strategy: StrategyKind,
) -> Vec<ServicePlacement> {
    let nc = inst.n_clusters();
    let mut used = vec![[0.0f64; 3]; nc];
    for (s, cl) in a.iter().enumerate() {
        for &c in cl {
            let d = inst.demand[s];
            used[c][0] += d.cpu;
            used[c][1] += d.memory;
            used[c][2] += d.gpu;
        }
    }
    let util: Vec<f64> = (0..nc)
        .map(|c| {
            if inst.capacity[c].cpu > 1e-9 {
                used[c][0] / inst.capacity[c].cpu
            } else {
                0.0
            }
        })
        .collect();
    let mut incident = vec![Vec::new(); inst.n_services()];
    for (i, e) in inst.edges.iter().enumerate() {
        incident[e.caller].push(i);
        if e.callee != e.caller {
            incident[e.callee].push(i);
        }
    }
    let ctx = Ctx {
        inst,
        a,
        base,
        used,
        util,
        incident,
    };
    (0..inst.n_services())
        .map(|s| ctx.service(s, strategy))
        .collect()
}

struct Ctx<'a, 'b> {
    inst: &'a Instance<'b>,
    a: &'a Assignment,
    base: &'a ObjectiveBreakdown,
    used: Vec<[f64; 3]>,
    util: Vec<f64>,
    /// Edge indices touching each service.
    incident: Vec<Vec<usize>>,
}

impl Ctx<'_, '_> {
    fn members(&self, s: usize) -> Vec<usize> {
        self.inst.group_of[s].map_or_else(|| vec![s], |g| self.inst.groups[g].clone())
    }

    fn service(&self, s: usize, strategy: StrategyKind) -> ServicePlacement {
        let inst = self.inst;
        let svc = &inst.problem.services[s];
        let chosen = &self.a[s];
        let mut rejected = Vec::new();
        let mut best_alt: Option<(f64, usize)> = None;
        for c in 0..inst.n_clusters() {
            if chosen.contains(&c) {
                continue;
            }
            let (reason, delta) = match self.ineligible(s, c) {
                Some(r) => (r, None),
                None => match self.alternative(s, c) {
                    Err(r) => (r, None),
                    Ok(alt) => {
                        let d = alt.total - self.base.total;
                        if best_alt.is_none_or(|(bd, _)| d < bd) {
                            best_alt = Some((d, c));
                        }
                        (describe_delta(self.base, &alt), Some(d))
                    }
                },
            };
            rejected.push(Rejection {
                cluster: inst.names[c].to_string(),
                reason,
                delta,
            });
        }
        let n_eligible = (0..inst.n_clusters())
            .filter(|&c| inst.group_eligible(s, c))
            .count();
        let mut reason = if n_eligible == chosen.len() {
            if svc.pinned.is_empty() {
                "only eligible cluster".to_string()
            } else {
                "pinned".to_string()
            }
        } else {
            match strategy {
                StrategyKind::FirstFit => {
                    "first cluster in name order with room and allowed latency".to_string()
                }
                StrategyKind::Milp => {
                    let kept = !inst.current[s].is_empty() && inst.current[s] == *chosen;
                    let head = if kept {
                        "kept where it runs"
                    } else {
                        "lowest objective"
                    };
                    match best_alt {
                        Some((d, c)) => format!(
                            "{head} among {n_eligible} eligible clusters (next best {}: {:+.3})",
                            inst.names[c], d
                        ),
                        None => format!("{head}; every other eligible cluster breaks a constraint"),
                    }
                }
            }
        };
        if inst.k[s] == 2 {
            reason = format!("high availability on 2 clusters; {reason}");
        }
        if let Some(g) = inst.group_of[s] {
            let others: Vec<&str> = inst.groups[g]
                .iter()
                .filter(|&&t| t != s)
                .map(|&t| inst.service_id(t))
                .collect();
            reason = format!("{reason}; co-located with {}", others.join(", "));
        }
        ServicePlacement {
            id: svc.id.clone(),
            clusters: chosen.iter().map(|&c| inst.names[c].to_string()).collect(),
            replicas: svc.replicas,
            cpu: svc.cpu,
            memory_bytes: svc.memory_bytes,
            gpu: svc.gpu,
            reason,
            rejected,
        }
    }

    fn ineligible(&self, s: usize, c: usize) -> Option<String> {
        if let Err(r) = &self.inst.eligible[s][c] {
            return Some(r.clone());
        }
        self.members(s).into_iter().find_map(|t| {
            self.inst.eligible[t][c]
                .as_ref()
                .err()
                .map(|r| format!("co-located {}: {r}", self.inst.service_id(t)))
        })
    }

    /// The breakdown if the group of `s` swapped one of its clusters for
    /// `c` (the swap that costs least), or the constraint that would break.
    fn alternative(&self, s: usize, c: usize) -> Result<ObjectiveBreakdown, String> {
        let mut best: Option<ObjectiveBreakdown> = None;
        let mut why = String::new();
        for &old in &self.a[s] {
            match self.swap(s, old, c) {
                Ok(b) => {
                    if best.is_none_or(|x| b.total < x.total) {
                        best = Some(b);
                    }
                }
                Err(r) => why = r,
            }
        }
        best.ok_or(why)
    }

    fn swap(&self, s: usize, old: usize, new: usize) -> Result<ObjectiveBreakdown, String> {
        let inst = self.inst;
        let members = self.members(s);
        let mut need = [0.0; 3];
        for &t in &members {
            let d = inst.demand[t];
            need[0] += d.cpu;
            need[1] += d.memory;
            need[2] += d.gpu;
        }
        let cap = inst.capacity[new];
        let after = [
            self.used[new][0] + need[0],
            self.used[new][1] + need[1],
            self.used[new][2] + need[2],
        ];
        if after[0] > cap.cpu + 1e-6 {
            return Err(format!(
                "would exceed free CPU ({:.2} of {:.2})",
                after[0], cap.cpu
            ));
        }
        if after[1] > cap.memory + 0.5 {
            return Err("would exceed free memory".to_string());
        }
        if after[2] > cap.gpu + 1e-6 {
            return Err("would exceed free GPUs".to_string());
        }
        let clusters_of = |t: usize| -> Vec<usize> {
            if members.contains(&t) {
                self.a[t]
                    .iter()
                    .map(|&c| if c == old { new } else { c })
                    .collect()
            } else {
                self.a[t].clone()
            }
        };
        let mut traffic_delta = 0.0;
        let mut edges: Vec<usize> = members
            .iter()
            .flat_map(|&t| self.incident[t].iter().copied())
            .collect();
        edges.sort_unstable();
        edges.dedup();
        for e in edges.into_iter().map(|i| &inst.edges[i]) {
            let (from, to) = (clusters_of(e.caller), clusters_of(e.callee));
            if from
                .iter()
                .any(|&x| !to.iter().any(|&y| inst.allowed(e.class, x, y)))
            {
                return Err(format!(
                    "would break {:?} latency between {} and {}",
                    e.class,
                    inst.service_id(e.caller),
                    inst.service_id(e.callee)
                )
                .to_lowercase());
            }
            let cross_new = from.iter().filter(|c| !to.contains(c)).count() as f64;
            let cross_old = self.a[e.caller]
                .iter()
                .filter(|c| !self.a[e.callee].contains(c))
                .count() as f64;
            traffic_delta += (cross_new - cross_old) * e.traffic;
        }
        let (mut dm, mut de, mut dc) = (0.0, 0.0, 0.0);
        for &t in &members {
            let cpu = inst.demand[t].cpu;
            dm += moved(inst, t, &clusters_of(t)) - moved(inst, t, &self.a[t]);
            de += (carbon(inst, new) - carbon(inst, old)) * cpu;
            dc += (cost(inst, new) - cost(inst, old)) * cpu;
        }
        let util_of = |c: usize| -> f64 {
            let cap = inst.capacity[c].cpu;
            if cap <= 1e-9 {
                return 0.0;
            }
            if c == new {
                (self.used[c][0] + need[0]) / cap
            } else if c == old {
                (self.used[c][0] - need[0]).max(0.0) / cap
            } else {
                self.util[c]
            }
        };
        let balance = (0..inst.n_clusters()).map(util_of).fold(0.0, f64::max);
        let b = self.base;
        let term = |t: Term, raw: f64| Term {
            raw,
            weight: t.weight,
            weighted: raw * t.weight,
        };
        let mut alt = ObjectiveBreakdown {
            total: 0.0,
            movement: term(b.movement, b.movement.raw + dm),
            traffic: term(b.traffic, b.traffic.raw + traffic_delta),
            energy: term(b.energy, b.energy.raw + de),
            cost: term(b.cost, b.cost.raw + dc),
            balance: term(b.balance, balance),
        };
        alt.total = alt.movement.weighted
            + alt.traffic.weighted
            + alt.energy.weighted
            + alt.cost.weighted
            + alt.balance.weighted;
        Ok(alt)
    }
}
