//! The journal's vocabulary: what smo did, as a typed kind. Each kind has
//! the name the journal stores and `smo status` shows (unchanged since the
//! journal began), and the CloudEvents `type` it is published as
//! (`eu.nephele.smo.<subject>.<what>`, version 1 of the vocabulary; a
//! type is never renamed, only added). A graph and a service share the
//! journal name `Removed`; the service field tells them apart.

use serde::{Deserialize, Serialize};

/// The prefix of every CloudEvents type smo publishes.
pub const TYPE_PREFIX: &str = "eu.nephele.smo.";

macro_rules! kinds {
    ($($kind:ident => $journal:literal, $ty:literal, $doc:literal;)*) => {
        /// One kind of journal entry (and of published event).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum Kind {
            $(#[doc = $doc] $kind,)*
        }

        impl Kind {
            /// Every kind, in the order of the vocabulary.
            pub const ALL: &'static [Kind] = &[$(Kind::$kind,)*];

            /// The name the journal stores.
            pub fn journal(self) -> &'static str {
                match self { $(Kind::$kind => $journal,)* }
            }

            /// The CloudEvents `type`.
            pub fn cloud_type(self) -> &'static str {
                match self { $(Kind::$kind => concat!("eu.nephele.smo.", $ty),)* }
            }

            /// What it means, as the README's table says.
            pub fn meaning(self) -> &'static str {
                match self { $(Kind::$kind => $doc,)* }
            }
        }
    };
}

kinds! {
    Applied => "Applied", "graph.applied", "a graph converged on a new descriptor (or again after a failure)";
    Held => "Held", "graph.held", "a graph's file is invalid or unreadable: its last good state is kept";
    GraphRemoved => "Removed", "graph.removed", "a graph left the desired state: uninstalled and pruned";
    Suspended => "Suspended", "graph.suspended", "a graph was suspended (`hdaGraph.suspend: true`)";
    Resumed => "Resumed", "graph.resumed", "a suspended graph runs again";
    Installed => "Installed", "service.installed", "a release was installed";
    Upgraded => "Upgraded", "service.upgraded", "a release was upgraded";
    Uninstalled => "Removed", "service.uninstalled", "a service left its descriptor: its release was uninstalled";
    Failed => "Failed", "service.failed", "a service's step failed (the message says why)";
    Blocked => "Blocked", "service.blocked", "a service is held: acting would touch a release smo does not own";
    Drifted => "Drifted", "service.drift_detected", "live objects differ from the release's manifest";
    DriftCorrected => "DriftCorrected", "service.drift_corrected", "a drifted release was applied again";
    Scaled => "Scaled", "service.scaled", "the scaler chose a new replica count";
    Triggered => "Triggered", "service.triggered", "an alert fired and installed an event-triggered service";
    Rearmed => "Rearmed", "service.rearmed", "an alert resolved: the service was uninstalled and waits again";
    Placed => "Placed", "placement.decided", "a graph was placed for the first time (with the explanation)";
    Replaced => "Replaced", "placement.decided", "a graph was re-placed (with the reason and explanation)";
    ReplacementRequested => "ReplacementRequested", "placement.requested", "the scaler, or the fleet (room for another graph), asked for a re-placement";
    ClusterProvisioned => "ClusterProvisioned", "cluster.provisioned", "NFVCL reports a new cluster ready";
    ClusterScaled => "ClusterScaled", "cluster.scaled", "NFVCL finished changing a cluster's workers";
    ClusterDeleted => "ClusterDeleted", "cluster.deleted", "a provisioned cluster was deleted";
    ClusterHeld => "ClusterHeld", "cluster.held", "a cluster's provisioning is held (the message says why)";
    ClusterNotReady => "ClusterNotReady", "cluster.not_ready", "Karmada reports a cluster NotReady";
    ClusterReady => "ClusterReady", "cluster.ready", "a cluster is Ready again";
    ReconcileFailed => "ReconcileFailed", "reconcile.failed", "a graph's reconcile started failing (reported once per episode)";
    RemoveFailed => "RemoveFailed", "reconcile.failed", "removing a graph failed; it is retried";
    RulesFailed => "RulesFailed", "reconcile.failed", "a graph's alert rules could not be published";
    DashboardsFailed => "DashboardsFailed", "reconcile.failed", "a graph's dashboards could not be published";
    RulesUpdated => "RulesUpdated", "rules.updated", "a graph's alert rules were published";
    Swept => "Swept", "object.swept", "something labelled as smo's but not recorded was recorded, so that its graph's reconcile keeps or removes it";
}

impl Kind {
    /// The kind of a stored journal entry (`service`: whether it names
    /// one); `None` for a name no version of smo wrote.
    pub fn of_journal(name: &str, service: bool) -> Option<Kind> {
        match (name, service) {
            ("Removed", true) => Some(Kind::Uninstalled),
            ("Removed", false) => Some(Kind::GraphRemoved),
            _ => Kind::ALL.iter().copied().find(|k| k.journal() == name),
        }
    }

    /// Whether the entry is about a cluster (its subject is the cluster).
    pub fn is_cluster(self) -> bool {
        self.cloud_type().starts_with("eu.nephele.smo.cluster.")
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.journal())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_from_its_journal_name() {
        for &k in Kind::ALL {
            let service = matches!(k.cloud_type().split('.').nth(3), Some("service"));
            assert_eq!(Kind::of_journal(k.journal(), service), Some(k), "{k:?}");
            assert!(k.cloud_type().starts_with(TYPE_PREFIX));
        }
        assert_eq!(Kind::of_journal("NoSuchKind", false), None);
    }

    #[test]
    fn the_readme_documents_every_kind_as_the_code_has_it() {
        let readme = include_str!("../../README.md");
        for &k in Kind::ALL {
            let row = format!(
                "| `{}` | `{}` | {} |",
                k.cloud_type().trim_start_matches(TYPE_PREFIX),
                k.journal(),
                k.meaning()
            );
            assert!(readme.contains(&row), "README lacks the row\n{row}");
        }
    }

    #[test]
    fn the_vocabulary_names_each_type_once_per_meaning() {
        let mut seen = std::collections::BTreeMap::new();
        for &k in Kind::ALL {
            seen.entry(k.cloud_type()).or_insert_with(Vec::new).push(k);
        }
        // Only the failures and the two placement decisions share a type.
        for (ty, kinds) in seen {
            if kinds.len() > 1 {
                assert!(
                    ty.ends_with("reconcile.failed") || ty.ends_with("placement.decided"),
                    "{ty}: {kinds:?}"
                );
            }
        }
    }
}
