//! A release the store knows only from its labels (recorded by the sweep,
//! or corrected by a new leader) whose inputs are the desired ones: taken
//! as it is, without an upgrade. Its manifest is read (`helm get manifest`,
//! a read) so that drift checks work from the next resync, and its full
//! inputs hash is recorded.

use super::{HelmOps, KarmadaOps};
use crate::reconcile::error::StepError;
use crate::release::ReleaseInput;
use crate::store::records::ServiceRecord;

pub async fn run<H: HelmOps, K: KarmadaOps>(
    helm: &H,
    karmada: &K,
    input: &ReleaseInput,
    rec: &mut ServiceRecord,
) -> Result<(), StepError> {
    let text = helm.get_manifest(&input.release, &input.namespace).await?;
    super::install::record_manifest(karmada, &input.release, text, rec).await?;
    rec.input_hash = Some(input.hash.clone());
    // The reconcile decided what the sweep left open: kept.
    rec.phase = crate::store::records::ServicePhase::Deployed;
    rec.last_error = None;
    tracing::info!(
        release = %input.release,
        "release taken as it is: its inputs are the desired ones"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::actions::fakes::{FakeHelm, FakeKarmada};

    #[test]
    fn a_release_known_by_its_label_is_taken_without_an_upgrade() {
        let helm = FakeHelm::default();
        helm.set_release("web", "p", 3, "deployed", &[(3, "deployed")]);
        helm.releases
            .lock()
            .unwrap()
            .get_mut(&("web".to_owned(), "p".to_owned()))
            .unwrap()
            .manifest =
            "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n".into();
        let k = FakeKarmada::default();
        let input = ReleaseInput {
            hash: "h".repeat(64),
            ..crate::reconcile::actions::install::tests::input()
        };
        let mut rec = ServiceRecord::new("p", "g", "web", 0);
        rec.release_revision = Some(3);
        rec.input_hash = Some(crate::release::inputs_from_label(&"h".repeat(32)));
        rec.last_error = Some("found by smo's labels, not recorded".into());
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(run(&helm, &k, &input, &mut rec)).unwrap();
        assert_eq!(rec.input_hash.as_deref(), Some(input.hash.as_str()));
        assert!(
            rec.manifest
                .as_deref()
                .is_some_and(|m| m.contains("Deployment"))
        );
        assert_eq!(rec.last_error, None);
        assert_eq!(rec.release_revision, Some(3));
        assert!(
            helm.calls().iter().all(|c| !c.starts_with("upgrade")),
            "{:?}",
            helm.calls()
        );
    }
}
