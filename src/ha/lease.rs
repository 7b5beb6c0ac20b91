//! [`LeaseApi`] on kube-rs: the `coordination.k8s.io/v1` Lease on the
//! Karmada API server. Writes are `replace`s carrying the
//! `resourceVersion` read (the API server refuses a stale one with 409),
//! never patches that would overwrite a competitor's claim.

use super::elector::{LeaseApi, LeaseError, Read};
use super::record::LeaseRecord;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use std::time::Duration;

/// The Lease `name` in `namespace`.
#[derive(Clone)]
pub struct KubeLease {
    leases: Api<Lease>,
    client: kube::Client,
    namespace: String,
    name: String,
}

impl KubeLease {
    pub fn new(client: kube::Client, namespace: &str, name: &str) -> Self {
        KubeLease {
            leases: Api::namespaced(client.clone(), namespace),
            client,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }

    fn object(&self, r: &LeaseRecord, version: Option<&str>) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(self.namespace.clone()),
                resource_version: version.map(str::to_owned),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(r.holder.clone()),
                lease_duration_seconds: Some(
                    i32::try_from(r.duration.as_secs()).unwrap_or(i32::MAX),
                ),
                acquire_time: r.acquire_time.map(MicroTime),
                renew_time: r.renew_time.map(MicroTime),
                lease_transitions: Some(r.transitions),
                ..LeaseSpec::default()
            }),
        }
    }
}

fn error(e: kube::Error) -> LeaseError {
    match e {
        kube::Error::Api(s) if s.code == 409 => LeaseError::Conflict,
        kube::Error::Api(s) => LeaseError::Api(format!("{} ({})", s.message, s.code)),
        other => LeaseError::Api(other.to_string()),
    }
}

fn version_of(l: &Lease) -> String {
    l.metadata.resource_version.clone().unwrap_or_default()
}

/// The record a Lease carries; a Lease without a spec holds nothing.
pub fn record_of(l: &Lease) -> LeaseRecord {
    let spec = l.spec.clone().unwrap_or_default();
    LeaseRecord {
        holder: spec.holder_identity.unwrap_or_default(),
        duration: Duration::from_secs(
            u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0),
        ),
        acquire_time: spec.acquire_time.map(|t| t.0),
        renew_time: spec.renew_time.map(|t| t.0),
        transitions: spec.lease_transitions.unwrap_or(0),
    }
}

impl LeaseApi for KubeLease {
    async fn get(&self) -> Result<Option<Read>, LeaseError> {
        match self.leases.get_opt(&self.name).await {
            Ok(Some(l)) => Ok(Some(Read {
                record: record_of(&l),
                version: version_of(&l),
            })),
            Ok(None) => Ok(None),
            Err(e) => Err(error(e)),
        }
    }

    async fn create(&self, r: &LeaseRecord) -> Result<String, LeaseError> {
        let pp = PostParams::default();
        let lease = self.object(r, None);
        match self.leases.create(&pp, &lease).await {
            Ok(l) => Ok(version_of(&l)),
            Err(kube::Error::Api(s)) if s.code == 404 => {
                super::ensure_namespace(&self.client, &self.namespace)
                    .await
                    .map_err(error)?;
                let l = self.leases.create(&pp, &lease).await.map_err(error)?;
                Ok(version_of(&l))
            }
            Err(e) => Err(error(e)),
        }
    }

    async fn update(&self, r: &LeaseRecord, version: &str) -> Result<String, LeaseError> {
        let l = self
            .leases
            .replace(
                &self.name,
                &PostParams::default(),
                &self.object(r, Some(version)),
            )
            .await
            .map_err(error)?;
        Ok(version_of(&l))
    }
}
