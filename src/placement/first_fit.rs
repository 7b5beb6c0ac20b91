//! `first-fit`: the original SMO heuristic, made constraint-complete.
//!
//! Services in descriptor order, clusters in name order; each service (with
//! its whole co-location group, placed when its first member comes up) goes
//! to the first `k` clusters that are eligible for the group, still have
//! room for the group's CPU, memory and GPUs, and satisfy the latency class
//! of every edge to an already placed service. The original only checked
//! CPU and GPU; the extra checks make its answer valid under the full model,
//! which it must be as the MILP's fallback. Deterministic by construction.

use super::check::Assignment;
use super::check::{carbon, cost};
use super::error::PlacementError;
use super::instance::Instance;
use super::model::Weights;

pub(crate) fn first_fit(inst: &Instance<'_>) -> Result<Assignment, String> {
    greedy(
        inst,
        &group_units(inst, (0..inst.n_services()).collect()),
        Rank::NameOrder,
    )
}

/// Co-location groups as placement units, in the order of `services`
/// (a group comes up with its first member).
fn group_units(inst: &Instance<'_>, services: Vec<usize>) -> Vec<Vec<usize>> {
    let mut seen = vec![false; inst.n_services()];
    let mut units = Vec::new();
    for s in services {
        if seen[s] {
            continue;
        }
        let members = inst.group_of[s].map_or_else(|| vec![s], |g| inst.groups[g].clone());
        for &t in &members {
            seen[t] = true;
        }
        units.push(members);
    }
    units
}

/// A fourth warm start for instances with chains of strict latency edges:
/// services joined by co-location or by `ultralow`/`low` edges form one
/// unit placed on the same cluster(s), which satisfies every strict edge by
/// construction; units go largest first to the cheapest cluster with room.
pub(crate) fn strict_components(inst: &Instance<'_>, w: &Weights) -> Result<Assignment, String> {
    let ns = inst.n_services();
    let mut parent: Vec<usize> = (0..ns).collect();
    fn find(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            p[x] = p[p[x]];
            x = p[x];
        }
        x
    }
    let mut join = |a: usize, b: usize| {
        let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
        if ra != rb {
            parent[ra.max(rb)] = ra.min(rb);
        }
    };
    for g in &inst.groups {
        for pair in g.windows(2) {
            join(pair[0], pair[1]);
        }
    }
    for e in inst
        .edges
        .iter()
        .filter(|e| e.class != super::model::LatencyClass::BestEffort)
    {
        join(e.caller, e.callee);
    }
    let mut by_root: std::collections::BTreeMap<usize, Vec<usize>> =
        std::collections::BTreeMap::new();
    for s in 0..ns {
        let r = find(&mut parent, s);
        by_root.entry(r).or_default().push(s);
    }
    let mut units: Vec<Vec<usize>> = by_root.into_values().collect();
    if units
        .iter()
        .any(|u| u.iter().any(|&t| inst.k[t] != inst.k[u[0]]))
    {
        return Err("mixed high-availability needs in one latency component".into());
    }
    let size = |u: &Vec<usize>| -> (f64, f64) {
        u.iter().fold((0.0, 0.0), |acc, &t| {
            (acc.0 + inst.demand[t].gpu, acc.1 + inst.demand[t].cpu)
        })
    };
    units.sort_by(|a, b| {
        let (sa, sb) = (size(a), size(b));
        sb.0.total_cmp(&sa.0)
            .then(sb.1.total_cmp(&sa.1))
            .then(a[0].cmp(&b[0]))
    });
    greedy(inst, &units, Rank::Cheapest(w))
}

/// The same greedy pass, but trying each service's current clusters before
/// the others: a cheap "repair" of the current placement, used as a warm
/// start for the MILP (it keeps most services where they are).
pub(crate) fn keep_current(inst: &Instance<'_>) -> Result<Assignment, String> {
    greedy(
        inst,
        &group_units(inst, (0..inst.n_services()).collect()),
        Rank::CurrentFirst,
    )
}

/// A third warm start: hardest services first (GPU, then larger CPU), each
/// to the cluster with the lowest objective contribution given the services
/// already placed. Succeeds on tight instances where name order fails.
pub(crate) fn cheapest(inst: &Instance<'_>, w: &Weights) -> Result<Assignment, String> {
    let mut order: Vec<usize> = (0..inst.n_services()).collect();
    order.sort_by(|&a, &b| {
        let (da, db) = (inst.demand[a], inst.demand[b]);
        db.gpu
            .total_cmp(&da.gpu)
            .then(db.cpu.total_cmp(&da.cpu))
            .then(a.cmp(&b))
    });
    greedy(inst, &group_units(inst, order), Rank::Cheapest(w))
}

enum Rank<'w> {
    NameOrder,
    CurrentFirst,
    Cheapest(&'w Weights),
}

fn greedy(inst: &Instance<'_>, units: &[Vec<usize>], rank: Rank<'_>) -> Result<Assignment, String> {
    let (ns, nc) = (inst.n_services(), inst.n_clusters());
    let mut left: Vec<[f64; 3]> = inst
        .capacity
        .iter()
        .map(|c| [c.cpu, c.memory, c.gpu])
        .collect();
    let mut a: Vec<Option<Vec<usize>>> = vec![None; ns];
    // Edges touching each service: scanning every edge for every candidate
    // cluster made the four warm starts take 3.7 s at 1000 × 50.
    let mut touching: Vec<Vec<usize>> = vec![Vec::new(); ns];
    for (i, e) in inst.edges.iter().enumerate() {
        touching[e.caller].push(i);
        if e.callee != e.caller {
            touching[e.callee].push(i);
        }
    }
    for members in units {
        let s = members[0];
        // In edge order, as the full scan visited them (same sums, same ties).
        let mut incident: Vec<usize> = members
            .iter()
            .flat_map(|&t| touching[t].iter().copied())
            .collect();
        incident.sort_unstable();
        incident.dedup();
        let need = members.iter().fold([0.0; 3], |acc, &t| {
            let d = inst.demand[t];
            [acc[0] + d.cpu, acc[1] + d.memory, acc[2] + d.gpu]
        });
        let order: Vec<usize> = match rank {
            Rank::NameOrder => (0..nc).collect(),
            Rank::CurrentFirst => {
                let mut o = inst.current[s].clone();
                let rest: Vec<usize> = (0..nc).filter(|c| !o.contains(c)).collect();
                o.extend(rest);
                o
            }
            Rank::Cheapest(w) => {
                let mut scored: Vec<(f64, usize)> = (0..nc)
                    .map(|c| (contribution(inst, w, &a, members, &incident, c), c))
                    .collect();
                scored.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
                scored.into_iter().map(|p| p.1).collect()
            }
        };
        let mut chosen = Vec::new();
        for c in order {
            if chosen.len() == inst.k[s] {
                break;
            }
            let fits = need[0] <= left[c][0] + 1e-9
                && need[1] <= left[c][1] + 0.5
                && need[2] <= left[c][2] + 1e-9;
            let eligible = members.iter().all(|&t| inst.is_eligible(t, c));
            if fits && eligible && latency_ok(inst, &a, members, &incident, c) {
                chosen.push(c);
            }
        }
        chosen.sort_unstable();
        if chosen.len() < inst.k[s] {
            return Err(inst.service_id(s).to_string());
        }
        for &c in &chosen {
            for (l, n) in left[c].iter_mut().zip(need) {
                *l -= n;
            }
        }
        for &t in members {
            a[t] = Some(chosen.clone());
        }
    }
    Ok(a.into_iter().map(|x| x.unwrap_or_default()).collect())
}

/// Edges between the group and already placed services allow cluster `c`,
/// and every unplaced neighbour still has an eligible cluster in reach.
/// A callee copy must be reachable from every caller copy, so a callee
/// candidate is checked against all of its callers' clusters.
/// `incident`: the edges touching a member (the others cannot matter).
fn latency_ok(
    inst: &Instance<'_>,
    a: &[Option<Vec<usize>>],
    members: &[usize],
    incident: &[usize],
    c: usize,
) -> bool {
    incident.iter().map(|&i| &inst.edges[i]).all(|e| {
        let caller_in = members.contains(&e.caller);
        let callee_in = members.contains(&e.callee);
        match (caller_in, callee_in) {
            (true, false) => match &a[e.callee] {
                Some(ds) => ds.iter().any(|&d| inst.allowed(e.class, c, d)),
                // Look one step ahead: the callee must keep somewhere to go.
                None => (0..inst.n_clusters())
                    .any(|d| inst.group_eligible(e.callee, d) && inst.allowed(e.class, c, d)),
            },
            (false, true) => match &a[e.caller] {
                Some(cs) => cs.iter().all(|&d| inst.allowed(e.class, d, c)),
                None => (0..inst.n_clusters())
                    .any(|d| inst.group_eligible(e.caller, d) && inst.allowed(e.class, d, c)),
            },
            _ => true,
        }
    })
}

pub(crate) fn run(inst: &Instance<'_>, after_timeout: bool) -> Result<Assignment, PlacementError> {
    first_fit(inst).map_err(|service| PlacementError::FirstFitFailed {
        service,
        after_timeout,
    })
}

/// Objective contribution of putting the group on `c`, given what is placed.
fn contribution(
    inst: &Instance<'_>,
    w: &Weights,
    a: &[Option<Vec<usize>>],
    members: &[usize],
    incident: &[usize],
    c: usize,
) -> f64 {
    let mut v = 0.0;
    for &t in members {
        let cpu = inst.demand[t].cpu;
        v += (w.energy * carbon(inst, c) + w.cost * cost(inst, c)) * cpu;
        if !inst.current[t].is_empty() && !inst.current[t].contains(&c) {
            v += w.movement;
        }
    }
    for e in incident.iter().map(|&i| &inst.edges[i]) {
        let other = match (members.contains(&e.caller), members.contains(&e.callee)) {
            (true, false) => e.callee,
            (false, true) => e.caller,
            _ => continue,
        };
        if let Some(cl) = &a[other]
            && !cl.contains(&c)
        {
            v += w.traffic * e.traffic;
        }
    }
    v
}
