//! Write-ahead intents: before an executor causes a side effect that
//! creates something (a release, an owned object), it commits an
//! [`Intent`] naming it; the graph's batch deletes the intent in the same
//! transaction that records the result. A process killed in between
//! leaves the intent behind, and [`resolve`] at the next start makes the
//! store know what may now exist — so the reconcile that follows finishes
//! it (the graph is desired) or removes it (it is not): nothing smo
//! creates can be orphaned.

use crate::reconcile::error::StepError;
use crate::store::records::{GraphRecord, Intent, IntentEffect, ServiceRecord, service_key};
use crate::store::{Store, StoreError};
use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;

/// Where intents are committed.
pub trait IntentLog: Send + Sync {
    /// Commits `intent` durably before returning.
    fn begin(&self, intent: &Intent) -> impl Future<Output = Result<(), StepError>> + Send;
}

impl IntentLog for Arc<Store> {
    async fn begin(&self, intent: &Intent) -> Result<(), StepError> {
        let (store, intent) = (Arc::clone(self), intent.clone());
        match tokio::task::spawn_blocking(move || store.write(|tx| tx.put_intent(&intent))).await {
            Ok(r) => r.map_err(StepError::from),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
}

/// The intents one reconcile began, to delete with its batch.
pub struct Journal<'a, L> {
    log: &'a L,
    project: String,
    graph: String,
    now: u64,
    pub begun: Vec<String>,
}

impl<'a, L: IntentLog> Journal<'a, L> {
    pub fn new(log: &'a L, project: &str, graph: &str, now: u64) -> Self {
        Journal {
            log,
            project: project.to_owned(),
            graph: graph.to_owned(),
            now,
            begun: Vec::new(),
        }
    }

    /// Commits the intent of `effect`; the effect may start once this
    /// returned `Ok`.
    pub async fn begin(&mut self, effect: IntentEffect) -> Result<(), StepError> {
        let intent = Intent {
            project: self.project.clone(),
            graph: self.graph.clone(),
            effect,
            at: self.now,
        };
        self.log.begin(&intent).await?;
        let key = intent.key();
        if !self.begun.contains(&key) {
            self.begun.push(key);
        }
        Ok(())
    }
}

/// Resolves the intents a previous run left behind, in one transaction:
/// the graph and service (or owned object) each names are made known to
/// the store, then the intent is deleted. Returns the graphs concerned,
/// to reconcile first.
pub fn resolve(store: &Store, now: u64) -> Result<Vec<(String, String)>, StoreError> {
    store.write(|tx| {
        let mut graphs = BTreeSet::new();
        for intent in tx.intents()? {
            let (p, g) = (intent.project.as_str(), intent.graph.as_str());
            let key = crate::store::records::graph_key(p, g);
            if tx.graph(&key)?.is_none() {
                // Declared in no file smo knows of: if no file declares it
                // now, the reconcile removes what may exist.
                tx.put_graph(&GraphRecord::new(p, g, "", now))?;
            }
            match &intent.effect {
                IntentEffect::Release {
                    service,
                    release,
                    namespace,
                } => {
                    let exists = tx
                        .services_of(p, g)?
                        .iter()
                        .any(|s| s.service == *service);
                    if !exists {
                        let mut rec = ServiceRecord::new(p, g, service, now);
                        rec.release.clone_from(release);
                        rec.namespace.clone_from(namespace);
                        tx.put_service(&rec)?;
                    }
                    tracing::warn!(service = %service_key(p, g, service), "resolved an interrupted release operation");
                }
                IntentEffect::Object { object } => {
                    tx.put_owned(object)?;
                    tracing::warn!(object = %object.key(), "resolved an interrupted apply");
                }
            }
            tx.delete_intent(&intent.key())?;
            graphs.insert((p.to_owned(), g.to_owned()));
        }
        Ok(graphs.into_iter().collect())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::records::OwnedObject;

    #[test]
    fn an_interrupted_install_of_a_new_graph_is_known_after_resolution() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(Store::path_in(dir.path())).unwrap();
        // A kill after helm installed, before the batch recorded anything.
        let object = OwnedObject {
            project: "p".into(),
            graph: "g".into(),
            api_version: "policy.karmada.io/v1alpha1".into(),
            kind: "PropagationPolicy".into(),
            namespace: Some("p".into()),
            name: "web".into(),
        };
        for effect in [
            IntentEffect::Release {
                service: "web".into(),
                release: "web".into(),
                namespace: "p".into(),
            },
            IntentEffect::Object {
                object: object.clone(),
            },
        ] {
            let intent = Intent {
                project: "p".into(),
                graph: "g".into(),
                effect,
                at: 1,
            };
            store.write(|tx| tx.put_intent(&intent)).unwrap();
        }
        assert_eq!(store.intents().unwrap().len(), 2);
        let graphs = resolve(&store, 5).unwrap();
        assert_eq!(graphs, [("p".to_owned(), "g".to_owned())]);
        assert!(store.intents().unwrap().is_empty());
        let g = store.graph("p/g").unwrap().expect("a placeholder graph");
        assert_eq!(g.file, "");
        let services = store.services_of("p", "g").unwrap();
        assert_eq!(services.len(), 1);
        assert_eq!(
            (services[0].release.as_str(), services[0].namespace.as_str()),
            ("web", "p")
        );
        assert_eq!(store.owned_objects_of("p", "g").unwrap(), [object]);
        // Nothing left: a second resolution changes nothing.
        assert!(resolve(&store, 6).unwrap().is_empty());
    }
}
