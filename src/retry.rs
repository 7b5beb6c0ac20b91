//! Retry back-off shared by the work queue and the adapters that retry on
//! their own (Prometheus queries): exponential with jitter, capped.

use std::time::Duration;

/// Delay before retry number `failures` (1 = first retry): `base·2^(n-1)`
/// capped at `cap`, then scaled by a jitter in [0.5, 1.0) derived from
/// `jitter_seed` and the count, so that many keys failing together do not
/// retry together.
pub fn backoff(failures: u32, base: Duration, cap: Duration, jitter_seed: u64) -> Duration {
    let exp = failures.saturating_sub(1).min(30);
    let raw = base.saturating_mul(1u32 << exp).min(cap);
    // A cheap deterministic mix of the seed (the key's hash and the
    // failure count): no RNG dependency, and tests can predict it.
    let mut x = jitter_seed ^ (u64::from(failures)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    #[allow(clippy::cast_precision_loss)]
    let unit = (x % 1_000_000) as f64 / 1_000_000.0;
    raw.mul_f64(0.5 + unit / 2.0)
}

/// The retry back-off of one kind of work: [`backoff`] between `base` and
/// `cap`, with a jitter seeded by the key that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub base: Duration,
    pub cap: Duration,
}

impl Policy {
    /// The delay before retry number `failures` of `key`.
    pub fn delay(&self, failures: u32, key: &str) -> Duration {
        backoff(failures, self.base, self.cap, seed_of(key))
    }
}

/// A stable seed for [`backoff`]'s jitter from a key's text.
pub fn seed_of(key: &str) -> u64 {
    key.bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
}

/// Whether retrying the same call as it is can succeed (a network error,
/// a busy release, a timeout); otherwise the failure is terminal until a
/// configuration or the desired state changes. Every adapter error
/// implements it; callers decide the policy.
pub trait Transient {
    fn is_transient(&self) -> bool;
}
