//! One task per sink: walks the outbox from the sink's cursor, delivers
//! each event until the receiver takes or refuses it, and advances the
//! cursor durably after each. A new commit wakes it at once; a periodic
//! look covers anything a wake-up could miss.
//!
//! Order: one event at a time, in sequence order, so every subject's
//! events arrive in the order they happened (a failing receiver holds its
//! own sink back, never the others). At least once: the cursor moves only
//! after the answer, so a crash in between sends the event again, with
//! the same `id`.

use super::cloud::CloudEvent;
use super::sink::{AnySink, Deliver, Delivery};
use crate::metrics::{Family, Metrics};
use crate::retry::Policy;
use crate::spec::config::Events;
use crate::store::{Store, StoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::Instrument;

/// Events read from the outbox at a time.
const BATCH: usize = 100;
/// How often an idle sender looks at the outbox although no commit woke
/// it: a safety net, not the way events are noticed.
const IDLE_LOOK: Duration = Duration::from_secs(5);

/// Everything senders share.
#[derive(Debug, Clone)]
pub struct Outbox {
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    /// The host part of the events' sources.
    pub host: String,
    pub store_id: String,
    /// Every configured sink: an entry leaves when all have passed it.
    pub sinks: Vec<String>,
    pub retry: Policy,
    /// The outbox's drop count already added to the metric (shared by the
    /// senders, so that each drop is counted once).
    pub dropped_seen: Arc<std::sync::atomic::AtomicU64>,
}

/// One sink's sender.
#[derive(Debug)]
pub struct Sender<D> {
    pub name: String,
    /// Type prefixes taken; empty: all.
    pub types: Vec<String>,
    pub sink: D,
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

impl<D: Deliver> Sender<D> {
    fn takes(&self, ty: &str) -> bool {
        self.types.is_empty() || self.types.iter().any(|p| ty.starts_with(p))
    }

    /// Runs until `shutdown` is true.
    pub async fn run(self, outbox: Outbox, mut shutdown: watch::Receiver<bool>) {
        let mut appended = outbox.store.appended();
        let mut failures_in_a_row = 0u32;
        loop {
            if *shutdown.borrow() {
                return;
            }
            match self.pass(&outbox, &mut shutdown).await {
                Ok(true) => {
                    failures_in_a_row = 0;
                    continue;
                }
                Ok(false) => failures_in_a_row = 0,
                Err(e) => {
                    failures_in_a_row += 1;
                    tracing::warn!(sink = %self.name, error = %e, "cannot read the event outbox");
                }
            }
            let wait = if failures_in_a_row > 0 {
                outbox.retry.delay(failures_in_a_row, &self.name)
            } else {
                IDLE_LOOK
            };
            tokio::select! {
                _ = appended.changed() => {}
                _ = shutdown.changed() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Delivers what the outbox holds past the cursor (one batch);
    /// whether there was anything.
    async fn pass(
        &self,
        outbox: &Outbox,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<bool, StoreError> {
        let (store, name) = (Arc::clone(&outbox.store), self.name.clone());
        let batch = blocking(move || {
            let cursor = store.sink_cursor(&name)?;
            store.outbox_after(cursor, BATCH)
        })
        .await?;
        if batch.is_empty() {
            return Ok(false);
        }
        for entry in batch {
            let event = CloudEvent::of(&entry, &outbox.host, &outbox.store_id);
            if self.takes(&event.ty) && !self.deliver(&event, outbox, shutdown).await {
                // Shutting down: the cursor stays, the event is sent again
                // at the next start.
                return Ok(false);
            }
            let (store, name, sinks, seq) = (
                Arc::clone(&outbox.store),
                self.name.clone(),
                outbox.sinks.clone(),
                entry.seq,
            );
            let stats = blocking(move || {
                store.advance_sink(&name, seq, &sinks, crate::clock::now())?;
                store.outbox_stats()
            })
            .await?;
            outbox
                .metrics
                .set(Family::EventsOutbox, &[], stats.pending as f64);
            let seen = outbox
                .dropped_seen
                .fetch_max(stats.dropped, std::sync::atomic::Ordering::SeqCst);
            if stats.dropped > seen {
                let newly = stats.dropped - seen;
                outbox
                    .metrics
                    .add(Family::EventsOverflow, &[], newly as f64);
            }
        }
        Ok(true)
    }

    /// Delivers one event, retrying until it is taken or refused; `false`
    /// when shutdown came first.
    async fn deliver(
        &self,
        event: &CloudEvent,
        outbox: &Outbox,
        shutdown: &mut watch::Receiver<bool>,
    ) -> bool {
        let body = event.to_bytes();
        let span =
            tracing::info_span!("deliver", sink = %self.name, id = %event.id, r#type = %event.ty);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match self.sink.deliver(&body).instrument(span.clone()).await {
                Delivery::Delivered => {
                    outbox
                        .metrics
                        .inc(Family::EventsSent, &[&self.name, "delivered"]);
                    return true;
                }
                Delivery::Refused(why) => {
                    outbox
                        .metrics
                        .inc(Family::EventsSent, &[&self.name, "refused"]);
                    tracing::warn!(parent: &span, sink = %self.name, id = %event.id, r#type = %event.ty, reason = %why, "the receiver refused the event; dropped");
                    return true;
                }
                Delivery::Retry(why) => {
                    outbox
                        .metrics
                        .inc(Family::EventsSent, &[&self.name, "retried"]);
                    // The first failure, then every tenth: a receiver down
                    // for an hour is not a thousand log lines.
                    if attempt % 10 == 1 {
                        tracing::warn!(parent: &span, sink = %self.name, id = %event.id, reason = %why, attempt, "event not delivered; retrying");
                    }
                    let wait = outbox.retry.delay(attempt, &event.id);
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        _ = shutdown.changed() => if *shutdown.borrow() { return false },
                    }
                }
            }
        }
    }
}

/// Starts one sender per configured sink (none without sinks). They end
/// when `shutdown` is true.
pub fn run_senders(
    events: &Events,
    store: &Arc<Store>,
    metrics: &Arc<Metrics>,
    shutdown: &watch::Receiver<bool>,
) -> Result<Vec<tokio::task::JoinHandle<()>>, StoreError> {
    if events.sinks.is_empty() {
        return Ok(Vec::new());
    }
    let sinks: Vec<String> = events.sinks.iter().map(|s| s.name.clone()).collect();
    store.retain_sinks(&sinks)?;
    let stats = store.outbox_stats()?;
    metrics.set(Family::EventsOutbox, &[], stats.pending as f64);
    metrics.add(Family::EventsOverflow, &[], stats.dropped as f64);
    let outbox = Outbox {
        dropped_seen: Arc::new(std::sync::atomic::AtomicU64::new(stats.dropped)),
        store: Arc::clone(store),
        metrics: Arc::clone(metrics),
        host: events.source.clone(),
        store_id: store.store_id()?,
        sinks,
        // A receiver back after a restart is reached within seconds; one
        // down for long is tried every five minutes.
        retry: Policy {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(300),
        },
    };
    Ok(events
        .sinks
        .iter()
        .map(|s| {
            let sender = Sender {
                name: s.name.clone(),
                types: s.types.clone(),
                sink: AnySink::new(s),
            };
            let span = tracing::info_span!("events", sink = %s.name);
            tokio::spawn(
                sender
                    .run(outbox.clone(), shutdown.clone())
                    .instrument(span),
            )
        })
        .collect())
}

#[cfg(test)]
mod tests;
