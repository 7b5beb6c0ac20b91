//! The prune guard: whether a snapshot may remove graphs at all. A wrong
//! `source.git.path` or an emptied checkout looks like "everything was
//! deleted"; removals beyond a share of what exists wait for the
//! operator's marker file.
//!
//! Pure, and below both of its users: the daemon (graphs) and the
//! provisioning planner (clusters).

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
}
