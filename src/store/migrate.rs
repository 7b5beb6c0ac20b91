//! The schema version of the state store and the migrations between
//! versions.
//!
//! The version is the JSON `u32` under [`tables::SCHEMA_VERSION`] in the
//! meta table. On open:
//! - an empty file gets the current tables and version;
//! - the current version is left alone (opening is then read-only);
//! - an older version is migrated step by step (`v → v+1`) in ONE write
//!   transaction that also sets the new version, so a crash leaves either
//!   the old store or the new one, never a mixture;
//! - a newer version is refused before anything is written: the file is
//!   first probed through redb's read-only open, which cannot modify it.
//!
//! The definitions of earlier versions are kept here, frozen, as the
//! migrations' input; [`v1`] is the first draft layout, [`v5`] the layout
//! of versions 2 to 5 (the current tables, with untyped JSON values).

use std::collections::BTreeMap;
use std::path::Path;

use redb::{
    Database, DatabaseError, ReadOnlyDatabase, ReadableDatabase, ReadableTable, TableDefinition,
    TableError, TableHandle, WriteTransaction,
};

use super::access::{decode, encode, read_err, write_err};
use super::codec::{Json, Record, Stored};
use super::records::{GraphRecord, ServicePhase, ServiceRecord, TriggerState};
use super::{StoreError, tables};

/// The schema version this smo writes.
pub const CURRENT_SCHEMA: u32 = 8;

/// Schema version 1: one table of graphs with their services embedded, and
/// the source revision under [`v1::REVISION`] in the meta table.
pub mod v1 {
    use std::collections::BTreeMap;

    use redb::TableDefinition;
    use serde::{Deserialize, Serialize};

    /// Same name and types as the current meta table.
    pub const META: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("meta");
    /// `"{project}/{graph}"` → [`GraphV1`] (JSON).
    pub const GRAPHS: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("graphs_v1");
    pub const SCHEMA_VERSION: &str = "schema_version";
    /// The source revision (a JSON string); version 2 names it
    /// `source_revision`.
    pub const REVISION: &str = "revision";

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct GraphV1 {
        pub project: String,
        pub graph: String,
        pub file: String,
        pub desired_hash: String,
        pub suspended: bool,
        pub last_applied_revision: Option<String>,
        pub placement: BTreeMap<String, Vec<String>>,
        pub last_error: Option<String>,
        pub updated_at: u64,
        pub services: Vec<ServiceV1>,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ServiceV1 {
        pub service: String,
        pub namespace: String,
        pub release: String,
        pub release_revision: Option<u64>,
        pub input_hash: Option<String>,
        pub phase: PhaseV1,
        pub clusters: Vec<String>,
        pub last_error: Option<String>,
        pub updated_at: u64,
    }

    /// Version 1 knew no triggers, dependencies or suspension per service.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub enum PhaseV1 {
        Pending,
        Deployed,
        Failed,
        Uninstalled,
    }
}

/// Schema versions 2 to 5: the tables of today under the same names, with
/// untyped JSON bytes as values (version 6 names each table's record type,
/// see [`super::codec`]). Versions 3, 4 and 5 each added a table.
pub mod v5 {
    use redb::TableDefinition;

    pub const GRAPHS: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("graphs");
    pub const SERVICES: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("services");
    pub const OWNED: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("owned_objects");
    pub const TRIGGERS: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("triggers");
    pub const SCALES: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("scales");
    pub const CLUSTERS: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("clusters");
    pub const PROVISIONS: TableDefinition<'static, &str, &[u8]> =
        TableDefinition::new("provisions");
    pub const INTENTS: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("intents");
    pub const EVENTS: TableDefinition<'static, u64, &[u8]> = TableDefinition::new("events");
    pub const RUNS: TableDefinition<'static, u64, &[u8]> = TableDefinition::new("runs");
}

/// One migration step: turns the tables of version `n` into those of
/// `n + 1` inside the caller's transaction.
type Step = fn(&WriteTransaction) -> Result<(), StoreError>;

fn step_from(version: u32) -> Option<Step> {
    match version {
        1 => Some(v1_to_v2),
        // Version 3 only adds the triggers and scales tables, which
        // `create_current_tables` creates after the steps.
        2 => Some(|_| Ok(())),
        // Version 4 only adds the provisions table, likewise.
        3 => Some(|_| Ok(())),
        // Version 5 only adds the intents table (write-ahead intents).
        4 => Some(|_| Ok(())),
        5 => Some(v5_to_v6),
        // Version 7 adds the outbox and the sink cursors (created below)
        // and the store's identity.
        6 => Some(set_store_id),
        // Version 8 only adds the moves table (room made for a graph by
        // moving others), created below.
        7 => Some(|_| Ok(())),
        _ => None,
    }
}

/// Refuses a store of a newer schema without modifying it. A missing or
/// empty file, or one that needs crash recovery (which the read-only open
/// cannot do), passes: [`prepare`] checks again after redb opened it, and
/// before smo writes anything.
pub(crate) fn refuse_newer(path: &Path) -> Result<(), StoreError> {
    if !std::fs::metadata(path).is_ok_and(|meta| meta.len() > 0) {
        return Ok(());
    }
    let db = match ReadOnlyDatabase::open(path) {
        Ok(db) => db,
        Err(DatabaseError::RepairAborted) => return Ok(()),
        Err(source) => {
            return Err(StoreError::Open {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let found = stored_version(&db)?;
    drop(db);
    match found {
        Some(found) if found > CURRENT_SCHEMA => Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found,
            supported: CURRENT_SCHEMA,
        }),
        _ => Ok(()),
    }
}

/// The recorded schema version; `None` when there is no meta table or no
/// version in it.
pub(crate) fn stored_version(db: &impl ReadableDatabase) -> Result<Option<u32>, StoreError> {
    let txn = db.begin_read().map_err(read_err("a transaction"))?;
    let meta = match txn.open_table(tables::META) {
        Ok(meta) => meta,
        Err(TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(source) => return Err(read_err(tables::META.name())(source)),
    };
    match meta
        .get(tables::SCHEMA_VERSION)
        .map_err(read_err(tables::META.name()))?
    {
        Some(bytes) => decode(tables::META, tables::SCHEMA_VERSION, bytes.value()).map(Some),
        None => Ok(None),
    }
}

/// Brings an opened store to the current schema (see the module docs).
pub(crate) fn prepare(db: &Database, path: &Path) -> Result<(), StoreError> {
    match stored_version(db)? {
        Some(CURRENT_SCHEMA) => Ok(()),
        Some(found) if found > CURRENT_SCHEMA => Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found,
            supported: CURRENT_SCHEMA,
        }),
        Some(found) => migrate(db, path, found),
        None if is_empty(db)? => initialise(db),
        None => Err(StoreError::UnknownSchema {
            path: path.to_path_buf(),
            found: None,
        }),
    }
}

fn is_empty(db: &Database) -> Result<bool, StoreError> {
    let txn = db.begin_read().map_err(read_err("a transaction"))?;
    let mut names = txn.list_tables().map_err(read_err("the table list"))?;
    Ok(names.next().is_none())
}

fn initialise(db: &Database) -> Result<(), StoreError> {
    let txn = db.begin_write().map_err(write_err("a transaction"))?;
    create_current_tables(&txn)?;
    set_store_id(&txn)?;
    set_version(&txn, CURRENT_SCHEMA)?;
    txn.commit().map_err(write_err("a commit"))
}

/// Gives the store its random identity (see [`tables::STORE_ID`]).
fn set_store_id(txn: &WriteTransaction) -> Result<(), StoreError> {
    let seed = format!(
        "{}-{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
        std::thread::current().id(),
    );
    let id = crate::digest::sha256_hex(seed.as_bytes())[..16].to_owned();
    let bytes = encode(tables::META, tables::STORE_ID, &id)?;
    txn.open_table(tables::META)
        .map_err(write_err(tables::META.name()))?
        .insert(tables::STORE_ID, bytes.as_slice())
        .map_err(write_err(tables::META.name()))?;
    Ok(())
}

fn migrate(db: &Database, path: &Path, found: u32) -> Result<(), StoreError> {
    let steps = (found..CURRENT_SCHEMA)
        .map(|from| step_from(from).map(|step| (from, step)))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| StoreError::UnknownSchema {
            path: path.to_path_buf(),
            found: Some(found),
        })?;
    let failed = |from: u32| {
        move |source: StoreError| StoreError::Migrate {
            path: path.to_path_buf(),
            from,
            to: from + 1,
            source: Box::new(source),
        }
    };
    let txn = db
        .begin_write()
        .map_err(write_err("a transaction"))
        .map_err(failed(found))?;
    for (from, step) in steps {
        step(&txn).map_err(failed(from))?;
    }
    create_current_tables(&txn).map_err(failed(found))?;
    set_version(&txn, CURRENT_SCHEMA).map_err(failed(found))?;
    txn.commit()
        .map_err(write_err("a commit"))
        .map_err(failed(found))?;
    tracing::info!(
        from = found,
        to = CURRENT_SCHEMA,
        "state store schema migrated"
    );
    Ok(())
}

/// Opening a table in a write transaction creates it, so that readers never
/// meet a missing table.
fn create_current_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    fn create<K: redb::Key + 'static, V: redb::Value + 'static>(
        txn: &WriteTransaction,
        table: redb::TableDefinition<'static, K, V>,
    ) -> Result<(), StoreError> {
        txn.open_table(table).map_err(write_err(table.name()))?;
        Ok(())
    }
    create(txn, tables::META)?;
    create(txn, tables::GRAPHS)?;
    create(txn, tables::SERVICES)?;
    create(txn, tables::OWNED)?;
    create(txn, tables::CLUSTERS)?;
    create(txn, tables::TRIGGERS)?;
    create(txn, tables::SCALES)?;
    create(txn, tables::PROVISIONS)?;
    create(txn, tables::INTENTS)?;
    create(txn, tables::MOVES)?;
    create(txn, tables::EVENTS)?;
    create(txn, tables::OUTBOX)?;
    create(txn, tables::SINK_CURSORS)?;
    create(txn, tables::RUNS)
}

/// Re-types every record table from untyped bytes to its record's
/// [`Json`] codec. The bytes move unchanged (the JSON shapes did not
/// change); a record that was corrupt stays corrupt and is reported, with
/// its table and key, when it is read. A table an older version did not
/// have is simply created later.
fn v5_to_v6(txn: &WriteTransaction) -> Result<(), StoreError> {
    retype(txn, v5::GRAPHS, tables::GRAPHS)?;
    retype(txn, v5::SERVICES, tables::SERVICES)?;
    retype(txn, v5::OWNED, tables::OWNED)?;
    retype(txn, v5::TRIGGERS, tables::TRIGGERS)?;
    retype(txn, v5::SCALES, tables::SCALES)?;
    retype(txn, v5::CLUSTERS, tables::CLUSTERS)?;
    retype(txn, v5::PROVISIONS, tables::PROVISIONS)?;
    retype(txn, v5::INTENTS, tables::INTENTS)?;
    retype_journal(txn, v5::EVENTS, tables::EVENTS)?;
    retype_journal(txn, v5::RUNS, tables::RUNS)
}

fn retype<T: Record>(
    txn: &WriteTransaction,
    old: TableDefinition<'static, &'static str, &'static [u8]>,
    new: TableDefinition<'static, &'static str, Json<T>>,
) -> Result<(), StoreError> {
    let mut rows = Vec::new();
    {
        let table = txn.open_table(old).map_err(read_err(old.name()))?;
        for entry in table.iter().map_err(read_err(old.name()))? {
            let (key, bytes) = entry.map_err(read_err(old.name()))?;
            rows.push((key.value().to_owned(), bytes.value().to_vec()));
        }
    }
    txn.delete_table(old).map_err(write_err(old.name()))?;
    let mut table = txn.open_table(new).map_err(write_err(new.name()))?;
    for (key, bytes) in rows {
        table
            .insert(key.as_str(), Stored::raw(bytes))
            .map_err(write_err(new.name()))?;
    }
    Ok(())
}

fn retype_journal<T: Record>(
    txn: &WriteTransaction,
    old: TableDefinition<'static, u64, &'static [u8]>,
    new: TableDefinition<'static, u64, Json<T>>,
) -> Result<(), StoreError> {
    let mut rows = Vec::new();
    {
        let table = txn.open_table(old).map_err(read_err(old.name()))?;
        for entry in table.iter().map_err(read_err(old.name()))? {
            let (seq, bytes) = entry.map_err(read_err(old.name()))?;
            rows.push((seq.value(), bytes.value().to_vec()));
        }
    }
    txn.delete_table(old).map_err(write_err(old.name()))?;
    let mut table = txn.open_table(new).map_err(write_err(new.name()))?;
    for (seq, bytes) in rows {
        table
            .insert(seq, Stored::raw(bytes))
            .map_err(write_err(new.name()))?;
    }
    Ok(())
}

fn set_version(txn: &WriteTransaction, version: u32) -> Result<(), StoreError> {
    let bytes = encode(tables::META, tables::SCHEMA_VERSION, &version)?;
    txn.open_table(tables::META)
        .map_err(write_err(tables::META.name()))?
        .insert(tables::SCHEMA_VERSION, bytes.as_slice())
        .map_err(write_err(tables::META.name()))?;
    Ok(())
}

/// Splits the embedded services out into their own table and renames the
/// revision key. Fields version 1 did not have start empty: the next
/// reconcile fills them from Git and the live state.
fn v1_to_v2(txn: &WriteTransaction) -> Result<(), StoreError> {
    let mut old = Vec::new();
    {
        let table = txn
            .open_table(v1::GRAPHS)
            .map_err(read_err(v1::GRAPHS.name()))?;
        for entry in table.iter().map_err(read_err(v1::GRAPHS.name()))? {
            let (key, bytes) = entry.map_err(read_err(v1::GRAPHS.name()))?;
            old.push(decode::<v1::GraphV1>(
                v1::GRAPHS,
                key.value(),
                bytes.value(),
            )?);
        }
    }
    txn.delete_table(v1::GRAPHS)
        .map_err(write_err(v1::GRAPHS.name()))?;

    let mut graphs = txn
        .open_table(v5::GRAPHS)
        .map_err(write_err(v5::GRAPHS.name()))?;
    let mut services = txn
        .open_table(v5::SERVICES)
        .map_err(write_err(v5::SERVICES.name()))?;
    for graph in old {
        let (record, service_records) = split_v1(graph);
        let key = record.key();
        graphs
            .insert(key.as_str(), encode(v5::GRAPHS, &key, &record)?.as_slice())
            .map_err(write_err(v5::GRAPHS.name()))?;
        for service in service_records {
            let key = service.key();
            services
                .insert(
                    key.as_str(),
                    encode(v5::SERVICES, &key, &service)?.as_slice(),
                )
                .map_err(write_err(v5::SERVICES.name()))?;
        }
    }

    let mut meta = txn
        .open_table(v1::META)
        .map_err(write_err(v1::META.name()))?;
    let revision = meta
        .remove(v1::REVISION)
        .map_err(write_err(v1::META.name()))?
        .map(|bytes| bytes.value().to_vec());
    if let Some(revision) = revision {
        // Both are JSON strings: the bytes move unchanged, after a check.
        decode::<String>(v1::META, v1::REVISION, &revision)?;
        meta.insert(tables::SOURCE_REVISION, revision.as_slice())
            .map_err(write_err(tables::META.name()))?;
    }
    Ok(())
}

fn split_v1(graph: v1::GraphV1) -> (GraphRecord, Vec<ServiceRecord>) {
    let services = graph
        .services
        .into_iter()
        .map(|service| ServiceRecord {
            project: graph.project.clone(),
            graph: graph.graph.clone(),
            service: service.service,
            namespace: service.namespace,
            release: service.release,
            release_revision: service.release_revision,
            input_hash: service.input_hash,
            phase: match service.phase {
                v1::PhaseV1::Pending => ServicePhase::Pending,
                v1::PhaseV1::Deployed => ServicePhase::Deployed,
                v1::PhaseV1::Failed => ServicePhase::Failed,
                v1::PhaseV1::Uninstalled => ServicePhase::Uninstalled,
            },
            clusters: service.clusters,
            replicas: BTreeMap::new(),
            trigger: TriggerState::default(),
            blocked_by: None,
            last_error: service.last_error,
            // v1 kept no manifest: drift is checked again after the next
            // upgrade records one.
            manifest: None,
            drifted: Vec::new(),
            updated_at: service.updated_at,
        })
        .collect();
    // Version 1 placed at apply time, so the placement belongs to the last
    // applied revision; its inputs were not hashed, so the next reconcile
    // recomputes it.
    let placement_revision = if graph.placement.is_empty() {
        None
    } else {
        graph.last_applied_revision.clone()
    };
    let record = GraphRecord {
        project: graph.project,
        graph: graph.graph,
        file: graph.file,
        desired_hash: graph.desired_hash,
        suspended: graph.suspended,
        last_attempted_revision: graph.last_applied_revision.clone(),
        last_applied_revision: graph.last_applied_revision,
        placement: graph.placement,
        placement_inputs_hash: None,
        placement_revision,
        conditions: Vec::new(),
        last_error: graph.last_error,
        updated_at: graph.updated_at,
        failures: 0,
        next_retry_at: None,
        dashboards: BTreeMap::new(),
        origin: None,
        last_change: None,
    };
    (record, services)
}
