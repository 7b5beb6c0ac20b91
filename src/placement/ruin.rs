//! Ruin and recreate, a proposal of the annealing ([`super::anneal`]):
//! take a few units off their clusters (a unit, some of the units linked
//! to it, and a few units of one or two other clusters to make room), then
//! put them back one by one, each on the cluster that costs least given
//! the units already in place, the unit with most to lose first. The
//! result is a set of moves that the caller prices and checks exactly
//! ([`State::gain_of`]).
//!
//! Why: on tight clusters the better answers differ from a good one by
//! coordinated exchanges (on the 100 × 10 benchmark graph: six linked
//! services from one cluster to another, whose room one service of that
//! cluster must leave; cheap room going to the services that save most
//! by it). No single move, swap or small group move of such an exchange
//! gains, so the annealing rarely walks it at a low temperature; put back
//! into emptied room, the units that care most choose first and linked
//! units follow each other.
//!
//! Only units with one copy are taken out: the copies of a replicated unit
//! must stay on distinct clusters, which a greedy put-back does not keep.

use super::lns::Rng;
use super::local::State;

/// Linked units taken out by one proposal, at most (the seed included).
const LINKED_MAX: usize = 8;
/// Units taken out of a second cluster to make room, at most.
const ROOM_MAX: usize = 5;
/// Other clusters room is taken from, at most.
const CLUSTERS_MAX: usize = 2;

/// A unit's cheapest cluster, its second cheapest, and how much more the
/// second costs.
#[derive(Clone, Copy)]
struct Choice {
    best: usize,
    second: Option<usize>,
    regret: f64,
}

/// Buffers kept between proposals (one allocation per chain).
pub(super) struct Scratch {
    out: Vec<usize>,
    left: Vec<usize>,
    taken: Vec<bool>,
    put: Vec<Option<usize>>,
    was: Vec<usize>,
    used: Vec<[f64; 3]>,
    choice: Vec<Option<Choice>>,
    /// Price of each unit on each cluster from the terms linear in the
    /// assignment (energy, cost, movement), infinite where it is not
    /// eligible; row by unit.
    linear: Vec<f64>,
    price: Vec<f64>,
}

impl Scratch {
    pub(super) fn new(st: &State<'_, '_>) -> Self {
        let units = st.units.len();
        let nc = st.cap.len();
        let mut linear = Vec::with_capacity(units * nc);
        for v in 0..units {
            linear.extend((0..nc).map(|d| {
                if st.eligible[v][d] {
                    st.linear_price(v, d)
                } else {
                    f64::INFINITY
                }
            }));
        }
        Scratch {
            linear,
            price: Vec::with_capacity(nc),
            out: Vec::new(),
            left: Vec::new(),
            taken: vec![false; units],
            put: vec![None; units],
            was: vec![0; units],
            used: Vec::new(),
            choice: vec![None; units],
        }
    }
}

impl State<'_, '_> {
    /// The cluster of a unit with one copy, or `None`.
    fn single(&self, u: usize) -> Option<usize> {
        match self.a[self.units[u][0]].as_slice() {
            [c] => Some(*c),
            _ => None,
        }
    }

    /// One ruin and recreate from a random unit: the moves `(unit, from,
    /// to)` that turn the current assignment into the recreated one, or
    /// `None` when nothing changed or some unit found no cluster. The
    /// moves are not checked against the balance term or priced: the
    /// caller does both with [`State::gain_of`]. Leaves the state as it
    /// found it.
    pub(super) fn ruin_recreate(
        &self,
        nbrs: &[Vec<usize>],
        rng: &mut Rng,
        sc: &mut Scratch,
    ) -> Option<Vec<(usize, usize, usize)>> {
        let nc = self.cap.len();
        let seed = rng.below(self.units.len());
        let home = self.single(seed)?;
        sc.out.clear();
        sc.used.clone_from(&self.used);
        self.take(seed, home, sc);
        // Linked units, breadth-first from the seed.
        let linked = 1 + rng.below(LINKED_MAX);
        let mut next = 0;
        while next < sc.out.len() && sc.out.len() < linked {
            let n = &nbrs[sc.out[next]];
            next += 1;
            if n.is_empty() {
                continue;
            }
            let from = rng.below(n.len());
            for j in 0..n.len() {
                let v = n[(from + j) % n.len()];
                if sc.out.len() < linked
                    && !sc.taken[v]
                    && let Some(c) = self.single(v)
                {
                    self.take(v, c, sc);
                }
            }
        }
        // Room on other clusters.
        for _ in 0..1 + rng.below(CLUSTERS_MAX) {
            let other = rng.below(nc);
            let room = rng.below(ROOM_MAX + 1).min(self.on[other].len());
            for _ in 0..room {
                let v = self.on[other][rng.below(self.on[other].len())];
                if !sc.taken[v]
                    && let Some(c) = self.single(v)
                {
                    self.take(v, c, sc);
                }
            }
        }
        // Put back, the unit with most to lose first (regret: the price
        // of its second-best cluster over its best), so that the units
        // that care least take what room is left.
        let mut left = std::mem::take(&mut sc.left);
        left.clone_from(&sc.out);
        for &v in &left {
            let c = self.cheapest(v, sc);
            sc.choice[v] = c;
        }
        let mut ok = true;
        while !left.is_empty() {
            let mut pick: Option<(f64, usize)> = None;
            for (i, &v) in left.iter().enumerate() {
                let Some(c) = sc.choice[v] else {
                    ok = false;
                    break;
                };
                if pick.is_none_or(|(r, _)| c.regret > r) {
                    pick = Some((c.regret, i));
                }
            }
            let Some((_, i)) = pick.filter(|_| ok) else {
                ok = false;
                break;
            };
            let v = left.swap_remove(i);
            let d = sc.choice[v].expect("picked with a choice").best;
            sc.put[v] = Some(d);
            for r in 0..3 {
                sc.used[d][r] += self.dem[v][r];
            }
            // Only the units linked to v, or whose two cheapest clusters
            // include the one v took room on and who no longer fit there,
            // can choose differently.
            for &u in &left {
                let stale = nbrs[v].binary_search(&u).is_ok()
                    || sc.choice[u].is_none_or(|c| {
                        (c.best == d || c.second == Some(d)) && !self.fits_in(u, d, &sc.used)
                    });
                if stale {
                    let c = self.cheapest(u, sc);
                    sc.choice[u] = c;
                }
            }
        }
        sc.left = left;
        let moves: Vec<_> = sc
            .out
            .iter()
            .filter_map(|&v| {
                let to = sc.put[v]?;
                (to != sc.was[v]).then_some((v, sc.was[v], to))
            })
            .collect();
        for &v in &sc.out {
            sc.taken[v] = false;
            sc.put[v] = None;
        }
        (ok && !moves.is_empty()).then_some(moves)
    }

    fn take(&self, v: usize, c: usize, sc: &mut Scratch) {
        sc.taken[v] = true;
        sc.put[v] = None;
        sc.was[v] = c;
        sc.out.push(v);
        for r in 0..3 {
            sc.used[c][r] -= self.dem[v][r];
        }
    }

    /// The clusters where unit `v` (taken out) costs least, given the units
    /// in place, that it fits and whose latency classes it keeps with them.
    /// Edge by edge, every cluster at once (the lookups of an edge's other
    /// end are made once, not once per cluster).
    fn cheapest(&self, v: usize, sc: &mut Scratch) -> Option<Choice> {
        let nc = self.cap.len();
        let inst = self.inst;
        let price = &mut sc.price;
        price.clear();
        price.extend_from_slice(&sc.linear[v * nc..(v + 1) * nc]);
        for (d, p) in price.iter_mut().enumerate() {
            if !self.fits_in(v, d, &sc.used) {
                *p = f64::INFINITY;
            }
        }
        for &e in &self.incident[v] {
            let edge = &inst.edges[e];
            let caller = self.unit_of[edge.caller] == v;
            let o = if caller { edge.callee } else { edge.caller };
            let ou = self.unit_of[o];
            let one;
            let there: &[usize] = if sc.taken[ou] {
                match sc.put[ou] {
                    Some(x) => {
                        one = [x];
                        &one
                    }
                    None => continue,
                }
            } else {
                &self.a[o]
            };
            let weight = self.w.traffic * edge.traffic;
            for (d, p) in price.iter_mut().enumerate() {
                if *p == f64::INFINITY {
                    continue;
                }
                let (crossing, fine) = if caller {
                    (
                        usize::from(!there.contains(&d)),
                        there.iter().any(|&x| inst.allowed(edge.class, d, x)),
                    )
                } else {
                    (
                        there.iter().filter(|&&x| x != d).count(),
                        there.iter().all(|&x| inst.allowed(edge.class, x, d)),
                    )
                };
                *p = if fine {
                    *p + weight * crossing as f64
                } else {
                    f64::INFINITY
                };
            }
        }
        let mut best: Option<(f64, usize)> = None;
        let mut second: Option<(f64, usize)> = None;
        for (d, &p) in price.iter().enumerate() {
            if p == f64::INFINITY {
                continue;
            }
            if best.is_none_or(|(b, _)| p < b) {
                second = best;
                best = Some((p, d));
            } else if second.is_none_or(|(b, _)| p < b) {
                second = Some((p, d));
            }
        }
        // A unit with one cluster left has everything to lose.
        best.map(|(b, d)| Choice {
            best: d,
            second: second.map(|(_, x)| x),
            regret: second.map_or(f64::MAX, |(p, _)| p - b),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::PlacementOptions;
    use crate::placement::anneal::neighbours;
    use crate::placement::check::{effective_weights, evaluate, violation};
    use crate::placement::construct::{self, Outcome};
    use crate::placement::instance::Instance;
    use std::time::{Duration, Instant};

    #[test]
    fn proposals_move_units_with_one_copy_leave_the_state_alone_and_are_priced_exactly() {
        let p = crate::bench::placement_instance(40, 5, 1);
        let opts = PlacementOptions::default();
        let inst = Instance::new(&p, &opts).unwrap();
        let w = effective_weights(&inst, &opts);
        let far = Instant::now() + Duration::from_secs(3600);
        let Outcome::Found(mut a) = construct::search(&inst, &w, far) else {
            panic!("no start");
        };
        let mut total = evaluate(&inst, &w, &a).total;
        let mut st = State::new(&inst, &w, &mut a);
        let nbrs = neighbours(&inst, &st);
        let mut sc = Scratch::new(&st);
        let mut rng = Rng(11);
        let (mut proposed, mut gained) = (0, 0);
        for _ in 0..3000 {
            let before = st.a.clone();
            let moves = st.ruin_recreate(&nbrs, &mut rng, &mut sc);
            assert_eq!(*st.a, before, "the state is left as it was found");
            let Some(moves) = moves else { continue };
            proposed += 1;
            for (i, &(u, c, d)) in moves.iter().enumerate() {
                assert_ne!(c, d);
                assert_eq!(st.a[st.units[u][0]], [c], "unit {u} has one copy, on {c}");
                assert!(moves[..i].iter().all(|m| m.0 != u), "unit {u} twice");
            }
            if let Some(g) = st.gain_of(&moves).filter(|&g| g > 0.0) {
                for &(u, c, d) in &moves {
                    st.apply(u, c, d);
                }
                assert_eq!(violation(&inst, st.a), None);
                let now = evaluate(&inst, &w, st.a).total;
                assert!((total - g - now).abs() < 1e-6, "{total} - {g} != {now}");
                total = now;
                gained += 1;
            }
        }
        assert!(
            proposed > 300 && gained > 0,
            "{proposed} proposed, {gained} gained"
        );
    }
}
