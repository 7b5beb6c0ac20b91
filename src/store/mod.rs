//! The state store: the facts smo keeps between reconciles, in one embedded
//! redb file (`{state_dir}/`[`DB_FILE`]).
//!
//! What is kept: graphs (conditions, placement, retry state), services
//! (release revision, input hash, phase, replicas, trigger state), the
//! objects smo owns outside charts, the last cluster inventory, the source
//! revision, and two bounded journals (events, reconcile runs).
//!
//! Invariants:
//! - Every write is one redb transaction, committed with immediate
//!   durability before the call returns: a fired trigger written before a
//!   webhook is acknowledged survives a crash. Every write goes through
//!   [`Store::write`] and its [`Tx`], which groups the writes of a whole
//!   graph into one transaction.
//! - Each table names its record type ([`codec::Json`]): a table cannot be
//!   read as another record, and a corrupt record is an error naming its
//!   table and key.
//! - A graph's services and owned objects live under its key prefix and go
//!   with it: [`Tx::delete_graph`] removes them in one transaction.
//! - The journals keep only the newest [`StoreOptions::max_events`] /
//!   [`StoreOptions::max_runs`] entries; the trimming happens in the same
//!   transaction as the append, so they never grow past the bound.
//! - The schema version is checked on open: an older store is migrated in
//!   one transaction ([`migrate`]); a newer one is refused without being
//!   written to (see [`StoreError::NewerSchema`]).
//!
//! The API is synchronous: redb transactions block on disk I/O, so async
//! callers run them in `spawn_blocking`.
//!
//! One process at a time: redb locks the file, so `smo status` cannot open
//! the store while the daemon runs. The daemon therefore publishes a
//! [`snapshot::StatusSnapshot`] after every reconcile; see [`snapshot`].
//!
//! For a standby instance (DESIGN "Scale and high availability"), the facts
//! that exist nowhere else — a graph's placement ([`GraphRecord::placement`])
//! and its services' fired triggers ([`ServiceRecord::trigger`]) — are plain
//! fields of the records the reconciler already writes through
//! [`Store::write`], the one commit point; a mirror to smo-owned objects on
//! Karmada can be added there without changing the reconcile logic.

mod access;
pub mod codec;
mod journal;
mod kind;
pub mod migrate;
pub mod outbox;
mod published;
pub mod records;
pub mod snapshot;
pub mod tables;
mod tx;

use std::path::{Path, PathBuf};

use redb::{Builder, Database, DatabaseError, ReadTransaction, ReadableDatabase};

pub use kind::{Kind, TYPE_PREFIX};
pub use migrate::CURRENT_SCHEMA;
pub use outbox::OutboxStats;
pub use published::Published;
pub use records::{
    ClusterRecord, Condition, ConditionKind, Event, FiredEvent, GraphRecord, Intent, IntentEffect,
    MoveRecord, NewEvent, NewRun, OwnedObject, ProvisionRecord, ProvisionStatus, RunRecord,
    ScaleRecord, ServicePhase, ServiceRecord, TriggerState, graph_key, service_key, trigger_key,
};
pub use snapshot::StatusSnapshot;

use access::{all, get, meta, newest, open_read, read_err, under, write_err};
use codec::Record;
use records::children_prefix;
use tx::Table;
pub use tx::{Everything, Tx};

/// The store's file name inside the configured `state_dir`.
pub const DB_FILE: &str = "smo.redb";

/// redb caches up to 1 GiB by default. The store holds a few thousand small
/// JSON records (a few MiB), so a small cap keeps the daemon's memory
/// predictable on a small management host without costing reads.
const CACHE_BYTES: usize = 32 * 1024 * 1024;

/// The bounds of the journals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// Events kept (newest first); at least 1. Default 10 000: about a
    /// week of activity for a few dozen graphs, a few MiB on disk.
    pub max_events: usize,
    /// Reconcile runs kept; at least 1. Default 100: enough to see a trend
    /// in `smo status`, small enough to load whole.
    pub max_runs: usize,
    /// Events kept in the outbox for the sinks; 0 (the default, and
    /// whenever no sink is configured): no outbox is written.
    pub outbox: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_events: 10_000,
            max_runs: 100,
            outbox: 0,
        }
    }
}

/// Errors of the state store, named after the operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "cannot open the state store at {}{}",
        path.display(),
        if matches!(source, DatabaseError::DatabaseAlreadyOpen) {
            " (another smo process has it open; `smo status` reads status.json then)"
        } else {
            ""
        }
    )]
    Open {
        path: PathBuf,
        #[source]
        source: DatabaseError,
    },
    #[error("cannot read {what} from the state store")]
    Read {
        what: String,
        #[source]
        source: redb::Error,
    },
    #[error("cannot write {what} to the state store")]
    Write {
        what: String,
        #[source]
        source: redb::Error,
    },
    #[error(
        "record {key:?} in table {table} of the state store cannot be decoded; \
         it was written by another smo version or damaged: restore a backup, \
         or move the store aside to start a new one"
    )]
    Corrupt {
        table: String,
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot encode record {key:?} for table {table}")]
    Encode {
        table: String,
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "the state store at {} has schema version {found}, newer than the \
         {supported} this smo knows; upgrade smo (the store was not modified)",
        path.display()
    )]
    NewerSchema {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error(
        "{} is a redb database but not an smo state store this version can \
         migrate (schema version {found:?}); move it aside to start a new store",
        path.display()
    )]
    UnknownSchema { path: PathBuf, found: Option<u32> },
    #[error(
        "cannot migrate the state store at {} from schema version {from} to {to} \
         (nothing was changed)",
        path.display()
    )]
    Migrate {
        path: PathBuf,
        from: u32,
        to: u32,
        #[source]
        source: Box<StoreError>,
    },
    #[error("cannot publish the status snapshot {}", path.display())]
    PublishSnapshot {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the status snapshot {}", path.display())]
    ReadSnapshot {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the status snapshot {} cannot be decoded", path.display())]
    DecodeSnapshot {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl StoreError {
    /// Whether the store could not be opened because another process (the
    /// daemon) holds it: `smo status` then reads the published snapshot.
    pub fn is_locked(&self) -> bool {
        matches!(
            self,
            StoreError::Open {
                source: DatabaseError::DatabaseAlreadyOpen,
                ..
            }
        )
    }
}

/// The embedded state store. Cheap to share behind an `Arc`; every method
/// takes `&self`.
pub struct Store {
    db: Database,
    path: PathBuf,
    options: StoreOptions,
    /// The last event sequence number committed (see [`Store::appended`]).
    appended: tokio::sync::watch::Sender<u64>,
    /// Commits so far (see [`Store::generation`]).
    commits: std::sync::atomic::AtomicU64,
    /// Graphs and services written since the last [`Store::publish_status`].
    touched: std::sync::Mutex<published::Touched>,
    /// The records as the last [`Store::publish_status`] printed them.
    printed: std::sync::Mutex<published::Printed>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// The store's path inside a state directory.
    pub fn path_in(state_dir: &Path) -> PathBuf {
        state_dir.join(DB_FILE)
    }

    /// Opens (or creates) the store at `path` with the default journal
    /// bounds, migrating an older schema.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        Self::open_with(path, StoreOptions::default())
    }

    /// [`Store::open`], waiting up to `wait` while another process still
    /// holds the file's lock. A daemon restarted right after being killed
    /// can find it held for a moment (a child between fork and exec shares
    /// it: the crash suite measured up to ~150 ms); a second daemon still
    /// running is refused once `wait` is over.
    pub fn open_waiting(
        path: impl AsRef<Path>,
        wait: std::time::Duration,
    ) -> Result<Store, StoreError> {
        Self::open_waiting_with(path, StoreOptions::default(), wait)
    }

    /// [`Store::open_waiting`] with explicit options.
    pub fn open_waiting_with(
        path: impl AsRef<Path>,
        options: StoreOptions,
        wait: std::time::Duration,
    ) -> Result<Store, StoreError> {
        let started = std::time::Instant::now();
        let mut said = false;
        loop {
            match Self::open_with(path.as_ref(), options) {
                Err(e) if e.is_locked() && started.elapsed() < wait => {
                    if !said {
                        tracing::warn!(path = %path.as_ref().display(), "the state store is held by another process; waiting for it");
                        said = true;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                other => return other,
            }
        }
    }

    /// [`Store::open`] with explicit journal bounds.
    pub fn open_with(path: impl AsRef<Path>, options: StoreOptions) -> Result<Store, StoreError> {
        let path = path.as_ref().to_path_buf();
        migrate::refuse_newer(&path)?;
        let db = Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create(&path)
            .map_err(|source| StoreError::Open {
                path: path.clone(),
                source,
            })?;
        migrate::prepare(&db, &path)?;
        Ok(Store {
            db,
            path,
            options,
            appended: tokio::sync::watch::Sender::new(0),
            commits: std::sync::atomic::AtomicU64::new(0),
            touched: std::sync::Mutex::new(published::Touched::everything()),
            printed: std::sync::Mutex::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A number that changes with every commit of this process: equal
    /// readings mean nothing was written in between.
    pub fn generation(&self) -> u64 {
        self.commits.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The schema version recorded in the store.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        migrate::stored_version(&self.db)?.ok_or_else(|| StoreError::UnknownSchema {
            path: self.path.clone(),
            found: None,
        })
    }

    /// Runs `f` in one write transaction and commits it if `f` returns
    /// `Ok`; on `Err` nothing `f` wrote is kept.
    pub fn write<T>(
        &self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let txn = self.db.begin_write().map_err(write_err("a transaction"))?;
        let mut tx = Tx {
            txn: &txn,
            options: self.options,
            appended: None,
            touched: published::Touched::default(),
        };
        let value = f(&mut tx)?;
        let (appended, touched) = (tx.appended, tx.touched);
        txn.commit().map_err(write_err("a commit"))?;
        // Noted after the commit and before the generation moves (see
        // `published`).
        if !touched.is_empty() {
            use crate::locks::MutexExt;
            self.touched.lock_or_recover().merge(touched);
        }
        self.commits
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if let Some(seq) = appended {
            self.appended.send_replace(seq);
        }
        Ok(value)
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&ReadTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let txn = self.db.begin_read().map_err(read_err("a transaction"))?;
        f(&txn)
    }

    /// The records of one graph's services, objects, events or decisions:
    /// the keys under `"{project}/{graph}/"`.
    fn of_graph<T: Record>(
        &self,
        table: Table<T>,
        project: &str,
        graph: &str,
    ) -> Result<Vec<T>, StoreError> {
        self.read(|txn| {
            under(
                &open_read(txn, table)?,
                table,
                &children_prefix(project, graph),
            )
        })
    }

    pub fn graph(&self, key: &str) -> Result<Option<GraphRecord>, StoreError> {
        self.read(|txn| get(&open_read(txn, tables::GRAPHS)?, tables::GRAPHS, key))
    }

    pub fn graphs(&self) -> Result<Vec<GraphRecord>, StoreError> {
        self.read(|txn| all(&open_read(txn, tables::GRAPHS)?, tables::GRAPHS))
    }

    pub fn services(&self) -> Result<Vec<ServiceRecord>, StoreError> {
        self.read(|txn| all(&open_read(txn, tables::SERVICES)?, tables::SERVICES))
    }

    pub fn services_of(
        &self,
        project: &str,
        graph: &str,
    ) -> Result<Vec<ServiceRecord>, StoreError> {
        self.of_graph(tables::SERVICES, project, graph)
    }

    pub fn owned_objects_of(
        &self,
        project: &str,
        graph: &str,
    ) -> Result<Vec<OwnedObject>, StoreError> {
        self.of_graph(tables::OWNED, project, graph)
    }

    /// The fired trigger events of a graph's services.
    pub fn triggers_of(&self, project: &str, graph: &str) -> Result<Vec<FiredEvent>, StoreError> {
        self.of_graph(tables::TRIGGERS, project, graph)
    }

    pub fn trigger(&self, key: &str) -> Result<Option<FiredEvent>, StoreError> {
        self.read(|txn| get(&open_read(txn, tables::TRIGGERS)?, tables::TRIGGERS, key))
    }

    /// Every fired trigger event.
    pub fn triggers(&self) -> Result<Vec<FiredEvent>, StoreError> {
        self.read(|txn| all(&open_read(txn, tables::TRIGGERS)?, tables::TRIGGERS))
    }

    /// The scaler's decisions for a graph's services.
    pub fn scales_of(&self, project: &str, graph: &str) -> Result<Vec<ScaleRecord>, StoreError> {
        self.of_graph(tables::SCALES, project, graph)
    }

    /// Every scaling decision.
    pub fn scales(&self) -> Result<Vec<ScaleRecord>, StoreError> {
        self.read(|txn| all(&open_read(txn, tables::SCALES)?, tables::SCALES))
    }

    /// The move asked of a graph, if any (`"{project}/{graph}"`).
    pub fn move_of(&self, key: &str) -> Result<Option<MoveRecord>, StoreError> {
        self.read(|txn| get(&open_read(txn, tables::MOVES)?, tables::MOVES, key))
    }

    /// Every move asked and not yet made.
    pub fn moves(&self) -> Result<Vec<MoveRecord>, StoreError> {
        self.read(|txn| all(&open_read(txn, tables::MOVES)?, tables::MOVES))
    }

    /// Side effects started and not yet recorded (write-ahead intents).
    pub fn intents(&self) -> Result<Vec<Intent>, StoreError> {
        self.read(|txn| all(&open_read(txn, tables::INTENTS)?, tables::INTENTS))
    }

    /// Every cluster provisioned through NFVCL.
    pub fn provisions(&self) -> Result<Vec<ProvisionRecord>, StoreError> {
        self.read(|txn| all(&open_read(txn, tables::PROVISIONS)?, tables::PROVISIONS))
    }

    pub fn clusters(&self) -> Result<Vec<ClusterRecord>, StoreError> {
        self.read(|txn| all(&open_read(txn, tables::CLUSTERS)?, tables::CLUSTERS))
    }

    pub fn source_revision(&self) -> Result<Option<String>, StoreError> {
        self.read(|txn| meta(&open_read(txn, tables::META)?, tables::SOURCE_REVISION))
    }

    /// The newest `limit` events, newest first.
    pub fn events(&self, limit: usize) -> Result<Vec<Event>, StoreError> {
        self.read(|txn| newest(&open_read(txn, tables::EVENTS)?, tables::EVENTS, limit))
    }

    /// The newest `limit` runs, newest first.
    pub fn runs(&self, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        self.read(|txn| newest(&open_read(txn, tables::RUNS)?, tables::RUNS, limit))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::collections::BTreeMap;

    use super::*;

    pub(super) fn graph(project: &str, name: &str) -> GraphRecord {
        GraphRecord {
            project: project.into(),
            graph: name.into(),
            file: format!("{project}/{name}.yaml"),
            desired_hash: "h1".into(),
            suspended: false,
            last_applied_revision: Some("r1".into()),
            last_attempted_revision: Some("r2".into()),
            placement: BTreeMap::from([("web".into(), vec!["edge-1".into()])]),
            placement_inputs_hash: Some("p1".into()),
            placement_revision: Some("r1".into()),
            conditions: vec![Condition {
                kind: ConditionKind::Ready,
                status: true,
                reason: "Applied".into(),
                message: "all services deployed".into(),
                since: 5,
            }],
            last_error: None,
            updated_at: 10,
            failures: 0,
            next_retry_at: None,
            dashboards: BTreeMap::new(),
            origin: None,
            last_change: None,
        }
    }

    pub(super) fn service(project: &str, graph: &str, name: &str) -> ServiceRecord {
        ServiceRecord {
            project: project.into(),
            graph: graph.into(),
            service: name.into(),
            namespace: project.into(),
            release: name.into(),
            release_revision: Some(3),
            input_hash: Some("i1".into()),
            phase: ServicePhase::Deployed,
            clusters: vec!["edge-1".into()],
            replicas: BTreeMap::from([("edge-1".into(), 2)]),
            trigger: TriggerState {
                armed: true,
                fired_at: Some(9),
                alert: Some("HighLoad".into()),
                pending: Vec::new(),
            },
            manifest: Some("kind: Deployment\n".into()),
            drifted: Vec::new(),
            blocked_by: None,
            last_error: None,
            updated_at: 11,
        }
    }

    fn owned(project: &str, graph: &str, name: &str) -> OwnedObject {
        OwnedObject {
            project: project.into(),
            graph: graph.into(),
            api_version: "policy.karmada.io/v1alpha1".into(),
            kind: "PropagationPolicy".into(),
            namespace: Some(project.into()),
            name: name.into(),
        }
    }

    pub(super) fn cluster(name: &str) -> ClusterRecord {
        ClusterRecord {
            name: name.into(),
            ready: true,
            since: 1,
            cpu_free: 2.5,
            memory_free: 4.0e9,
            gpu_free: 0.0,
        }
    }

    pub(super) fn event(message: &str) -> NewEvent {
        NewEvent::graph(1, ("p", "g"), None, Kind::Applied, message)
    }

    pub(super) fn run(errors: u32) -> NewRun {
        NewRun {
            started_at: 1,
            finished_at: 2,
            revision: Some("r1".into()),
            graphs_reconciled: 1,
            errors,
        }
    }

    pub(super) fn open(dir: &tempfile::TempDir) -> Store {
        Store::open(Store::path_in(dir.path())).unwrap()
    }

    #[test]
    fn a_new_store_has_the_current_schema() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        assert_eq!(store.schema_version().unwrap(), CURRENT_SCHEMA);
        assert!(store.graphs().unwrap().is_empty());
        assert_eq!(store.source_revision().unwrap(), None);
    }

    #[test]
    fn records_round_trip_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        let g = graph("p", "g");
        let s = service("p", "g", "web");
        let o = owned("p", "g", "web");
        store.write(|tx| tx.put_graph(&g)).unwrap();
        store.write(|tx| tx.put_service(&s)).unwrap();
        store.write(|tx| tx.put_owned(&o)).unwrap();
        store.write(|tx| tx.set_source_revision("abc123")).unwrap();
        drop(store);

        let store = open(&dir);
        assert_eq!(store.graph("p/g").unwrap(), Some(g.clone()));
        assert_eq!(store.graphs().unwrap(), [g]);
        assert_eq!(store.services_of("p", "g").unwrap(), [s]);
        assert_eq!(store.owned_objects_of("p", "g").unwrap(), [o]);
        assert_eq!(store.source_revision().unwrap().as_deref(), Some("abc123"));
        assert_eq!(store.graph("p/other").unwrap(), None);
    }

    #[test]
    fn put_overwrites_the_record_under_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        store
            .write(|tx| tx.put_service(&service("p", "g", "web")))
            .unwrap();
        let mut failed = service("p", "g", "web");
        failed.phase = ServicePhase::Failed;
        failed.last_error = Some("chart not found".into());
        store.write(|tx| tx.put_service(&failed)).unwrap();
        assert_eq!(store.services_of("p", "g").unwrap(), [failed]);
    }

    #[test]
    fn services_of_a_graph_exclude_graphs_with_similar_names() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        for (graph, name) in [
            ("g", "a"),
            ("g", "b"),
            ("g-2", "a"),
            ("gx", "a"),
            ("g0", "a"),
        ] {
            store
                .write(|tx| tx.put_service(&service("p", graph, name)))
                .unwrap();
        }
        store
            .write(|tx| tx.put_service(&service("q", "g", "a")))
            .unwrap();
        let names: Vec<_> = store
            .services_of("p", "g")
            .unwrap()
            .into_iter()
            .map(|s| s.service)
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(store.services().unwrap().len(), 6);
    }

    #[test]
    fn delete_graph_takes_its_services_and_owned_objects_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        for name in ["g", "gx"] {
            store.write(|tx| tx.put_graph(&graph("p", name))).unwrap();
            store
                .write(|tx| tx.put_service(&service("p", name, "web")))
                .unwrap();
            store
                .write(|tx| tx.put_service(&service("p", name, "db")))
                .unwrap();
            store
                .write(|tx| tx.put_owned(&owned("p", name, "web")))
                .unwrap();
        }
        assert!(store.write(|tx| tx.delete_graph("p/g")).unwrap());
        assert_eq!(store.graph("p/g").unwrap(), None);
        assert!(store.services_of("p", "g").unwrap().is_empty());
        assert!(store.owned_objects_of("p", "g").unwrap().is_empty());
        assert_eq!(store.services_of("p", "gx").unwrap().len(), 2);
        assert_eq!(store.owned_objects_of("p", "gx").unwrap().len(), 1);
        assert!(store.graph("p/gx").unwrap().is_some());
        assert!(!store.write(|tx| tx.delete_graph("p/g")).unwrap());
    }

    #[test]
    fn single_deletes_report_whether_the_record_existed() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        let s = service("p", "g", "web");
        let o = owned("p", "g", "web");
        store.write(|tx| tx.put_service(&s)).unwrap();
        store.write(|tx| tx.put_owned(&o)).unwrap();
        assert!(store.write(|tx| tx.delete_service(&s.key())).unwrap());
        assert!(!store.write(|tx| tx.delete_service(&s.key())).unwrap());
        assert!(store.write(|tx| tx.delete_owned(&o.key())).unwrap());
        assert!(store.owned_objects_of("p", "g").unwrap().is_empty());
    }

    #[test]
    fn a_failed_batch_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        store.write(|tx| tx.put_graph(&graph("p", "g"))).unwrap();
        let err = store
            .write(|tx| {
                let mut changed = graph("p", "g");
                changed.desired_hash = "h2".into();
                tx.put_graph(&changed)?;
                tx.put_service(&service("p", "g", "web"))?;
                tx.append_event(event("applied"))?;
                // Reads inside the batch see its own writes.
                assert_eq!(tx.graph("p/g")?.unwrap().desired_hash, "h2");
                assert_eq!(tx.services_of("p", "g")?.len(), 1);
                Err::<(), _>(StoreError::UnknownSchema {
                    path: PathBuf::from("x"),
                    found: None,
                })
            })
            .unwrap_err();
        assert!(matches!(err, StoreError::UnknownSchema { .. }));
        assert_eq!(store.graph("p/g").unwrap().unwrap().desired_hash, "h1");
        assert!(store.services_of("p", "g").unwrap().is_empty());
        assert!(store.events(10).unwrap().is_empty());
    }

    #[test]
    fn a_successful_batch_commits_every_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        let seq = store
            .write(|tx| {
                tx.put_graph(&graph("p", "g"))?;
                tx.put_service(&service("p", "g", "web"))?;
                tx.put_owned(&owned("p", "g", "web"))?;
                tx.set_source_revision("r9")?;
                tx.append_run(run(0))?;
                tx.append_event(event("applied"))
            })
            .unwrap();
        assert_eq!(seq, 1);
        assert!(store.graph("p/g").unwrap().is_some());
        assert_eq!(store.services_of("p", "g").unwrap().len(), 1);
        assert_eq!(store.owned_objects_of("p", "g").unwrap().len(), 1);
        assert_eq!(store.source_revision().unwrap().as_deref(), Some("r9"));
        assert_eq!(store.runs(10).unwrap().len(), 1);
        assert_eq!(store.events(10).unwrap()[0].message, "applied");
    }

    #[test]
    fn the_event_journal_keeps_only_the_newest_n() {
        let dir = tempfile::tempdir().unwrap();
        let path = Store::path_in(dir.path());
        let options = StoreOptions {
            max_events: 3,
            max_runs: 100,
            outbox: 0,
        };
        let store = Store::open_with(&path, options).unwrap();
        for i in 1..=5 {
            assert_eq!(
                store
                    .write(|tx| tx.append_event(event(&format!("e{i}"))))
                    .unwrap(),
                i
            );
        }
        let seqs: Vec<_> = store.events(10).unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [5, 4, 3]);
        assert_eq!(store.events(2).unwrap()[1].message, "e4");
        drop(store);

        // Sequence numbers keep growing across restarts.
        let store = Store::open_with(&path, options).unwrap();
        assert_eq!(store.write(|tx| tx.append_event(event("e6"))).unwrap(), 6);
        let seqs: Vec<_> = store.events(10).unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [6, 5, 4]);
    }

    #[test]
    fn lowering_the_bound_trims_the_journal_on_the_next_append() {
        let dir = tempfile::tempdir().unwrap();
        let path = Store::path_in(dir.path());
        let store = Store::open(&path).unwrap();
        for i in 0..10 {
            store
                .write(|tx| tx.append_event(event(&format!("e{i}"))))
                .unwrap();
        }
        drop(store);
        let options = StoreOptions {
            max_events: 2,
            max_runs: 100,
            outbox: 0,
        };
        let store = Store::open_with(&path, options).unwrap();
        store.write(|tx| tx.append_event(event("last"))).unwrap();
        let seqs: Vec<_> = store.events(100).unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [11, 10]);
    }

    #[test]
    fn the_run_history_keeps_only_the_newest_n() {
        let dir = tempfile::tempdir().unwrap();
        let options = StoreOptions {
            max_events: 10,
            max_runs: 2,
            outbox: 0,
        };
        let store = Store::open_with(Store::path_in(dir.path()), options).unwrap();
        for errors in 0..4 {
            store.write(|tx| tx.append_run(run(errors))).unwrap();
        }
        let runs = store.runs(10).unwrap();
        assert_eq!(runs.iter().map(|r| r.seq).collect::<Vec<_>>(), [4, 3]);
        assert_eq!(runs[0].errors, 3);
    }

    #[test]
    fn put_clusters_replaces_the_whole_inventory() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        store
            .write(|tx| tx.put_clusters(&[cluster("edge-1"), cluster("edge-2")]))
            .unwrap();
        let mut gone = cluster("edge-2");
        gone.ready = false;
        store
            .write(|tx| tx.put_clusters(&[gone.clone(), cluster("edge-3")]))
            .unwrap();
        assert_eq!(store.clusters().unwrap(), [gone, cluster("edge-3")]);
    }

    #[test]
    fn an_undecodable_record_is_reported_with_its_table_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        let txn = store.db.begin_write().unwrap();
        txn.open_table(tables::GRAPHS)
            .unwrap()
            .insert("p/g", codec::Stored::raw(b"{not json".to_vec()))
            .unwrap();
        txn.commit().unwrap();
        match store.graph("p/g").unwrap_err() {
            StoreError::Corrupt { table, key, .. } => {
                assert_eq!((table.as_str(), key.as_str()), ("graphs", "p/g"));
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
        assert!(matches!(
            store.graphs().unwrap_err(),
            StoreError::Corrupt { .. }
        ));
    }

    #[test]
    fn an_open_waits_for_a_lock_released_meanwhile_and_gives_up_after_its_wait() {
        let dir = tempfile::tempdir().unwrap();
        let path = Store::path_in(dir.path());
        let held = Store::open(&path).unwrap();
        let err = Store::open_waiting(&path, std::time::Duration::from_millis(200)).unwrap_err();
        assert!(err.is_locked(), "{err:?}");
        let release = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            drop(held);
        });
        let store = Store::open_waiting(&path, std::time::Duration::from_secs(10)).unwrap();
        assert_eq!(store.schema_version().unwrap(), CURRENT_SCHEMA);
        release.join().unwrap();
    }

    #[test]
    fn a_second_open_while_the_store_is_held_reports_locked() {
        let dir = tempfile::tempdir().unwrap();
        let _held = open(&dir);
        let err = Store::open(Store::path_in(dir.path())).unwrap_err();
        assert!(err.is_locked(), "{err:?}");
        assert!(err.to_string().contains("status.json"), "{err}");
    }

    #[test]
    fn the_status_snapshot_gathers_every_table() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        store.write(|tx| tx.put_graph(&graph("p", "g"))).unwrap();
        store
            .write(|tx| tx.put_service(&service("p", "g", "web")))
            .unwrap();
        store
            .write(|tx| tx.put_clusters(&[cluster("edge-1")]))
            .unwrap();
        store.write(|tx| tx.set_source_revision("r1")).unwrap();
        for i in 0..(snapshot::EVENTS + 5) {
            store
                .write(|tx| tx.append_event(event(&format!("e{i}"))))
                .unwrap();
        }
        store.write(|tx| tx.append_run(run(1))).unwrap();
        let snap = store
            .status_snapshot(vec!["source unreachable".into()])
            .unwrap();
        assert_eq!(snap.source_revision.as_deref(), Some("r1"));
        assert_eq!(snap.graphs.len(), 1);
        assert_eq!(snap.services.len(), 1);
        assert_eq!(snap.clusters.len(), 1);
        assert_eq!(snap.runs.len(), 1);
        assert_eq!(snap.events.len(), snapshot::EVENTS);
        assert_eq!(snap.events[0].seq, (snapshot::EVENTS + 5) as u64);
        assert_eq!(snap.notes, ["source unreachable"]);
        assert!(snap.generated_at > 0);
    }
}
