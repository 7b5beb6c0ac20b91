//! Two management hosts: leader election on a `coordination.k8s.io/v1`
//! Lease on the Karmada API server, as client-go's leader election does it.
//!
//! - [`record`] decides one acquire-or-renew round without I/O;
//! - [`elector`] runs the rounds (standby: acquire; leader: renew) over a
//!   narrow [`elector::LeaseApi`], and [`lease`] is that API on kube-rs,
//!   every write guarded by the `resourceVersion` it read;
//! - [`Leadership`] is what the daemon's tasks ask: the role, and a
//!   [`Fence`] the adapters check before each side effect.
//!
//! Fencing: the leader acts only until `renewDeadline` after the start of
//! its last successful renewal. A standby takes over only after it saw the
//! Lease unchanged for `leaseDuration` (> `renewDeadline`) on its own
//! clock, so a leader that was paused or cut off has stopped acting before
//! its successor starts, whether or not its own elector ran meanwhile.

pub mod elector;
pub mod facts;
pub mod lease;
pub mod record;
pub mod triggers;

use crate::locks::MutexExt;
use crate::metrics::{Family, Metrics};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Creates `name` unless it exists: the Lease and the shared facts live in
/// the `ha` namespace, which a fresh Karmada may not have yet.
pub(crate) async fn ensure_namespace(client: &kube::Client, name: &str) -> Result<(), kube::Error> {
    use k8s_openapi::api::core::v1::Namespace;
    let api: kube::Api<Namespace> = kube::Api::all(client.clone());
    let ns = Namespace {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name.to_owned()),
            ..Default::default()
        },
        ..Namespace::default()
    };
    match api.create(&kube::api::PostParams::default(), &ns).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

/// The `ha` block as the elector needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub lease_name: String,
    pub namespace: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
    pub identity: String,
}

/// A side effect was refused: this instance does not hold the Lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not the leader: this instance does not hold the leader Lease, another smo acts")]
pub struct NotLeader;

/// Checked by the adapters before each write: open (no leader election),
/// or acting until an instant the elector moves on at every renewal.
#[derive(Debug, Clone, Default)]
pub struct Fence(Option<Arc<Mutex<Option<Instant>>>>);

impl Fence {
    /// Always acting: a single host.
    pub fn open() -> Fence {
        Fence(None)
    }

    fn closed() -> Fence {
        Fence(Some(Arc::new(Mutex::new(None))))
    }

    /// Whether this instance may act now.
    pub fn acting(&self) -> bool {
        match &self.0 {
            None => true,
            Some(until) => until.lock_or_recover().is_some_and(|t| Instant::now() < t),
        }
    }

    pub fn check(&self) -> Result<(), NotLeader> {
        if self.acting() {
            Ok(())
        } else {
            Err(NotLeader)
        }
    }

    fn act_until(&self, t: Option<Instant>) {
        if let Some(until) = &self.0 {
            *until.lock_or_recover() = t;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Leader,
    Standby,
}

impl Role {
    pub fn label(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Standby => "standby",
        }
    }
}

/// What `smo status` shows of the election (`leader.json` in the state
/// directory).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct View {
    pub role: Role,
    /// This instance.
    pub identity: String,
    /// `namespace/name` of the Lease.
    pub lease: String,
    /// The holder as last read; `None`: nobody (released, or not read yet).
    pub leader: Option<String>,
    /// When the holder's claim ends unless renewed (RFC 3339, the holder's
    /// clock).
    pub lease_expires: Option<String>,
    /// How often this instance changed role since it started.
    pub transitions: u64,
}

#[derive(Debug)]
struct Inner {
    fence: Fence,
    /// Set by the daemon once it took the lead (adopted the shared facts);
    /// cleared at every change of role.
    ready: std::sync::atomic::AtomicBool,
    view: Mutex<Option<View>>,
    role: watch::Sender<Role>,
    metrics: Option<Arc<Metrics>>,
}

/// The role of this instance, shared by the daemon's tasks.
#[derive(Debug, Clone)]
pub struct Leadership(Arc<Inner>);

impl Leadership {
    /// No election: this instance always acts.
    pub fn single(metrics: Option<Arc<Metrics>>) -> Leadership {
        if let Some(m) = &metrics {
            m.set(Family::Leader, &[], 1.0);
        }
        Leadership(Arc::new(Inner {
            fence: Fence::open(),
            ready: std::sync::atomic::AtomicBool::new(true),
            view: Mutex::new(None),
            role: watch::channel(Role::Leader).0,
            metrics,
        }))
    }

    /// An election member: standby until the elector acquires the Lease.
    pub fn elected(settings: &Settings, metrics: Option<Arc<Metrics>>) -> Leadership {
        if let Some(m) = &metrics {
            m.set(Family::Leader, &[], 0.0);
        }
        Leadership(Arc::new(Inner {
            fence: Fence::closed(),
            ready: std::sync::atomic::AtomicBool::new(false),
            view: Mutex::new(Some(View {
                role: Role::Standby,
                identity: settings.identity.clone(),
                lease: format!("{}/{}", settings.namespace, settings.lease_name),
                leader: None,
                lease_expires: None,
                transitions: 0,
            })),
            role: watch::channel(Role::Standby).0,
            metrics,
        }))
    }

    /// Whether an election runs (`ha.enabled`).
    pub fn is_elected(&self) -> bool {
        self.0.fence.0.is_some()
    }

    pub fn fence(&self) -> Fence {
        self.0.fence.clone()
    }

    /// Whether this instance may act now: its lease is unexpired and the
    /// daemon took the lead ([`Leadership::mark_ready`]).
    pub fn acting(&self) -> bool {
        self.0.fence.acting() && self.0.ready.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The daemon took the lead: what a predecessor shared is adopted, and
    /// the tasks may act.
    pub fn mark_ready(&self) {
        self.0
            .ready
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn role(&self) -> Role {
        *self.0.role.borrow()
    }

    /// Changes of role, for the daemon's loop.
    pub fn subscribe(&self) -> watch::Receiver<Role> {
        self.0.role.subscribe()
    }

    /// The election as last seen; `None` without one.
    pub fn view(&self) -> Option<View> {
        self.0.view.lock_or_recover().clone()
    }

    /// Returns once this instance may act.
    pub async fn until_acting(&self) {
        let mut rx = self.subscribe();
        while !self.acting() {
            // The fence also closes by time alone (a paused leader): look
            // again now and then rather than only on a change of role.
            let _ = tokio::time::timeout(Duration::from_millis(100), rx.changed()).await;
        }
    }

    /// The elector holds the Lease, and may act until `until`.
    pub(crate) fn lead(&self, until: Instant, leader: &str, expires: Option<String>) {
        self.0.fence.act_until(Some(until));
        self.update(Role::Leader, Some(leader.to_owned()), expires);
    }

    /// The elector does not hold the Lease (any more).
    pub(crate) fn stand_by(&self, leader: Option<String>, expires: Option<String>) {
        self.0.fence.act_until(None);
        self.update(Role::Standby, leader, expires);
    }

    fn update(&self, role: Role, leader: Option<String>, expires: Option<String>) {
        let changed = self.role() != role;
        if let Some(v) = self.0.view.lock_or_recover().as_mut() {
            v.role = role;
            v.leader = leader;
            v.lease_expires = expires;
            if changed {
                v.transitions += 1;
            }
        }
        if changed {
            self.0
                .ready
                .store(false, std::sync::atomic::Ordering::SeqCst);
            if let Some(m) = &self.0.metrics {
                m.set(
                    Family::Leader,
                    &[],
                    f64::from(u8::from(role == Role::Leader)),
                );
                m.inc(Family::LeaderTransitions, &[role.label()]);
            }
            self.0.role.send_replace(role);
        }
    }
}

/// client-go's default timings for `identity` (tests).
#[cfg(test)]
pub(crate) fn test_settings(identity: &str) -> Settings {
    Settings {
        lease_name: "smo-leader".into(),
        namespace: "kube-system".into(),
        lease_duration: Duration::from_secs(15),
        renew_deadline: Duration::from_secs(10),
        retry_period: Duration::from_secs(2),
        identity: identity.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        test_settings("host-a")
    }

    #[test]
    fn a_single_host_always_acts() {
        let l = Leadership::single(None);
        assert!(l.acting() && l.fence().check().is_ok() && !l.is_elected());
        assert_eq!(l.role(), Role::Leader);
        assert!(l.view().is_none());
    }

    #[test]
    fn an_elected_instance_acts_only_until_its_deadline() {
        let metrics = Arc::new(Metrics::new());
        let l = Leadership::elected(&settings(), Some(Arc::clone(&metrics)));
        let fence = l.fence();
        assert_eq!(fence.check(), Err(NotLeader), "standby at start");
        l.lead(Instant::now() + Duration::from_secs(60), "host-a", None);
        assert!(fence.acting() && l.role() == Role::Leader);
        assert!(!l.acting(), "not before the daemon took the lead");
        l.mark_ready();
        assert!(l.acting());
        // The deadline passed without a renewal: fenced, though the elector
        // has not stepped down yet.
        l.lead(Instant::now(), "host-a", None);
        assert_eq!(fence.check(), Err(NotLeader));
        l.stand_by(Some("host-b".into()), None);
        let v = l.view().unwrap();
        assert_eq!(
            (v.role, v.leader.as_deref(), v.transitions),
            (Role::Standby, Some("host-b"), 2)
        );
        let text = metrics.render();
        assert!(text.contains("smo_leader 0\n"), "{text}");
        assert!(
            text.contains("smo_leader_transitions_total{to=\"leader\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("smo_leader_transitions_total{to=\"standby\"} 1\n"),
            "{text}"
        );
    }
}
