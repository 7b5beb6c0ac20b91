//! The facts a reconcile plans from, besides the store's records: the
//! planner's view of the desired graph ([`desired_graph`]) and the live
//! observations it asks for ([`observe`]), plus what the graph record
//! keeps of them (the desired hash, why an invalid descriptor holds).

use super::actions::clean::CleanMemo;
use super::actions::observe;
use super::batch::Batch;
use super::error::{Reason, StepError};
use super::plan::{self, DesiredGraph, DesiredService, Observed, Readiness, Trigger};
use super::triggers;
use super::world::World;
use crate::adapters::karmada::{Karmada, Owner};
use crate::adapters::manifest;
use crate::desired::{Graph, GraphEntry};
use crate::release::ReleaseInput;
use crate::store::records::{FiredEvent, ServiceRecord};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The live facts the plan needs: drift of installed services (on
/// resyncs, concurrently: one GET per object), the readiness of the
/// dependencies of services about to install or upgrade, and who owns
/// a release of the name of a service about to install.
pub(super) async fn observe(
    karmada: &Karmada,
    desired: &DesiredGraph<'_>,
    batch: &Batch,
    drift_check: bool,
    scaled: &BTreeSet<&str>,
    owner: &Owner,
    clean: &Arc<CleanMemo>,
) -> Observed {
    let mut observed = Observed::default();
    if drift_check {
        let mut set = tokio::task::JoinSet::new();
        let checked = |r: &ServiceRecord| r.release_revision.is_some() && r.manifest.is_some();
        for rec in batch.services.values().filter(|r| checked(r)) {
            let (karmada, rec, clean) = (karmada.clone(), rec.clone(), Arc::clone(clean));
            let ignore_replicas = scaled.contains(rec.service.as_str());
            set.spawn(async move {
                let drift = observe::drift(&karmada, &rec, ignore_replicas, &clean).await;
                (rec.service, drift)
            });
        }
        // Services no longer checked are forgotten.
        clean.retain(&batch.key, |s| batch.services.get(s).is_some_and(checked));
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((service, drift)) => {
                    observed.drift.insert(service, drift);
                }
                Err(e) => tracing::warn!(error = %e, "drift check task failed"),
            }
        }
    }
    for dep in plan::readiness_wanted(desired, &batch.services) {
        let readiness = match batch.services.get(&dep) {
            Some(rec) if rec.release_revision.is_some() => observe::readiness(karmada, rec).await,
            _ => Readiness::NotReady(format!("{dep} is not deployed")),
        };
        observed.readiness.insert(dep, readiness);
    }
    for service in plan::ownership_wanted(desired, &batch.services) {
        // The release is named after the service, in the project's
        // namespace.
        let o = observe::ownership(karmada, &owner.project, &service, owner).await;
        observed.releases.insert(service, o);
    }
    observed
}

/// Manifests recorded before smo kept them in canonical form (helm's own
/// text) are rewritten once, on a resync, as the same objects in that form:
/// every later resync reads them with the JSON parser. A manifest that does
/// not parse is left as it is (its drift check says why).
pub(super) fn canonicalise_manifests(batch: &mut Batch) {
    for rec in batch.services.values_mut() {
        if let Some(text) = &rec.manifest
            && !manifest::is_canonical(text)
            && let Ok(objects) = manifest::parse(text)
        {
            rec.manifest = Some(manifest::canonical(&objects));
        }
    }
}

/// The planner's view of the desired graph.
pub(super) fn desired_graph<'a>(
    graph: &'a Graph,
    inputs: &BTreeMap<&str, &'a ReleaseInput>,
    recorded: &[FiredEvent],
    world: &World,
) -> DesiredGraph<'a> {
    let hda = &graph.descriptor.hda_graph;
    let services = hda
        .services
        .iter()
        .map(|s| DesiredService {
            id: s.id.as_str(),
            hash: &inputs[s.id.as_str()].hash,
            dependencies: s.dependencies().iter().map(String::as_str).collect(),
            adopt: s.artifact.adopt,
            trigger: s.event_trigger().map(|t| {
                let mine: Vec<FiredEvent> = recorded
                    .iter()
                    .filter(|f| f.service == s.id.as_str())
                    .cloned()
                    .collect();
                Trigger {
                    evaluation: triggers::evaluate(t, &mine),
                    undeploy_on_resolve: t.undeploy_on_resolve,
                    events: t.events.iter().map(|e| e.id.as_str()).collect(),
                    recorded: mine,
                }
            }),
        })
        .collect();
    DesiredGraph {
        suspended: hda.suspend,
        drift: world.desired.settings.drift,
        services,
    }
}

/// The hash of the graph as the descriptor declares it (canonical JSON):
/// what the record's last attempt was made from.
pub(super) fn desired_hash(graph: &Graph) -> String {
    graph
        .memo
        .desired_hash
        .get_or_init(|| {
            serde_json::to_value(&graph.descriptor)
                .map(|v| crate::digest::json_sha256(&v))
                .unwrap_or_default()
        })
        .clone()
}

/// Why an invalid descriptor holds its graph, with its errors.
pub(super) fn invalid(world: &World, entry: &GraphEntry) -> StepError {
    let errors: Vec<String> = world
        .desired
        .findings
        .iter()
        .filter(|f| f.file == entry.file && f.is_error())
        .map(ToString::to_string)
        .collect();
    StepError::terminal(
        Reason::InvalidDescriptor,
        format!(
            "{} is invalid; the last good state is kept: {}",
            entry.file,
            errors.join("; ")
        ),
    )
}
