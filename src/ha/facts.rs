//! Facts that exist nowhere but in the leader's store and that a successor
//! needs before it acts — today the clusters provisioned through NFVCL —
//! shared on Karmada as one ConfigMap per kind of fact in the `ha`
//! namespace, holding the whole set as JSON. Only the leader writes it, and
//! only while its fence admits it (a deposed leader cannot overwrite its
//! successor's facts); every write names the version read.

use super::Fence;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::marker::PhantomData;

const KEY: &str = "records.json";
const ATTEMPTS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    #[error("shared facts {name}: {reason}")]
    Api { name: String, reason: String },
    #[error("shared facts {name}: not written: {source}")]
    NotLeader {
        name: String,
        #[source]
        source: super::NotLeader,
    },
    #[error("shared facts {name}: unreadable: {reason}")]
    Decode { name: String, reason: String },
}

/// One kind of shared fact: the ConfigMap `name`.
pub struct Facts<T> {
    maps: Api<ConfigMap>,
    client: kube::Client,
    namespace: String,
    name: String,
    fence: Fence,
    kind: PhantomData<fn() -> T>,
}

impl<T> Clone for Facts<T> {
    fn clone(&self) -> Self {
        Facts {
            maps: self.maps.clone(),
            client: self.client.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            fence: self.fence.clone(),
            kind: PhantomData,
        }
    }
}

/// The set as read, and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read<T> {
    pub records: Vec<T>,
    pub version: String,
}

impl<T: Serialize + DeserializeOwned> Facts<T> {
    pub fn new(client: kube::Client, namespace: &str, name: &str, fence: Fence) -> Self {
        Facts {
            maps: Api::namespaced(client.clone(), namespace),
            client,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            fence,
            kind: PhantomData,
        }
    }

    fn api_error(&self, e: &kube::Error) -> FactsError {
        FactsError::Api {
            name: self.name.clone(),
            reason: match e {
                kube::Error::Api(s) => format!("{} ({})", s.message, s.code),
                other => other.to_string(),
            },
        }
    }

    /// The shared set; `None` when nothing was ever shared.
    pub async fn read(&self) -> Result<Option<Read<T>>, FactsError> {
        let cm = match self.maps.get_opt(&self.name).await {
            Ok(cm) => cm,
            Err(kube::Error::Api(s)) if s.code == 404 => None,
            Err(e) => return Err(self.api_error(&e)),
        };
        let Some(cm) = cm else {
            return Ok(None);
        };
        let text = cm
            .data
            .as_ref()
            .and_then(|d| d.get(KEY))
            .map_or("[]", String::as_str);
        let records = serde_json::from_str(text).map_err(|e| FactsError::Decode {
            name: self.name.clone(),
            reason: e.to_string(),
        })?;
        Ok(Some(Read {
            records,
            version: cm.metadata.resource_version.unwrap_or_default(),
        }))
    }

    /// Replaces the shared set with `records` (leader only); returns the new
    /// version.
    pub async fn write(&self, records: &[T]) -> Result<String, FactsError> {
        let text = serde_json::to_string(records).map_err(|e| FactsError::Decode {
            name: self.name.clone(),
            reason: e.to_string(),
        })?;
        let pp = PostParams::default();
        let mut last = None;
        for _ in 0..ATTEMPTS {
            self.fence.check().map_err(|source| FactsError::NotLeader {
                name: self.name.clone(),
                source,
            })?;
            let current = self.maps.get_opt(&self.name).await;
            let version = match current {
                Ok(cm) => cm.and_then(|c| c.metadata.resource_version),
                Err(kube::Error::Api(s)) if s.code == 404 => None,
                Err(e) => return Err(self.api_error(&e)),
            };
            let cm = ConfigMap {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    namespace: Some(self.namespace.clone()),
                    resource_version: version.clone(),
                    labels: Some(BTreeMap::from([(
                        super::triggers::LABEL.to_owned(),
                        "facts".to_owned(),
                    )])),
                    ..ObjectMeta::default()
                },
                data: Some(BTreeMap::from([(KEY.to_owned(), text.clone())])),
                ..ConfigMap::default()
            };
            let written = match version {
                Some(_) => self.maps.replace(&self.name, &pp, &cm).await,
                None => match self.maps.create(&pp, &cm).await {
                    Err(kube::Error::Api(s)) if s.code == 404 => {
                        super::ensure_namespace(&self.client, &self.namespace)
                            .await
                            .map_err(|e| self.api_error(&e))?;
                        self.maps.create(&pp, &cm).await
                    }
                    other => other,
                },
            };
            match written {
                Ok(cm) => return Ok(cm.metadata.resource_version.unwrap_or_default()),
                Err(kube::Error::Api(s)) if s.code == 409 => last = Some(s.message),
                Err(e) => return Err(self.api_error(&e)),
            }
        }
        Err(FactsError::Api {
            name: self.name.clone(),
            reason: last.unwrap_or_else(|| "conflicting writes".into()),
        })
    }
}
