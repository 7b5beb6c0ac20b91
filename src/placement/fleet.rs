//! Fleet placement: every graph of the desired state placed on one shared
//! set of clusters, with an answer that does not depend on input order.
//!
//! Capacity bookkeeping: `free` is what no graph holds; each graph holds
//! what it uses now (its current placement, counted as allocated by the
//! inventory) until it is placed, then what its new placement uses. A graph
//! being placed sees `free` plus what it holds itself, so a re-placement
//! may always keep its own resources and never takes another graph's.
//!
//! Order: graphs with a pinned service first (the operator's fixed demand
//! is reserved before flexible demand can fill the pinned clusters), then
//! the others, each class in name order. Names identify graphs (the plan
//! uses `project/graph`), so the order, and with it the answer, is the same
//! for every permutation of the input.
//!
//! Repair: when a graph cannot be placed, flexible graphs (no pinned
//! service) that hold capacity on clusters it could use are released and
//! re-placed after it, their movement counted by their own objective. One
//! graph is released if one suffices (the cheapest such release, in total
//! objective, wins; ties go to the earlier graph in the order), otherwise
//! all of them at once; if even that fails, nothing moves and the graph's
//! own error is reported. Graphs are never moved for any other reason.

use super::error::PlacementError;
use super::model::{Cluster, PlacementOptions, PlacementOutcome, PlacementProblem};

/// At most this many graphs are tried for release per failing graph: each
/// try is two solves, and a fleet where more than a few graphs stand in
/// the way needs more capacity, not a longer search.
const MAX_RELEASE: usize = 8;

/// One graph of a fleet. Its `problem.clusters` is ignored: the fleet's
/// running cluster state is used instead.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetGraph {
    pub name: String,
    pub problem: PlacementProblem,
    pub options: PlacementOptions,
}

type Usage = Vec<[f64; 3]>;
type Answer = Result<PlacementOutcome, PlacementError>;

#[derive(Clone)]
struct State {
    free: Usage,
    held: Vec<Usage>,
    out: Vec<Option<Answer>>,
    /// The capacity each graph's answer was found on.
    solved_on: Vec<Option<Usage>>,
}

struct Fleet<'a> {
    clusters: &'a [Cluster],
    graphs: &'a [FleetGraph],
    st: State,
}

/// Places every graph (see the module documentation for the rules);
/// answers come back in input order.
pub fn place_fleet(clusters: &[Cluster], graphs: &[FleetGraph]) -> Vec<Answer> {
    place_fleet_models(clusters, graphs)
        .into_iter()
        .map(|(a, _)| a)
        .collect()
}

/// [`place_fleet`], with each placed graph's last model: the graph's
/// problem on the fleet's clusters and the capacity it was given there
/// (what [`super::export_mps_on`] needs to write the exact model).
pub fn place_fleet_models(
    clusters: &[Cluster],
    graphs: &[FleetGraph],
) -> Vec<(Answer, Option<FleetModel>)> {
    let mut fleet = Fleet::new(clusters, graphs);
    for g in order(graphs) {
        if fleet.st.out[g].is_some() {
            continue;
        }
        let answer = fleet.place(g);
        let answer = match answer {
            Err(e) if !matches!(e, PlacementError::InvalidInput(_)) => match fleet.repair(g) {
                Some(ok) => Ok(ok),
                None => Err(e),
            },
            other => other,
        };
        fleet.st.out[g] = Some(answer);
    }
    let State { out, solved_on, .. } = fleet.st;
    out.into_iter()
        .zip(solved_on)
        .zip(graphs)
        .map(|((r, cap), g)| {
            let answer = r
                .unwrap_or_else(|| Err(PlacementError::Solver("graph was never placed".into())))
                .map_err(|e| PlacementError::Graph {
                    graph: g.name.clone(),
                    source: Box::new(e),
                });
            let model = cap.filter(|_| answer.is_ok()).map(|capacity| FleetModel {
                problem: PlacementProblem {
                    clusters: clusters.to_vec(),
                    ..g.problem.clone()
                },
                capacity,
            });
            (answer, model)
        })
        .collect()
}

/// Room made for one graph: its outcome, and the graphs that move for it
/// (input index and new outcome; only graphs whose clusters change).
#[derive(Debug, Clone)]
pub struct Room {
    pub outcome: PlacementOutcome,
    pub moved: Vec<(usize, PlacementOutcome)>,
}

/// Places graph `target` while every other graph keeps what it holds now
/// (its `current` placement, counted as allocated by the inventory); when
/// that fails, flexible graphs standing in its way are re-placed by the
/// fleet's repair rule (see the module documentation). This is how the
/// daemon places a graph that cannot be placed on its own: the others are
/// already running, and only the graphs that must move are touched.
/// `None`: no such room (the graph's own error stands).
pub fn make_room(clusters: &[Cluster], graphs: &[FleetGraph], target: usize) -> Option<Room> {
    let mut fleet = Fleet::new(clusters, graphs);
    if let Ok(outcome) = fleet.place(target) {
        return Some(Room {
            outcome,
            moved: Vec::new(),
        });
    }
    let outcome = fleet.repair(target)?;
    let moved = fleet
        .st
        .out
        .into_iter()
        .enumerate()
        .filter(|&(h, _)| h != target)
        .filter_map(|(h, a)| Some((h, a?.ok()?)))
        .filter(|(h, o)| {
            let current: Vec<&Vec<String>> = graphs[*h]
                .problem
                .services
                .iter()
                .map(|s| &s.current)
                .collect();
            o.services.iter().map(|s| &s.clusters).ne(current)
        })
        .collect();
    Some(Room { outcome, moved })
}

/// The model a fleet member's answer came from.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetModel {
    pub problem: PlacementProblem,
    /// Per cluster (`problem.clusters` order): CPU, memory bytes, GPUs.
    pub capacity: Vec<[f64; 3]>,
}

fn pinned(g: &FleetGraph) -> bool {
    g.problem.services.iter().any(|s| !s.pinned.is_empty())
}

/// Graphs with a pinned service first, then by name (input index last,
/// only for duplicate names).
fn order(graphs: &[FleetGraph]) -> Vec<usize> {
    let mut o: Vec<usize> = (0..graphs.len()).collect();
    o.sort_by(|&a, &b| {
        let (ga, gb) = (&graphs[a], &graphs[b]);
        pinned(gb)
            .cmp(&pinned(ga))
            .then(ga.name.cmp(&gb.name))
            .then(a.cmp(&b))
    });
    o
}

/// Per cluster (input order), what the services use on the named clusters.
fn usage(clusters: &[Cluster], p: &PlacementProblem, on: &[Vec<String>]) -> Usage {
    let mut u = vec![[0.0; 3]; clusters.len()];
    for (s, names) in p.services.iter().zip(on) {
        let r = f64::from(s.replicas);
        let d = [
            s.cpu * r,
            s.memory_bytes as f64 * r,
            if s.gpu { r } else { 0.0 },
        ];
        for (i, c) in clusters.iter().enumerate() {
            if names.contains(&c.name) {
                for (x, y) in u[i].iter_mut().zip(d) {
                    *x += y;
                }
            }
        }
    }
    u
}

impl<'a> Fleet<'a> {
    /// Every graph holding what its current placement uses, nothing
    /// placed yet.
    fn new(clusters: &'a [Cluster], graphs: &'a [FleetGraph]) -> Self {
        let free = clusters
            .iter()
            .map(|c| {
                [
                    c.free_cpu.max(0.0),
                    c.free_memory_bytes as f64,
                    f64::from(c.free_gpu),
                ]
            })
            .collect();
        let held = graphs
            .iter()
            .map(|g| {
                let current: Vec<Vec<String>> = g
                    .problem
                    .services
                    .iter()
                    .map(|s| s.current.clone())
                    .collect();
                usage(clusters, &g.problem, &current)
            })
            .collect();
        Fleet {
            clusters,
            graphs,
            st: State {
                free,
                held,
                out: vec![None; graphs.len()],
                solved_on: vec![None; graphs.len()],
            },
        }
    }

    /// Places graph `g` on what is free plus what it holds; on success it
    /// holds its new placement instead.
    fn place(&mut self, g: usize) -> Answer {
        let st = &mut self.st;
        let cap: Usage = st
            .free
            .iter()
            .zip(&st.held[g])
            .map(|(f, h)| [f[0] + h[0], f[1] + h[1], f[2] + h[2]])
            .collect();
        let fg = &self.graphs[g];
        let mut problem = fg.problem.clone();
        // For display only: the engine uses `cap`.
        problem.clusters = self
            .clusters
            .iter()
            .zip(&cap)
            .map(|(c, k)| Cluster {
                free_cpu: k[0],
                free_memory_bytes: k[1] as u64,
                free_gpu: k[2] as u32,
                ..c.clone()
            })
            .collect();
        let outcome = super::place_on(&problem, &fg.options, &cap)?;
        let now = usage(self.clusters, &problem, &outcome.assignment());
        for ((f, h), n) in st.free.iter_mut().zip(&st.held[g]).zip(&now) {
            for r in 0..3 {
                f[r] += h[r] - n[r];
            }
        }
        st.held[g] = now;
        st.solved_on[g] = Some(cap);
        Ok(outcome)
    }

    /// Lets go of what graph `h` holds.
    fn release(&mut self, h: usize) {
        let st = &mut self.st;
        for (f, x) in st.free.iter_mut().zip(&st.held[h]) {
            for r in 0..3 {
                f[r] += x[r];
            }
        }
        st.held[h] = vec![[0.0; 3]; self.clusters.len()];
        st.out[h] = None;
    }

    /// Flexible graphs holding capacity on a cluster `g` could use, in the
    /// fleet order.
    fn blockers(&self, g: usize) -> Vec<usize> {
        let usable: Vec<bool> = self
            .clusters
            .iter()
            .map(|c| {
                c.ready
                    && c.schedulable
                    && self.graphs[g]
                        .problem
                        .services
                        .iter()
                        .any(|s| s.pinned.is_empty() || s.pinned.contains(&c.name))
            })
            .collect();
        order(self.graphs)
            .into_iter()
            .filter(|&h| h != g && !pinned(&self.graphs[h]))
            .filter(|&h| !matches!(self.st.out[h], Some(Err(_))))
            .filter(|&h| {
                self.st.held[h]
                    .iter()
                    .zip(&usable)
                    .any(|(x, &u)| u && x.iter().any(|&v| v > 0.0))
            })
            .take(MAX_RELEASE)
            .collect()
    }

    /// Places `g` by releasing and re-placing blockers; on success the
    /// state is the repaired one and `g`'s outcome is returned.
    fn repair(&mut self, g: usize) -> Option<PlacementOutcome> {
        let before = self.st.clone();
        let blockers = self.blockers(g);
        let total = |a: &Option<Answer>| match a {
            Some(Ok(o)) => o.objective.total,
            _ => 0.0,
        };
        let mut best: Option<(f64, State, PlacementOutcome)> = None;
        for &h in &blockers {
            self.st = before.clone();
            let old = total(&self.st.out[h]);
            if let Some((cost, outcome)) = self.try_release(g, &[h]) {
                let cost = cost - old;
                if best.as_ref().is_none_or(|b| cost < b.0 - 1e-9) {
                    best = Some((cost, self.st.clone(), outcome));
                }
            }
        }
        if let Some((_, st, outcome)) = best {
            self.st = st;
            return Some(outcome);
        }
        self.st = before.clone();
        if blockers.len() > 1
            && let Some((_, outcome)) = self.try_release(g, &blockers)
        {
            return Some(outcome);
        }
        self.st = before;
        None
    }

    /// Releases `hs`, places `g`, then re-places `hs` in order; returns the
    /// total objective of the placed graphs and `g`'s outcome.
    fn try_release(&mut self, g: usize, hs: &[usize]) -> Option<(f64, PlacementOutcome)> {
        for &h in hs {
            self.release(h);
        }
        let outcome = self.place(g).ok()?;
        let mut cost = outcome.objective.total;
        for &h in hs {
            let o = self.place(h).ok()?;
            cost += o.objective.total;
            self.st.out[h] = Some(Ok(o));
        }
        Some((cost, outcome))
    }
}
