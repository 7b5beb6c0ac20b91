//! Unlock a release left `pending-*` by an interrupted helm call (a crash
//! mid-upgrade): it blocks every later operation on the release. Rolled
//! back to its last deployed revision, or uninstalled when it never
//! deployed.

use super::HelmOps;
use crate::reconcile::error::StepError;

/// Whether a release was unlocked, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unlocked {
    /// Not pending (or absent): nothing was done.
    Nothing,
    RolledBack(u64),
    Uninstalled,
}

pub async fn run<H: HelmOps>(
    helm: &H,
    release: &str,
    namespace: &str,
) -> Result<Unlocked, StepError> {
    let Some(status) = helm.status(release, namespace).await? else {
        return Ok(Unlocked::Nothing);
    };
    if !status.is_pending() {
        return Ok(Unlocked::Nothing);
    }
    let history = helm.history(release, namespace).await?;
    let last_good = history
        .iter()
        .rev()
        .find(|h| matches!(h.status.as_str(), "deployed" | "superseded"))
        .map(|h| h.revision);
    tracing::warn!(release = %release, status = %status.status, to = ?last_good, "recovering a stuck release");
    match last_good {
        Some(rev) => {
            helm.rollback(release, namespace, rev).await?;
            Ok(Unlocked::RolledBack(rev))
        }
        None => {
            helm.uninstall(release, namespace).await?;
            Ok(Unlocked::Uninstalled)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::actions::fakes::FakeHelm;

    #[tokio::test]
    async fn a_pending_release_is_rolled_back_or_uninstalled() {
        let helm = FakeHelm::default();
        assert_eq!(run(&helm, "a", "p").await.unwrap(), Unlocked::Nothing);
        helm.set_release(
            "a",
            "p",
            2,
            "pending-upgrade",
            &[(1, "deployed"), (2, "pending-upgrade")],
        );
        assert_eq!(run(&helm, "a", "p").await.unwrap(), Unlocked::RolledBack(1));
        helm.set_release("b", "p", 1, "pending-install", &[(1, "pending-install")]);
        assert_eq!(run(&helm, "b", "p").await.unwrap(), Unlocked::Uninstalled);
        assert!(
            helm.calls().contains(&"rollback a 1".to_owned()),
            "{:?}",
            helm.calls()
        );
        assert!(helm.calls().contains(&"uninstall b".to_owned()));
        helm.set_release("c", "p", 3, "deployed", &[(3, "deployed")]);
        assert_eq!(run(&helm, "c", "p").await.unwrap(), Unlocked::Nothing);
    }

    #[tokio::test]
    async fn an_unreadable_status_is_a_transient_error() {
        let helm = FakeHelm::default();
        helm.fail_next("status", true);
        let e = run(&helm, "a", "p").await.unwrap_err();
        assert!(e.transient, "{e:?}");
    }
}
