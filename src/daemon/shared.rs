//! The daemon state its tasks share: the world reconciles read (replaced
//! as a whole), the keys due for a drift check, the last outcomes, notes
//! for the status, and the pass in progress.

use super::*;
use crate::locks::{MutexExt, RwLockExt};

/// Mutable daemon state shared by the tasks.
pub(super) struct Shared {
    pub(super) world: RwLock<World>,
    /// Keys whose next reconcile checks for drift (set by the resync).
    pub(super) drift_due: Mutex<HashSet<Key>>,
    /// Outcome of the last reconcile of each key and its failure count.
    pub(super) outcomes: Mutex<BTreeMap<Key, (Outcome, u32)>>,
    pub(super) notes: Mutex<BTreeMap<&'static str, String>>,
    pub(super) last_inventory: Mutex<Option<Inventory>>,
    /// The pass in progress: from the queue leaving idle to idle again.
    pub(super) pass: Mutex<Option<Pass>>,
    pub(super) last_publish: Mutex<Option<std::time::Instant>>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) dashboards: crate::reconcile::dashsync::DashboardSync,
    /// The applied snapshot and the one before it (a reconcile that started
    /// before the switch may still read that root): their leases keep the
    /// Git source from pruning the checkouts.
    pub(super) held: Mutex<Vec<Snapshot>>,
    /// The newest journal entry in the published history file.
    pub(super) history_seq: Mutex<Option<u64>>,
    /// The store generation and notes of the last published status, and
    /// when it was published.
    pub(super) published: Mutex<Option<(u64, Vec<String>, std::time::Instant)>>,
    /// Whether this instance acts (see [`crate::ha`]).
    pub(super) leadership: crate::ha::Leadership,
}

/// Counters of one pass, appended to the run history when it ends.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pass {
    pub(super) started_at: u64,
    pub(super) reconciled: u32,
    pub(super) errors: u32,
}

impl Shared {
    /// The state at start: the first snapshot's revision and root, nothing
    /// desired or observed yet (the caller reads the inventory and applies
    /// the snapshot next).
    pub(super) fn new(
        first: &Snapshot,
        metrics: Arc<Metrics>,
        dashboards: crate::reconcile::dashsync::DashboardSync,
        leadership: crate::ha::Leadership,
    ) -> Shared {
        Shared {
            world: RwLock::new(World {
                revision: first.revision.clone(),
                commit: first.commit.clone(),
                root: first.root.clone(),
                desired: Arc::new(DesiredState::default()),
                clusters: Vec::new(),
                not_ready_since: BTreeMap::new(),
                prune_blocked: None,
                replace: BTreeMap::new(),
                charts: Arc::default(),
            }),
            drift_due: Mutex::new(HashSet::new()),
            outcomes: Mutex::new(BTreeMap::new()),
            notes: Mutex::new(BTreeMap::new()),
            last_inventory: Mutex::new(None),
            pass: Mutex::new(None),
            last_publish: Mutex::new(None),
            metrics,
            dashboards,
            held: Mutex::new(Vec::new()),
            history_seq: Mutex::new(None),
            published: Mutex::new(None),
            leadership,
        }
    }

    /// What the run ended with: converged when no graph's last outcome is
    /// a failure, nothing is noted and (`--once`) the queue drained.
    pub(super) fn report(&self, once: bool, queue_idle: bool) -> RunReport {
        let outcomes = self.outcomes.lock_or_recover().clone();
        let failed: Vec<String> = outcomes
            .iter()
            .filter(|(_, (o, _))| !matches!(o, Outcome::Done))
            .map(|(k, (o, _))| format!("{k}: {o:?}"))
            .collect();
        RunReport {
            converged: failed.is_empty() && self.notes().is_empty() && (!once || queue_idle),
            graphs: outcomes.len(),
            failed,
        }
    }

    pub(super) fn world(&self) -> World {
        self.world.read_or_recover().clone()
    }
    /// Whether `revision` is the snapshot applied last.
    pub(super) fn in_force(&self, revision: &str) -> bool {
        self.held
            .lock_or_recover()
            .last()
            .is_some_and(|s| s.revision == revision)
    }

    pub(super) fn note(&self, topic: &'static str, text: Option<String>) {
        let mut n = self.notes.lock_or_recover();
        match text {
            Some(t) => n.insert(topic, t),
            None => n.remove(topic),
        };
    }
    pub(super) fn notes(&self) -> Vec<String> {
        self.notes.lock_or_recover().values().cloned().collect()
    }
}
