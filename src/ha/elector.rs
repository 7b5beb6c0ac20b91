//! The election loop: a standby tries to acquire the Lease every
//! `retryPeriod` (jittered); the leader renews it every `retryPeriod` and
//! steps down when no renewal succeeded for `renewDeadline`, or at once
//! when it finds another holder. On stop, the leader releases the Lease so
//! that a standby takes over without waiting for it to expire.
//!
//! As client-go does, the leader renews from the version its last write
//! returned (one request per round) and reads the Lease again only when
//! that write fails; a standby reads once per round.

use super::record::{LeaseRecord, Observed, Step, step};
use super::{Leadership, Settings};
use jiff::Timestamp;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Why a Lease call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    /// The Lease exists already, or changed since it was read (409).
    #[error("the Lease changed since it was read")]
    Conflict,
    #[error("{0}")]
    Api(String),
}

/// The Lease as read: its record and the version to write over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    pub record: LeaseRecord,
    pub version: String,
}

/// The few calls leader election needs; every write names the version it
/// replaces.
pub trait LeaseApi: Send + Sync {
    fn get(&self) -> impl Future<Output = Result<Option<Read>, LeaseError>> + Send;
    /// Creates the Lease; returns its version.
    fn create(&self, r: &LeaseRecord) -> impl Future<Output = Result<String, LeaseError>> + Send;
    /// Replaces the Lease at `version`; returns the new version.
    fn update(
        &self,
        r: &LeaseRecord,
        version: &str,
    ) -> impl Future<Output = Result<String, LeaseError>> + Send;
}

/// Asked to stop, or the daemon that would ask is gone.
fn stopped(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow() || stop.has_changed().is_err()
}

/// One election member.
pub struct Elector<A> {
    api: A,
    settings: Settings,
    leadership: Leadership,
    observed: Option<Observed>,
    /// The record this instance wrote last and its version (the leader's
    /// fast path).
    written: Option<Read>,
}

/// The outcome of one round.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Round {
    Holding,
    HeldBy(String, Option<String>),
}

fn expires_text(r: &LeaseRecord) -> Option<String> {
    r.expires().map(|t| t.to_string())
}

impl<A: LeaseApi> Elector<A> {
    pub fn new(api: A, settings: Settings, leadership: Leadership) -> Self {
        Elector {
            api,
            settings,
            leadership,
            observed: None,
            written: None,
        }
    }

    /// client-go's `tryAcquireOrRenew`.
    async fn round(&mut self, leading: bool) -> Result<Round, LeaseError> {
        let (now, wall) = (Instant::now(), Timestamp::now());
        let me = self.settings.identity.clone();
        // The leader's fast path: renew from the version it wrote.
        if leading && let Some(w) = self.written.take() {
            let renewed = LeaseRecord {
                renew_time: Some(wall),
                ..w.record.clone()
            };
            if let Ok(version) = self.api.update(&renewed, &w.version).await {
                self.wrote(renewed, version, now);
                return Ok(Round::Holding);
            }
        }
        let current = self.api.get().await?;
        match step(
            current.as_ref().map(|r| &r.record),
            &mut self.observed,
            &me,
            self.settings.lease_duration,
            now,
            wall,
        ) {
            Step::Create(r) => {
                let version = self.api.create(&r).await?;
                self.wrote(r, version, now);
                Ok(Round::Holding)
            }
            Step::Update(r) => {
                let version = current.map(|c| c.version).unwrap_or_default();
                let version = self.api.update(&r, &version).await?;
                self.wrote(r, version, now);
                Ok(Round::Holding)
            }
            Step::HeldBy { holder, .. } => {
                let expires = self.observed.as_ref().and_then(|o| expires_text(&o.record));
                Ok(Round::HeldBy(holder, expires))
            }
        }
    }

    fn wrote(&mut self, record: LeaseRecord, version: String, now: Instant) {
        self.observed = Some(Observed {
            record: record.clone(),
            at: now,
        });
        self.written = Some(Read { record, version });
    }

    /// A standby's pause between rounds: `retryPeriod × (1 + 1.2 × r)`.
    fn jittered(&self) -> Duration {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let r = f64::from(nanos % 1000) / 1000.0;
        self.settings
            .retry_period
            .mul_f64(1.0 + crate::spec::config::ha::JITTER * r)
    }

    /// Runs until `stop` turns true; a leader then releases the Lease.
    #[tracing::instrument(name = "election", skip_all, fields(identity = %self.settings.identity, lease = %self.settings.lease_name))]
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let deadline = self.settings.renew_deadline;
        let mut last_error: Option<String> = None;
        loop {
            // Standby: acquire.
            let acquired_at = loop {
                if stopped(&stop) {
                    return;
                }
                let started = Instant::now();
                match tokio::time::timeout(deadline, self.round(false)).await {
                    Ok(Ok(Round::Holding)) => break started,
                    Ok(Ok(Round::HeldBy(holder, expires))) => {
                        last_error = None;
                        self.leadership.stand_by(Some(holder), expires);
                    }
                    Ok(Err(e)) => self.note(&mut last_error, e.to_string()),
                    Err(_) => self.note(&mut last_error, "the API server did not answer".into()),
                }
                tokio::select! {
                    () = tokio::time::sleep(self.jittered()) => {}
                    _ = stop.changed() => {}
                }
            };
            let expires = self.written.as_ref().and_then(|w| expires_text(&w.record));
            self.leadership
                .lead(acquired_at + deadline, &self.settings.identity, expires);
            tracing::info!("acquired the leader Lease: acting");
            // Leader: renew until the deadline passes without success.
            let mut last_ok = acquired_at;
            let lost = loop {
                tokio::select! {
                    () = tokio::time::sleep(self.settings.retry_period) => {}
                    _ = stop.changed() => {}
                }
                if stopped(&stop) {
                    self.release().await;
                    return;
                }
                let started = Instant::now();
                let left = (last_ok + deadline).saturating_duration_since(started);
                if left.is_zero() {
                    break "no renewal succeeded within renewDeadline".to_owned();
                }
                match tokio::time::timeout(left, self.round(true)).await {
                    Ok(Ok(Round::Holding)) => {
                        last_ok = started;
                        let expires = self.written.as_ref().and_then(|w| expires_text(&w.record));
                        self.leadership
                            .lead(started + deadline, &self.settings.identity, expires);
                    }
                    Ok(Ok(Round::HeldBy(holder, _))) => {
                        break format!("{holder} holds the Lease now");
                    }
                    Ok(Err(e)) => tracing::warn!(error = %e, "could not renew the leader Lease"),
                    Err(_) => tracing::warn!("could not renew the leader Lease: no answer"),
                }
            };
            self.written = None;
            let holder = self
                .observed
                .as_ref()
                .map(|o| o.record.holder.clone())
                .filter(|h| !h.is_empty() && *h != self.settings.identity);
            self.leadership.stand_by(holder, None);
            tracing::warn!(reason = %lost, "lost the leader Lease: standing by");
        }
    }

    fn note(&self, last: &mut Option<String>, error: String) {
        // Said once per cause, not every retry period.
        if last.as_deref() != Some(error.as_str()) {
            tracing::warn!(error = %error, "could not read or take the leader Lease");
            *last = Some(error);
        }
    }

    /// Lets go of the Lease (client-go's `ReleaseOnCancel`): stop acting
    /// first, then write an empty holder, so that a standby takes over at
    /// its next round.
    async fn release(&mut self) {
        self.leadership.stand_by(None, None);
        let Some(w) = self.written.take() else {
            return;
        };
        let released = w.record.released(Timestamp::now());
        let write = self.api.update(&released, &w.version);
        match tokio::time::timeout(self.settings.retry_period, write).await {
            Ok(Ok(_)) => tracing::info!("released the leader Lease"),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not release the leader Lease; it expires")
            }
            Err(_) => tracing::warn!("could not release the leader Lease: no answer; it expires"),
        }
    }
}

#[cfg(test)]
mod tests;
