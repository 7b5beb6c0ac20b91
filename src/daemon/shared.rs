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
}

/// Counters of one pass, appended to the run history when it ends.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pass {
    pub(super) started_at: u64,
    pub(super) reconciled: u32,
    pub(super) errors: u32,
}

impl Shared {
    pub(super) fn world(&self) -> World {
        self.world.read_or_recover().clone()
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
