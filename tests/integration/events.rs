//! Events out end to end: the daemon follows a real Git repository (two
//! commits by two authors), deploys the example on the fake Karmada with
//! the real helm, scales a service from the REAL Prometheus' rates, has a
//! service deployed by the REAL Alertmanager's alert, then removes a
//! graph — and a real HTTP receiver (plus a JSON-lines file) collects the
//! CloudEvents: the expected types, in order per subject, each with the
//! revision and the author of the commit in force, signed, re-sent with
//! the same id after a 503, and nothing lost while the receiver was down
//! for 30 s.

use crate::conditional::{edit, scale_fast, stack_with};
use crate::daemon::{copy_dir, env, free_port, spawn_smo, wait_for};
use crate::sources::{git, git_daemon_on};
use crate::support::repo;
use serde_json::Value;
use smo::daemon::RunOptions;
use smo::events::sink::hmac_sha256;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ADA: &str = "Ada Lovelace <ada@example.org>";
const BOB: &str = "Bob Bitdiddle <bob@example.org>";
const SECRET: &str = "shared-hmac-secret";

/// What the receiver got: each request's signature header and body.
type Got = Arc<Mutex<Vec<(Option<String>, String, Vec<u8>)>>>;

/// An HTTP receiver that answers 503 to its first request and 200 after.
struct Receiver {
    url: String,
    got: Got,
    server: Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    fn start() -> Receiver {
        Receiver::start_on("127.0.0.1:0", Got::default(), true)
    }

    /// A receiver on `addr` adding to `got`; `refuse_first`: 503 to its
    /// first request.
    fn start_on(addr: &str, got: Got, refuse_first: bool) -> Receiver {
        let server = Arc::new(tiny_http::Server::http(addr).unwrap());
        let addr = server.server_addr().to_ip().unwrap();
        let thread = {
            let (server, got) = (Arc::clone(&server), Arc::clone(&got));
            std::thread::spawn(move || {
                for mut req in server.incoming_requests() {
                    let header = |name: &'static str| {
                        req.headers()
                            .iter()
                            .find(|h| h.field.equiv(name))
                            .map(|h| h.value.as_str().to_owned())
                    };
                    let (sig, ct) = (header("X-Smo-Signature"), header("Content-Type"));
                    let mut body = Vec::new();
                    std::io::Read::read_to_end(req.as_reader(), &mut body).unwrap();
                    let first = {
                        let mut g = got.lock().unwrap();
                        g.push((sig, ct.unwrap_or_default(), body));
                        refuse_first && g.len() == 1
                    };
                    let status = if first { 503 } else { 200 };
                    let _ = req.respond(tiny_http::Response::empty(status));
                }
            })
        };
        Receiver {
            url: format!("http://{addr}/events"),
            got,
            server,
            thread: Some(thread),
        }
    }

    /// The events received, in order, duplicates included.
    fn events(&self) -> Vec<Value> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|(_, _, b)| serde_json::from_slice(b).unwrap())
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn commit_as(dir: &Path, author: &str, message: &str) -> String {
    let (name, email) = author.split_once(" <").unwrap();
    let email = email.trim_end_matches('>');
    git(dir, &["add", "-A"]);
    git(
        dir,
        &[
            "-c",
            &format!("user.name={name}"),
            "-c",
            &format!("user.email={email}"),
            "commit",
            "-qm",
            message,
        ],
    );
    git(dir, &["rev-parse", "HEAD"]).trim().to_owned()
}

fn of_type<'a>(events: &'a [Value], ty: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == ty).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_gets_every_change_in_order_with_its_revision_and_author() {
    let served = tempfile::tempdir().unwrap();
    let origin = served.path().join("origin");
    copy_dir(&repo().join("state-example"), &origin);
    // noise-reduction scales within seconds; the VO's alert fires as soon
    // as noise-reduction is busy.
    scale_fast(&origin);
    let graph = origin.join("projects/brussels/image-detection-graph.yaml");
    edit(&graph, "[1m])) > 5", "[5s])) > 5");
    edit(&graph, "gracePeriod: 1m", "gracePeriod: 0s");
    git(&origin, &["init", "-q"]);
    let first = commit_as(&origin, ADA, "Deploy the example");
    let port = free_port();
    let _git = git_daemon_on(served.path(), port);
    let source = format!(
        "source:\n  git:\n    url: git://127.0.0.1:{port}/origin\n    ref: {{branch: main}}\n    interval: 1s\n"
    );

    let receiver = Receiver::start();
    let sinks = tempfile::tempdir().unwrap();
    let secret = sinks.path().join("hmac");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let lines = sinks.path().join("graph-events.jsonl");
    let events = format!(
        "intervals:\n  scaling: 1s\nevents:\n  source: mgmt-test\n  sinks:\n  - name: hook\n    url: {url}\n    hmacSecretFile: {secret}\n  - name: lines\n    file: {lines}\n    types: [eu.nephele.smo.graph.]\n",
        url = receiver.url,
        secret = secret.display(),
        lines = lines.display(),
    );
    let Some(s) = stack_with(&["noise-reduction"], &events, Some(&source)).await else {
        return;
    };
    let daemon = s.env.start(RunOptions::default());
    let brussels = "smo://mgmt-test/brussels/image-detection-graph";
    wait_for(Duration::from_secs(120), "brussels applied", || {
        receiver
            .events()
            .iter()
            .any(|e| e["type"] == "eu.nephele.smo.graph.applied" && e["source"] == brussels)
            .then_some(())
    })
    .await;

    // The receiver goes down for 30 s; meanwhile noise-reduction gets
    // busy: it scales to 3, and the alert deploys the VO.
    let addr = receiver
        .url
        .trim_start_matches("http://")
        .trim_end_matches("/events")
        .to_owned();
    let got = Arc::clone(&receiver.got);
    drop(receiver);
    let down = std::time::Instant::now();
    s.exporter.set_rate("noise-reduction", 12.0);
    wait_for(
        Duration::from_secs(120),
        "scaled and triggered in the journal",
        || {
            let snap = s.env.snapshot()?;
            let scaled = snap
                .events
                .iter()
                .any(|e| e.kind == "Scaled" && e.message.contains("-> 3"));
            let triggered = snap.events.iter().any(|e| e.kind == "Triggered");
            (scaled && triggered).then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(30).saturating_sub(down.elapsed())).await;
    let receiver = Receiver::start_on(&addr, got, false);
    wait_for(
        Duration::from_secs(120),
        "scaled to 3 and the VO triggered, delivered",
        || {
            let got = receiver.events();
            let scaled = of_type(&got, "eu.nephele.smo.service.scaled")
                .into_iter()
                .any(|e| {
                    e["subject"] == "noise-reduction"
                        && e["data"]["message"].as_str().unwrap().contains("-> 3")
                });
            let triggered = of_type(&got, "eu.nephele.smo.service.triggered")
                .into_iter()
                .any(|e| e["subject"] == "image-compression-vo");
            (scaled && triggered).then_some(())
        },
    )
    .await;

    // Bob removes a graph.
    std::fs::remove_file(origin.join("projects/demo2/gpu-offloading-graph.yaml")).unwrap();
    let second = commit_as(&origin, BOB, "Retire the GPU demo");
    let removed = wait_for(Duration::from_secs(120), "demo2 removed", || {
        receiver
            .events()
            .into_iter()
            .find(|e| e["type"] == "eu.nephele.smo.graph.removed")
    })
    .await;
    assert_eq!(
        removed["source"],
        "smo://mgmt-test/demo2/gpu-offloading-graph"
    );
    assert_eq!(removed["data"]["revision"], second.as_str());
    assert_eq!(removed["data"]["commit"]["author"], BOB);
    assert_eq!(removed["data"]["commit"]["subject"], "Retire the GPU demo");
    let metrics = crate::webhook::get(s.http, "/metrics").await.body;
    for line in [
        "smo_events_sent_total{sink=\"hook\",outcome=\"delivered\"}",
        "smo_events_sent_total{sink=\"hook\",outcome=\"retried\"}",
        "smo_events_sent_total{sink=\"lines\",outcome=\"delivered\"}",
        "smo_events_outbox ",
        "smo_events_outbox_dropped_total 0",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
    daemon.stop().await;

    // Every request: a structured CloudEvent, signed with the shared secret.
    for (sig, content_type, body) in receiver.got.lock().unwrap().iter() {
        assert_eq!(content_type, "application/cloudevents+json");
        let want = format!(
            "sha256={}",
            smo::digest::hex(&hmac_sha256(SECRET.as_bytes(), body))
        );
        assert_eq!(sig.as_deref(), Some(want.as_str()));
    }
    // The first was refused with 503 and sent again, with the same id. An
    // event in flight when the receiver went down may arrive twice too:
    // then as the very same event. Past that, each arrives once.
    let all = receiver.events();
    assert_eq!(
        all[0]["id"], all[1]["id"],
        "the retry re-sends the same event"
    );
    let mut by_id: BTreeMap<String, &Value> = BTreeMap::new();
    let mut unique: Vec<Value> = Vec::new();
    for e in &all {
        let id = e["id"].as_str().unwrap().to_owned();
        match by_id.get(&id) {
            Some(earlier) => assert_eq!(*earlier, e, "two events with id {id}"),
            None => {
                by_id.insert(id, e);
                unique.push(e.clone());
            }
        }
    }
    let duplicates = all.len() - unique.len();
    assert!(duplicates <= 2, "{duplicates} re-sent events");
    let got = &unique[..];

    // In order per subject: journal sequence numbers grow per (source,
    // subject), and the lifecycle reads as it happened.
    let mut last: BTreeMap<(String, String), u64> = BTreeMap::new();
    for e in got {
        let key = (e["source"].to_string(), e["subject"].to_string());
        let seq = e["data"]["seq"].as_u64().unwrap();
        if let Some(prev) = last.insert(key.clone(), seq) {
            assert!(prev < seq, "{key:?}: {prev} then {seq}");
        }
    }
    let position = |ty: &str, source: &str, subject: Option<&str>| {
        got.iter()
            .position(|e| {
                e["type"] == ty
                    && e["source"] == source
                    && subject.is_none_or(|s| e["subject"] == s)
            })
            .unwrap_or_else(|| panic!("no {ty} for {source} {subject:?}: {got:#?}"))
    };
    let nr = Some("noise-reduction");
    assert!(
        position("eu.nephele.smo.service.installed", brussels, nr)
            < position("eu.nephele.smo.service.scaled", brussels, nr)
    );
    assert!(
        position("eu.nephele.smo.placement.decided", brussels, None)
            < position("eu.nephele.smo.graph.applied", brussels, None)
    );
    // What smo did before Bob's commit (up to the trigger and the scaling,
    // which the test waited for before committing) carries Ada's revision
    // and name; later events carry the revision in force when smo acted,
    // each with its own commit's author.
    let seq = |e: &Value| e["data"]["seq"].as_u64().unwrap();
    let before_bob = got
        .iter()
        .filter(|e| {
            e["type"] == "eu.nephele.smo.service.triggered"
                || (e["type"] == "eu.nephele.smo.service.scaled"
                    && e["data"]["message"].as_str().unwrap().contains("-> 3"))
        })
        .map(seq)
        .max()
        .unwrap();
    for e in got.iter().filter(|e| e["source"] == brussels) {
        let (revision, author) = (&e["data"]["revision"], &e["data"]["commit"]["author"]);
        if seq(e) <= before_bob || revision == first.as_str() {
            assert_eq!(
                (revision.as_str(), author.as_str()),
                (Some(first.as_str()), Some(ADA)),
                "{e:#}"
            );
        } else {
            assert_eq!(
                (revision.as_str(), author.as_str()),
                (Some(second.as_str()), Some(BOB)),
                "{e:#}"
            );
        }
        assert_eq!(e["specversion"], "1.0");
    }

    // The file sink took the graph events only, removal included.
    let text = std::fs::read_to_string(&lines).unwrap();
    let in_file: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(in_file.iter().all(|e| {
        e["type"]
            .as_str()
            .unwrap()
            .starts_with("eu.nephele.smo.graph.")
    }));
    assert!(
        in_file
            .iter()
            .any(|e| e["type"] == "eu.nephele.smo.graph.removed")
    );

    // The audit trail: the status names the commit that last changed each
    // graph, `smo history` lists what smo did and whose commit caused it.
    let store = s.env.store();
    let graphs = store.graphs().unwrap();
    let b = graphs.iter().find(|g| g.project == "brussels").unwrap();
    let change = b.last_change.as_ref().expect("the change is recorded");
    assert_eq!(change.cause.revision, first);
    assert_eq!(change.cause.commit.as_ref().unwrap().author, ADA);
    assert_eq!(change.file, "projects/brussels/image-detection-graph.yaml");
    drop(store);
    let mut out = Vec::new();
    let args = smo::cli::history::HistoryArgs {
        graph: Some("demo2/gpu-offloading-graph".parse().unwrap()),
        config: s.env.config.clone(),
        format: smo::cli::validate::Format::Text,
        limit: Some(1),
    };
    assert_eq!(smo::cli::history::run(&args, &mut out).unwrap(), 0);
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("demo2/gpu-offloading-graph  Removed")
            && text.contains("Retire the GPU demo (Bob Bitdiddle"),
        "{text}"
    );
}

/// The real binary is killed after it deployed the example while the
/// receiver was down (every event still in the outbox); restarted with the
/// receiver up, it delivers every event the first run committed, with the
/// ids it had.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_committed_before_a_kill_during_an_outage_arrive_after_the_restart() {
    let port = free_port();
    let extra =
        format!("events:\n  sinks:\n  - name: hook\n    url: http://127.0.0.1:{port}/events\n");
    let Some(env) = env(&extra).await else {
        return;
    };
    let first = spawn_smo(&env, &["run"], "first.log");
    wait_for(Duration::from_secs(120), "the example converged", || {
        let snap = env.snapshot()?;
        let ready = snap.graphs.iter().filter(|g| {
            g.conditions
                .iter()
                .any(|c| c.kind == smo::store::ConditionKind::Ready && c.status)
        });
        (ready.count() == 3).then_some(())
    })
    .await;
    drop(first); // SIGKILL
    let (store_id, committed, pending) = {
        let store = env.store();
        let ids: Vec<String> = store
            .events(usize::MAX)
            .unwrap()
            .iter()
            .map(|e| format!("{}-{}", store.store_id().unwrap(), e.seq))
            .collect();
        (
            store.store_id().unwrap(),
            ids,
            store.outbox_stats().unwrap().pending,
        )
    };
    assert!(committed.len() >= 6, "{committed:?}");
    assert_eq!(
        pending as usize,
        committed.len(),
        "nothing could be delivered"
    );

    let receiver = Receiver::start_on(&format!("127.0.0.1:{port}"), Got::default(), true);
    let second = spawn_smo(&env, &["run"], "second.log");
    wait_for(
        Duration::from_secs(60),
        "every committed event delivered",
        || {
            let got: Vec<String> = receiver
                .events()
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_owned())
                .collect();
            committed.iter().all(|id| got.contains(id)).then_some(())
        },
    )
    .await;
    drop(second);
    let got = receiver.events();
    assert!(
        got.iter()
            .all(|e| e["id"].as_str().unwrap().starts_with(&store_id)),
        "one store, one id prefix"
    );
}
