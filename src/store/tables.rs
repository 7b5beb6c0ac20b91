//! The tables of the current schema (version
//! [`CURRENT_SCHEMA`](super::migrate::CURRENT_SCHEMA)), declared once.
//!
//! Values are records stored as JSON through the [`Json`] codec, so each
//! definition names its record type; keys are the strings built in
//! `records` or, for the bounded journals, a `u64` sequence number so that
//! the oldest entry is the first key. [`META`] alone stays untyped bytes:
//! it holds the schema version, which every version must be able to read.
//!
//! Tables of earlier schema versions live in [`super::migrate`], frozen:
//! changing a definition here is a schema change and needs a migration.

use redb::TableDefinition;

use super::codec::Json;
use super::records::{
    ClusterRecord, Event, FiredEvent, GraphRecord, Intent, MoveRecord, OwnedObject,
    ProvisionRecord, RunRecord, ScaleRecord, ServiceRecord, SinkCursor,
};

/// Store-wide facts: [`SCHEMA_VERSION`] (a JSON `u32`) and
/// [`SOURCE_REVISION`] (a JSON string).
pub const META: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("meta");
/// `"{project}/{graph}"` → [`GraphRecord`](super::GraphRecord).
pub const GRAPHS: TableDefinition<'static, &str, Json<GraphRecord>> =
    TableDefinition::new("graphs");
/// `"{project}/{graph}/{service}"` → [`ServiceRecord`](super::ServiceRecord).
pub const SERVICES: TableDefinition<'static, &str, Json<ServiceRecord>> =
    TableDefinition::new("services");
/// [`OwnedObject::key`](super::OwnedObject::key) → [`OwnedObject`](super::OwnedObject).
pub const OWNED: TableDefinition<'static, &str, Json<OwnedObject>> =
    TableDefinition::new("owned_objects");
/// `"{project}/{graph}/{service}/{event}"` → [`FiredEvent`](super::FiredEvent).
pub const TRIGGERS: TableDefinition<'static, &str, Json<FiredEvent>> =
    TableDefinition::new("triggers");
/// `"{project}/{graph}/{service}"` → [`ScaleRecord`](super::ScaleRecord).
pub const SCALES: TableDefinition<'static, &str, Json<ScaleRecord>> =
    TableDefinition::new("scales");
/// Cluster name → [`ClusterRecord`](super::ClusterRecord).
pub const CLUSTERS: TableDefinition<'static, &str, Json<ClusterRecord>> =
    TableDefinition::new("clusters");
/// Cluster name → [`ProvisionRecord`](super::ProvisionRecord) (clusters
/// created through NFVCL).
pub const PROVISIONS: TableDefinition<'static, &str, Json<ProvisionRecord>> =
    TableDefinition::new("provisions");
/// [`Intent::key`](super::Intent::key) → [`Intent`](super::Intent): side
/// effects started and not yet recorded (write-ahead).
pub const INTENTS: TableDefinition<'static, &str, Json<Intent>> = TableDefinition::new("intents");
/// `"{project}/{graph}"` → [`MoveRecord`](super::records::MoveRecord):
/// graphs asked to move to make room for another (schema 8).
pub const MOVES: TableDefinition<'static, &str, Json<MoveRecord>> = TableDefinition::new("moves");
/// Sequence number → [`Event`](super::Event); bounded, oldest trimmed first.
pub const EVENTS: TableDefinition<'static, u64, Json<Event>> = TableDefinition::new("events");
/// Journal sequence number → [`Event`](super::Event): the events not yet
/// delivered to every configured sink, written in the same transaction
/// as the journal entry (only while sinks are configured); bounded by
/// `events.outboxSize`, oldest dropped first.
pub const OUTBOX: TableDefinition<'static, u64, Json<Event>> = TableDefinition::new("outbox");
/// Sink name → the sequence number of the last event it has been given
/// (delivered, dropped by the receiver, or filtered out).
pub const SINK_CURSORS: TableDefinition<'static, &str, Json<SinkCursor>> =
    TableDefinition::new("sink_cursors");
/// Sequence number → [`RunRecord`](super::RunRecord); bounded like `EVENTS`.
pub const RUNS: TableDefinition<'static, u64, Json<RunRecord>> = TableDefinition::new("runs");

/// Key in [`META`] of the schema version.
pub const SCHEMA_VERSION: &str = "schema_version";
/// Key in [`META`] of this store's random identity (a JSON string): the
/// prefix of every published event's `id`, so that ids stay unique when a
/// store is recreated.
pub const STORE_ID: &str = "store_id";
/// Key in [`META`] of the number of undelivered events the bounded outbox
/// dropped (a JSON `u64`).
pub const OUTBOX_DROPPED: &str = "outbox_dropped";
/// Key in [`META`] of the desired-state revision last seen.
pub const SOURCE_REVISION: &str = "source_revision";
