//! The leader's side of the shared alerts ([`crate::ha::triggers`]): what
//! any instance acknowledged is recorded in this instance's store as if it
//! had been delivered here, and its graphs reconciled now. Each graph's
//! ConfigMap is read again only when its version changed; a new leader
//! reads them all.

use super::*;
use crate::ha::triggers::TriggerMirror;

pub(super) struct Inbox {
    mirror: TriggerMirror,
    /// The version of each ConfigMap last recorded.
    seen: BTreeMap<String, String>,
}

impl Inbox {
    pub(super) fn new(mirror: TriggerMirror) -> Inbox {
        Inbox {
            mirror,
            seen: BTreeMap::new(),
        }
    }

    /// Forget what was read: this instance leads again, and its store may
    /// be behind what another leader recorded meanwhile.
    pub(super) fn reset(&mut self) {
        self.seen.clear();
    }

    /// Records the deliveries shared since the last look (leader only).
    pub(super) async fn ingest(&mut self, shared: &Arc<Shared>, store: &Arc<Store>, queue: &Queue) {
        // The lease, not readiness: a new leader reads the shared alerts
        // before it lets its tasks act.
        if !shared.leadership.fence().acting() {
            return;
        }
        let list = match self.mirror.list().await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "shared alerts not read; read again at the next round");
                return;
            }
        };
        for entry in list {
            if self.seen.get(&entry.name) == Some(&entry.version) {
                continue;
            }
            let matched = alerts::sort(&shared.world().desired, entry.deliveries);
            let s = Arc::clone(store);
            let now = now();
            let job = move || {
                let (confirmed, _) = alerts::confirm_held(&s, matched.held)?;
                let mut known = matched.known;
                known.extend(confirmed);
                alerts::record(&s, &known, now)
            };
            match blocking(job).await {
                Ok(Ok(r)) => {
                    if r.fired + r.updated > 0 {
                        tracing::info!(
                            fired = r.fired,
                            updated = r.updated,
                            "recorded alerts another instance acknowledged"
                        );
                    }
                    for key in &r.graphs {
                        queue.enqueue_now(key);
                    }
                    self.seen.insert(entry.name, entry.version);
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "shared alerts not recorded; retried"),
                Err(e) => tracing::warn!(error = %e, "shared alerts not recorded; retried"),
            }
        }
    }
}
