//! Placement units, shared by the searches that move services between
//! clusters ([`super::exact`], [`super::local`]): a co-location group moves
//! as one unit, every other service is a unit of its own. With them, the
//! demand of each unit and the capacity of each cluster as `[cpu, memory,
//! gpu]` vectors.

use super::instance::Instance;

/// Capacity tolerance of the searches: stricter than the checker's (1e-6),
/// so that an accepted move or assignment can never fail verification.
pub(crate) const CAP_EPS: f64 = 1e-9;

/// Below this a cluster's CPU capacity does not count for balance (as in
/// `evaluate`).
pub(crate) const CAP_CPU_MIN: f64 = 1e-6;

pub(crate) struct Units {
    /// Services of each unit (a group's first member leads it).
    pub members: Vec<Vec<usize>>,
    /// Unit of each service.
    pub unit_of: Vec<usize>,
    /// Demand of each unit: the sum of its members'.
    pub demand: Vec<[f64; 3]>,
}

impl Units {
    pub(crate) fn of(inst: &Instance<'_>) -> Self {
        let ns = inst.n_services();
        let mut members: Vec<Vec<usize>> = Vec::new();
        for s in 0..ns {
            match inst.group_of[s] {
                Some(g) if inst.groups[g][0] != s => {}
                Some(g) => members.push(inst.groups[g].clone()),
                None => members.push(vec![s]),
            }
        }
        let mut unit_of = vec![0; ns];
        for (u, m) in members.iter().enumerate() {
            for &t in m {
                unit_of[t] = u;
            }
        }
        let demand = members
            .iter()
            .map(|m| {
                m.iter().fold([0.0; 3], |acc, &t| {
                    let d = inst.demand[t];
                    [acc[0] + d.cpu, acc[1] + d.memory, acc[2] + d.gpu]
                })
            })
            .collect();
        Units {
            members,
            unit_of,
            demand,
        }
    }
}

/// Each cluster's capacity as `[cpu, memory, gpu]`.
pub(crate) fn capacities(inst: &Instance<'_>) -> Vec<[f64; 3]> {
    inst.capacity
        .iter()
        .map(|c| [c.cpu, c.memory, c.gpu])
        .collect()
}
