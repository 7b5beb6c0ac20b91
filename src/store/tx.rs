//! The one way to write the store: a [`Tx`], opened by
//! [`Store::write`](super::Store::write) and committed as a whole.

use redb::{ReadableTable, TableDefinition, TableHandle, WriteTransaction};

use super::access::{all, encode, get, read_err, under, write_err};
use super::codec::{Json, Record, Stored};
use super::records::{
    ClusterRecord, FiredEvent, GraphRecord, Intent, MoveRecord, NewEvent, NewRun, OwnedObject,
    ProvisionRecord, ProvisionStatus, ReleaseHead, ScaleRecord, ServiceRecord, children_prefix,
    prefix_end, service_key,
};
use super::{Kind, StoreError, StoreOptions, tables};
use crate::provenance::Cause;

/// Every graph, service and owned object ([`Tx::everything`]).
#[derive(Debug, Default)]
pub struct Everything {
    pub graphs: Vec<GraphRecord>,
    /// Which release each service record holds.
    pub services: Vec<ReleaseHead>,
    pub owned: Vec<OwnedObject>,
}

/// A table of records under string keys.
pub(super) type Table<T> = TableDefinition<'static, &'static str, Json<T>>;
/// A bounded journal: records under growing sequence numbers.
pub(super) type Journal<T> = TableDefinition<'static, u64, Json<T>>;

/// One open write transaction (see [`Store::write`]): every write of the
/// store goes through it. Reads see the transaction's own writes.
pub struct Tx<'db> {
    pub(super) txn: &'db WriteTransaction,
    pub(super) options: StoreOptions,
    /// The sequence number of the last event this transaction appended:
    /// the store tells the event senders after the commit.
    pub(super) appended: Option<u64>,
    /// Graphs and services written (see `published`).
    pub(super) touched: super::published::Touched,
}

impl Tx<'_> {
    fn open<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        table: TableDefinition<'static, K, V>,
    ) -> Result<redb::Table<'_, K, V>, StoreError> {
        self.txn.open_table(table).map_err(write_err(table.name()))
    }

    pub fn graph(&self, key: &str) -> Result<Option<GraphRecord>, StoreError> {
        get(&self.open(tables::GRAPHS)?, tables::GRAPHS, key)
    }

    pub fn services_of(
        &self,
        project: &str,
        graph: &str,
    ) -> Result<Vec<ServiceRecord>, StoreError> {
        under(
            &self.open(tables::SERVICES)?,
            tables::SERVICES,
            &children_prefix(project, graph),
        )
    }

    pub fn owned_objects_of(
        &self,
        project: &str,
        graph: &str,
    ) -> Result<Vec<OwnedObject>, StoreError> {
        under(
            &self.open(tables::OWNED)?,
            tables::OWNED,
            &children_prefix(project, graph),
        )
    }

    /// Every graph, service and owned object, as this transaction sees
    /// them: for a decision that must not race with other writers (the
    /// sweep), made and written in one transaction.
    pub fn everything(&self) -> Result<Everything, StoreError> {
        Ok(Everything {
            graphs: all(&self.open(tables::GRAPHS)?, tables::GRAPHS)?,
            services: heads(&self.open(tables::SERVICES)?)?,
            owned: all(&self.open(tables::OWNED)?, tables::OWNED)?,
        })
    }

    pub fn put_graph(&mut self, record: &GraphRecord) -> Result<(), StoreError> {
        self.put(tables::GRAPHS, &record.key(), record)
    }

    /// Deletes a graph with its services, owned objects, fired events and
    /// scaling decisions and a move asked of it; returns whether the graph
    /// existed.
    pub fn delete_graph(&mut self, key: &str) -> Result<bool, StoreError> {
        let existed = self.remove(tables::GRAPHS, key)?;
        self.remove(tables::MOVES, key)?;
        let prefix = format!("{key}/");
        self.remove_under(tables::SERVICES, &prefix)?;
        self.remove_under(tables::OWNED, &prefix)?;
        self.remove_under(tables::TRIGGERS, &prefix)?;
        self.remove_under(tables::SCALES, &prefix)?;
        Ok(existed)
    }

    pub fn put_service(&mut self, record: &ServiceRecord) -> Result<(), StoreError> {
        self.put(tables::SERVICES, &record.key(), record)
    }

    pub fn delete_service(&mut self, key: &str) -> Result<bool, StoreError> {
        self.remove(tables::SERVICES, key)
    }

    pub fn put_owned(&mut self, object: &OwnedObject) -> Result<(), StoreError> {
        self.put(tables::OWNED, &object.key(), object)
    }

    pub fn delete_owned(&mut self, key: &str) -> Result<bool, StoreError> {
        self.remove(tables::OWNED, key)
    }

    pub fn trigger(&self, key: &str) -> Result<Option<FiredEvent>, StoreError> {
        get(&self.open(tables::TRIGGERS)?, tables::TRIGGERS, key)
    }

    pub fn put_trigger(&mut self, event: &FiredEvent) -> Result<(), StoreError> {
        self.put(tables::TRIGGERS, &event.key(), event)
    }

    /// Deletes the fired events and the scaling decision of one service
    /// (it left the descriptor).
    pub fn delete_triggers_of(
        &mut self,
        project: &str,
        graph: &str,
        service: &str,
    ) -> Result<(), StoreError> {
        let key = service_key(project, graph, service);
        self.remove_under(tables::TRIGGERS, &format!("{key}/"))?;
        self.remove(tables::SCALES, &key)?;
        Ok(())
    }

    /// Records a side effect about to start (write-ahead).
    pub fn put_intent(&mut self, intent: &Intent) -> Result<(), StoreError> {
        self.put(tables::INTENTS, &intent.key(), intent)
    }

    /// The effect's result is recorded (or it never happened).
    pub fn delete_intent(&mut self, key: &str) -> Result<bool, StoreError> {
        self.remove(tables::INTENTS, key)
    }

    /// Every pending intent.
    pub fn intents(&self) -> Result<Vec<Intent>, StoreError> {
        all(&self.open(tables::INTENTS)?, tables::INTENTS)
    }

    /// The move asked of a graph, if any (`"{project}/{graph}"`).
    pub fn move_of(&self, key: &str) -> Result<Option<MoveRecord>, StoreError> {
        get(&self.open(tables::MOVES)?, tables::MOVES, key)
    }

    /// Asks a graph to move (replacing an older request for it).
    pub fn put_move(&mut self, record: &MoveRecord) -> Result<(), StoreError> {
        self.put(tables::MOVES, &record.key(), record)
    }

    /// The move was made, dropped, or its graph left.
    pub fn delete_move(&mut self, key: &str) -> Result<bool, StoreError> {
        self.remove(tables::MOVES, key)
    }

    /// Records the scaler's decision for one service.
    /// A new replica count is journaled as [`Kind::Scaled`], caused by
    /// `cause` (the revision in force).
    pub fn put_scale(
        &mut self,
        record: &ScaleRecord,
        cause: Option<Cause>,
    ) -> Result<(), StoreError> {
        let old = get(&self.open(tables::SCALES)?, tables::SCALES, &record.key())?;
        if old.as_ref().is_none_or(|o| o.replicas != record.replicas) {
            let from = old.map_or_else(|| "-".to_owned(), |o| o.replicas.to_string());
            let rate = record
                .rate
                .map_or_else(|| "no data".to_owned(), |r| format!("{r:.2} req/s"));
            let message = format!("replicas {from} -> {} ({rate})", record.replicas);
            let key = (record.project.as_str(), record.graph.as_str());
            let event =
                NewEvent::graph(record.at, key, Some(&record.service), Kind::Scaled, message);
            self.append_event(event.caused_by(cause))?;
        }
        self.put(tables::SCALES, &record.key(), record)
    }

    /// Takes a decision another instance's scaler made (leader
    /// election): recorded as it is, without journaling a scaling that
    /// this instance did not make.
    pub fn adopt_scale(&mut self, record: &ScaleRecord) -> Result<(), StoreError> {
        self.put(tables::SCALES, &record.key(), record)
    }

    /// Forgets the scaler's decision for one service (its `scaling`
    /// block was removed): helm's replicas apply again.
    pub fn delete_scale(&mut self, key: &str) -> Result<bool, StoreError> {
        self.remove(tables::SCALES, key)
    }

    /// A cluster NFVCL reports ready after a creation or a scaling is
    /// journaled ([`Kind::ClusterProvisioned`], [`Kind::ClusterScaled`]).
    pub fn put_provision(&mut self, record: &ProvisionRecord) -> Result<(), StoreError> {
        let old = get(
            &self.open(tables::PROVISIONS)?,
            tables::PROVISIONS,
            &record.key(),
        )?;
        let was = old.map(|o| o.status);
        if record.status == ProvisionStatus::Ready && was != Some(ProvisionStatus::Ready) {
            let (kind, what) = if was == Some(ProvisionStatus::Scaling) {
                (Kind::ClusterScaled, "scaled")
            } else {
                (Kind::ClusterProvisioned, "provisioned")
            };
            let message = format!("{what}: {} workers", record.workers);
            self.append_event(NewEvent::cluster(
                record.updated_at,
                &record.cluster,
                kind,
                message,
            ))?;
        }
        self.put(tables::PROVISIONS, &record.key(), record)
    }

    /// Forgets a provisioned cluster; whether it was recorded (then
    /// journaled as [`Kind::ClusterDeleted`] at `at`).
    pub fn delete_provision(&mut self, cluster: &str, at: u64) -> Result<bool, StoreError> {
        let removed = self.remove(tables::PROVISIONS, cluster)?;
        if removed {
            let event =
                NewEvent::cluster(at, cluster, Kind::ClusterDeleted, "no longer provisioned");
            self.append_event(event)?;
        }
        Ok(removed)
    }

    /// Replaces the whole cluster inventory. A known cluster whose
    /// readiness changed is journaled ([`Kind::ClusterNotReady`],
    /// [`Kind::ClusterReady`]).
    pub fn put_clusters(&mut self, clusters: &[ClusterRecord]) -> Result<(), StoreError> {
        let before: Vec<ClusterRecord> = all(&self.open(tables::CLUSTERS)?, tables::CLUSTERS)?;
        for c in clusters {
            if let Some(old) = before.iter().find(|o| o.name == c.name)
                && old.ready != c.ready
            {
                let (kind, message) = if c.ready {
                    (Kind::ClusterReady, "Ready again")
                } else {
                    (Kind::ClusterNotReady, "NotReady in Karmada")
                };
                self.append_event(NewEvent::cluster(c.since, &c.name, kind, message))?;
            }
        }
        self.open(tables::CLUSTERS)?
            .retain(|_, _| false)
            .map_err(write_err(tables::CLUSTERS.name()))?;
        for cluster in clusters {
            self.put(tables::CLUSTERS, &cluster.name, cluster)?;
        }
        Ok(())
    }

    pub fn set_source_revision(&mut self, revision: &str) -> Result<(), StoreError> {
        let bytes = encode(tables::META, tables::SOURCE_REVISION, &revision)?;
        self.open(tables::META)?
            .insert(tables::SOURCE_REVISION, bytes.as_slice())
            .map_err(write_err(tables::META.name()))?;
        Ok(())
    }

    /// Appends an event, trimming the journal to its bound; returns the
    /// event's sequence number.
    /// While event sinks are configured, the event also enters the outbox
    /// in this same transaction (see [`super::outbox`]).
    pub fn append_event(&mut self, event: NewEvent) -> Result<u64, StoreError> {
        let (table, keep) = (tables::EVENTS, self.options.max_events);
        let mut entry = None;
        let seq = self.append(table, keep, |seq| {
            let e = event.with_seq(seq);
            entry = Some(e.clone());
            e
        })?;
        if let Some(entry) = entry {
            self.enqueue_outbox(&entry)?;
        }
        self.appended = Some(seq);
        Ok(seq)
    }

    /// Appends a reconcile run, trimming the history to its bound; returns
    /// the run's sequence number.
    pub fn append_run(&mut self, run: NewRun) -> Result<u64, StoreError> {
        let (table, keep) = (tables::RUNS, self.options.max_runs);
        self.append(table, keep, |seq| run.with_seq(seq))
    }

    fn put<T: Record>(&mut self, table: Table<T>, key: &str, value: &T) -> Result<(), StoreError> {
        let stored = Stored::encode(value).map_err(|source| StoreError::Encode {
            table: table.name().to_owned(),
            key: key.to_owned(),
            source,
        })?;
        self.open(table)?
            .insert(key, stored)
            .map_err(write_err(table.name()))?;
        self.touch(table.name(), key, false);
        Ok(())
    }

    /// Notes a write of the graphs or services table (see `published`).
    fn touch(&mut self, table: &str, key: &str, prefix: bool) {
        if table == tables::GRAPHS.name() {
            if prefix {
                self.touched.merge(super::published::Touched::everything());
            } else {
                self.touched.graph(key);
            }
        } else if table == tables::SERVICES.name() {
            if prefix {
                self.touched.services_under(key);
            } else {
                self.touched.service(key);
            }
        }
    }

    fn remove<T: Record>(&mut self, table: Table<T>, key: &str) -> Result<bool, StoreError> {
        let removed = self
            .open(table)?
            .remove(key)
            .map_err(write_err(table.name()))?
            .is_some();
        self.touch(table.name(), key, false);
        Ok(removed)
    }

    /// Removes every record whose key starts with `prefix` (ending in `/`).
    fn remove_under<T: Record>(&mut self, table: Table<T>, prefix: &str) -> Result<(), StoreError> {
        self.open(table)?
            .retain_in::<&str, _>(prefix..prefix_end(prefix).as_str(), |_, _| false)
            .map_err(write_err(table.name()))?;
        self.touch(table.name(), prefix, true);
        Ok(())
    }

    /// Appends under the next sequence number and drops the oldest entries
    /// past `keep`. Sequence numbers only grow (the newest entry is never
    /// trimmed), so they order the journal and survive trimming.
    fn append<T: Record>(
        &mut self,
        table: Journal<T>,
        keep: usize,
        record: impl FnOnce(u64) -> T,
    ) -> Result<u64, StoreError> {
        let keep = u64::try_from(keep.max(1)).unwrap_or(u64::MAX);
        let mut journal = self.open(table)?;
        let last = journal
            .last()
            .map_err(read_err(table.name()))?
            .map(|(seq, _)| seq.value());
        let seq = last.map_or(1, |last| last + 1);
        let stored = Stored::encode(&record(seq)).map_err(|source| StoreError::Encode {
            table: table.name().to_owned(),
            key: seq.to_string(),
            source,
        })?;
        journal
            .insert(seq, stored)
            .map_err(write_err(table.name()))?;
        loop {
            let oldest = journal
                .first()
                .map_err(read_err(table.name()))?
                .map(|(seq, _)| seq.value());
            match oldest {
                Some(oldest) if seq - oldest >= keep => {
                    journal.pop_first().map_err(write_err(table.name()))?;
                }
                _ => break,
            }
        }
        Ok(seq)
    }
}

/// The release of every service record, decoded without the rest.
fn heads(
    table: &impl ReadableTable<&'static str, Json<ServiceRecord>>,
) -> Result<Vec<ReleaseHead>, StoreError> {
    let name = tables::SERVICES.name();
    let mut out = Vec::new();
    for entry in table.iter().map_err(read_err(name))? {
        let (key, stored) = entry.map_err(read_err(name))?;
        let head = serde_json::from_slice(stored.value().bytes()).map_err(|source| {
            StoreError::Corrupt {
                table: name.to_owned(),
                key: key.value().to_owned(),
                source,
            }
        })?;
        out.push(head);
    }
    Ok(out)
}
