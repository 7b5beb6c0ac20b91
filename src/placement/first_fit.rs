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
use super::error::PlacementError;
use super::instance::Instance;

pub(crate) fn first_fit(inst: &Instance<'_>) -> Result<Assignment, String> {
    let (ns, nc) = (inst.n_services(), inst.n_clusters());
    let mut left: Vec<[f64; 3]> = inst
        .capacity
        .iter()
        .map(|c| [c.cpu, c.memory, c.gpu])
        .collect();
    let mut a: Vec<Option<Vec<usize>>> = vec![None; ns];
    for s in 0..ns {
        if a[s].is_some() {
            continue;
        }
        let members: Vec<usize> = match inst.group_of[s] {
            Some(g) => inst.groups[g].clone(),
            None => vec![s],
        };
        let need = members.iter().fold([0.0; 3], |acc, &t| {
            let d = inst.demand[t];
            [acc[0] + d.cpu, acc[1] + d.memory, acc[2] + d.gpu]
        });
        let mut chosen = Vec::new();
        for c in 0..nc {
            if chosen.len() == inst.k[s] {
                break;
            }
            let fits = need[0] <= left[c][0] + 1e-9
                && need[1] <= left[c][1] + 0.5
                && need[2] <= left[c][2] + 1e-9;
            if fits && inst.group_eligible(s, c) && latency_ok(inst, &a, &members, c) {
                chosen.push(c);
            }
        }
        if chosen.len() < inst.k[s] {
            return Err(inst.service_id(s).to_string());
        }
        for &c in &chosen {
            for (l, n) in left[c].iter_mut().zip(need) {
                *l -= n;
            }
        }
        for &t in &members {
            a[t] = Some(chosen.clone());
        }
    }
    Ok(a.into_iter().map(|x| x.unwrap_or_default()).collect())
}

/// Edges between the group and already placed services allow cluster `c`.
/// A callee copy must be reachable from every caller copy, so a callee
/// candidate is checked against all of its callers' clusters.
fn latency_ok(inst: &Instance<'_>, a: &[Option<Vec<usize>>], members: &[usize], c: usize) -> bool {
    inst.edges.iter().all(|e| {
        let caller_in = members.contains(&e.caller);
        let callee_in = members.contains(&e.callee);
        match (caller_in, callee_in) {
            (true, false) => match &a[e.callee] {
                Some(ds) => ds.iter().any(|&d| inst.allowed(e.class, c, d)),
                None => true,
            },
            (false, true) => match &a[e.caller] {
                Some(cs) => cs.iter().all(|&d| inst.allowed(e.class, d, c)),
                None => true,
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
