//! Uninstall a service's release (suspension, a resolved trigger with
//! `undeployOnResolve`, removal). The record keeps the service; what was
//! installed is forgotten only once helm confirmed.

use super::HelmOps;
use crate::reconcile::error::StepError;
use crate::store::records::ServiceRecord;

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
