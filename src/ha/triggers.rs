//! The alerts any instance acknowledged, shared on Karmada so that
//! whichever instance leads next acts on them: one ConfigMap per graph in
//! the `ha` namespace, labelled [`LABEL`], holding the newest delivery of
//! each (service, event) as JSON. Written by the instance that received
//! the alert before it answers 200 (a `replace` naming the version read,
//! retried on conflict: two instances never overwrite each other's
//! delivery); read by the leader, which records them as if they had been
//! delivered to it (redeliveries are duplicates there).

use crate::reconcile::triggers::Delivery;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ListParams, PostParams};
use std::collections::BTreeMap;

/// The label of the shared ConfigMaps (value `triggers`).
pub const LABEL: &str = "smo.nephele.eu/shared";
const KEY: &str = "deliveries.json";
/// Conflicting writers retry this often before the delivery is refused
/// (and Alertmanager retries it).
const ATTEMPTS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("cannot share the alert on Karmada: {0}")]
    Api(String),
    #[error("cannot share the alert on Karmada: {attempts} conflicting writes in a row")]
    Contended { attempts: usize },
}

/// The ConfigMap of a graph's deliveries (graph ids may hold characters
/// an object name cannot: hashed, and named in its labels' stead by
/// annotations).
pub fn name_of(project: &str, graph: &str) -> String {
    let h = crate::digest::sha256_hex(format!("{project}/{graph}").as_bytes());
    format!("smo-triggers-{}", &h[..16])
}

/// Keeps the newest delivery of each (service, event): a later instance
/// of the alert (`startsAt`) wins, and of the same instance the
/// resolution wins over the firing.
pub fn merge(existing: Vec<Delivery>, new: &[Delivery]) -> Vec<Delivery> {
    let rank = |d: &Delivery| (d.starts_at.clone(), !d.firing);
    let mut by: BTreeMap<(String, String), Delivery> = BTreeMap::new();
    for d in existing.into_iter().chain(new.iter().cloned()) {
        let key = (d.service.clone(), d.event.clone());
        match by.get(&key) {
            Some(kept) if rank(kept) >= rank(&d) => {}
            _ => {
                by.insert(key, d);
            }
        }
    }
    by.into_values().collect()
}

/// One graph's shared deliveries as read, with the version they were at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shared {
    pub name: String,
    pub version: String,
    pub deliveries: Vec<Delivery>,
}

fn error(e: &kube::Error) -> MirrorError {
    MirrorError::Api(match e {
        kube::Error::Api(s) => format!("{} ({})", s.message, s.code),
        other => other.to_string(),
    })
}

fn deliveries_of(cm: &ConfigMap) -> Vec<Delivery> {
    cm.data
        .as_ref()
        .and_then(|d| d.get(KEY))
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default()
}

/// The shared deliveries on Karmada.
#[derive(Clone)]
pub struct TriggerMirror {
    maps: Api<ConfigMap>,
    client: kube::Client,
    namespace: String,
}

impl TriggerMirror {
    pub fn new(client: kube::Client, namespace: &str) -> Self {
        TriggerMirror {
            maps: Api::namespaced(client.clone(), namespace),
            client,
            namespace: namespace.to_owned(),
        }
    }

    /// Shares `list` (deliveries of any graphs); returns once every graph's
    /// ConfigMap holds them.
    pub async fn add(&self, list: &[Delivery]) -> Result<(), MirrorError> {
        let mut by_graph: BTreeMap<(&str, &str), Vec<Delivery>> = BTreeMap::new();
        for d in list {
            by_graph
                .entry((d.project.as_str(), d.graph.as_str()))
                .or_default()
                .push(d.clone());
        }
        for ((project, graph), new) in by_graph {
            self.add_to(project, graph, &new).await?;
        }
        Ok(())
    }

    async fn add_to(
        &self,
        project: &str,
        graph: &str,
        new: &[Delivery],
    ) -> Result<(), MirrorError> {
        let name = name_of(project, graph);
        let pp = PostParams::default();
        for _ in 0..ATTEMPTS {
            let current = self.maps.get_opt(&name).await.map_err(|e| error(&e))?;
            let (existing, version) = match &current {
                Some(cm) => (deliveries_of(cm), cm.metadata.resource_version.clone()),
                None => (Vec::new(), None),
            };
            let merged = merge(existing.clone(), new);
            if current.is_some() && merged == existing {
                return Ok(());
            }
            let cm = self.object(&name, project, graph, &merged, version.clone());
            let written = match version {
                Some(_) => self.maps.replace(&name, &pp, &cm).await,
                None => match self.maps.create(&pp, &cm).await {
                    Err(kube::Error::Api(s)) if s.code == 404 => {
                        super::ensure_namespace(&self.client, &self.namespace)
                            .await
                            .map_err(|e| error(&e))?;
                        self.maps.create(&pp, &cm).await
                    }
                    other => other,
                },
            };
            match written {
                Ok(_) => return Ok(()),
                Err(kube::Error::Api(s)) if s.code == 409 => {}
                Err(e) => return Err(error(&e)),
            }
        }
        Err(MirrorError::Contended { attempts: ATTEMPTS })
    }

    fn object(
        &self,
        name: &str,
        project: &str,
        graph: &str,
        list: &[Delivery],
        version: Option<String>,
    ) -> ConfigMap {
        let text = serde_json::to_string(list).unwrap_or_else(|_| "[]".into());
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some(self.namespace.clone()),
                resource_version: version,
                // Not smo's managed-by label: this is no object of a graph
                // that a sweep should weigh.
                labels: Some(BTreeMap::from([(LABEL.to_owned(), "triggers".to_owned())])),
                annotations: Some(BTreeMap::from([
                    ("smo.nephele.eu/project".to_owned(), project.to_owned()),
                    ("smo.nephele.eu/graph".to_owned(), graph.to_owned()),
                ])),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([(KEY.to_owned(), text)])),
            ..ConfigMap::default()
        }
    }

    /// Every graph's shared deliveries.
    pub async fn list(&self) -> Result<Vec<Shared>, MirrorError> {
        let lp = ListParams::default().labels(&format!("{LABEL}=triggers"));
        let list = match self.maps.list(&lp).await {
            Ok(l) => l,
            // No namespace yet: nothing was shared.
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(Vec::new()),
            Err(e) => return Err(error(&e)),
        };
        Ok(list
            .items
            .iter()
            .map(|cm| Shared {
                name: cm.metadata.name.clone().unwrap_or_default(),
                version: cm.metadata.resource_version.clone().unwrap_or_default(),
                deliveries: deliveries_of(cm),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(service: &str, starts_at: &str, firing: bool) -> Delivery {
        Delivery {
            project: "brussels".into(),
            graph: "image-detection".into(),
            service: service.into(),
            event: "load-high".into(),
            alert: "load-high".into(),
            fingerprint: "f".into(),
            starts_at: starts_at.into(),
            firing,
        }
    }

    #[test]
    fn the_newest_delivery_of_each_event_is_kept() {
        let fired = d("vo", "2024-05-02T10:15:00Z", true);
        let resolved = d("vo", "2024-05-02T10:15:00Z", false);
        let older = d("vo", "2024-05-01T10:15:00Z", true);
        let other = d("noise", "2024-05-01T10:15:00Z", true);
        // A resolution replaces the firing of the same instance.
        assert_eq!(
            merge(vec![fired.clone()], std::slice::from_ref(&resolved)),
            vec![resolved.clone()]
        );
        // ... and a late redelivery of the firing does not undo it.
        assert_eq!(
            merge(vec![resolved.clone()], std::slice::from_ref(&fired)),
            vec![resolved.clone()]
        );
        // An older instance never replaces a newer one; other services stay.
        let merged = merge(vec![fired.clone(), other.clone()], &[older]);
        assert_eq!(merged, vec![other, fired]);
    }

    #[test]
    fn names_are_valid_object_names_for_any_graph_id() {
        let n = name_of("Brüssels_1", "Graph With Spaces");
        assert!(n.len() <= 63 && n.starts_with("smo-triggers-"));
        assert!(
            n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
        assert_ne!(n, name_of("brussels", "graph"));
    }
}
