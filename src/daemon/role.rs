//! The daemon's side of the leader election: the elector task, what a
//! change of role does (a new leader runs a full pass; systemd's `STATUS=`
//! says the role), and `leader.json`, the election as `smo status` shows
//! it while the daemon holds the store.

use super::*;
use crate::ha::elector::Elector;
use crate::ha::lease::KubeLease;
use crate::ha::{Role, View};
use crate::locks::MutexExt;

/// The election's file in the state directory.
pub const FILE: &str = "leader.json";

/// The running elector and its stop (sent once the workers drained: the
/// Lease is released only when nothing of this instance acts any more).
pub(super) struct Election {
    task: tokio::task::JoinHandle<()>,
    stop: watch::Sender<bool>,
}

impl Election {
    /// Starts the elector when `ha.enabled`.
    pub(super) fn start(config: &Config, ctx: &Context) -> Option<Election> {
        if !ctx.leadership.is_elected() {
            return None;
        }
        let api = KubeLease::new(
            ctx.karmada.client(),
            &config.ha.namespace,
            &config.ha.lease_name,
        );
        let elector = Elector::new(
            api,
            context::ha_settings(&config.ha),
            ctx.leadership.clone(),
        );
        let (stop, rx) = watch::channel(false);
        Some(Election {
            task: tokio::spawn(elector.run(rx)),
            stop,
        })
    }

    /// Stops acting and releases the Lease.
    pub(super) async fn stop(self) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(10), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

/// The systemd status line: the revision, and the role when elected.
pub(super) fn status_line(shared: &Shared, revision: &str) -> String {
    match shared.leadership.view() {
        None => format!("revision {revision}"),
        Some(View {
            role: Role::Leader, ..
        }) => format!("leader, revision {revision}"),
        Some(v) => format!(
            "standby (leader: {}), revision {revision}",
            v.leader.as_deref().unwrap_or("none")
        ),
    }
}

/// What instances share on Karmada besides the Lease (leader election
/// only): the alerts any of them acknowledged, and the placements and
/// replicas in force.
pub(super) struct Sharing {
    pub(super) inbox: super::inbox::Inbox,
    pub(super) placements: super::placement_facts::SharedPlacements,
    karmada: Karmada,
}

impl Sharing {
    pub(super) fn new(
        config: &Config,
        karmada: &Karmada,
        leadership: &crate::ha::Leadership,
    ) -> Self {
        let client = karmada.client();
        let ns = &config.ha.namespace;
        Sharing {
            inbox: super::inbox::Inbox::new(crate::ha::triggers::TriggerMirror::new(
                client.clone(),
                ns,
            )),
            placements: super::placement_facts::SharedPlacements::new(
                crate::ha::facts::Facts::new(
                    client,
                    ns,
                    super::placement_facts::NAME,
                    leadership.fence(),
                ),
            ),
            karmada: karmada.clone(),
        }
    }

    /// Corrects the release records another leader made stale (see
    /// [`super::heads`]). A failed listing is logged: the pass then works
    /// from the records as they are.
    async fn refresh_heads(&self, store: &Arc<Store>) {
        let live = match self.karmada.list_managed_releases().await {
            Ok(l) => l,
            Err(e) => {
                return tracing::warn!(error = %e, "releases not listed; the records are taken as they are");
            }
        };
        let s = Arc::clone(store);
        let job = move || {
            let fixed = super::heads::corrections(&s.services()?, &live);
            if !fixed.is_empty() {
                s.write(|tx| {
                    for r in &fixed {
                        tx.put_service(r)?;
                    }
                    Ok(())
                })?;
            }
            Ok::<_, crate::store::StoreError>(fixed.len())
        };
        match blocking(job).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(
                services = n,
                "release records corrected from the live releases another leader changed"
            ),
            Ok(Err(e)) => tracing::warn!(error = %e, "release records not corrected"),
            Err(e) => tracing::warn!(error = %e, "release records not corrected"),
        }
    }

    /// Every round: the leader records the alerts shared since, and shares
    /// its placements when they changed.
    pub(super) async fn round(&mut self, shared: &Arc<Shared>, store: &Arc<Store>, queue: &Queue) {
        self.inbox.ingest(shared, store, queue).await;
        if shared.leadership.acting() {
            self.placements.share(store).await;
        }
    }
}

/// This instance took `role`. A new leader first adopts what its
/// predecessor shared (placements, replicas, acknowledged alerts), then
/// looks at every graph, drift included (its predecessor may have left
/// anything half done), provisions now, and only then lets its tasks act.
pub(super) async fn took(
    role: Role,
    shared: &Arc<Shared>,
    store: &Arc<Store>,
    queue: &Queue,
    kick: &mpsc::Sender<()>,
    notify: &notify::Notifier,
    sharing: Option<&mut Sharing>,
) -> Result<(), DaemonError> {
    let revision = shared.world.read_or_recover().revision.clone();
    notify.status(&status_line(shared, &revision));
    if role == Role::Leader {
        if let Some(s) = sharing {
            s.refresh_heads(store).await;
            s.placements.adopt(store, &shared.world().desired).await;
            s.inbox.reset();
            s.inbox.ingest(shared, store, queue).await;
        }
        let keys = all_keys(shared, store).await?;
        tracing::info!(graphs = keys.len(), "leading: a full pass");
        shared
            .drift_due
            .lock_or_recover()
            .extend(keys.iter().cloned());
        for k in keys {
            queue.enqueue(&k);
        }
        shared.leadership.mark_ready();
        let _ = kick.try_send(());
    } else {
        tracing::info!("standing by");
    }
    Ok(())
}

/// Writes `leader.json` when the view changed since `last`.
pub(super) async fn publish_view(shared: &Shared, state_dir: &Path, last: &mut Option<View>) {
    let Some(view) = shared.leadership.view() else {
        return;
    };
    if last.as_ref() == Some(&view) {
        return;
    }
    let dir = state_dir.to_owned();
    let bytes = serde_json::to_vec_pretty(&view).unwrap_or_default();
    let written = blocking(move || crate::store::snapshot::write_file(&dir, FILE, &bytes)).await;
    match written {
        Ok(Ok(())) => *last = Some(view),
        Ok(Err(e)) => tracing::warn!(error = %e, "could not write {FILE}"),
        Err(e) => tracing::warn!(error = %e, "could not write {FILE}"),
    }
}

/// The election as the running daemon last wrote it; `None` without one.
pub fn read_view(state_dir: &Path) -> Option<View> {
    let text = std::fs::read(state_dir.join(FILE)).ok()?;
    serde_json::from_slice(&text).ok()
}
