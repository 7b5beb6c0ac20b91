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
    ClusterRecord, Event, FiredEvent, GraphRecord, Intent, OwnedObject, ProvisionRecord, RunRecord,
    ScaleRecord, ServiceRecord,
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
/// Sequence number → [`Event`](super::Event); bounded, oldest trimmed first.
pub const EVENTS: TableDefinition<'static, u64, Json<Event>> = TableDefinition::new("events");
/// Sequence number → [`RunRecord`](super::RunRecord); bounded like `EVENTS`.
pub const RUNS: TableDefinition<'static, u64, Json<RunRecord>> = TableDefinition::new("runs");

/// Key in [`META`] of the schema version.
pub const SCHEMA_VERSION: &str = "schema_version";
/// Key in [`META`] of the desired-state revision last seen.
pub const SOURCE_REVISION: &str = "source_revision";
