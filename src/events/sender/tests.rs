use super::*;
use crate::store::records::NewEvent;
use crate::store::{Kind, StoreOptions};
use std::collections::VecDeque;
use std::sync::Mutex;

/// A sink that answers from a script (then `Delivered`) and keeps what
/// it was sent.
#[derive(Default)]
struct Script {
    answers: Mutex<VecDeque<Delivery>>,
    /// `Retry` for ever once the script is empty, instead of `Delivered`.
    down: bool,
    got: Mutex<Vec<CloudEvent>>,
}

impl Deliver for Arc<Script> {
    async fn deliver(&self, body: &[u8]) -> Delivery {
        self.got
            .lock()
            .unwrap()
            .push(serde_json::from_slice(body).unwrap());
        let next = self.answers.lock().unwrap().pop_front();
        next.unwrap_or(if self.down {
            Delivery::Retry("down".into())
        } else {
            Delivery::Delivered
        })
    }
}

impl Script {
    fn got(&self) -> Vec<(String, String)> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|e| (e.id.clone(), e.ty.clone()))
            .collect()
    }
}

fn store(dir: &tempfile::TempDir, outbox: usize) -> Arc<Store> {
    let options = StoreOptions {
        outbox,
        ..StoreOptions::default()
    };
    Arc::new(Store::open_with(dir.path().join("smo.redb"), options).unwrap())
}

fn append(store: &Store, kind: Kind, service: Option<&str>) -> u64 {
    store
        .write(|tx| tx.append_event(NewEvent::graph(1, ("p", "g"), service, kind, "m")))
        .unwrap()
}

fn outbox(store: &Arc<Store>, sinks: &[&str]) -> Outbox {
    Outbox {
        store: Arc::clone(store),
        metrics: Arc::new(Metrics::new()),
        host: "h".into(),
        store_id: store.store_id().unwrap(),
        sinks: sinks.iter().map(|s| (*s).to_owned()).collect(),
        retry: Policy {
            base: Duration::from_millis(1),
            cap: Duration::from_millis(5),
        },
        dropped_seen: Arc::default(),
    }
}

/// Waits until `sink`'s cursor reached `seq` (the sender had its chance
/// to deliver everything before it).
async fn until_cursor(store: &Arc<Store>, sink: &str, seq: u64) {
    for _ in 0..2000 {
        if store.sink_cursor(sink).unwrap() >= seq {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{sink} never reached {seq}");
}

#[tokio::test]
async fn events_go_out_in_order_retried_until_taken_refusals_and_other_types_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir, 100);
    let id = store.store_id().unwrap();
    assert_eq!(id.len(), 16);
    append(&store, Kind::Installed, Some("a"));
    append(&store, Kind::ClusterNotReady, None);
    append(&store, Kind::Upgraded, Some("a"));
    let last = append(&store, Kind::Failed, Some("b"));
    let script = Arc::new(Script::default());
    script.answers.lock().unwrap().extend([
        Delivery::Retry("503".into()),
        Delivery::Retry("timeout".into()),
        Delivery::Delivered,
        Delivery::Refused("400".into()),
    ]);
    let sender = Sender {
        name: "s".into(),
        types: vec!["eu.nephele.smo.service.".into()],
        sink: Arc::clone(&script),
    };
    let (stop, shutdown) = watch::channel(false);
    let ob = outbox(&store, &["s"]);
    let metrics = Arc::clone(&ob.metrics);
    let task = tokio::spawn(sender.run(ob, shutdown));
    until_cursor(&store, "s", last).await;
    stop.send(true).unwrap();
    task.await.unwrap();
    let installed = (
        format!("{id}-1"),
        "eu.nephele.smo.service.installed".to_owned(),
    );
    assert_eq!(
        script.got(),
        vec![
            installed.clone(),
            installed.clone(),
            installed,
            (format!("{id}-3"), "eu.nephele.smo.service.upgraded".into()),
            (format!("{id}-4"), "eu.nephele.smo.service.failed".into()),
        ],
        "the retried event keeps its id; the cluster event is not of a type the sink takes"
    );
    assert_eq!(store.outbox_stats().unwrap().pending, 0, "every entry left");
    let text = metrics.render();
    assert!(
        text.contains("smo_events_sent_total{sink=\"s\",outcome=\"retried\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("smo_events_sent_total{sink=\"s\",outcome=\"refused\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn an_event_not_yet_taken_when_the_sender_stops_is_sent_again_with_the_same_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir, 100);
    let seq = append(&store, Kind::Installed, Some("a"));
    let down = Arc::new(Script {
        down: true,
        ..Script::default()
    });
    let (stop, shutdown) = watch::channel(false);
    let sender = Sender {
        name: "s".into(),
        types: Vec::new(),
        sink: Arc::clone(&down),
    };
    let task = tokio::spawn(sender.run(outbox(&store, &["s"]), shutdown));
    while down.got().len() < 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.send(true).unwrap();
    task.await.unwrap();
    assert_eq!(store.sink_cursor("s").unwrap(), 0, "nothing was taken");

    let up = Arc::new(Script::default());
    let (stop, shutdown) = watch::channel(false);
    let sender = Sender {
        name: "s".into(),
        types: Vec::new(),
        sink: Arc::clone(&up),
    };
    let task = tokio::spawn(sender.run(outbox(&store, &["s"]), shutdown));
    until_cursor(&store, "s", seq).await;
    stop.send(true).unwrap();
    task.await.unwrap();
    assert_eq!(up.got(), down.got()[..1].to_vec());
}

#[tokio::test]
async fn an_entry_leaves_the_outbox_only_when_every_sink_passed_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir, 100);
    let seq = append(&store, Kind::Installed, Some("a"));
    store
        .advance_sink("one", seq, &["one".into(), "two".into()], 1)
        .unwrap();
    assert_eq!(
        store.outbox_stats().unwrap().pending,
        1,
        "two has not had it"
    );
    store
        .advance_sink("two", seq, &["one".into(), "two".into()], 1)
        .unwrap();
    assert_eq!(store.outbox_stats().unwrap().pending, 0);
    // A sink removed from the configuration holds nothing back.
    let seq = append(&store, Kind::Upgraded, Some("a"));
    store.retain_sinks(&["one".into()]).unwrap();
    store.advance_sink("one", seq, &["one".into()], 1).unwrap();
    assert_eq!(store.outbox_stats().unwrap().pending, 0);
    assert_eq!(store.sink_cursor("two").unwrap(), 0, "forgotten");
}

#[tokio::test]
async fn a_full_outbox_drops_the_oldest_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir, 3);
    for _ in 0..5 {
        append(&store, Kind::Upgraded, Some("a"));
    }
    let stats = store.outbox_stats().unwrap();
    assert_eq!((stats.pending, stats.dropped), (3, 2));
    let kept: Vec<u64> = store
        .outbox_after(0, 10)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(kept, vec![3, 4, 5]);
    assert_eq!(
        store.events(10).unwrap().len(),
        5,
        "the journal keeps its own bound"
    );
}

#[test]
fn without_sinks_no_outbox_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir, 0);
    append(&store, Kind::Installed, Some("a"));
    assert_eq!(store.outbox_stats().unwrap().pending, 0);
    assert_eq!(store.events(10).unwrap().len(), 1);
}
