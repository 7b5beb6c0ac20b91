//! The records of one graph as a reconcile reads and changes them, written
//! back in one store transaction at its end. Unchanged records are not
//! written (a no-op pass over hundreds of graphs would otherwise be
//! hundreds of commits); a fired trigger is cleared only if the webhook
//! did not record a newer firing meanwhile.

use super::actions::owned::OwnedSet;
use crate::keys::GraphKey;
use crate::provenance::Cause;
use crate::store::Kind;
use crate::store::records::{
    FiredEvent, GraphRecord, MoveRecord, NewEvent, OwnedObject, ScaleRecord, ServiceRecord,
    service_key,
};
use crate::store::{Store, StoreError};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A graph's records, read at the start of a reconcile.
#[derive(Debug, Clone)]
pub struct Batch {
    pub key: GraphKey,
    /// `None` until the graph is first recorded.
    pub graph: Option<GraphRecord>,
    pub services: BTreeMap<String, ServiceRecord>,
    pub deleted_services: Vec<String>,
    pub owned: OwnedSet,
    /// Journal entries: service (if any), kind, message.
    pub events: Vec<(Option<String>, Kind, String)>,
    /// The revision in force, stamped on the journal entries.
    pub cause: Option<Cause>,
    /// Fired trigger events as read.
    pub triggers: Vec<FiredEvent>,
    /// Fired events to clear (re-arming), as they should be written.
    pub rearm: Vec<FiredEvent>,
    /// The scaler's decisions, by service.
    pub scales: BTreeMap<String, ScaleRecord>,
    pub forget_scales: Vec<String>,
    /// Write-ahead intents whose result this batch records.
    pub intents_done: Vec<String>,
    /// The move asked of this graph, as read (see [`MoveRecord`]).
    pub move_asked: Option<MoveRecord>,
    /// The move asked was made or dropped: delete it (if it is still the
    /// one read).
    pub move_taken: bool,
    /// Moves of other graphs that make room for this one, written with
    /// its placement.
    pub moves: Vec<MoveRecord>,
    original: (
        Option<GraphRecord>,
        BTreeMap<String, ServiceRecord>,
        Vec<OwnedObject>,
    ),
}

/// Runs a store call off the async workers (a panic in it is resumed).
pub(super) async fn blocking<T: Send + 'static>(
    store: &Arc<Store>,
    f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let store = Arc::clone(store);
    match tokio::task::spawn_blocking(move || f(&store)).await {
        Ok(r) => r,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

impl Batch {
    /// Reads every record of `key` in one go (off the async workers).
    pub async fn load(store: &Arc<Store>, key: &GraphKey) -> Result<Batch, StoreError> {
        let k = key.clone();
        let (graph, services, owned, triggers, scales, move_asked) = blocking(store, move |s| {
            let (p, g) = (&k.project, &k.graph);
            Ok((
                s.graph(&k.to_string())?,
                s.services_of(p, g)?,
                s.owned_objects_of(p, g)?,
                s.triggers_of(p, g)?,
                s.scales_of(p, g)?,
                s.move_of(&k.to_string())?,
            ))
        })
        .await?;
        let services: BTreeMap<String, ServiceRecord> = services
            .into_iter()
            .map(|s| (s.service.clone(), s))
            .collect();
        Ok(Batch {
            key: key.clone(),
            original: (graph.clone(), services.clone(), owned.clone()),
            graph,
            services,
            deleted_services: Vec::new(),
            owned: OwnedSet::new(owned),
            events: Vec::new(),
            cause: None,
            triggers,
            rearm: Vec::new(),
            scales: scales.into_iter().map(|r| (r.service.clone(), r)).collect(),
            forget_scales: Vec::new(),
            intents_done: Vec::new(),
            move_asked,
            move_taken: false,
            moves: Vec::new(),
        })
    }

    pub fn event(&mut self, service: Option<&str>, kind: Kind, message: impl Into<String>) {
        self.events
            .push((service.map(str::to_owned), kind, message.into()));
    }

    /// The graph's record as it was read, before this reconcile.
    pub fn original_graph(&self) -> Option<&GraphRecord> {
        self.original.0.as_ref()
    }

    /// Writes what changed in one transaction. `now` stamps the records
    /// that changed.
    pub async fn commit(self, store: &Arc<Store>, now: u64) -> Result<(), StoreError> {
        let (orig_graph, orig_services, orig_owned) = self.original;
        let Some(mut graph) = self.graph else {
            return Ok(());
        };
        let graph_changed = orig_graph.as_ref().is_none_or(|o| !same_graph(o, &graph));
        if !graph_changed && let Some(o) = &orig_graph {
            graph.updated_at = o.updated_at;
        }
        let services: Vec<ServiceRecord> = self
            .services
            .into_values()
            .filter(|s| {
                orig_services
                    .get(&s.service)
                    .is_none_or(|o| !same_service(o, s))
            })
            .map(|mut s| {
                s.updated_at = now;
                s
            })
            .collect();
        let owned: Vec<OwnedObject> = self
            .owned
            .objects
            .into_iter()
            .filter(|o| !orig_owned.contains(o))
            .collect();
        let (deleted, deleted_owned, events, cause) = (
            self.deleted_services,
            self.owned.deleted,
            self.events,
            self.cause,
        );
        let (rearm, read_triggers, forget_scales) = (self.rearm, self.triggers, self.forget_scales);
        let intents_done = self.intents_done;
        let taken = self.move_asked.filter(|_| self.move_taken);
        let moves = self.moves;
        if !graph_changed
            && rearm.is_empty()
            && services.is_empty()
            && deleted.is_empty()
            && owned.is_empty()
            && deleted_owned.is_empty()
            && events.is_empty()
            && forget_scales.is_empty()
            && intents_done.is_empty()
            && taken.is_none()
            && moves.is_empty()
        {
            return Ok(());
        }
        blocking(store, move |s| {
            s.write(|tx| {
                tx.put_graph(&graph)?;
                for svc in &services {
                    tx.put_service(svc)?;
                }
                for d in &deleted {
                    tx.delete_service(&service_key(&graph.project, &graph.graph, d))?;
                    tx.delete_triggers_of(&graph.project, &graph.graph, d)?;
                }
                for d in &forget_scales {
                    tx.delete_scale(&service_key(&graph.project, &graph.graph, d))?;
                }
                for cleared in &rearm {
                    // Only if the webhook did not record a newer firing
                    // since this reconcile read it.
                    let current = tx.trigger(&cleared.key())?;
                    let as_read = read_triggers.iter().find(|t| t.key() == cleared.key());
                    if current.as_ref() == as_read {
                        tx.put_trigger(cleared)?;
                    }
                }
                for o in &owned {
                    tx.put_owned(o)?;
                }
                // The results above are what these intents announced.
                for k in &intents_done {
                    tx.delete_intent(k)?;
                }
                for o in &deleted_owned {
                    tx.delete_owned(&o.key())?;
                }
                // Only the request this reconcile acted on: a newer one
                // (written meanwhile for another graph) stays.
                if let Some(m) = &taken
                    && tx.move_of(&m.key())?.as_ref() == Some(m)
                {
                    tx.delete_move(&m.key())?;
                }
                for m in &moves {
                    tx.put_move(m)?;
                    let key = (m.project.as_str(), m.graph.as_str());
                    let message = format!("by the fleet: to make room for {}", m.for_graph);
                    let event =
                        NewEvent::graph(now, key, None, Kind::ReplacementRequested, message);
                    tx.append_event(event.caused_by(cause.clone()))?;
                }
                for (service, kind, message) in &events {
                    let key = (graph.project.as_str(), graph.graph.as_str());
                    let event = NewEvent::graph(now, key, service.as_deref(), *kind, message);
                    tx.append_event(event.caused_by(cause.clone()))?;
                }
                Ok(())
            })
        })
        .await
    }
}

fn same_graph(a: &GraphRecord, b: &GraphRecord) -> bool {
    let mut b = b.clone();
    b.updated_at = a.updated_at;
    *a == b
}

fn same_service(a: &ServiceRecord, b: &ServiceRecord) -> bool {
    let mut b = b.clone();
    b.updated_at = a.updated_at;
    *a == b
}
