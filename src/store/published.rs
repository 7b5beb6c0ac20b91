//! The daemon's status snapshot, published incrementally.
//!
//! [`Store::status_snapshot`] reads and redacts every record; the file
//! it makes is the same whatever path builds it. With thousands of
//! services that is most of a no-op resync's CPU (decoding every service
//! with its manifest, redacting it, printing it), although a resync
//! changes nothing but its pass record. [`Store::publish_status`]
//! therefore keeps each graph and service as the text it last printed, and
//! reads again only the records written since ([`Touched`], noted by every
//! write transaction that changes them). The small tables (clusters, runs,
//! events, scales, provisions) are read whole each time.
//!
//! Invariant: the file equals `serde_json::to_vec_pretty` of the snapshot
//! [`Store::status_snapshot`] would build from the same transaction (a test
//! compares them byte for byte).
//!
//! Ordering: a writer commits, then notes what it touched, then bumps the
//! store's generation; a publisher takes the notes, then opens its read
//! transaction. A record noted after the take is read again by the next
//! publish, which the generation bump causes.

use std::collections::{BTreeMap, HashSet};
use std::time::{SystemTime, UNIX_EPOCH};

use redb::{ReadableDatabase, ReadableTable, TableHandle};
use serde::Serialize;

use super::access::{meta, newest, open_read, read_err, record};
use super::codec::Record;
use super::records::{GraphRecord, ServiceRecord};
use super::snapshot::{EVENTS, FILE, RUNS, ReleaseObjects, redact_one, write_bytes};
use super::{Store, StoreError, access::all, tables};
use crate::locks::MutexExt;

/// Keys of the graphs and services tables written since the last publish.
#[derive(Debug, Default)]
pub(crate) struct Touched {
    /// Everything (a new store, or a publish that failed half-way).
    all: bool,
    graphs: HashSet<String>,
    services: HashSet<String>,
    /// Services removed by prefix (a graph deleted with its services).
    service_prefixes: Vec<String>,
}

impl Touched {
    pub(crate) fn everything() -> Touched {
        Touched {
            all: true,
            ..Touched::default()
        }
    }

    pub(crate) fn graph(&mut self, key: &str) {
        self.graphs.insert(key.to_owned());
    }

    pub(crate) fn service(&mut self, key: &str) {
        self.services.insert(key.to_owned());
    }

    pub(crate) fn services_under(&mut self, prefix: &str) {
        self.service_prefixes.push(prefix.to_owned());
    }

    pub(crate) fn is_empty(&self) -> bool {
        !self.all
            && self.graphs.is_empty()
            && self.services.is_empty()
            && self.service_prefixes.is_empty()
    }

    pub(crate) fn merge(&mut self, other: Touched) {
        self.all |= other.all;
        self.graphs.extend(other.graphs);
        self.services.extend(other.services);
        self.service_prefixes.extend(other.service_prefixes);
    }

    fn graph_stale(&self, key: &str) -> bool {
        self.all || self.graphs.contains(key)
    }

    fn service_stale(&self, key: &str) -> bool {
        self.all
            || self.services.contains(key)
            || self.service_prefixes.iter().any(|p| key.starts_with(p))
    }
}

/// A graph as last printed: its text inside the `graphs` array and the
/// conditions that hold (for the gauges).
#[derive(Debug)]
struct GraphText {
    text: Vec<u8>,
    conditions: Vec<String>,
}

/// A service as last printed: its redacted record and its objects (when
/// its manifest could be redacted), and its phase (for the gauges).
#[derive(Debug)]
struct ServiceText {
    text: Vec<u8>,
    objects: Option<Vec<u8>>,
    phase: String,
}

/// The printed records of the last publish, by key (key order is the
/// file's order, as [`Store::status_snapshot`] reads the tables).
#[derive(Debug, Default)]
pub(crate) struct Printed {
    graphs: BTreeMap<String, GraphText>,
    services: BTreeMap<String, ServiceText>,
}

/// What a publish tells the daemon: the gauges' inputs and the newest
/// event (the history file is rewritten when it moved).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    /// Graphs by condition that holds (`Ready`, `Degraded`, …).
    pub conditions: BTreeMap<String, u32>,
    /// Services by phase.
    pub phases: BTreeMap<String, u32>,
    pub newest_event: Option<u64>,
}

/// A top-level field's value printed pretty as its own document.
fn pretty<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec_pretty(value)
}

/// `text` indented by `by` spaces after every line break: JSON strings
/// escape their line breaks, so every one in the text is the printer's.
fn indented(text: &[u8], by: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + text.len() / 8);
    for &b in text {
        out.push(b);
        if b == b'\n' {
            out.extend(std::iter::repeat_n(b' ', by));
        }
    }
    out
}

/// An array item: printed at the depth of an item of a top-level array.
fn item<T: Serialize>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    Ok(indented(&pretty(value)?, 4))
}

/// The file's bytes from its fields, as `to_vec_pretty` prints the
/// snapshot: `fields` are (name, pretty value) for plain fields or
/// (name, items) for the arrays kept as printed items.
enum Field<'a> {
    Plain(Vec<u8>),
    Items(Vec<&'a [u8]>),
}

fn document(fields: &[(&str, Field<'_>)]) -> Vec<u8> {
    let mut out = b"{".to_vec();
    for (i, (name, field)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"\n  \"");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\": ");
        match field {
            Field::Plain(text) => out.extend(indented(text, 2)),
            Field::Items(items) if items.is_empty() => out.extend_from_slice(b"[]"),
            Field::Items(items) => {
                out.push(b'[');
                for (j, text) in items.iter().enumerate() {
                    if j > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(b"\n    ");
                    out.extend_from_slice(text);
                }
                out.extend_from_slice(b"\n  ]");
            }
        }
    }
    out.extend_from_slice(b"\n}");
    out
}

fn encode_err(table: &str, key: &str) -> impl FnOnce(serde_json::Error) -> StoreError {
    let (table, key) = (table.to_owned(), key.to_owned());
    move |source| StoreError::Encode { table, key, source }
}

fn print_graph(key: &str, g: &GraphRecord) -> Result<GraphText, StoreError> {
    Ok(GraphText {
        text: item(g).map_err(encode_err("graphs", key))?,
        conditions: g
            .conditions
            .iter()
            .filter(|c| c.status)
            .map(|c| format!("{:?}", c.kind))
            .collect(),
    })
}

fn print_service(key: &str, mut s: ServiceRecord) -> Result<ServiceText, StoreError> {
    let objects: Option<ReleaseObjects> = redact_one(&mut s);
    Ok(ServiceText {
        text: item(&s).map_err(encode_err("services", key))?,
        objects: objects
            .map(|o| item(&o))
            .transpose()
            .map_err(encode_err("services", key))?,
        phase: format!("{:?}", s.phase),
    })
}

/// Every record of `table` as printed: the previous text of a key not
/// `stale`, otherwise the record read and printed again (keys gone from the
/// table are dropped).
fn reprint<T: Record, P>(
    txn: &redb::ReadTransaction,
    table: super::tx::Table<T>,
    mut previous: BTreeMap<String, P>,
    stale: impl Fn(&str) -> bool,
    print: impl Fn(&str, T) -> Result<P, StoreError>,
) -> Result<BTreeMap<String, P>, StoreError> {
    let name = table.name();
    let mut out = BTreeMap::new();
    for entry in open_read(txn, table)?.iter().map_err(read_err(name))? {
        let (key, stored) = entry.map_err(read_err(name))?;
        let key = key.value();
        let text = match previous.remove(key) {
            Some(t) if !stale(key) => t,
            _ => print(key, record(table, key, &stored.value())?)?,
        };
        out.insert(key.to_owned(), text);
    }
    Ok(out)
}

impl Store {
    /// Publishes the status snapshot to `dir/status.json` (see the module
    /// docs), reading again only the records written since the last time.
    pub fn publish_status(
        &self,
        dir: &std::path::Path,
        notes: Vec<String>,
    ) -> Result<Published, StoreError> {
        let mut printed = self.printed.lock_or_recover();
        let touched = std::mem::take(&mut *self.touched.lock_or_recover());
        let result = self.print(&mut printed, &touched, notes);
        let bytes = match result {
            Ok(r) => r,
            Err(e) => {
                // Read everything again next time.
                self.touched.lock_or_recover().merge(Touched::everything());
                return Err(e);
            }
        };
        let (bytes, published) = bytes;
        write_bytes(dir, FILE, &bytes)?;
        Ok(published)
    }

    fn print(
        &self,
        printed: &mut Printed,
        touched: &Touched,
        notes: Vec<String>,
    ) -> Result<(Vec<u8>, Published), StoreError> {
        let generated_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        let txn = self.db.begin_read().map_err(read_err("a transaction"))?;
        let source_revision: Option<String> =
            meta(&open_read(&txn, tables::META)?, tables::SOURCE_REVISION)?;
        let graphs = std::mem::take(&mut printed.graphs);
        printed.graphs = reprint(
            &txn,
            tables::GRAPHS,
            graphs,
            |k| touched.graph_stale(k),
            |k, g| print_graph(k, &g),
        )?;
        let services = std::mem::take(&mut printed.services);
        printed.services = reprint(
            &txn,
            tables::SERVICES,
            services,
            |k| touched.service_stale(k),
            print_service,
        )?;
        let small = |e: serde_json::Error| StoreError::Encode {
            table: "status".into(),
            key: FILE.into(),
            source: e,
        };
        let events: Vec<super::records::Event> =
            newest(&open_read(&txn, tables::EVENTS)?, tables::EVENTS, EVENTS)?;
        let newest_event = events.first().map(|e| e.seq);
        let clusters = all(&open_read(&txn, tables::CLUSTERS)?, tables::CLUSTERS)?;
        let runs = newest(&open_read(&txn, tables::RUNS)?, tables::RUNS, RUNS)?;
        let scales = all(&open_read(&txn, tables::SCALES)?, tables::SCALES)?;
        let provisions = all(&open_read(&txn, tables::PROVISIONS)?, tables::PROVISIONS)?;
        let fields = [
            (
                "generatedAt",
                Field::Plain(pretty(&generated_at).map_err(small)?),
            ),
            (
                "sourceRevision",
                Field::Plain(pretty(&source_revision).map_err(small)?),
            ),
            (
                "graphs",
                Field::Items(printed.graphs.values().map(|g| g.text.as_slice()).collect()),
            ),
            (
                "services",
                Field::Items(
                    printed
                        .services
                        .values()
                        .map(|s| s.text.as_slice())
                        .collect(),
                ),
            ),
            ("clusters", Field::Plain(pretty(&clusters).map_err(small)?)),
            ("runs", Field::Plain(pretty(&runs).map_err(small)?)),
            ("events", Field::Plain(pretty(&events).map_err(small)?)),
            ("notes", Field::Plain(pretty(&notes).map_err(small)?)),
            ("scales", Field::Plain(pretty(&scales).map_err(small)?)),
            (
                "provisions",
                Field::Plain(pretty(&provisions).map_err(small)?),
            ),
            (
                "releaseObjects",
                Field::Items(
                    printed
                        .services
                        .values()
                        .filter_map(|s| s.objects.as_deref())
                        .collect(),
                ),
            ),
        ];
        let bytes = document(&fields);
        let mut published = Published {
            newest_event,
            ..Published::default()
        };
        for g in printed.graphs.values() {
            for c in &g.conditions {
                *published.conditions.entry(c.clone()).or_default() += 1;
            }
        }
        for s in printed.services.values() {
            *published.phases.entry(s.phase.clone()).or_default() += 1;
        }
        Ok((bytes, published))
    }
}

#[cfg(test)]
mod tests {
    use super::super::snapshot::StatusSnapshot;
    use super::super::tests::{cluster, event, graph, open, run, service};
    use super::*;

    /// The published file, and what `status_snapshot` makes of the same
    /// store printed as the file is, with the file's `generatedAt`.
    fn both(store: &Store, dir: &std::path::Path) -> (String, String, Published) {
        let published = store.publish_status(dir, vec!["a note".into()]).unwrap();
        let file = std::fs::read_to_string(dir.join(FILE)).unwrap();
        let parsed: StatusSnapshot = serde_json::from_str(&file).unwrap();
        let mut full = store.status_snapshot(vec!["a note".into()]).unwrap();
        full.generated_at = parsed.generated_at;
        let expected = String::from_utf8(serde_json::to_vec_pretty(&full).unwrap()).unwrap();
        (file, expected, published)
    }

    fn manifest(secret: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\nstringData:\n  password: {secret}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  k: \"v\\nw\"\n"
        )
    }

    #[test]
    fn the_incremental_file_is_the_full_snapshot_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        let (file, expected, _) = both(&store, dir.path());
        assert_eq!(file, expected, "an empty store");
        store
            .write(|tx| {
                tx.put_graph(&graph("p", "g"))?;
                tx.put_graph(&graph("p", "h"))?;
                let mut web = service("p", "g", "web");
                web.manifest = Some(manifest("hunter2"));
                tx.put_service(&web)?;
                tx.put_service(&service("p", "g", "db"))?;
                let mut broken = service("p", "h", "x");
                broken.manifest = Some("kind: [".into());
                tx.put_service(&broken)?;
                tx.put_clusters(&[cluster("edge-1")])?;
                tx.set_source_revision("r1")?;
                tx.append_event(event("first"))?;
                tx.append_run(run(0))?;
                Ok(())
            })
            .unwrap();
        let (file, expected, published) = both(&store, dir.path());
        assert_eq!(file, expected, "every record new");
        assert!(!file.contains("hunter2"), "{file}");
        assert_eq!(published.phases.get("Deployed"), Some(&3));
        assert_eq!(published.conditions.get("Ready"), Some(&2));
        assert!(published.newest_event.is_some());

        // One service changed, one graph removed with its services, a run
        // appended: only what was written is printed again.
        store
            .write(|tx| {
                let mut web = service("p", "g", "web");
                web.manifest = Some(manifest("changed-secret"));
                web.release_revision = Some(4);
                tx.put_service(&web)?;
                tx.delete_graph("p/h")?;
                tx.append_run(run(1))?;
                Ok(())
            })
            .unwrap();
        let (file, expected, published) = both(&store, dir.path());
        assert_eq!(file, expected, "after a change and a removal");
        assert!(!file.contains("changed-secret"), "{file}");
        assert_eq!(published.phases.get("Deployed"), Some(&2));
        assert_eq!(published.conditions.get("Ready"), Some(&1));
        // Nothing written: the same file but for the time.
        let (file, expected, _) = both(&store, dir.path());
        assert_eq!(file, expected, "nothing written");
    }

    #[test]
    fn a_record_written_after_a_publish_is_printed_by_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        store.write(|tx| tx.put_graph(&graph("p", "g"))).unwrap();
        store.publish_status(dir.path(), Vec::new()).unwrap();
        let mut g = graph("p", "g");
        g.last_error = Some("a new error".into());
        store.write(|tx| tx.put_graph(&g)).unwrap();
        let (file, expected, _) = both(&store, dir.path());
        assert!(file.contains("a new error"), "{file}");
        assert_eq!(file, expected);
    }
}
