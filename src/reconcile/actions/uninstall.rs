//! Uninstall a service's release (suspension, a resolved trigger with
//! `undeployOnResolve`, removal). The record keeps the service; what was
//! installed is forgotten only once helm confirmed.

use super::{HelmOps, KarmadaOps, observe};
use crate::adapters::karmada::Owner;
use crate::reconcile::error::StepError;
use crate::reconcile::plan::{self, Removal};
use crate::store::records::ServiceRecord;

/// Removes the release of a service that left the desired state, if it is
/// smo's to remove for `owner` ([`plan::removal`] decides from its marks).
/// Returns why it was only forgotten, if it was.
pub async fn remove<H: HelmOps, K: KarmadaOps>(
    helm: &H,
    karmada: &K,
    owner: &Owner,
    rec: &mut ServiceRecord,
) -> Result<Option<String>, StepError> {
    let ownership = observe::ownership(karmada, &rec.namespace, &rec.release, owner).await;
    match plan::removal(&rec.release, &ownership)? {
        Removal::Uninstall => run(helm, rec).await.map(|()| None),
        Removal::Forget(why) => {
            tracing::info!(release = %rec.release, reason = %why, "release forgotten, not uninstalled");
            Ok(Some(why))
        }
    }
}

pub async fn run<H: HelmOps>(helm: &H, rec: &mut ServiceRecord) -> Result<(), StepError> {
    helm.uninstall(&rec.release, &rec.namespace).await?;
    rec.release_revision = None;
    rec.input_hash = None;
    rec.manifest = None;
    rec.drifted.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::actions::fakes::FakeHelm;
    use crate::reconcile::actions::install::tests::record;

    #[tokio::test]
    async fn removal_uninstalls_only_what_is_this_graphs() {
        use crate::reconcile::actions::fakes::FakeKarmada;
        let (helm, k) = (FakeHelm::default(), FakeKarmada::default());
        let owner = Owner {
            project: "p".into(),
            graph: "g".into(),
        };
        let adopted_elsewhere = Owner {
            project: "p".into(),
            graph: "h".into(),
        };
        let mut rec = record();
        k.releases
            .lock()
            .unwrap()
            .insert(("p".into(), "web".into()), adopted_elsewhere.labels());
        let why = remove(&helm, &k, &owner, &mut rec).await.unwrap();
        assert!(why.is_some_and(|w| w.contains("p/h")));
        assert!(!helm.calls().iter().any(|c| c.starts_with("uninstall")));
        k.releases
            .lock()
            .unwrap()
            .insert(("p".into(), "web".into()), owner.labels());
        assert_eq!(remove(&helm, &k, &owner, &mut rec).await.unwrap(), None);
        assert!(helm.calls().contains(&"uninstall web".to_owned()));
        k.fail_next("list", true);
        assert!(
            remove(&helm, &k, &owner, &mut rec)
                .await
                .unwrap_err()
                .transient
        );
    }

    #[tokio::test]
    async fn a_failed_uninstall_keeps_what_is_installed() {
        let helm = FakeHelm::default();
        let mut rec = record();
        rec.release_revision = Some(3);
        rec.input_hash = Some("h".into());
        helm.fail_next("uninstall", false);
        let e = run(&helm, &mut rec).await.unwrap_err();
        assert!(!e.transient);
        assert_eq!(rec.release_revision, Some(3));
        run(&helm, &mut rec).await.unwrap();
        assert_eq!((rec.release_revision, rec.input_hash), (None, None));
    }
}
