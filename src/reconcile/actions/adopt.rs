//! A release the store knows only from its labels (recorded by the sweep,
//! or corrected by a new leader) whose inputs are the desired ones: taken
//! as it is, without an upgrade. Its manifest is read (`helm get manifest`,
//! a read) so that drift checks work from the next resync, and its full
//! inputs hash is recorded.

use super::{HelmOps, KarmadaOps};
use crate::adapters::manifest;
use crate::reconcile::error::{Reason, StepError};
use crate::release::ReleaseInput;
use crate::store::records::ServiceRecord;

pub async fn run<H: HelmOps, K: KarmadaOps>(
    helm: &H,
    karmada: &K,
    input: &ReleaseInput,
    rec: &mut ServiceRecord,
) -> Result<(), StepError> {
    let text = helm.get_manifest(&input.release, &input.namespace).await?;
    let objects = manifest::parse(&text).map_err(|e| {
        StepError::terminal(
            Reason::Manifest,
            format!(
                "the release manifest of {} cannot be read: {e}",
                input.release
            ),
        )
    })?;
    rec.manifest = Some(manifest::canonical(&objects));
    rec.input_hash = Some(input.hash.clone());
    // The reconcile decided what the sweep left open: kept.
    rec.phase = crate::store::records::ServicePhase::Deployed;
    rec.last_error = None;
    karmada.watch_kinds(&objects).await;
    tracing::info!(
        release = %input.release,
        "release taken as it is: its inputs are the desired ones"
    );
    Ok(())
}
