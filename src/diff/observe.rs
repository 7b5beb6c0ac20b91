//! The observed side of `smo diff`, read from one of two places: the
//! Karmada API server (helm's release records through the helm adapter,
//! smo's PropagationPolicies through the Karmada adapter), or the daemon's
//! store (`--offline`). Reads only.

use super::{Installed, Mode, Observed};
use crate::adapters::helm::{Helm, HelmError};
use crate::adapters::karmada::{Karmada, KarmadaError, ObjectRef};
use crate::keys::GraphKey;
use crate::reconcile::propagation;
use crate::store::{Store, StoreError};

/// Why the observed side could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    #[error("cannot list smo's releases and policies on Karmada")]
    List(#[source] KarmadaError),
    #[error("cannot read release {namespace}/{release}")]
    Release {
        namespace: String,
        release: String,
        #[source]
        source: Box<HelmError>,
    },
    #[error("cannot read the store")]
    Store(#[source] StoreError),
}

/// The owned kind `smo diff` compares: the PropagationPolicy smo generates
/// for a chart that has none.
pub const POLICY_KIND: &str = "PropagationPolicy";

/// Every release carrying smo's labels (values and manifest from helm) and
/// every PropagationPolicy labelled as a graph's.
pub async fn live(helm: &Helm, karmada: &Karmada) -> Result<Observed, ObserveError> {
    let managed = karmada
        .list_managed_releases()
        .await
        .map_err(ObserveError::List)?;
    let mut releases = Vec::with_capacity(managed.len());
    for m in managed {
        let fail = |source| ObserveError::Release {
            namespace: m.namespace.clone(),
            release: m.release.clone(),
            source: Box::new(source),
        };
        let values = helm
            .get_values(&m.release, &m.namespace)
            .await
            .map_err(fail)?;
        let manifest = helm
            .get_manifest(&m.release, &m.namespace)
            .await
            .map_err(fail)?;
        releases.push(Installed {
            key: GraphKey::new(&m.owner.project, &m.owner.graph).service(&m.release),
            namespace: m.namespace,
            values: Some(values),
            manifest: Some(manifest),
            hash: None,
        });
    }
    let objects = karmada
        .list_managed(propagation::API_VERSION, POLICY_KIND)
        .await
        .map_err(ObserveError::List)?
        .into_iter()
        .map(|m| (GraphKey::new(m.owner.project, m.owner.graph), m.object))
        .collect();
    Ok(Observed {
        mode: Mode::Live,
        releases,
        objects,
    })
}

/// What the store recorded: installed releases (with the manifest and the
/// input hash of their last install) and owned PropagationPolicies.
pub fn offline(store: &Store) -> Result<Observed, ObserveError> {
    let releases = store
        .services()
        .map_err(ObserveError::Store)?
        .into_iter()
        .filter(|s| s.release_revision.is_some())
        .map(|s| Installed {
            key: GraphKey::new(&s.project, &s.graph).service(&s.service),
            namespace: s.namespace,
            values: None,
            manifest: s.manifest,
            hash: s.input_hash,
        })
        .collect();
    let mut objects = Vec::new();
    for g in store.graphs().map_err(ObserveError::Store)? {
        for o in store
            .owned_objects_of(&g.project, &g.graph)
            .map_err(ObserveError::Store)?
            .into_iter()
            .filter(|o| o.kind == POLICY_KIND)
        {
            objects.push((
                GraphKey::new(&o.project, &o.graph),
                ObjectRef {
                    api_version: o.api_version,
                    kind: o.kind,
                    namespace: o.namespace,
                    name: o.name,
                },
            ));
        }
    }
    Ok(Observed {
        mode: Mode::Offline,
        releases,
        objects,
    })
}
