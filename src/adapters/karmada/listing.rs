//! Everything that carries smo's labels, across namespaces: what the sweep
//! by ownership compares with the store (see `reconcile::sweep`). Reads
//! only.

use super::{
    GRAPH_LABEL, Karmada, KarmadaError, MANAGED_BY, MANAGED_BY_LABEL, ObjectRef, Owner,
    PROJECT_LABEL, classify,
};
use kube::api::{Api, ListParams};
use std::collections::BTreeMap;

/// An object smo labelled as a graph's.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Managed {
    pub object: ObjectRef,
    pub owner: Owner,
}

/// A helm release whose newest record carries smo's labels (`helm
/// --labels`), with the graph they name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ManagedRelease {
    pub namespace: String,
    pub release: String,
    pub revision: u64,
    pub owner: Owner,
    /// [`super::INPUTS_LABEL`] of the newest revision, when it is deployed.
    pub inputs: Option<String>,
}

/// The inputs label of a release revision that is deployed (a failed or
/// pending revision vouches for nothing).
fn inputs_of(labels: &BTreeMap<String, String>) -> Option<String> {
    (labels.get("status").map(String::as_str) == Some("deployed"))
        .then(|| labels.get(super::INPUTS_LABEL).cloned())
        .flatten()
}

/// The graph smo's labels name, if they are smo's and name one. Project
/// and graph names are DNS labels, which [`super::label_value`] keeps
/// unchanged, so the label values are the names.
fn owner_of(labels: &BTreeMap<String, String>) -> Option<Owner> {
    if labels.get(MANAGED_BY_LABEL).map(String::as_str) != Some(MANAGED_BY) {
        return None;
    }
    Some(Owner {
        project: labels.get(PROJECT_LABEL).filter(|v| !v.is_empty())?.clone(),
        graph: labels.get(GRAPH_LABEL).filter(|v| !v.is_empty())?.clone(),
    })
}

fn managed_selector() -> String {
    format!("{MANAGED_BY_LABEL}={MANAGED_BY}")
}

impl Karmada {
    /// The objects of one kind matching a label selector, in every
    /// namespace, with their labels. A kind that is not served has none.
    async fn list_labelled(
        &self,
        api_version: &str,
        kind: &str,
        selector: &str,
    ) -> Result<Vec<(ObjectRef, BTreeMap<String, String>)>, KarmadaError> {
        let resolved = match self.resolve(api_version, kind).await {
            Ok(k) => k,
            Err(KarmadaError::UnknownKind { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        // Only labels are read: metadata-only, not the objects' bodies.
        let list = self
            .api(&resolved, None)
            .list_metadata(&ListParams::default().labels(selector))
            .await
            .map_err(|e| classify("list", &format!("{api_version} {kind}"), e))?;
        Ok(list
            .items
            .into_iter()
            .filter_map(|o| {
                let object = ObjectRef {
                    api_version: api_version.to_owned(),
                    kind: kind.to_owned(),
                    namespace: if resolved.namespaced {
                        o.metadata.namespace
                    } else {
                        None
                    },
                    name: o.metadata.name?,
                };
                Some((object, o.metadata.labels.unwrap_or_default()))
            })
            .collect())
    }

    /// [`Karmada::list_labelled`] with smo's managed selector, from the
    /// watch of that selector while it is synced (`None`: not cached).
    async fn cached_labelled(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<Option<Vec<(ObjectRef, BTreeMap<String, String>)>>, KarmadaError> {
        let Some(w) = &self.watches else {
            return Ok(None);
        };
        let resolved = match self.resolve(api_version, kind).await {
            Ok(k) => k,
            Err(KarmadaError::UnknownKind { .. }) => return Ok(Some(Vec::new())),
            Err(e) => return Err(e),
        };
        let Some(found) = w.labelled(&resolved.resource, &managed_selector()) else {
            return Ok(None);
        };
        Ok(Some(
            found
                .into_iter()
                .map(|(namespace, name, labels)| {
                    let object = ObjectRef {
                        api_version: api_version.to_owned(),
                        kind: kind.to_owned(),
                        namespace: namespace.filter(|_| resolved.namespaced),
                        name,
                    };
                    (object, labels)
                })
                .collect(),
        ))
    }

    /// The objects of one kind carrying the owner's labels, in every
    /// namespace, sorted: the candidates for pruning.
    #[tracing::instrument(
        name = "karmada.list_owned",
        skip_all,
        fields(api_version = api_version, kind = kind, project = %owner.project, graph = %owner.graph)
    )]
    pub async fn list_owned(
        &self,
        api_version: &str,
        kind: &str,
        owner: &Owner,
    ) -> Result<Vec<ObjectRef>, KarmadaError> {
        let found = self
            .list_labelled(api_version, kind, &owner.selector())
            .await?;
        let mut refs: Vec<ObjectRef> = found.into_iter().map(|(o, _)| o).collect();
        refs.sort();
        Ok(refs)
    }

    /// The objects of one kind labelled as some graph's, in every
    /// namespace, sorted. A kind that is not served has none.
    #[tracing::instrument(name = "karmada.list_managed", skip_all, fields(api_version = api_version, kind = kind))]
    pub async fn list_managed(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<Vec<Managed>, KarmadaError> {
        let found = match self.cached_labelled(api_version, kind).await? {
            Some(found) => found,
            None => {
                self.list_labelled(api_version, kind, &managed_selector())
                    .await?
            }
        };
        let mut managed: Vec<Managed> = found
            .into_iter()
            .filter_map(|(object, labels)| {
                Some(Managed {
                    owner: owner_of(&labels)?,
                    object,
                })
            })
            .collect();
        managed.sort();
        Ok(managed)
    }

    /// The helm releases, in every namespace, whose newest record (helm
    /// keeps one Secret per revision, labelled `owner=helm`, `name`,
    /// `version`) carries smo's labels, sorted. Only labels are read.
    #[tracing::instrument(name = "karmada.list_managed_releases", skip_all)]
    pub async fn list_managed_releases(&self) -> Result<Vec<ManagedRelease>, KarmadaError> {
        if let Some(w) = &self.watches {
            let watch = w.releases();
            let cached = watch.synced().map(|i| {
                i.newest_matching(|l| {
                    l.get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY)
                })
            });
            if let Some(found) = cached {
                return Ok(found
                    .into_iter()
                    .filter_map(|(namespace, release, revision, labels)| {
                        Some(ManagedRelease {
                            namespace,
                            release,
                            revision,
                            inputs: inputs_of(&labels),
                            owner: owner_of(&labels)?,
                        })
                    })
                    .collect());
            }
        }
        let api: Api<k8s_openapi::api::core::v1::Secret> = Api::all(self.client.clone());
        // Metadata only: a release record's body is the whole release,
        // compressed; over thousands of releases that is megabytes per
        // sweep for labels alone.
        let list = api
            .list_metadata(
                &ListParams::default().labels(&format!("owner=helm,{}", managed_selector())),
            )
            .await
            .map_err(|e| classify("list", "v1 Secret (helm releases)", e))?;
        // (namespace, release) → the newest revision's labels.
        let mut newest: BTreeMap<(String, String), (u64, BTreeMap<String, String>)> =
            BTreeMap::new();
        for secret in list.items {
            let (Some(namespace), Some(labels)) =
                (secret.metadata.namespace, secret.metadata.labels)
            else {
                continue;
            };
            let Some(release) = labels.get("name").cloned() else {
                continue;
            };
            let revision = labels
                .get("version")
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            let entry = newest
                .entry((namespace, release))
                .or_insert_with(|| (revision, labels.clone()));
            if revision > entry.0 {
                *entry = (revision, labels);
            }
        }
        Ok(newest
            .into_iter()
            .filter_map(|((namespace, release), (revision, labels))| {
                Some(ManagedRelease {
                    namespace,
                    release,
                    revision,
                    inputs: inputs_of(&labels),
                    owner: owner_of(&labels)?,
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_smos_labels_naming_a_graph_make_an_owner() {
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let full = labels(&[
            (MANAGED_BY_LABEL, MANAGED_BY),
            (PROJECT_LABEL, "p"),
            (GRAPH_LABEL, "g"),
        ]);
        assert_eq!(
            owner_of(&full),
            Some(Owner {
                project: "p".into(),
                graph: "g".into()
            })
        );
        // A namespace: smo's, but no graph.
        assert_eq!(
            owner_of(&labels(&[
                (MANAGED_BY_LABEL, MANAGED_BY),
                (PROJECT_LABEL, "p")
            ])),
            None
        );
        // Another manager's labels naming the same graph.
        assert_eq!(
            owner_of(&labels(&[
                (MANAGED_BY_LABEL, "Helm"),
                (PROJECT_LABEL, "p"),
                (GRAPH_LABEL, "g")
            ])),
            None
        );
        assert_eq!(
            owner_of(&labels(&[
                (MANAGED_BY_LABEL, MANAGED_BY),
                (PROJECT_LABEL, "p"),
                (GRAPH_LABEL, "")
            ])),
            None
        );
    }
}
