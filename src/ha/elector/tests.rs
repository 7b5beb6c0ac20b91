//! The election on an in-memory Lease with versions, in paused time: one
//! leader at a time, takeover after a crash, a cut-off leader fenced
//! before its successor acts, release on stop.

use super::*;
use crate::ha::{Fence, Role};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Memory {
    lease: Mutex<Option<Read>>,
    next: AtomicU64,
    writes: AtomicU64,
}

/// One member's view of the shared Lease; `cut` makes its calls fail (a
/// partition or an API outage for that member).
#[derive(Clone)]
struct Member {
    memory: Arc<Memory>,
    cut: Arc<AtomicBool>,
}

impl Member {
    fn check(&self) -> Result<(), LeaseError> {
        if self.cut.load(Ordering::SeqCst) {
            Err(LeaseError::Api("connection refused".into()))
        } else {
            Ok(())
        }
    }
    fn version(&self) -> String {
        self.memory.writes.fetch_add(1, Ordering::SeqCst);
        self.memory.next.fetch_add(1, Ordering::SeqCst).to_string()
    }
}

impl LeaseApi for Member {
    async fn get(&self) -> Result<Option<Read>, LeaseError> {
        self.check()?;
        Ok(self.memory.lease.lock().unwrap().clone())
    }
    async fn create(&self, r: &LeaseRecord) -> Result<String, LeaseError> {
        self.check()?;
        let mut l = self.memory.lease.lock().unwrap();
        if l.is_some() {
            return Err(LeaseError::Conflict);
        }
        let version = self.version();
        *l = Some(Read {
            record: r.clone(),
            version: version.clone(),
        });
        Ok(version)
    }
    async fn update(&self, r: &LeaseRecord, version: &str) -> Result<String, LeaseError> {
        self.check()?;
        let mut l = self.memory.lease.lock().unwrap();
        match l.as_ref() {
            Some(cur) if cur.version == version => {}
            _ => return Err(LeaseError::Conflict),
        }
        let version = self.version();
        *l = Some(Read {
            record: r.clone(),
            version: version.clone(),
        });
        Ok(version)
    }
}

use crate::ha::test_settings as settings;

struct Running {
    leadership: Leadership,
    fence: Fence,
    cut: Arc<AtomicBool>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

fn start(memory: &Arc<Memory>, identity: &str) -> Running {
    let member = Member {
        memory: Arc::clone(memory),
        cut: Arc::default(),
    };
    let leadership = Leadership::elected(&settings(identity), None);
    let (stop, rx) = watch::channel(false);
    let cut = Arc::clone(&member.cut);
    let elector = Elector::new(member, settings(identity), leadership.clone());
    Running {
        fence: leadership.fence(),
        leadership,
        cut,
        stop,
        task: tokio::spawn(elector.run(rx)),
    }
}

/// Steps paused time by `step` until `done` or `limit`, checking at every
/// step that at most one member acts; returns the time taken.
async fn until(
    members: &[&Running],
    limit: Duration,
    mut done: impl FnMut() -> bool,
) -> Option<Duration> {
    let t0 = Instant::now();
    let step = Duration::from_millis(100);
    while t0.elapsed() <= limit {
        let acting = members.iter().filter(|m| m.fence.acting()).count();
        assert!(acting <= 1, "two members acted at once");
        if done() {
            return Some(t0.elapsed());
        }
        tokio::time::sleep(step).await;
    }
    None
}

#[tokio::test(start_paused = true)]
async fn one_member_leads_and_a_crashed_leaders_lease_is_taken_after_it_expires() {
    let memory = Arc::new(Memory::default());
    let a = start(&memory, "host-a");
    until(&[&a], Duration::from_secs(5), || a.fence.acting())
        .await
        .expect("a leads");
    let b = start(&memory, "host-b");
    // b stands by while a renews: a whole minute, never both.
    let none = until(&[&a, &b], Duration::from_secs(60), || b.fence.acting()).await;
    assert_eq!(none, None, "b never acts while a renews");
    let v = b.leadership.view().unwrap();
    assert_eq!(
        (v.role, v.leader.as_deref()),
        (Role::Standby, Some("host-a"))
    );
    assert!(v.lease_expires.is_some());
    // The leader renews with one write per round, reading nothing.
    let writes = memory.writes.load(Ordering::SeqCst);
    assert!((28..=32).contains(&writes), "{writes} writes in a minute");

    // a dies without releasing (its task is gone, its fence would expire).
    a.task.abort();
    let took = until(&[&b], Duration::from_secs(30), || b.fence.acting())
        .await
        .expect("b takes over");
    // b last saw the record change at its first poll after a's last
    // renewal, up to one jittered retry after the abort; it takes over at
    // its first poll after leaseDuration from then: at most leaseDuration
    // + two jittered retries (+ one step of `until`).
    let retry = Duration::from_secs(2).mul_f64(1.0 + crate::spec::config::ha::JITTER);
    assert!(
        took <= Duration::from_secs(15) + retry * 2 + Duration::from_millis(100),
        "takeover within leaseDuration + two jittered retries: {took:?}"
    );
    assert!(
        took >= Duration::from_secs(13),
        "not before a's lease ran out: {took:?}"
    );
    let lease = memory.lease.lock().unwrap().clone().unwrap().record;
    assert_eq!((lease.holder.as_str(), lease.transitions), ("host-b", 1));
    assert_eq!(b.leadership.role(), Role::Leader);
}

#[tokio::test(start_paused = true)]
async fn a_cut_off_leader_stops_acting_before_its_successor_starts() {
    let memory = Arc::new(Memory::default());
    let a = start(&memory, "host-a");
    until(&[&a], Duration::from_secs(5), || a.fence.acting())
        .await
        .expect("a leads");
    let b = start(&memory, "host-b");
    tokio::time::sleep(Duration::from_secs(5)).await;
    a.cut.store(true, Ordering::SeqCst);
    // `until` asserts at every step that a and b never act together.
    let fenced = until(&[&a, &b], Duration::from_secs(30), || !a.fence.acting())
        .await
        .expect("a is fenced");
    assert!(
        fenced <= Duration::from_secs(10),
        "within renewDeadline: {fenced:?}"
    );
    until(&[&a, &b], Duration::from_secs(30), || b.fence.acting())
        .await
        .expect("b takes over");
    assert_eq!(a.leadership.role(), Role::Standby);
    // The API comes back: a stays standby behind b.
    a.cut.store(false, Ordering::SeqCst);
    let none = until(&[&a, &b], Duration::from_secs(30), || a.fence.acting()).await;
    assert_eq!(none, None);
    assert_eq!(
        a.leadership.view().unwrap().leader.as_deref(),
        Some("host-b")
    );
}

#[tokio::test(start_paused = true)]
async fn a_stopping_leader_releases_the_lease_for_a_prompt_takeover() {
    let memory = Arc::new(Memory::default());
    let mut a = start(&memory, "host-a");
    until(&[&a], Duration::from_secs(5), || a.fence.acting())
        .await
        .expect("a leads");
    let b = start(&memory, "host-b");
    tokio::time::sleep(Duration::from_secs(3)).await;
    a.stop.send(true).unwrap();
    (&mut a.task).await.unwrap();
    assert!(!a.fence.acting());
    assert_eq!(
        memory.lease.lock().unwrap().as_ref().unwrap().record.holder,
        ""
    );
    let took = until(&[&a, &b], Duration::from_secs(30), || b.fence.acting())
        .await
        .expect("b takes over");
    assert!(
        took <= Duration::from_secs(5),
        "a released lease is taken at b's next round: {took:?}"
    );
}
