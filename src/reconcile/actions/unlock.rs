//! Unlock a release left `pending-*` by an interrupted helm call (a crash
//! mid-upgrade): it blocks every later operation on the release. Rolled
//! back to its last deployed revision, or uninstalled when it never
//! deployed.

use super::{HelmOps, KarmadaOps};
use crate::adapters::helm::is_pending_status;
use crate::reconcile::error::StepError;

/// Whether a release was unlocked, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unlocked {
    /// Not pending (or absent): nothing was done.
    Nothing,
    RolledBack(u64),
    Uninstalled,
}

pub async fn run<H: HelmOps, K: KarmadaOps>(
    helm: &H,
    karmada: &K,
    release: &str,
    namespace: &str,
) -> Result<Unlocked, StepError> {
    // helm's newest record says its status in a label: one API call
    // instead of a helm process before every upgrade. Only a pending
    // record (or one that cannot be read) is worth asking helm about.
    match karmada.release_labels(namespace, release).await {
        Ok(None) => return Ok(Unlocked::Nothing),
        Ok(Some(labels)) if labels.get("status").is_some_and(|s| !is_pending_status(s)) => {
            return Ok(Unlocked::Nothing);
        }
        Ok(Some(_)) => {}
        Err(e) => {
            tracing::debug!(release = %release, error = %e, "helm's release record unreadable; asking helm");
        }
    }
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
    use crate::reconcile::actions::fakes::{FakeHelm, FakeKarmada};

    /// The release as both helm and its storage labels show it.
    fn set(helm: &FakeHelm, karmada: &FakeKarmada, name: &str, history: &[(u64, &str)]) {
        let (revision, status) = *history.last().unwrap();
        helm.set_release(name, "p", revision, status, history);
        karmada.set_release_labels(name, "p", revision, status);
    }

    #[tokio::test]
    async fn a_pending_release_is_rolled_back_or_uninstalled() {
        let (helm, karmada) = (FakeHelm::default(), FakeKarmada::default());
        assert_eq!(
            run(&helm, &karmada, "a", "p").await.unwrap(),
            Unlocked::Nothing
        );
        set(
            &helm,
            &karmada,
            "a",
            &[(1, "deployed"), (2, "pending-upgrade")],
        );
        assert_eq!(
            run(&helm, &karmada, "a", "p").await.unwrap(),
            Unlocked::RolledBack(1)
        );
        set(&helm, &karmada, "b", &[(1, "pending-install")]);
        assert_eq!(
            run(&helm, &karmada, "b", "p").await.unwrap(),
            Unlocked::Uninstalled
        );
        assert!(
            helm.calls().contains(&"rollback a 1".to_owned()),
            "{:?}",
            helm.calls()
        );
        assert!(helm.calls().contains(&"uninstall b".to_owned()));
        set(&helm, &karmada, "c", &[(3, "deployed")]);
        assert_eq!(
            run(&helm, &karmada, "c", "p").await.unwrap(),
            Unlocked::Nothing
        );
    }

    #[tokio::test]
    async fn helm_runs_only_when_the_record_is_pending_or_unreadable() {
        let (helm, karmada) = (FakeHelm::default(), FakeKarmada::default());
        set(&helm, &karmada, "a", &[(1, "deployed")]);
        run(&helm, &karmada, "a", "p").await.unwrap();
        assert!(helm.calls().is_empty(), "{:?}", helm.calls());
        // The labels cannot be read: helm itself is asked, and its
        // answer counts (here: stuck).
        helm.set_release(
            "a",
            "p",
            2,
            "pending-upgrade",
            &[(1, "deployed"), (2, "pending-upgrade")],
        );
        karmada.fail_next("list", true);
        assert_eq!(
            run(&helm, &karmada, "a", "p").await.unwrap(),
            Unlocked::RolledBack(1)
        );
        assert_eq!(helm.calls().first().map(String::as_str), Some("status a"));
    }

    #[tokio::test]
    async fn an_unreadable_status_is_a_transient_error() {
        let (helm, karmada) = (FakeHelm::default(), FakeKarmada::default());
        karmada.set_release_labels("a", "p", 1, "pending-install");
        helm.fail_next("status", true);
        let e = run(&helm, &karmada, "a", "p").await.unwrap_err();
        assert!(e.transient, "{e:?}");
    }
}
