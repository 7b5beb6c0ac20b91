//! What a graph publishes besides its releases: the alert rules of the
//! services still waiting for their trigger, and its Grafana dashboards.

use super::batch::Batch;
use super::dashsync::DashboardSync;
use super::error::StepError;
use super::rulesync::RuleSync;
use crate::adapters::karmada::{Karmada, Owner};
use crate::desired::Graph;
use crate::store::Kind;
use crate::store::records::ServicePhase;

/// Alert rules of the services still waiting for their trigger (a service
/// deployed by its trigger, suspended or removed has none). Returns the
/// failure to report, if any.
pub async fn rules(
    sync: &RuleSync,
    karmada: &Karmada,
    owner: &Owner,
    graph: &Graph,
    batch: &mut Batch,
) -> Option<StepError> {
    let hda = &graph.descriptor.hda_graph;
    let armed = hda.services.iter().filter_map(|s| {
        let trigger = s.event_trigger()?;
        let rec = batch.services.get(s.id.as_str())?;
        (!hda.suspend && rec.phase == ServicePhase::WaitingForTrigger)
            .then_some((s.id.as_str(), trigger))
    });
    let group = crate::rules::group(&graph.project, hda, armed, &sync.severity);
    let owned = &mut batch.owned;
    match sync
        .sync(
            karmada,
            owner,
            &group,
            &mut owned.objects,
            &mut owned.deleted,
        )
        .await
    {
        Ok(Some(what)) => {
            batch.event(None, Kind::RulesUpdated, what);
            None
        }
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(error = %e, "alert rules not synced");
            batch.event(None, Kind::RulesFailed, e.to_string());
            Some(e.into())
        }
    }
}

/// Dashboards: published while the graph exists; those of removed
/// services deleted. A Grafana outage retries the graph; a refusal
/// (token, rights) is reported without holding the graph back.
pub async fn dashboards(
    sync: &DashboardSync,
    graph: &Graph,
    batch: &mut Batch,
) -> Option<StepError> {
    if !sync.enabled() {
        return None;
    }
    let hda = &graph.descriptor.hda_graph;
    let ids: Vec<String> = hda.services.iter().map(|s| s.id.to_string()).collect();
    let rec = batch
        .graph
        .as_mut()
        .expect("the engine creates the record first");
    let result = match sync
        .publish_graph(&graph.project, graph.id(), &ids, &rec.dashboards)
        .await
    {
        Ok(urls) => {
            let stale: Vec<String> = rec
                .dashboards
                .keys()
                .filter(|u| !urls.contains_key(*u))
                .cloned()
                .collect();
            let deleted = sync.delete(&graph.project, &stale).await;
            rec.dashboards = urls;
            // What could not be deleted stays recorded, to be tried again.
            rec.dashboards.extend(
                stale
                    .into_iter()
                    .filter(|_| deleted.is_err())
                    .map(|u| (u, String::new())),
            );
            deleted
        }
        Err(e) => Err(e),
    };
    let e = result.err()?;
    tracing::warn!(error = %e, "dashboards not published");
    batch.event(None, Kind::DashboardsFailed, e.to_string());
    let e = StepError::from(e);
    e.transient.then_some(e)
}
