//! The crash suite's random choices and the desired state as the test
//! knows it: graphs, fired alerts, and what the daemon's status must show.

use super::{CHART, EVENT, PLAIN, PROJECTS, PROVISIONED, WORKERS};
use crate::daemon::Env;
use crate::support::graph;
use smo::dashboards;
use smo::store::records::{ConditionKind, ProvisionStatus, ServicePhase};
use smo::store::snapshot::StatusSnapshot;
use std::collections::{BTreeMap, BTreeSet};

// ---------------------------------------------------------------------
// A seeded PRNG (xorshift64*)

pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub(super) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// `k` distinct elements of `items`, in random order.
    pub(super) fn pick<T: Clone>(&mut self, items: &[T], k: usize) -> Vec<T> {
        let mut v = items.to_vec();
        for i in (1..v.len()).rev() {
            v.swap(i, usize::try_from(self.below(i as u64 + 1)).unwrap());
        }
        v.truncate(k);
        v
    }
}

pub(super) fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.parse()
            .unwrap_or_else(|e| panic!("{name}={v:?} is not a number: {e}")),
    )
}

// ---------------------------------------------------------------------
// The desired state, as the test knows it

#[derive(Debug, Clone)]
pub(super) struct Svc {
    pub(super) id: String,
    pub(super) chart: &'static str,
    pub(super) deps: Vec<String>,
    pub(super) event: bool,
}

#[derive(Debug, Clone)]
pub(super) struct Graph {
    pub(super) project: &'static str,
    pub(super) id: String,
    pub(super) cpu: &'static str,
    pub(super) services: Vec<Svc>,
}

impl Graph {
    /// Graph number `n`: a service `a` in every graph, `b` depending on it
    /// in every other one, an event-triggered `ev` in every third; charts
    /// with and without their own policy mixed.
    pub(super) fn new(n: usize) -> Graph {
        let id = format!("g{n:03}");
        let svc = |name: &str, chart, deps: &[&str], event| Svc {
            id: format!("{id}-{name}"),
            chart,
            deps: deps.iter().map(|d| format!("{id}-{d}")).collect(),
            event,
        };
        let mut services = vec![svc(
            "a",
            if n.is_multiple_of(4) { PLAIN } else { CHART },
            &[],
            false,
        )];
        if n % 2 == 1 {
            services.push(svc(
                "b",
                if n.is_multiple_of(3) { PLAIN } else { CHART },
                &["a"],
                false,
            ));
        }
        if n.is_multiple_of(3) {
            services.push(svc(
                "ev",
                if n.is_multiple_of(2) { CHART } else { PLAIN },
                &[],
                true,
            ));
        }
        Graph {
            project: PROJECTS[(n + n / 3) % PROJECTS.len()],
            id,
            cpu: "light",
            services,
        }
    }

    fn dashboards(&self) -> BTreeSet<String> {
        std::iter::once(dashboards::graph_uid(self.project, &self.id))
            .chain(
                self.services
                    .iter()
                    .map(|s| dashboards::service_uid(self.project, &self.id, &s.id)),
            )
            .collect()
    }

    pub(super) fn key(&self) -> String {
        format!("{}/{}", self.project, self.id)
    }

    pub(super) fn file(&self) -> String {
        format!("projects/{}/{}.yaml", self.project, self.id)
    }

    pub(super) fn yaml(&self) -> String {
        let mut b = graph(&self.id);
        for s in &self.services {
            b = b.service(&s.id).cpu(self.cpu).chart(s.chart);
            for d in &s.deps {
                b = b.depends_on(d);
            }
            if s.event {
                b = b.event(EVENT);
            }
        }
        b.yaml()
    }
}

/// An event-triggered service: (project, graph, service).
pub(super) type Target = (String, String, String);

#[derive(Debug, Default)]
pub(super) struct Model {
    pub(super) graphs: BTreeMap<String, Graph>,
    /// Alerts answered 200.
    pub(super) fired: BTreeSet<Target>,
    pub(super) next: usize,
}

impl Model {
    pub(super) fn add(&mut self, env: &Env) -> Graph {
        let g = Graph::new(self.next);
        self.next += 1;
        std::fs::write(env.descriptor(&g.file()), g.yaml()).unwrap();
        self.graphs.insert(g.key(), g.clone());
        g
    }

    pub(super) fn wanted(&self, g: &Graph, s: &Svc) -> bool {
        !s.event
            || self
                .fired
                .contains(&(g.project.into(), g.id.clone(), s.id.clone()))
    }

    /// Releases wanted in `ns`: name → whether the chart lacks a policy.
    pub(super) fn releases(&self, ns: &str) -> BTreeMap<String, bool> {
        self.graphs
            .values()
            .filter(|g| g.project == ns)
            .flat_map(|g| {
                g.services
                    .iter()
                    .filter(|s| self.wanted(g, s))
                    .map(|s| (s.id.clone(), s.chart == PLAIN))
            })
            .collect()
    }

    pub(super) fn targets(&self) -> Vec<Target> {
        self.graphs
            .values()
            .flat_map(|g| {
                g.services
                    .iter()
                    .filter(|s| s.event)
                    .map(|s| (g.project.to_owned(), g.id.clone(), s.id.clone()))
            })
            .collect()
    }

    /// The uids of every graph's dashboards (one per graph and service).
    pub(super) fn dashboards(&self) -> BTreeSet<String> {
        self.graphs
            .values()
            .flat_map(|g| g.dashboards().into_iter())
            .collect()
    }

    /// Does the daemon's own status say it reached this state?
    pub(super) fn mismatch(&self, s: &StatusSnapshot) -> Option<String> {
        let graphs: BTreeSet<String> = s
            .graphs
            .iter()
            .map(|g| format!("{}/{}", g.project, g.graph))
            .collect();
        let want: BTreeSet<String> = self.graphs.keys().cloned().collect();
        if graphs != want {
            return Some(format!(
                "graphs: extra {:?}, missing {:?}",
                graphs.difference(&want).collect::<Vec<_>>(),
                want.difference(&graphs).collect::<Vec<_>>()
            ));
        }
        // Every graph reconciled to the end at the state's current revision
        // (a start reconciles every graph; a pass is only recorded once the
        // queue is idle, which a resync shorter than a pass under load
        // never lets happen).
        let Some(revision) = &s.source_revision else {
            return Some("no source revision yet".into());
        };
        for g in &s.graphs {
            if g.last_applied_revision.as_ref() != Some(revision) {
                return Some(format!(
                    "{}/{} last applied {:?}, the state is {revision}",
                    g.project, g.graph, g.last_applied_revision
                ));
            }
            let ready = g
                .conditions
                .iter()
                .any(|c| c.kind == ConditionKind::Ready && c.status);
            if !ready {
                return Some(format!(
                    "{}/{} not Ready: {:?}",
                    g.project, g.graph, g.conditions
                ));
            }
        }
        for g in &s.graphs {
            let want = self.graphs[&format!("{}/{}", g.project, g.graph)].dashboards();
            if g.dashboards.keys().cloned().collect::<BTreeSet<_>>() != want {
                return Some(format!(
                    "{}/{} dashboards {:?}, want {want:?}",
                    g.project,
                    g.graph,
                    g.dashboards.keys()
                ));
            }
        }
        match s.provisions.iter().find(|r| r.cluster == PROVISIONED) {
            Some(r) if r.status == ProvisionStatus::Ready && r.workers == WORKERS => {}
            other => return Some(format!("{PROVISIONED}: {other:?}")),
        }
        let mut services: BTreeMap<String, ServicePhase> = s
            .services
            .iter()
            .map(|r| (format!("{}/{}/{}", r.project, r.graph, r.service), r.phase))
            .collect();
        for g in self.graphs.values() {
            for svc in &g.services {
                let key = format!("{}/{}", g.key(), svc.id);
                let want = if self.wanted(g, svc) {
                    ServicePhase::Deployed
                } else {
                    ServicePhase::WaitingForTrigger
                };
                match services.remove(&key) {
                    Some(p) if p == want => {}
                    other => return Some(format!("{key}: {other:?}, want {want:?}")),
                }
            }
        }
        (!services.is_empty()).then(|| format!("services not desired: {services:?}"))
    }
}
