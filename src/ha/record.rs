//! One round of client-go's `tryAcquireOrRenew`, without I/O: given the
//! Lease as read (or its absence) and what this instance observed of it
//! before, what to write, or who holds it.
//!
//! Expiry is judged on this instance's monotonic clock, from the moment it
//! first saw the record as it is now — never from the times written in the
//! Lease, which come from another host's clock.

use jiff::Timestamp;
use std::time::Duration;
use tokio::time::Instant;

/// The leader election record a Lease carries (its `spec`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    /// Empty once the holder released the Lease.
    pub holder: String,
    /// `leaseDurationSeconds`: how long the holder's claim lasts after the
    /// record last changed.
    pub duration: Duration,
    pub acquire_time: Option<Timestamp>,
    pub renew_time: Option<Timestamp>,
    pub transitions: i32,
}

impl LeaseRecord {
    /// When the holder's claim ends by its own clock (for display only).
    pub fn expires(&self) -> Option<Timestamp> {
        let d = jiff::SignedDuration::try_from(self.duration).ok()?;
        self.renew_time?.checked_add(d).ok()
    }

    /// The record a holder writes when it lets go (client-go's
    /// `ReleaseOnCancel`): no holder, a one-second claim.
    pub fn released(&self, wall: Timestamp) -> LeaseRecord {
        LeaseRecord {
            holder: String::new(),
            duration: Duration::from_secs(1),
            acquire_time: Some(wall),
            renew_time: Some(wall),
            transitions: self.transitions,
        }
    }
}

/// The record as this instance last saw it, and since when (local clock).
#[derive(Debug, Clone)]
pub struct Observed {
    pub record: LeaseRecord,
    pub at: Instant,
}

/// What one round decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// There is no Lease: create it, held by this instance.
    Create(LeaseRecord),
    /// Write this record over the version read (acquire or renew).
    Update(LeaseRecord),
    /// Another instance holds an unexpired claim.
    HeldBy {
        holder: String,
        /// How long until this instance may take over, unless the record
        /// changes meanwhile.
        left: Duration,
    },
}

/// Decides one round for `me`. `observed` is updated when the record
/// changed since the last round.
pub fn step(
    current: Option<&LeaseRecord>,
    observed: &mut Option<Observed>,
    me: &str,
    duration: Duration,
    now: Instant,
    wall: Timestamp,
) -> Step {
    let Some(current) = current else {
        return Step::Create(LeaseRecord {
            holder: me.to_owned(),
            duration,
            acquire_time: Some(wall),
            renew_time: Some(wall),
            transitions: 0,
        });
    };
    if observed.as_ref().is_none_or(|o| o.record != *current) {
        *observed = Some(Observed {
            record: current.clone(),
            at: now,
        });
    }
    let seen_at = observed.as_ref().map_or(now, |o| o.at);
    let held_by_other = !current.holder.is_empty() && current.holder != me;
    if held_by_other {
        let ends = seen_at + current.duration;
        if ends > now {
            return Step::HeldBy {
                holder: current.holder.clone(),
                left: ends - now,
            };
        }
    }
    let mine = current.holder == me;
    Step::Update(LeaseRecord {
        holder: me.to_owned(),
        duration,
        acquire_time: if mine {
            current.acquire_time.or(Some(wall))
        } else {
            Some(wall)
        },
        renew_time: Some(wall),
        transitions: if mine {
            current.transitions
        } else {
            current.transitions.saturating_add(1)
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Duration = Duration::from_secs(15);

    fn held(by: &str, transitions: i32) -> LeaseRecord {
        LeaseRecord {
            holder: by.into(),
            duration: D,
            acquire_time: Some(Timestamp::UNIX_EPOCH),
            renew_time: Some(Timestamp::UNIX_EPOCH),
            transitions,
        }
    }

    #[test]
    fn no_lease_is_created_held_by_me() {
        let (now, wall) = (Instant::now(), Timestamp::now());
        let Step::Create(r) = step(None, &mut None, "a", D, now, wall) else {
            panic!("create");
        };
        assert_eq!((r.holder.as_str(), r.transitions), ("a", 0));
        assert_eq!(r.renew_time, Some(wall));
    }

    #[test]
    fn another_holder_is_waited_for_a_lease_duration_after_the_record_last_changed() {
        let t0 = Instant::now();
        let wall = Timestamp::now();
        let mut seen = None;
        let lease = held("b", 3);
        assert_eq!(
            step(Some(&lease), &mut seen, "a", D, t0, wall),
            Step::HeldBy {
                holder: "b".into(),
                left: D
            }
        );
        // The same record 14 s later: still b's.
        let later = t0 + Duration::from_secs(14);
        assert!(matches!(
            step(Some(&lease), &mut seen, "a", D, later, wall),
            Step::HeldBy { left, .. } if left == Duration::from_secs(1)
        ));
        // b renewed; a sees it at 16 s: the wait starts again from there.
        let renewed = LeaseRecord {
            renew_time: Some(wall),
            ..lease.clone()
        };
        let seen_at = later + Duration::from_secs(2);
        assert!(matches!(
            step(Some(&renewed), &mut seen, "a", D, seen_at, wall),
            Step::HeldBy { left, .. } if left == D
        ));
        assert!(matches!(
            step(Some(&renewed), &mut seen, "a", D, seen_at + Duration::from_secs(10), wall),
            Step::HeldBy { left, .. } if left == Duration::from_secs(5)
        ));
        // Unchanged for the whole duration: taken over, one more transition.
        let Step::Update(r) = step(Some(&renewed), &mut seen, "a", D, seen_at + D, wall) else {
            panic!("takeover");
        };
        assert_eq!((r.holder.as_str(), r.transitions), ("a", 4));
        assert_eq!(r.acquire_time, Some(wall));
    }

    #[test]
    fn the_holder_renews_keeping_its_acquire_time_and_transitions() {
        let now = Instant::now();
        let wall = Timestamp::now();
        let lease = held("a", 2);
        let Step::Update(r) = step(Some(&lease), &mut None, "a", D, now, wall) else {
            panic!("renew");
        };
        assert_eq!(r.transitions, 2);
        assert_eq!(r.acquire_time, Some(Timestamp::UNIX_EPOCH));
        assert_eq!(r.renew_time, Some(wall));
    }

    #[test]
    fn a_released_lease_is_taken_at_once() {
        let now = Instant::now();
        let wall = Timestamp::now();
        let released = held("b", 5).released(wall);
        let Step::Update(r) = step(Some(&released), &mut None, "a", D, now, wall) else {
            panic!("take the released lease");
        };
        assert_eq!((r.holder.as_str(), r.transitions), ("a", 6));
    }
}
