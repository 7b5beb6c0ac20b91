//! Cheap checks run before any strategy, each naming the binding resource or
//! constraint. They are necessary conditions only: passing them does not
//! prove feasibility (the solver may still say infeasible), but failing one
//! proves infeasibility, with a message a user can act on.
//!
//! Order of checks (the first failure is reported): per service (GPU, any
//! eligible cluster), aggregate resources, co-location groups, latency edges.

use super::error::Infeasibility;
use super::instance::{Instance, fmt_bytes, fmt_num};
use super::model::LatencyClass;

/// Name, demand of a service, capacity of a cluster, number formatting.
type Resource = (
    &'static str,
    fn(&Instance<'_>, usize) -> f64,
    fn(&Instance<'_>, usize) -> f64,
    fn(f64) -> String,
);

pub(crate) fn check(inst: &Instance<'_>) -> Result<(), Infeasibility> {
    let nc = inst.n_clusters();
    let ns = inst.n_services();
    for s in 0..ns {
        if (0..nc).any(|c| inst.is_eligible(s, c)) {
            continue;
        }
        let svc = &inst.problem.services[s];
        let usable_gpu = (0..nc).any(|c| {
            let cl = &inst.problem.clusters[inst.order[c]];
            cl.ready && cl.schedulable && inst.capacity[c].gpu >= 1.0
        });
        if svc.gpu && !usable_gpu {
            return Err(Infeasibility::NoGpu {
                service: svc.id.clone(),
            });
        }
        let reasons = (0..nc)
            .map(|c| {
                format!(
                    "{}: {}",
                    inst.names[c],
                    inst.eligible[s][c].as_ref().err().map_or("", |r| r)
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        let reasons = if reasons.is_empty() {
            "no clusters known".to_string()
        } else {
            reasons
        };
        return Err(Infeasibility::NoEligibleCluster {
            service: svc.id.clone(),
            reasons,
        });
    }

    // Aggregate: demand × k against the capacity of clusters eligible for at
    // least one service that needs the resource.
    let resources: [Resource; 3] = [
        (
            "CPU",
            |i, s| i.demand[s].cpu,
            |i, c| i.capacity[c].cpu,
            fmt_num,
        ),
        (
            "memory",
            |i, s| i.demand[s].memory,
            |i, c| i.capacity[c].memory,
            fmt_bytes,
        ),
        (
            "GPU",
            |i, s| i.demand[s].gpu,
            |i, c| i.capacity[c].gpu,
            fmt_num,
        ),
    ];
    for (name, dem, cap, fmt) in resources {
        let demand: f64 = (0..ns).map(|s| dem(inst, s) * inst.k[s] as f64).sum();
        if demand <= 0.0 {
            continue;
        }
        let available: f64 = (0..nc)
            .filter(|&c| (0..ns).any(|s| dem(inst, s) > 0.0 && inst.is_eligible(s, c)))
            .map(|c| cap(inst, c))
            .sum();
        if demand > available * (1.0 + 1e-9) + 1e-9 {
            return Err(Infeasibility::Shortfall {
                resource: name,
                demand: fmt(demand),
                available: fmt(available),
            });
        }
    }

    for g in &inst.groups {
        let (a, b) = (
            inst.service_id(g[0]).to_string(),
            inst.service_id(g[1]).to_string(),
        );
        let common: Vec<usize> = (0..nc)
            .filter(|&c| g.iter().all(|&s| inst.is_eligible(s, c)))
            .collect();
        if common.is_empty() {
            return Err(Infeasibility::CoLocationNoCommonCluster { a, b });
        }
        let need = |f: fn(&Instance<'_>, usize) -> f64| g.iter().map(|&s| f(inst, s)).sum::<f64>();
        for (name, dem, cap, fmt) in resources {
            let needs = need(dem);
            let best = common.iter().map(|&c| cap(inst, c)).fold(0.0, f64::max);
            if needs > best + 1e-9 {
                return Err(Infeasibility::CoLocationUnfit {
                    a,
                    b,
                    resource: name,
                    needs: fmt(needs),
                    best: fmt(best),
                });
            }
        }
    }

    for e in &inst.edges {
        if e.class == LatencyClass::BestEffort {
            continue;
        }
        let ok = (0..nc).any(|c| {
            inst.group_eligible(e.caller, c)
                && (0..nc).any(|d| inst.group_eligible(e.callee, d) && inst.allowed(e.class, c, d))
        });
        if !ok {
            let (a, b) = (
                inst.service_id(e.caller).to_string(),
                inst.service_id(e.callee).to_string(),
            );
            return Err(match e.class {
                LatencyClass::Ultralow => Infeasibility::Ultralow { a, b },
                _ => Infeasibility::Low {
                    a,
                    b,
                    threshold_ms: fmt_num(inst.low_latency_ms),
                },
            });
        }
    }
    Ok(())
}
