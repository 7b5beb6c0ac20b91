//! The outbox: events waiting for delivery to the configured sinks.
//!
//! While sinks are configured ([`StoreOptions::outbox`] > 0), every
//! journal entry is also written here, in the transaction that records the
//! change it describes, so an event exists exactly when its change was
//! committed. Senders read it after the commit, in sequence order, each
//! sink from its own cursor; an entry leaves once every configured sink's
//! cursor passed it. The outbox is bounded: past its size the oldest
//! entries are dropped even if undelivered, and counted
//! ([`OutboxStats::dropped`]), so a receiver that is down for a week
//! cannot fill the disk.

use redb::{ReadableTableMetadata, TableHandle};

use super::access::{encode, get, meta, open_read, read_err, record, write_err};
use super::codec::Stored;
use super::records::{Event, SinkCursor};
use super::tx::Tx;
use super::{Store, StoreError, tables};

/// The outbox as `/metrics` shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxStats {
    /// Entries waiting for at least one sink.
    pub pending: u64,
    /// Undelivered entries dropped because the outbox was full, ever.
    pub dropped: u64,
}

impl Tx<'_> {
    /// Puts a journal entry into the outbox (when sinks are configured),
    /// dropping the oldest entries past the bound.
    pub(super) fn enqueue_outbox(&mut self, event: &Event) -> Result<(), StoreError> {
        let bound = self.options.outbox as u64;
        if bound == 0 {
            return Ok(());
        }
        let name = tables::OUTBOX.name();
        let mut outbox = self
            .txn
            .open_table(tables::OUTBOX)
            .map_err(write_err(name))?;
        let stored = Stored::encode(event).map_err(|source| StoreError::Encode {
            table: name.to_owned(),
            key: event.seq.to_string(),
            source,
        })?;
        outbox.insert(event.seq, stored).map_err(write_err(name))?;
        let mut dropped = 0u64;
        while outbox.len().map_err(read_err(name))? > bound {
            outbox.pop_first().map_err(write_err(name))?;
            dropped += 1;
        }
        drop(outbox);
        if dropped > 0 {
            tracing::warn!(
                dropped,
                bound,
                "the event outbox is full: the oldest undelivered events were dropped"
            );
            let mut meta_table = self
                .txn
                .open_table(tables::META)
                .map_err(write_err(tables::META.name()))?;
            let before: u64 = meta(&meta_table, tables::OUTBOX_DROPPED)?.unwrap_or(0);
            let bytes = encode(tables::META, tables::OUTBOX_DROPPED, &(before + dropped))?;
            meta_table
                .insert(tables::OUTBOX_DROPPED, bytes.as_slice())
                .map_err(write_err(tables::META.name()))?;
        }
        Ok(())
    }
}

impl Store {
    /// This store's random identity, the prefix of every event id.
    pub fn store_id(&self) -> Result<String, StoreError> {
        self.read(|txn| meta(&open_read(txn, tables::META)?, tables::STORE_ID))
            .map(Option::unwrap_or_default)
    }

    /// Up to `limit` outbox entries after sequence number `after`, oldest
    /// first.
    pub fn outbox_after(&self, after: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        self.read(|txn| {
            let table = open_read(txn, tables::OUTBOX)?;
            let name = tables::OUTBOX.name();
            let mut out = Vec::new();
            for entry in table
                .range((after.saturating_add(1))..)
                .map_err(read_err(name))?
                .take(limit)
            {
                let (seq, value) = entry.map_err(read_err(name))?;
                out.push(record(
                    tables::OUTBOX,
                    &seq.value().to_string(),
                    &value.value(),
                )?);
            }
            Ok(out)
        })
    }

    /// Where `sink` stands: the last sequence number it was given (0 for
    /// a sink never seen).
    pub fn sink_cursor(&self, sink: &str) -> Result<u64, StoreError> {
        self.read(|txn| {
            let table = open_read(txn, tables::SINK_CURSORS)?;
            Ok(get(&table, tables::SINK_CURSORS, sink)?.map_or(0, |c| c.seq))
        })
    }

    /// Records that `sink` was given every entry up to `seq`, and removes
    /// the entries every sink of `sinks` (the configured ones) has been
    /// given, in one transaction.
    pub fn advance_sink(
        &self,
        sink: &str,
        seq: u64,
        sinks: &[String],
        now: u64,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            let name = tables::SINK_CURSORS.name();
            let mut cursors = tx
                .txn
                .open_table(tables::SINK_CURSORS)
                .map_err(write_err(name))?;
            let stored = Stored::encode(&SinkCursor { seq, at: now }).map_err(|source| {
                StoreError::Encode {
                    table: name.to_owned(),
                    key: sink.to_owned(),
                    source,
                }
            })?;
            cursors.insert(sink, stored).map_err(write_err(name))?;
            let mut low = u64::MAX;
            for s in sinks {
                let at = get(&cursors, tables::SINK_CURSORS, s)?.map_or(0, |c| c.seq);
                low = low.min(at);
            }
            drop(cursors);
            let name = tables::OUTBOX.name();
            let mut outbox = tx.txn.open_table(tables::OUTBOX).map_err(write_err(name))?;
            outbox
                .retain_in(..=low, |_, _| false)
                .map_err(write_err(name))?;
            Ok(())
        })
    }

    /// Forgets the cursors of sinks no longer configured, so that they do
    /// not hold entries in the outbox forever.
    pub fn retain_sinks(&self, sinks: &[String]) -> Result<(), StoreError> {
        self.write(|tx| {
            let name = tables::SINK_CURSORS.name();
            tx.txn
                .open_table(tables::SINK_CURSORS)
                .map_err(write_err(name))?
                .retain(|k, _| sinks.iter().any(|s| s == k))
                .map_err(write_err(name))
        })
    }

    /// How many entries wait, and how many the bound ever dropped.
    pub fn outbox_stats(&self) -> Result<OutboxStats, StoreError> {
        self.read(|txn| {
            let name = tables::OUTBOX.name();
            let pending = open_read(txn, tables::OUTBOX)?
                .len()
                .map_err(read_err(name))?;
            let dropped =
                meta(&open_read(txn, tables::META)?, tables::OUTBOX_DROPPED)?.unwrap_or(0);
            Ok(OutboxStats { pending, dropped })
        })
    }

    /// A receiver that changes after every commit that appended an event.
    pub fn appended(&self) -> tokio::sync::watch::Receiver<u64> {
        self.appended.subscribe()
    }
}
