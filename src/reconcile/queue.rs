//! The work queue: triggers enqueue graph keys; workers take them.
//!
//! Invariants (kube-runtime's scheduler and runner, in small):
//! - a key is pending at most once: enqueuing it again keeps the earlier
//!   due time (de-duplication), so a burst of triggers costs one reconcile;
//! - every enqueue is debounced: the key becomes due `debounce` after the
//!   first trigger of a burst;
//! - a key is never reconciled by two workers at once; a trigger that
//!   arrives while it runs marks it dirty, and it runs again afterwards;
//! - a retry (`requeue_after`) never delays a key that is already due
//!   sooner for another reason.
//!
//! Time is tokio's, so tests drive it with a paused clock.

use crate::locks::MutexExt;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// A graph's key.
pub type Key = crate::keys::GraphKey;

#[derive(Debug, Default)]
struct State {
    /// Key → when it becomes due.
    pending: BTreeMap<Key, Instant>,
    in_flight: HashSet<Key>,
    /// Triggered while in flight: due again when it finishes.
    dirty: BTreeMap<Key, Instant>,
    closed: bool,
}

/// A de-duplicated, debounced delay queue shared by triggers and workers.
#[derive(Debug, Clone)]
pub struct Queue {
    state: Arc<Mutex<State>>,
    wake: Arc<Notify>,
    debounce: Duration,
}

impl Queue {
    pub fn new(debounce: Duration) -> Self {
        Queue {
            state: Arc::default(),
            wake: Arc::new(Notify::new()),
            debounce,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain data behind; the
        // queue stays usable.
        self.state.lock_or_recover()
    }

    /// A trigger: reconcile `key` soon (after the debounce).
    pub fn enqueue(&self, key: &Key) {
        self.schedule(key, Instant::now() + self.debounce);
    }

    /// A trigger that skips the debounce: a fired alert is one committed
    /// fact, not the first event of a burst, and its service should deploy
    /// as soon as possible.
    pub fn enqueue_now(&self, key: &Key) {
        self.schedule(key, Instant::now());
    }

    /// A retry or a timer: reconcile `key` after `delay`, unless it is
    /// already due sooner.
    pub fn requeue_after(&self, key: &Key, delay: Duration) {
        self.schedule(key, Instant::now() + delay);
    }

    fn schedule(&self, key: &Key, due: Instant) {
        let mut s = self.lock();
        if s.closed {
            return;
        }
        let slot = if s.in_flight.contains(key) {
            &mut s.dirty
        } else {
            &mut s.pending
        };
        slot.entry(key.clone())
            .and_modify(|d| *d = (*d).min(due))
            .or_insert(due);
        drop(s);
        self.wake.notify_waiters();
        self.wake.notify_one();
    }

    /// The next due key, waiting for one; `None` once the queue is closed.
    pub async fn next(&self) -> Option<Key> {
        loop {
            let notified = self.wake.notified();
            let wait_until = {
                let mut s = self.lock();
                if s.closed {
                    return None;
                }
                let now = Instant::now();
                let ready = s
                    .pending
                    .iter()
                    .filter(|(k, _)| !s.in_flight.contains(*k))
                    .min_by_key(|(_, due)| **due)
                    .map(|(k, due)| (k.clone(), *due));
                match ready {
                    Some((key, due)) if due <= now => {
                        s.pending.remove(&key);
                        s.in_flight.insert(key.clone());
                        return Some(key);
                    }
                    Some((_, due)) => Some(due),
                    None => None,
                }
            };
            match wait_until {
                Some(due) => {
                    tokio::select! {
                        () = notified => {}
                        () = tokio::time::sleep_until(due) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// A worker finished `key`: a trigger that came meanwhile is pending now.
    pub fn done(&self, key: &Key) {
        let mut s = self.lock();
        s.in_flight.remove(key);
        if let Some(due) = s.dirty.remove(key) {
            s.pending
                .entry(key.clone())
                .and_modify(|d| *d = (*d).min(due))
                .or_insert(due);
        }
        drop(s);
        self.wake.notify_waiters();
    }

    /// Keys pending or running (for `--once` and status).
    pub fn is_idle(&self) -> bool {
        let s = self.lock();
        s.pending.is_empty() && s.in_flight.is_empty() && s.dirty.is_empty()
    }

    /// Nothing runs and nothing is due yet: what a pass had to do is done,
    /// whatever waits for later (a back-off, a grace period). The moment to
    /// publish its outcome, which [`Queue::is_idle`] would put off until
    /// the waiting keys ran.
    pub fn is_settled(&self) -> bool {
        let s = self.lock();
        let now = Instant::now();
        s.in_flight.is_empty()
            && s.pending
                .values()
                .chain(s.dirty.values())
                .all(|due| *due > now)
    }

    /// When the earliest pending key is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.lock().pending.values().min().copied()
    }

    /// Returns once the queue is closed (for a worker that waits on
    /// something else than the queue).
    pub async fn closed(&self) {
        loop {
            let notified = self.wake.notified();
            if self.lock().closed {
                return;
            }
            notified.await;
        }
    }

    /// Stop handing out work: `next` returns `None` from now on.
    pub fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_waiters();
    }
}

pub use crate::retry::backoff;

#[cfg(test)]
mod tests {
    use super::*;

    fn k(text: &str) -> Key {
        text.parse().unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_triggers_becomes_one_due_key_after_the_debounce() {
        let q = Queue::new(Duration::from_millis(200));
        q.enqueue(&k("p/a"));
        tokio::time::advance(Duration::from_millis(100)).await;
        q.enqueue(&k("p/a"));
        q.enqueue(&k("p/a"));
        let start = Instant::now();
        assert_eq!(q.next().await, Some(k("p/a")));
        // Due 200 ms after the first trigger, not the last.
        assert_eq!(Instant::now() - start, Duration::from_millis(100));
        q.done(&k("p/a"));
        assert!(q.is_idle());
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_is_never_handed_out_twice_and_a_trigger_while_running_reruns_it() {
        let q = Queue::new(Duration::ZERO);
        q.enqueue(&k("p/a"));
        q.enqueue(&k("p/b"));
        let first = q.next().await.unwrap();
        q.enqueue(&first); // while running
        let second = q.next().await.unwrap();
        assert_ne!(first, second);
        // Nothing else is due: `first` is dirty, not pending.
        let none = tokio::time::timeout(Duration::from_secs(1), q.next()).await;
        assert!(none.is_err());
        q.done(&first);
        assert_eq!(q.next().await.unwrap(), first);
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_does_not_postpone_an_earlier_trigger() {
        let q = Queue::new(Duration::from_secs(1));
        q.enqueue(&k("p/a"));
        q.requeue_after(&k("p/a"), Duration::from_secs(60));
        let start = Instant::now();
        q.next().await.unwrap();
        assert_eq!(Instant::now() - start, Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn close_wakes_waiting_workers() {
        let q = Queue::new(Duration::ZERO);
        let w = {
            let q = q.clone();
            tokio::spawn(async move { q.next().await })
        };
        tokio::task::yield_now().await;
        q.close();
        assert_eq!(w.await.unwrap(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_queue_with_only_later_work_is_settled_but_not_idle() {
        let q = Queue::new(Duration::from_millis(10));
        assert!(q.is_settled() && q.is_idle());
        q.enqueue(&k("p/a"));
        tokio::time::advance(Duration::from_millis(20)).await;
        assert!(!q.is_settled(), "due now");
        let key = q.next().await.unwrap();
        assert!(!q.is_settled(), "running");
        q.done(&key);
        q.requeue_after(&key, Duration::from_secs(60));
        assert!(q.is_settled(), "only waiting for later");
        assert!(!q.is_idle());
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(!q.is_settled(), "the wait is over");
    }

    #[test]
    fn backoff_doubles_is_capped_and_jittered_within_half() {
        let base = Duration::from_secs(1);
        let cap = Duration::from_secs(300);
        for f in 1..20 {
            let d = backoff(f, base, cap, 42);
            let raw = base.saturating_mul(1 << (f - 1).min(30)).min(cap);
            assert!(d <= raw && d >= raw / 2, "failures {f}: {d:?} vs {raw:?}");
        }
        assert!(backoff(30, base, cap, 7) <= cap);
        assert_ne!(backoff(3, base, cap, 1), backoff(3, base, cap, 2));
    }
}
