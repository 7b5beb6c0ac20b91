//! The sweep by ownership: what smo created carries its labels (releases
//! through `helm --labels`, objects through the apply), so what the store
//! lost — a kill between a side effect and its commit that no intent
//! covered, a store restored from a backup or deleted — can be found
//! again. At start and on every resync the daemon lists what carries smo's
//! labels and this module decides which of it the store must record.
//!
//! Recording is all the sweep does. The graph's next reconcile then keeps
//! what the graph wants (as it is when the release's inputs label names the
//! desired inputs, otherwise by an upgrade) and removes the rest through
//! the one removal path, with its ownership checks and the prune guard. Graphs that no file declares and the store does not know
//! (their objects are orphans) count as removals for the prune guard: a
//! sweep that would introduce too many of them holds them all and says why.
//!
//! Never recorded: a release or object that any graph's record already
//! holds (another graph may have adopted it), and what carries no graph
//! label (the namespaces smo creates are shared by a project's graphs).

use crate::adapters::karmada::{Managed, ManagedRelease};
use crate::keys::GraphKey;
use crate::store::records::{GraphRecord, OwnedObject, ReleaseHead, ServicePhase, ServiceRecord};
use std::collections::BTreeSet;

/// What the store records today.
#[derive(Debug, Clone, Copy)]
pub struct Recorded<'a> {
    pub graphs: &'a [GraphRecord],
    pub services: &'a [ReleaseHead],
    pub owned: &'a [OwnedObject],
}

/// What the sweep records, and what it holds back.
#[derive(Debug, Default, PartialEq)]
pub struct Sweep {
    pub graphs: Vec<GraphRecord>,
    pub services: Vec<ServiceRecord>,
    pub owned: Vec<OwnedObject>,
    /// The graphs whose records changed: to reconcile now.
    pub touched: BTreeSet<GraphKey>,
    /// Why orphans were not recorded (the prune guard), with how many.
    pub held: Option<String>,
}

impl Sweep {
    pub fn is_empty(&self) -> bool {
        self.graphs.is_empty() && self.services.is_empty() && self.owned.is_empty()
    }

    /// The graphs of everything this sweep records.
    fn graph_keys(&self) -> impl Iterator<Item = GraphKey> + '_ {
        let services = self.services.iter().map(|s| (&s.project, &s.graph));
        let owned = self.owned.iter().map(|o| (&o.project, &o.graph));
        let graphs = self.graphs.iter().map(|g| (&g.project, &g.graph));
        services
            .chain(owned)
            .chain(graphs)
            .map(|(p, g)| GraphKey::new(p, g))
    }
}

/// Decides what to record. `kinds_owned` are the kinds recorded as owned
/// objects (the others, such as PrometheusRules that the rule sync finds by
/// name, only reveal their graph). `guard(existing, removing)` is the
/// prune guard. Pure.
pub fn plan(
    releases: &[ManagedRelease],
    objects: &[Managed],
    kinds_owned: &[&str],
    recorded: Recorded<'_>,
    declared: &BTreeSet<GraphKey>,
    guard: impl Fn(usize, usize) -> Option<String>,
    now: u64,
) -> Sweep {
    let known: BTreeSet<GraphKey> = recorded
        .graphs
        .iter()
        .map(|g| GraphKey::new(&g.project, &g.graph))
        .collect();
    let held_releases: BTreeSet<(&str, &str)> = recorded
        .services
        .iter()
        .map(|s| (s.namespace.as_str(), s.release.as_str()))
        .collect();
    let held_objects: BTreeSet<(&str, &str, Option<&str>, &str)> = recorded
        .owned
        .iter()
        .map(|o| {
            (
                o.api_version.as_str(),
                o.kind.as_str(),
                o.namespace.as_deref(),
                o.name.as_str(),
            )
        })
        .collect();

    let mut sweep = Sweep::default();
    for r in releases {
        if held_releases.contains(&(r.namespace.as_str(), r.release.as_str())) {
            continue;
        }
        let mut rec = ServiceRecord::new(&r.owner.project, &r.owner.graph, &r.release, now);
        rec.namespace.clone_from(&r.namespace);
        rec.release_revision = Some(r.revision);
        rec.input_hash = r.inputs.as_deref().map(crate::release::inputs_from_label);
        rec.phase = ServicePhase::Deployed;
        rec.last_error =
            Some("found by smo's labels, not recorded: the next reconcile decides".into());
        sweep.services.push(rec);
    }
    for m in objects {
        let o = &m.object;
        let id = (
            o.api_version.as_str(),
            o.kind.as_str(),
            o.namespace.as_deref(),
            o.name.as_str(),
        );
        if held_objects.contains(&id) || !kinds_owned.contains(&o.kind.as_str()) {
            continue;
        }
        sweep.owned.push(OwnedObject {
            project: m.owner.project.clone(),
            graph: m.owner.graph.clone(),
            api_version: o.api_version.clone(),
            kind: o.kind.clone(),
            namespace: o.namespace.clone(),
            name: o.name.clone(),
        });
    }
    // Every graph named by what was found (objects of other kinds too:
    // an orphan's PrometheusRule is removed with its graph).
    let named: BTreeSet<GraphKey> = sweep
        .graph_keys()
        .chain(
            objects
                .iter()
                .map(|m| GraphKey::new(&m.owner.project, &m.owner.graph)),
        )
        .collect();
    let orphans: BTreeSet<GraphKey> = named
        .iter()
        .filter(|k| !known.contains(*k) && !declared.contains(*k))
        .cloned()
        .collect();
    if !orphans.is_empty() {
        let removing = known.iter().filter(|k| !declared.contains(*k)).count() + orphans.len();
        if let Some(why) = guard(known.len() + orphans.len(), removing) {
            sweep.held = Some(format!(
                "{} graph(s) that no file declares own releases or objects ({}); not recorded: {why}",
                orphans.len(),
                orphans
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            let orphan = |p: &str, g: &str| orphans.contains(&GraphKey::new(p, g));
            sweep.services.retain(|s| !orphan(&s.project, &s.graph));
            sweep.owned.retain(|o| !orphan(&o.project, &o.graph));
        } else {
            sweep.graphs = orphans
                .iter()
                .map(|k| GraphRecord::new(&k.project, &k.graph, "", now))
                .collect();
        }
    }
    // A declared graph the store does not know yet gets its record from
    // its own first reconcile; its found things wait in the store for it.
    sweep.touched = sweep.graph_keys().collect();
    sweep
}

#[cfg(test)]
#[path = "sweep_tests.rs"]
mod tests;
