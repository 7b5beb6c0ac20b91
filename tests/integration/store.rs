//! The state store against databases written by other versions: a schema 1
//! store built with raw redb calls is migrated on open, and a store of a
//! newer schema is refused without being touched.

use std::collections::BTreeMap;
use std::path::Path;

use redb::{Database, ReadableDatabase, TableHandle};
use smo::store::migrate::{v1, v5};
use smo::store::{CURRENT_SCHEMA, ServicePhase, Store, StoreError, tables};

fn v1_graph(project: &str, graph: &str, services: &[&str]) -> v1::GraphV1 {
    v1::GraphV1 {
        project: project.into(),
        graph: graph.into(),
        file: format!("{project}/{graph}.yaml"),
        desired_hash: format!("hash-{graph}"),
        suspended: false,
        last_applied_revision: Some("rev-1".into()),
        placement: services
            .iter()
            .map(|s| ((*s).to_owned(), vec!["edge-1".to_owned()]))
            .collect(),
        last_error: None,
        updated_at: 100,
        services: services
            .iter()
            .map(|s| v1::ServiceV1 {
                service: (*s).into(),
                namespace: project.into(),
                release: (*s).into(),
                release_revision: Some(4),
                input_hash: Some(format!("in-{s}")),
                phase: v1::PhaseV1::Deployed,
                clusters: vec!["edge-1".into()],
                last_error: None,
                updated_at: 90,
            })
            .collect(),
    }
}

fn put_json<T: serde::Serialize>(
    txn: &redb::WriteTransaction,
    table: redb::TableDefinition<&str, &[u8]>,
    key: &str,
    value: &T,
) {
    let bytes = serde_json::to_vec(value).unwrap();
    txn.open_table(table)
        .unwrap()
        .insert(key, bytes.as_slice())
        .unwrap();
}

/// Writes a schema 1 store the way the first draft did.
fn write_v1_store(path: &Path, graphs: &[v1::GraphV1]) {
    let db = Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    put_json(&txn, v1::META, v1::SCHEMA_VERSION, &1u32);
    put_json(&txn, v1::META, v1::REVISION, &"rev-1");
    for graph in graphs {
        let key = format!("{}/{}", graph.project, graph.graph);
        put_json(&txn, v1::GRAPHS, &key, graph);
    }
    txn.commit().unwrap();
}

fn raw_schema_version(path: &Path) -> u32 {
    let db = Database::open(path).unwrap();
    let txn = db.begin_read().unwrap();
    let meta = txn.open_table(tables::META).unwrap();
    let bytes = meta.get(tables::SCHEMA_VERSION).unwrap().unwrap();
    serde_json::from_slice(bytes.value()).unwrap()
}

fn table_names(path: &Path) -> Vec<String> {
    let db = Database::open(path).unwrap();
    let txn = db.begin_read().unwrap();
    txn.list_tables()
        .unwrap()
        .map(|t| t.name().to_owned())
        .collect()
}

#[test]
fn store_migrates_a_v1_database_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = Store::path_in(dir.path());
    write_v1_store(
        &path,
        &[
            v1_graph("p", "shop", &["web", "db"]),
            v1_graph("p", "blog", &["web"]),
        ],
    );

    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), CURRENT_SCHEMA);
    assert_eq!(store.source_revision().unwrap().as_deref(), Some("rev-1"));

    let graphs = store.graphs().unwrap();
    assert_eq!(
        graphs.iter().map(|g| g.key()).collect::<Vec<_>>(),
        ["p/blog", "p/shop"]
    );
    let shop = store.graph("p/shop").unwrap().unwrap();
    assert_eq!(shop.file, "p/shop.yaml");
    assert_eq!(shop.desired_hash, "hash-shop");
    assert_eq!(shop.last_applied_revision.as_deref(), Some("rev-1"));
    assert_eq!(shop.placement["db"], ["edge-1"]);
    assert_eq!(shop.placement_revision.as_deref(), Some("rev-1"));
    assert_eq!(shop.updated_at, 100);

    let services = store.services_of("p", "shop").unwrap();
    assert_eq!(
        services.iter().map(|s| s.key()).collect::<Vec<_>>(),
        ["p/shop/db", "p/shop/web"]
    );
    let web = &services[1];
    assert_eq!(web.phase, ServicePhase::Deployed);
    assert_eq!(web.release_revision, Some(4));
    assert_eq!(web.input_hash.as_deref(), Some("in-web"));
    assert_eq!(web.clusters, ["edge-1"]);
    assert_eq!(web.replicas, BTreeMap::new());
    assert!(!web.trigger.armed);
    assert_eq!(store.services_of("p", "blog").unwrap().len(), 1);
    drop(store);

    assert_eq!(raw_schema_version(&path), CURRENT_SCHEMA);
    let names = table_names(&path);
    assert!(!names.iter().any(|n| n == "graphs_v1"), "{names:?}");
    let db = Database::open(&path).unwrap();
    let txn = db.begin_read().unwrap();
    let meta = txn.open_table(tables::META).unwrap();
    assert!(meta.get(v1::REVISION).unwrap().is_none());
}

#[test]
fn store_second_open_of_a_migrated_database_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = Store::path_in(dir.path());
    write_v1_store(&path, &[v1_graph("p", "shop", &["web"])]);
    drop(Store::open(&path).unwrap());

    // A v1 table reappearing after the migration must not be imported
    // again: a current store is never migrated.
    {
        let db = Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        put_json(&txn, v1::GRAPHS, "p/late", &v1_graph("p", "late", &["x"]));
        txn.commit().unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), CURRENT_SCHEMA);
    assert_eq!(store.graphs().unwrap().len(), 1);
    assert!(store.graph("p/late").unwrap().is_none());
    assert_eq!(store.services().unwrap().len(), 1);
    assert_eq!(store.source_revision().unwrap().as_deref(), Some("rev-1"));
    drop(store);
    assert!(table_names(&path).iter().any(|n| n == "graphs_v1"));
}

#[test]
fn store_refuses_a_newer_schema_and_leaves_the_file_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let path = Store::path_in(dir.path());
    {
        let store = Store::open(&path).unwrap();
        store.write(|tx| tx.set_source_revision("rev-9")).unwrap();
    }
    {
        let db = Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        put_json(&txn, tables::META, tables::SCHEMA_VERSION, &99u32);
        txn.commit().unwrap();
    }
    let before = std::fs::read(&path).unwrap();

    let err = Store::open(&path).unwrap_err();
    match &err {
        StoreError::NewerSchema {
            found, supported, ..
        } => assert_eq!((*found, *supported), (99, CURRENT_SCHEMA)),
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    assert!(err.to_string().contains("upgrade smo"), "{err}");
    // Compared without printing: a mismatch would dump the whole file.
    assert!(
        std::fs::read(&path).unwrap() == before,
        "the refused store was modified"
    );
    assert_eq!(raw_schema_version(&path), 99);
}

#[test]
fn store_refuses_a_redb_file_that_is_not_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = Store::path_in(dir.path());
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        put_json(&txn, v5::GRAPHS, "p/g", &"whatever");
        txn.commit().unwrap();
    }
    let err = Store::open(&path).unwrap_err();
    assert!(
        matches!(err, StoreError::UnknownSchema { found: None, .. }),
        "{err:?}"
    );
}

/// A schema 3 store: today's tables without `provisions`, version 3.
fn write_v3_store(path: &Path) {
    let db = Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    put_json(&txn, tables::META, tables::SCHEMA_VERSION, &3u32);
    put_json(&txn, tables::META, tables::SOURCE_REVISION, &"rev-3");
    for table in [
        v5::GRAPHS,
        v5::SERVICES,
        v5::OWNED,
        v5::CLUSTERS,
        v5::TRIGGERS,
        v5::SCALES,
    ] {
        txn.open_table(table).unwrap();
    }
    txn.commit().unwrap();
}

#[test]
fn store_migrates_a_v3_database_by_adding_the_provisions_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = Store::path_in(dir.path());
    write_v3_store(&path);
    assert!(!table_names(&path).iter().any(|n| n == "provisions"));

    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), CURRENT_SCHEMA);
    assert_eq!(store.source_revision().unwrap().as_deref(), Some("rev-3"));
    assert!(store.provisions().unwrap().is_empty());
    let record = smo::store::ProvisionRecord {
        cluster: "edge-3".into(),
        blueprint_id: Some("bp1".into()),
        workers: 2,
        status: smo::store::ProvisionStatus::Creating,
        spec_hash: "h".into(),
        detail: None,
        refused: None,
        polls: 0,
        updated_at: 1,
    };
    store.write(|tx| tx.put_provision(&record)).unwrap();
    assert_eq!(store.provisions().unwrap(), [record]);
    assert!(store.write(|tx| tx.delete_provision("edge-3", 1)).unwrap());
    assert!(!store.write(|tx| tx.delete_provision("edge-3", 1)).unwrap());
    drop(store);
    assert_eq!(raw_schema_version(&path), CURRENT_SCHEMA);
}

#[test]
fn store_migrates_a_v4_database_by_adding_the_intents_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = Store::path_in(dir.path());
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        put_json(&txn, tables::META, tables::SCHEMA_VERSION, &4u32);
        put_json(&txn, tables::META, tables::SOURCE_REVISION, &"rev-4");
        for table in [
            v5::GRAPHS,
            v5::SERVICES,
            v5::OWNED,
            v5::CLUSTERS,
            v5::TRIGGERS,
            v5::SCALES,
            v5::PROVISIONS,
        ] {
            txn.open_table(table).unwrap();
        }
        // A v4 service record: no `drifted` field.
        put_json(
            &txn,
            v5::SERVICES,
            "p/g/web",
            &serde_json::json!({
                "project": "p", "graph": "g", "service": "web", "namespace": "p",
                "release": "web", "releaseRevision": 2, "inputHash": "h",
                "phase": "Deployed", "clusters": ["c1"], "replicas": {},
                "trigger": {"armed": false, "firedAt": null, "alert": null},
                "blockedBy": null, "lastError": null, "updatedAt": 7
            }),
        );
        txn.commit().unwrap();
    }
    assert!(!table_names(&path).iter().any(|n| n == "intents"));
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), CURRENT_SCHEMA);
    assert_eq!(store.source_revision().unwrap().as_deref(), Some("rev-4"));
    assert!(store.intents().unwrap().is_empty());
    let services = store.services_of("p", "g").unwrap();
    assert_eq!(services[0].release_revision, Some(2));
    assert!(services[0].drifted.is_empty());
    drop(store);
    assert_eq!(raw_schema_version(&path), CURRENT_SCHEMA);
}

/// Version 6 names each table's record type: a v4 store's records move
/// into the typed tables unchanged (journals included), the old untyped
/// definitions no longer open, and a record that was corrupt before is
/// still reported with its table and key instead of being dropped.
#[test]
fn store_migrates_a_v4_database_to_typed_tables() {
    let dir = tempfile::tempdir().unwrap();
    let path = Store::path_in(dir.path());
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        put_json(&txn, tables::META, tables::SCHEMA_VERSION, &4u32);
        put_json(
            &txn,
            v5::GRAPHS,
            "p/g",
            &serde_json::json!({
                "project": "p", "graph": "g", "file": "projects/p/g.yaml",
                "desiredHash": "", "suspended": false,
                "lastAppliedRevision": "r4", "lastAttemptedRevision": "r4",
                "placement": {"web": ["c1"]}, "placementInputsHash": null,
                "placementRevision": "r4", "conditions": [], "lastError": null,
                "updatedAt": 9, "failures": 0, "nextRetryAt": null
            }),
        );
        put_json(&txn, v5::GRAPHS, "p/broken", &"not a graph record");
        {
            let mut events = txn.open_table(v5::EVENTS).unwrap();
            let event = serde_json::json!({
                "seq": 3, "at": 5, "project": "p", "graph": "g",
                "service": null, "kind": "Installed", "message": "web installed"
            });
            events
                .insert(3, serde_json::to_vec(&event).unwrap().as_slice())
                .unwrap();
        }
        for table in [v5::SERVICES, v5::OWNED, v5::CLUSTERS, v5::TRIGGERS] {
            txn.open_table(table).unwrap();
        }
        txn.open_table(v5::RUNS).unwrap();
        txn.commit().unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), CURRENT_SCHEMA);
    let g = store.graph("p/g").unwrap().unwrap();
    assert_eq!(g.placement["web"], ["c1"]);
    assert_eq!(g.last_applied_revision.as_deref(), Some("r4"));
    let events = store.events(10).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].seq, events[0].message.as_str()),
        (3, "web installed")
    );
    match store.graph("p/broken").unwrap_err() {
        StoreError::Corrupt { table, key, .. } => {
            assert_eq!((table.as_str(), key.as_str()), ("graphs", "p/broken"))
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // Appending continues the migrated journal's sequence.
    let next = store
        .write(|tx| {
            tx.append_event(smo::store::NewEvent::graph(
                6,
                ("p", "g"),
                None,
                smo::store::Kind::Upgraded,
                "web upgraded",
            ))
        })
        .unwrap();
    assert_eq!(next, 4);
    drop(store);

    let db = Database::open(&path).unwrap();
    let txn = db.begin_read().unwrap();
    assert!(
        txn.open_table(v5::GRAPHS).is_err(),
        "the graphs table still opens as untyped bytes"
    );
    assert!(txn.open_table(tables::GRAPHS).is_ok());
}

/// Version 7 adds the event outbox and the sinks' cursors, and gives the
/// store its identity (the prefix of event ids). A v6 store — today's
/// layout without those — keeps its records and journal.
#[test]
fn store_migrates_a_v6_database_by_adding_the_outbox_and_an_identity() {
    let dir = tempfile::tempdir().unwrap();
    let path = Store::path_in(dir.path());
    {
        let store = Store::open(&path).unwrap();
        store
            .write(|tx| {
                tx.append_event(smo::store::NewEvent::graph(
                    5,
                    ("p", "g"),
                    Some("web"),
                    smo::store::Kind::Installed,
                    "revision 1",
                ))
            })
            .unwrap();
    }
    // Back to the v6 layout: no outbox tables, no identity, version 6.
    {
        let db = Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        assert!(txn.delete_table(tables::OUTBOX).unwrap());
        assert!(txn.delete_table(tables::SINK_CURSORS).unwrap());
        txn.open_table(tables::META)
            .unwrap()
            .remove(tables::STORE_ID)
            .unwrap()
            .expect("a store id was set");
        put_json(&txn, tables::META, tables::SCHEMA_VERSION, &6u32);
        txn.commit().unwrap();
    }
    assert!(!table_names(&path).iter().any(|n| n == "outbox"));
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), CURRENT_SCHEMA);
    assert_eq!(store.store_id().unwrap().len(), 16);
    assert_eq!(store.outbox_stats().unwrap().pending, 0);
    assert_eq!(store.sink_cursor("any").unwrap(), 0);
    let events = store.events(10).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind(), Some(smo::store::Kind::Installed));
    assert_eq!(
        events[0].cause, None,
        "an entry from before carries no cause"
    );
    drop(store);
    assert_eq!(raw_schema_version(&path), CURRENT_SCHEMA);
}

/// Version 8 adds the moves table (graphs asked to move to make room for
/// another). A v7 store — today's layout without it — keeps its records
/// and gets an empty table.
#[test]
fn store_migrates_a_v7_database_by_adding_the_moves_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = Store::path_in(dir.path());
    {
        let store = Store::open(&path).unwrap();
        store
            .write(|tx| tx.put_graph(&smo::store::GraphRecord::new("p", "g", "g.yaml", 5)))
            .unwrap();
    }
    {
        let db = Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        assert!(txn.delete_table(tables::MOVES).unwrap());
        put_json(&txn, tables::META, tables::SCHEMA_VERSION, &7u32);
        txn.commit().unwrap();
    }
    assert!(!table_names(&path).iter().any(|n| n == "moves"));
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), CURRENT_SCHEMA);
    assert!(store.moves().unwrap().is_empty());
    assert_eq!(store.graphs().unwrap().len(), 1);
    drop(store);
    assert!(table_names(&path).iter().any(|n| n == "moves"));
    assert_eq!(raw_schema_version(&path), 8);
}
