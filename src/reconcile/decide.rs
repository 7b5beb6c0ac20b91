//! Observe, classify, act: the one pure decision of the reconciler. For
//! each service, from what is desired and what the store recorded, exactly
//! one next step (Flux helm-controller's shape). Dependencies and stuck
//! releases are handled by the executor around these steps, because they
//! need live observations.

/// What is desired of one service in this pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired<'a> {
    pub hash: &'a str,
    /// The service deploys only when its event trigger fires.
    pub event_triggered: bool,
    /// The trigger fired (persisted by the webhook).
    pub fired: bool,
}

/// What the store remembers of the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded<'a> {
    pub hash: Option<&'a str>,
    /// A release was installed and not uninstalled since.
    pub installed: bool,
    /// The last install or upgrade failed.
    pub failed: bool,
}

/// The class of a service, with the step it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Never installed (or uninstalled): `helm upgrade --install`.
    Install,
    /// Installed with other inputs, or the last attempt failed: upgrade.
    Upgrade,
    /// Installed with these inputs: nothing to do (no helm call).
    InSync,
    /// Event-triggered and not fired: not installed, nothing to do.
    WaitForTrigger,
    /// The graph is suspended: uninstall if installed, keep the record.
    Suspend,
    /// Gone from the desired state: uninstall and forget.
    Remove,
}

/// Decides one service's step. `desired` is `None` when the service left
/// the descriptor; `graph_suspended` applies to every service.
pub fn step(
    desired: Option<&Desired<'_>>,
    recorded: Option<&Recorded<'_>>,
    graph_suspended: bool,
) -> Step {
    let installed = recorded.is_some_and(|r| r.installed);
    let Some(d) = desired else {
        return Step::Remove;
    };
    if graph_suspended {
        return Step::Suspend;
    }
    if d.event_triggered && !d.fired && !installed {
        return Step::WaitForTrigger;
    }
    match recorded {
        Some(r) if r.installed => {
            if r.failed || r.hash != Some(d.hash) {
                Step::Upgrade
            } else {
                Step::InSync
            }
        }
        _ => Step::Install,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Step::*;

    fn d(hash: &str, event: bool, fired: bool) -> Desired<'_> {
        Desired {
            hash,
            event_triggered: event,
            fired,
        }
    }
    fn r(hash: Option<&str>, installed: bool, failed: bool) -> Recorded<'_> {
        Recorded {
            hash,
            installed,
            failed,
        }
    }

    #[test]
    fn one_row_per_class() {
        type Row<'a> = (
            &'a str,
            Option<Desired<'a>>,
            Option<Recorded<'a>>,
            bool,
            Step,
        );
        let rows: &[Row] = &[
            (
                "new service",
                Some(d("h1", false, false)),
                None,
                false,
                Install,
            ),
            (
                "recorded, never installed",
                Some(d("h1", false, false)),
                Some(r(None, false, false)),
                false,
                Install,
            ),
            (
                "in sync",
                Some(d("h1", false, false)),
                Some(r(Some("h1"), true, false)),
                false,
                InSync,
            ),
            (
                "changed inputs",
                Some(d("h2", false, false)),
                Some(r(Some("h1"), true, false)),
                false,
                Upgrade,
            ),
            (
                "failed last time, same inputs",
                Some(d("h1", false, false)),
                Some(r(Some("h1"), true, true)),
                false,
                Upgrade,
            ),
            (
                "event trigger not fired",
                Some(d("h1", true, false)),
                None,
                false,
                WaitForTrigger,
            ),
            (
                "event trigger fired",
                Some(d("h1", true, true)),
                None,
                false,
                Install,
            ),
            (
                "fired earlier and installed, changed",
                Some(d("h2", true, false)),
                Some(r(Some("h1"), true, false)),
                false,
                Upgrade,
            ),
            (
                "suspended graph",
                Some(d("h1", false, false)),
                Some(r(Some("h1"), true, false)),
                true,
                Suspend,
            ),
            (
                "removed from the descriptor",
                None,
                Some(r(Some("h1"), true, false)),
                false,
                Remove,
            ),
            (
                "removed, graph suspended",
                None,
                Some(r(Some("h1"), false, false)),
                true,
                Remove,
            ),
        ];
        for (name, desired, recorded, suspended, want) in rows {
            assert_eq!(
                step(desired.as_ref(), recorded.as_ref(), *suspended),
                *want,
                "{name}"
            );
        }
    }
}

/// Why a snapshot may not remove graphs, if it may not.
///
/// `existing` graphs are recorded, `removing` of them are absent from the
/// snapshot. An empty snapshot while graphs exist is refused whatever the
/// percentage (a wrong `source.git.path` or an emptied checkout looks like
/// that); `allowed` (the operator's marker file) lifts both checks.
pub fn prune_guard(
    existing: usize,
    removing: usize,
    snapshot_empty: bool,
    max_delete_percent: f64,
    allowed: bool,
) -> Option<String> {
    if allowed || removing == 0 {
        return None;
    }
    if snapshot_empty {
        return Some(format!(
            "the snapshot has no graphs while {existing} exist; nothing is removed (create the marker file to allow it)"
        ));
    }
    #[allow(clippy::cast_precision_loss)]
    let percent = removing as f64 * 100.0 / existing.max(1) as f64;
    (percent > max_delete_percent).then(|| {
        format!(
            "the snapshot removes {removing} of {existing} graphs ({percent:.0}% > prune.maxDeletePercent {max_delete_percent}); nothing is removed (raise the setting or create the marker file)"
        )
    })
}

/// Services in dependency order (dependencies first), stable otherwise.
/// Validation rejects cycles; a cycle that slipped through keeps the
/// remaining services in descriptor order rather than dropping them.
pub fn dependency_order<'a>(services: &[(&'a str, Vec<&'a str>)]) -> Vec<&'a str> {
    let mut done: Vec<&str> = Vec::with_capacity(services.len());
    let mut left: Vec<&(&str, Vec<&str>)> = services.iter().collect();
    while !left.is_empty() {
        let before = left.len();
        left.retain(|(id, deps)| {
            let ready = deps
                .iter()
                .all(|d| done.contains(d) || !services.iter().any(|(s, _)| s == d));
            if ready {
                done.push(id);
            }
            !ready
        });
        if left.len() == before {
            done.extend(left.iter().map(|(id, _)| *id));
            break;
        }
    }
    done
}

#[cfg(test)]
mod guard_tests {
    use super::*;

    #[test]
    fn prune_guard_limits_mass_deletion() {
        assert_eq!(prune_guard(4, 0, false, 50.0, false), None);
        assert_eq!(prune_guard(4, 2, false, 50.0, false), None);
        let refused = prune_guard(4, 3, false, 50.0, false).unwrap();
        assert!(
            refused.contains("3 of 4 graphs (75% > prune.maxDeletePercent 50)"),
            "{refused}"
        );
        assert!(
            prune_guard(1, 1, true, 100.0, false)
                .unwrap()
                .contains("no graphs")
        );
        assert_eq!(prune_guard(4, 4, true, 50.0, true), None);
        assert_eq!(prune_guard(4, 3, false, 75.0, false), None);
    }

    #[test]
    fn dependencies_come_first() {
        let s = [
            ("front", vec!["api"]),
            ("api", vec!["db"]),
            ("db", vec![]),
            ("side", vec![]),
        ];
        assert_eq!(dependency_order(&s), ["db", "side", "api", "front"]);
        let cyc = [("a", vec!["b"]), ("b", vec!["a"]), ("c", vec![])];
        assert_eq!(dependency_order(&cyc), ["c", "a", "b"]);
    }
}
