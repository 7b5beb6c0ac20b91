//! The daemon's HTTP endpoint end to end: hostile and malformed webhook
//! requests over raw HTTP, an at-least-once delivery that must trigger
//! exactly once, and the metrics exposition read by the real Prometheus
//! parser.
//!
//! Requests are written by hand on a `std` socket (on a blocking thread):
//! the cases need what a well-behaved client cannot send — a declared
//! length that never arrives, a chunked body past the limit, a truncated
//! body.

use crate::daemon::{Env, Running, env, log_of, spawn_smo, wait_for};
use crate::prom::promtool_check_metrics;
use serde_json::{Value, json};
use smo::daemon::RunOptions;
use smo::store::records::ServicePhase;
use smo::store::snapshot::StatusSnapshot;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

const PROJECT: &str = "brussels";
const GRAPH: &str = "image-detection-graph";
/// The example's event-triggered service and its only event (condition ANY).
const VO: &str = "image-compression-vo";
const EVENT: &str = "noise-reduction-busy";
/// `http.maxBodyBytes` by default.
const MAX_BODY: usize = 1 << 20;
/// A pass every second (a no-op pass runs no helm at all), so that "nothing
/// happened" can be checked after passes that would have seen a trigger
/// rather than after a guessed sleep.
const RESYNC_EVERY_SECOND: &str = "intervals:\n  resync: 1s\n";

// ---------------------------------------------------------------------
// Payloads

/// One alert of a webhook payload; [`vo_alert`] starts from one aimed at
/// the brussels VO's event.
#[derive(Debug, Clone)]
struct AlertBuilder {
    status: &'static str,
    labels: BTreeMap<String, Value>,
    fingerprint: String,
    starts_at: String,
}

/// A firing alert with the four smo labels of the VO's event, as the
/// alert rule smo generates would send it.
fn vo_alert() -> AlertBuilder {
    AlertBuilder {
        status: "firing",
        labels: BTreeMap::new(),
        fingerprint: "4f1c2d3e5a6b7c8d".into(),
        starts_at: "2024-05-02T10:15:00.000Z".into(),
    }
    .label("alertname", EVENT)
    .label("smo_project", PROJECT)
    .label("smo_graph", GRAPH)
    .label("smo_service", VO)
    .label("smo_event", EVENT)
}

impl AlertBuilder {
    fn label(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.labels.insert(name.into(), value.into());
        self
    }

    fn without(mut self, name: &str) -> Self {
        self.labels.remove(name);
        self
    }

    fn resolved(self) -> Self {
        self.status("resolved")
    }

    /// Any status, even one Alertmanager never sends.
    fn status(mut self, status: &'static str) -> Self {
        self.status = status;
        self
    }

    fn starts_at(mut self, at: &str) -> Self {
        at.clone_into(&mut self.starts_at);
        self
    }

    fn fingerprint(mut self, fingerprint: &str) -> Self {
        fingerprint.clone_into(&mut self.fingerprint);
        self
    }

    fn json(&self) -> Value {
        json!({
            "status": self.status,
            "labels": self.labels,
            "annotations": {"summary": "noise reduction is busy"},
            "startsAt": self.starts_at,
            "endsAt": if self.status == "resolved" { "2024-05-02T10:20:00.000Z" } else { "0001-01-01T00:00:00Z" },
            "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
            "fingerprint": self.fingerprint,
        })
    }
}

/// A version 4 payload of `alerts`, as Alertmanager 0.25 posts it.
fn payload(alerts: &[AlertBuilder]) -> Value {
    let firing = alerts.iter().any(|a| a.status != "resolved");
    json!({
        "receiver": "smo",
        "status": if firing { "firing" } else { "resolved" },
        "alerts": alerts.iter().map(AlertBuilder::json).collect::<Vec<_>>(),
        "groupLabels": {"alertname": EVENT},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": "{}:{alertname=\"noise-reduction-busy\"}",
        "truncatedAlerts": 0,
    })
}

/// `payload` with one field replaced (or removed when `value` is None).
fn with(mut payload: Value, field: &str, value: Option<Value>) -> Value {
    let object = payload.as_object_mut().expect("a payload is an object");
    match value {
        Some(v) => object.insert(field.into(), v),
        None => object.remove(field),
    };
    payload
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

// ---------------------------------------------------------------------
// Raw HTTP

/// A request written by hand. `Content-Length` is added for the body
/// unless the headers already frame it.
pub(crate) fn raw(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: smo\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let framed = headers.iter().any(|(n, _)| {
        n.eq_ignore_ascii_case("Content-Length") || n.eq_ignore_ascii_case("Transfer-Encoding")
    });
    if !framed && (method == "POST" || !body.is_empty()) {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

/// `POST /alerts` with `Authorization: Bearer <token>`.
/// The VO's firing alert, as the request Alertmanager would send to `env`.
pub(crate) fn vo_alert_request(env: &Env) -> Vec<u8> {
    post_alerts(env, &bytes(&payload(&[vo_alert()])))
}

fn post_alerts(env: &Env, body: &[u8]) -> Vec<u8> {
    let auth = format!("Bearer {}", env.token);
    raw("POST", "/alerts", &[("Authorization", &auth)], body)
}

/// A chunked body of `total` bytes of JSON-ish filler in 64 KiB chunks.
fn chunked(total: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut left = total;
    while left > 0 {
        let n = left.min(64 * 1024);
        out.extend_from_slice(format!("{n:x}\r\n").as_bytes());
        out.extend(std::iter::repeat_n(b' ', n));
        out.extend_from_slice(b"\r\n");
        left -= n;
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }
}

/// Sends `request` (from its own thread: the server may answer before
/// reading all of it) and reads one response: the head, then exactly
/// `Content-Length` bytes. Then closes the connection.
pub(crate) async fn exchange(addr: SocketAddr, request: Vec<u8>) -> Result<Answer, String> {
    tokio::task::spawn_blocking(move || exchange_blocking(addr, &request))
        .await
        .expect("the exchange thread did not panic")
}

fn exchange_blocking(addr: SocketAddr, request: &[u8]) -> Result<Answer, String> {
    let io = |what: &'static str| move |e: std::io::Error| format!("{what}: {e}");
    let stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(io("connect"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(io("timeout"))?;
    let mut reader = stream.try_clone().map_err(io("clone"))?;
    std::thread::scope(|s| {
        let mut writer = &stream;
        // A write error is expected when the server refuses early (413).
        s.spawn(move || {
            let _ = writer.write_all(request);
        });
        let answer = read_answer(&mut reader);
        // Unblocks the writer if the server stopped reading.
        let _ = stream.shutdown(Shutdown::Both);
        answer
    })
}

fn read_answer(stream: &mut TcpStream) -> Result<Answer, String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream
            .read(&mut chunk)
            .map_err(|e| format!("reading the head: {e}"))?;
        if n == 0 {
            return Err(format!(
                "connection closed before the response head ({} bytes: {:?})",
                buf.len(),
                String::from_utf8_lossy(&buf)
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut answer = Answer {
        status,
        headers,
        body: String::new(),
    };
    let len: usize = answer
        .header("Content-Length")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("no Content-Length in {head:?}"))?;
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = stream
            .read(&mut chunk)
            .map_err(|e| format!("reading the body: {e}"))?;
        if n == 0 {
            return Err("connection closed inside the body".into());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    answer.body = String::from_utf8_lossy(&body).into_owned();
    Ok(answer)
}

pub(crate) async fn get(addr: SocketAddr, path: &str) -> Answer {
    exchange(addr, raw("GET", path, &[], b""))
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

// ---------------------------------------------------------------------
// The daemon

/// Polls `/healthz` until it answers 200.
pub(crate) async fn wait_healthy(addr: SocketAddr) {
    let t0 = std::time::Instant::now();
    loop {
        if let Ok(a) = exchange(addr, raw("GET", "/healthz", &[], b"")).await
            && a.status == 200
        {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "/healthz never answered 200"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Starts the daemon and waits for its first pass: the endpoint answers,
/// both graphs' releases are deployed and the VO waits for its trigger
/// (so the desired state the webhook matches against is loaded).
async fn start_and_settle(env: &Env) -> Running {
    let running = env.start(RunOptions::default());
    wait_healthy(env.http).await;
    wait_for(Duration::from_secs(180), "the first pass", || {
        let deployed = |ns: &str, names: [&str; 2]| {
            let r = env.releases(ns);
            names
                .iter()
                .all(|n| r.get(*n).is_some_and(|(_, st)| st == "deployed"))
        };
        let waiting = env.snapshot().is_some_and(|s| {
            vo_record(&s).is_some_and(|r| r.phase == ServicePhase::WaitingForTrigger)
        });
        (deployed("brussels", ["image-detection", "noise-reduction"])
            && deployed("demo2", ["ml-inference", "web-frontend"])
            && waiting)
            .then_some(())
    })
    .await;
    assert!(
        !running.is_finished(),
        "the daemon ended during its first pass"
    );
    running
}

fn vo_record(s: &StatusSnapshot) -> Option<&smo::store::ServiceRecord> {
    s.services
        .iter()
        .find(|r| r.project == PROJECT && r.graph == GRAPH && r.service == VO)
}

/// Waits until two more passes have finished: the second one started after
/// this call, so it saw every trigger recorded before.
async fn two_more_passes(env: &Env) {
    let seq = |s: &StatusSnapshot| s.runs.first().map_or(0, |r| r.seq);
    let before = env.snapshot().as_ref().map_or(0, seq);
    wait_for(Duration::from_secs(60), "two more passes", || {
        env.snapshot().filter(|s| seq(s) >= before + 2)
    })
    .await;
}

/// The "Triggered" events of the snapshot's journal for the VO.
fn triggered_events(s: &StatusSnapshot) -> usize {
    s.events
        .iter()
        .filter(|e| e.kind == "Triggered" && e.service.as_deref() == Some(VO))
        .count()
}

// ---------------------------------------------------------------------
// Hostile requests

/// What a case's answer must carry besides its status.
enum Expect {
    Nothing,
    /// A header with exactly this value.
    Header(&'static str, &'static str),
    /// A 400's reason: one line.
    OneLine,
    /// The JSON counts of an accepted delivery.
    Json(Value),
}

struct Case {
    name: &'static str,
    request: Vec<u8>,
    status: u16,
    expect: Expect,
}

fn case(name: &'static str, request: Vec<u8>, status: u16, expect: Expect) -> Case {
    Case {
        name,
        request,
        status,
        expect,
    }
}

/// Every hostile or malformed request, aimed at the VO's event wherever a
/// body is involved: a request that got through by mistake would trigger it.
fn hostile_cases(env: &Env) -> Vec<Case> {
    let firing = bytes(&payload(&[vo_alert()]));
    let bad = |name, body: Vec<u8>| case(name, post_alerts(env, &body), 400, Expect::OneLine);
    let ignored = |name, alerts: &[AlertBuilder]| {
        let counts =
            json!({"triggered": 0, "updated": 0, "duplicates": 0, "ignored": alerts.len()});
        case(
            name,
            post_alerts(env, &bytes(&payload(alerts))),
            200,
            Expect::Json(counts),
        )
    };
    let wrong_token = format!("Bearer {}x", env.token);
    let basic = format!("Basic {}", env.token);
    let over_limit = (MAX_BODY + 1).to_string();
    let auth = format!("Bearer {}", env.token);
    let thousand_and_one: Vec<AlertBuilder> = (0..1001)
        .map(|i| vo_alert().fingerprint(&format!("{i:016x}")))
        .collect();
    vec![
        case(
            "no token",
            raw("POST", "/alerts", &[], &firing),
            401,
            Expect::Header("WWW-Authenticate", "Bearer"),
        ),
        case(
            "wrong token",
            raw(
                "POST",
                "/alerts",
                &[("Authorization", &wrong_token)],
                &firing,
            ),
            401,
            Expect::Header("WWW-Authenticate", "Bearer"),
        ),
        case(
            "the token under the Basic scheme",
            raw("POST", "/alerts", &[("Authorization", &basic)], &firing),
            401,
            Expect::Header("WWW-Authenticate", "Bearer"),
        ),
        case(
            "the token in the query string",
            raw(
                "POST",
                &format!("/alerts?token={}", env.token),
                &[],
                &firing,
            ),
            401,
            Expect::Nothing,
        ),
        // Declared over the limit, only a little of it sent: refused unread.
        case(
            "Content-Length over the limit",
            raw(
                "POST",
                "/alerts",
                &[("Authorization", &auth), ("Content-Length", &over_limit)],
                &firing,
            ),
            413,
            Expect::Nothing,
        ),
        case(
            "chunked body over the limit",
            raw(
                "POST",
                "/alerts",
                &[("Authorization", &auth), ("Transfer-Encoding", "chunked")],
                &chunked(MAX_BODY + 4096),
            ),
            413,
            Expect::Nothing,
        ),
        bad("truncated JSON", firing[..firing.len() / 2].to_vec()),
        bad(
            "version 3",
            bytes(&with(payload(&[vo_alert()]), "version", Some(json!("3")))),
        ),
        bad(
            "version as a number",
            bytes(&with(payload(&[vo_alert()]), "version", Some(json!(4)))),
        ),
        bad(
            "alerts as an object",
            bytes(&with(
                payload(&[]),
                "alerts",
                Some(json!({"0": vo_alert().json()})),
            )),
        ),
        bad(
            "a label value that is a number",
            bytes(&payload(&[vo_alert().label("severity", 3)])),
        ),
        bad(
            "an alert status that is neither firing nor resolved",
            bytes(&payload(&[vo_alert().status("pending")])),
        ),
        bad(
            "missing alerts",
            bytes(&with(payload(&[vo_alert()]), "alerts", None)),
        ),
        bad("1001 alerts", bytes(&payload(&thousand_and_one))),
        bad("empty body", Vec::new()),
        bad("JSON but an array", bytes(&json!([payload(&[vo_alert()])]))),
        bad("JSON but a string", bytes(&json!("4"))),
        bad("JSON null", b"null".to_vec()),
        bad("not UTF-8", vec![0xff, 0xfe, b'{', 0x80]),
        case(
            "GET /alerts",
            raw("GET", "/alerts", &[("Authorization", &auth)], b""),
            405,
            Expect::Header("Allow", "POST"),
        ),
        case(
            "POST /healthz",
            raw("POST", "/healthz", &[], &firing),
            405,
            Expect::Header("Allow", "GET, HEAD"),
        ),
        case(
            "unknown path",
            raw("POST", "/alert", &[("Authorization", &auth)], &firing),
            404,
            Expect::Nothing,
        ),
        case(
            "path traversal",
            raw("GET", "/../../etc/passwd", &[], b""),
            404,
            Expect::Nothing,
        ),
        ignored(
            "alerts without the smo labels",
            &[
                vo_alert().without("smo_project"),
                vo_alert().without("smo_graph"),
                vo_alert().without("smo_service"),
                vo_alert().without("smo_event"),
                vo_alert().label("smo_event", ""),
            ],
        ),
        ignored(
            "unknown project, graph, service or event",
            &[
                vo_alert().label("smo_project", "demo2"),
                vo_alert().label("smo_graph", "no-such-graph"),
                vo_alert().label("smo_service", "noise-reduction"),
                vo_alert().label("smo_event", "no-such-event"),
            ],
        ),
        ignored(
            "a resolved alert that never fired",
            &[vo_alert().resolved()],
        ),
    ]
}

/// Why `answer` does not meet `case`, if it does not.
fn mismatch(case: &Case, answer: &Result<Answer, String>) -> Option<String> {
    let a = match answer {
        Ok(a) => a,
        Err(e) => return Some(format!("no answer: {e}")),
    };
    if a.status != case.status {
        return Some(format!(
            "status {} (want {}), body {:?}",
            a.status, case.status, a.body
        ));
    }
    match &case.expect {
        Expect::Nothing => None,
        Expect::Header(name, value) => (a.header(name) != Some(value))
            .then(|| format!("header {name}: {:?} (want {value:?})", a.header(name))),
        Expect::OneLine => {
            let one_line = a.body.ends_with('\n') && a.body.matches('\n').count() == 1;
            (!one_line).then(|| format!("reason not one line: {:?}", a.body))
        }
        Expect::Json(want) => {
            (a.json().as_ref() != Some(want)).then(|| format!("body {:?} (want {want})", a.body))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_webhook_requests_get_the_right_status_and_record_nothing() {
    let Some(env) = env(RESYNC_EVERY_SECOND).await else {
        return;
    };
    let running = start_and_settle(&env).await;

    let cases = hostile_cases(&env);
    assert!(cases.len() >= 15);
    let mut failures = Vec::new();
    for case in &cases {
        let answer = exchange(env.http, case.request.clone()).await;
        if let Some(why) = mismatch(case, &answer) {
            failures.push(format!("{}: {why}", case.name));
        }
        assert!(
            !running.is_finished(),
            "the daemon ended after the case {:?}",
            case.name
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases answered wrongly:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );

    // Still serving, and nothing fired, after passes that would have
    // acted on anything recorded.
    assert_eq!(get(env.http, "/healthz").await.status, 200);
    two_more_passes(&env).await;
    let releases = env.releases(PROJECT);
    assert!(!releases.contains_key(VO), "{releases:?}");
    let snap = env.snapshot().expect("a status snapshot");
    let fired: Vec<_> = snap
        .services
        .iter()
        .filter(|s| s.trigger.fired_at.is_some())
        .map(|s| &s.service)
        .collect();
    assert!(fired.is_empty(), "fired: {fired:?}");
    assert_eq!(triggered_events(&snap), 0, "{:?}", snap.events);
    assert!(!running.is_finished(), "the daemon ended");

    running.stop().await;
    let triggers = env.store().triggers().unwrap();
    assert!(triggers.is_empty(), "{triggers:?}");
}

// ---------------------------------------------------------------------
// The tiny_http drain (pull request #290)

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_declared_body_does_not_take_the_daemon_down() {
    let Some(env) = env("").await else { return };
    // A separate process: the failure this guards against is an abort,
    // which would take the whole test binary down with an in-process daemon.
    let mut daemon = spawn_smo(&env, &["run"], "daemon.log");
    wait_healthy(env.http).await;

    // 1 TiB declared, four bytes sent, then the connection closes. The
    // answer itself may or may not come back before the server drains.
    let request = raw(
        "GET",
        "/healthz",
        &[("Content-Length", "1099511627776")],
        b"tiny",
    );
    let first = exchange(env.http, request).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let exited = daemon.0.try_wait().unwrap();
    let log = log_of(&env, "daemon.log");
    let lines: Vec<&str> = log.lines().collect();
    let tail = lines[lines.len().saturating_sub(5)..].join("\n");
    assert!(
        exited.is_none(),
        "the daemon exited ({exited:?}) after a huge declared body; answer {first:?}; log tail:\n{tail}"
    );
    let again = exchange(env.http, raw("GET", "/healthz", &[], b"")).await;
    assert!(
        matches!(&again, Ok(a) if a.status == 200 && a.body == "ok\n"),
        "/healthz after a huge declared body: {again:?}"
    );
    assert!(daemon.0.try_wait().unwrap().is_none(), "the daemon exited");
}

// ---------------------------------------------------------------------
// At-least-once delivery

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_delivery_triggers_exactly_once() {
    let Some(env) = env(RESYNC_EVERY_SECOND).await else {
        return;
    };
    let running = start_and_settle(&env).await;
    let firing = post_alerts(&env, &bytes(&payload(&[vo_alert()])));

    // Three at once (Alertmanager's retry racing its repeat), then two more.
    let concurrent: Vec<_> = (0..3)
        .map(|_| tokio::spawn(exchange(env.http, firing.clone())))
        .collect();
    let mut answers = Vec::new();
    for task in concurrent {
        answers.push(task.await.unwrap());
    }
    for _ in 0..2 {
        answers.push(exchange(env.http, firing.clone()).await);
    }
    let counts: Vec<Value> = answers
        .iter()
        .map(|a| match a {
            Ok(a) if a.status == 200 => a.json().unwrap_or(Value::Null),
            other => panic!("a delivery was not accepted: {other:?}"),
        })
        .collect();
    let first = json!({"triggered": 1, "updated": 0, "duplicates": 0, "ignored": 0});
    let duplicate = json!({"triggered": 0, "updated": 0, "duplicates": 1, "ignored": 0});
    assert_eq!(
        counts.iter().filter(|c| **c == first).count(),
        1,
        "{counts:?}"
    );
    assert_eq!(
        counts.iter().filter(|c| **c == duplicate).count(),
        4,
        "{counts:?}"
    );

    // The engine installs the VO, once.
    wait_for(Duration::from_secs(120), "the VO installed", || {
        env.releases(PROJECT)
            .get(VO)
            .filter(|(_, st)| st == "deployed")
            .cloned()
    })
    .await;
    let snap = wait_for(Duration::from_secs(30), "the VO record Deployed", || {
        env.snapshot()
            .filter(|s| vo_record(s).is_some_and(|r| r.phase == ServicePhase::Deployed))
    })
    .await;
    let vo = vo_record(&snap).unwrap();
    assert!(vo.trigger.fired_at.is_some(), "{:?}", vo.trigger);
    assert_eq!(vo.trigger.alert.as_deref(), Some(EVENT), "{:?}", vo.trigger);
    assert_eq!(triggered_events(&snap), 1, "{:?}", snap.events);
    assert_eq!(env.releases(PROJECT)[VO], (1, "deployed".to_owned()));

    // No re-install on a later pass, nor on a further redelivery.
    let again = exchange(env.http, firing.clone()).await.unwrap();
    assert_eq!(again.json(), Some(duplicate.clone()), "{again:?}");
    two_more_passes(&env).await;
    assert_eq!(env.releases(PROJECT)[VO], (1, "deployed".to_owned()));
    assert_eq!(triggered_events(&env.snapshot().unwrap()), 1);

    // Resolved: recorded (neither a duplicate nor ignored), and without
    // `undeployOnResolve` the VO stays.
    let resolved = post_alerts(&env, &bytes(&payload(&[vo_alert().resolved()])));
    let r = exchange(env.http, resolved.clone()).await.unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.json(),
        Some(json!({"triggered": 0, "updated": 1, "duplicates": 0, "ignored": 0})),
        "a resolution is an update, not a new trigger: {r:?}"
    );
    let r = exchange(env.http, resolved).await.unwrap();
    assert_eq!(r.json(), Some(duplicate), "a repeated resolution: {r:?}");
    two_more_passes(&env).await;
    assert_eq!(env.releases(PROJECT)[VO], (1, "deployed".to_owned()));
    let snap = env.snapshot().unwrap();
    assert_eq!(
        vo_record(&snap).map(|r| r.phase),
        Some(ServicePhase::Deployed)
    );
    assert!(!running.is_finished());

    running.stop().await;
    let store = env.store();
    let triggers = store.triggers().unwrap();
    assert_eq!(triggers.len(), 1, "{triggers:?}");
    assert_eq!(triggers[0].service, VO);
    assert!(triggers[0].resolved_at.is_some(), "{triggers:?}");
    let journal = store.events(10_000).unwrap();
    let triggered = journal
        .iter()
        .filter(|e| e.kind == "Triggered" && e.service.as_deref() == Some(VO))
        .count();
    assert_eq!(triggered, 1, "{journal:?}");
}

// ---------------------------------------------------------------------
// Metrics

/// Every family the daemon declares, each with a sample the first pass
/// and one webhook request must have produced (None: the family's HELP
/// and TYPE lines are enough, as nothing need have happened yet).
const FAMILIES: [(&str, Option<&str>); 13] = [
    (
        "smo_reconcile_duration_seconds",
        Some("smo_reconcile_duration_seconds_bucket{"),
    ),
    ("smo_reconciles_total", Some("smo_reconciles_total{")),
    ("smo_reconcile_errors_total", None),
    (
        "smo_helm_calls_total",
        Some("smo_helm_calls_total{verb=\"upgrade\""),
    ),
    ("smo_graphs", Some("smo_graphs{")),
    ("smo_services", Some("smo_services{")),
    (
        "smo_source_revision_info",
        Some("smo_source_revision_info{"),
    ),
    (
        "smo_source_last_sync_timestamp_seconds",
        Some("smo_source_last_sync_timestamp_seconds "),
    ),
    (
        "smo_solver_duration_seconds",
        Some("smo_solver_duration_seconds_bucket{model=\"placement\""),
    ),
    (
        "smo_webhook_requests_total",
        Some("smo_webhook_requests_total{outcome=\"accepted\"} 1"),
    ),
    (
        "smo_webhook_alerts_total",
        Some("smo_webhook_alerts_total{outcome=\"ignored\"} 1"),
    ),
    ("smo_scaling_decisions_total", None),
    ("smo_build_info", Some("smo_build_info{version=")),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_carry_every_family() {
    let Some(env) = env("").await else { return };
    let running = start_and_settle(&env).await;
    let stray = vo_alert().without("smo_project");
    let r = exchange(env.http, post_alerts(&env, &bytes(&payload(&[stray]))))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{r:?}");

    let m = get(env.http, "/metrics").await;
    assert_eq!(m.status, 200, "{m:?}");
    let content_type = m.header("Content-Type").unwrap_or_default();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    if let Some(checked) = promtool_check_metrics(&m.body) {
        checked.unwrap_or_else(|e| panic!("promtool check metrics: {e}\n{}", m.body));
    }
    let mut missing = Vec::new();
    for (family, sample) in FAMILIES {
        if !m.body.contains(&format!("# TYPE {family} ")) {
            missing.push(format!("# TYPE {family}"));
        }
        if let Some(sample) = sample
            && !m.body.lines().any(|l| l.starts_with(sample))
        {
            missing.push(sample.to_owned());
        }
    }
    assert!(missing.is_empty(), "missing {missing:?} in:\n{}", m.body);

    let ready = get(env.http, "/readyz").await;
    assert_eq!((ready.status, ready.body.as_str()), (200, "ready\n"));
    running.stop().await;
}

/// The PrometheusRule object smo keeps for the brussels graph.
fn rule_object(env: &Env) -> Option<Value> {
    env.object(
        "monitoring.coreos.com/v1",
        "PrometheusRule",
        "monitoring",
        "smo-brussels.image-detection-graph",
    )
}

async fn accepted(env: &Env, alert: AlertBuilder) -> Value {
    let answer = exchange(env.http, post_alerts(env, &bytes(&payload(&[alert]))))
        .await
        .unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    answer.json().expect("a JSON answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undeploy_on_resolve_rearms_and_the_prometheus_rule_object_follows_the_trigger() {
    let Some(env) = env(
        &format!(
            "prometheus:\n  prometheusRule:\n    namespace: monitoring\n    labels: {{release: kube-prometheus}}\n{RESYNC_EVERY_SECOND}"
        ),
    )
    .await
    else {
        return;
    };
    const FILE: &str = "projects/brussels/image-detection-graph.yaml";
    env.edit(
        FILE,
        "condition: ANY\n",
        "condition: ANY\n            undeployOnResolve: true\n",
    );
    // The operator's monitoring namespace (smo does not create it: its
    // absence means no Prometheus Operator would read the rules).
    env.fake
        .put_object(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "monitoring"}}),
        )
        .unwrap();
    let daemon = start_and_settle(&env).await;

    // Armed: one PrometheusRule object for the graph, picked up by the
    // operator's ruleSelector through the configured label.
    let rule = wait_for(Duration::from_secs(30), "the PrometheusRule", || {
        rule_object(&env)
    })
    .await;
    assert_eq!(rule["metadata"]["labels"]["release"], "kube-prometheus");
    let r = &rule["spec"]["groups"][0]["rules"][0];
    assert_eq!(r["alert"], EVENT);
    assert_eq!(r["labels"]["smo_service"], VO);
    assert_eq!(r["labels"]["severity"], "warning");

    // Fired: installed, the rule object removed.
    assert_eq!(accepted(&env, vo_alert()).await["triggered"], 1);
    wait_for(Duration::from_secs(60), "the VO installed", || {
        env.releases(PROJECT).get(VO).cloned()
    })
    .await;
    wait_for(Duration::from_secs(30), "the rule object deleted", || {
        rule_object(&env).is_none().then_some(())
    })
    .await;

    // Resolved: uninstalled again, the trigger re-armed with its rule.
    accepted(&env, vo_alert().resolved()).await;
    wait_for(Duration::from_secs(60), "the VO uninstalled", || {
        (!env.releases(PROJECT).contains_key(VO)).then_some(())
    })
    .await;
    wait_for(Duration::from_secs(30), "the rule object back", || {
        rule_object(&env)
    })
    .await;
    let snap = wait_for(Duration::from_secs(30), "the VO waiting again", || {
        let s = env.snapshot()?;
        let vo = vo_record(&s)?;
        let rearmed = s.events.iter().any(|e| e.kind == "Rearmed");
        (rearmed && vo.phase == ServicePhase::WaitingForTrigger && vo.trigger.armed).then_some(s)
    })
    .await;
    assert_eq!(vo_record(&snap).unwrap().trigger.pending, [EVENT]);

    // A late redelivery of the old firing stays a duplicate.
    assert_eq!(accepted(&env, vo_alert()).await["duplicates"], 1);

    // Suspending the graph removes its rules; resuming brings them back.
    env.edit(FILE, "hdaGraph:\n", "hdaGraph:\n  suspend: true\n");
    wait_for(Duration::from_secs(30), "no rule while suspended", || {
        rule_object(&env).is_none().then_some(())
    })
    .await;
    env.edit(FILE, "hdaGraph:\n  suspend: true\n", "hdaGraph:\n");
    wait_for(Duration::from_secs(60), "the rule after resuming", || {
        rule_object(&env)
    })
    .await;
    two_more_passes(&env).await;
    assert!(
        !env.releases(PROJECT).contains_key(VO),
        "the duplicate re-installed the VO"
    );

    // The alert firing again (a new instance) deploys it again.
    let again = vo_alert().starts_at("2024-05-02T11:00:00.000Z");
    assert_eq!(accepted(&env, again).await["triggered"], 1);
    wait_for(Duration::from_secs(60), "the VO installed again", || {
        env.releases(PROJECT).get(VO).cloned()
    })
    .await;
    daemon.stop().await;
}

// ---------------------------------------------------------------------
// Nothing acknowledged before the daemon can act

/// Between the start and the first loaded snapshot (here: the Git remote
/// is unreachable), a valid delivery gets a 503 — Alertmanager retries —
/// instead of a 200 "ignored" that would lose it, and `/readyz` says why.
/// Once the remote is up, Alertmanager's retry of the same alert is
/// accepted and recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_before_the_first_snapshot_are_refused_with_503_then_accepted() {
    use crate::sources::git;
    let served = tempfile::tempdir().unwrap();
    let origin = served.path().join("origin");
    crate::daemon::copy_dir(&crate::support::repo().join("state-example"), &origin);
    git(&origin, &["init", "-q"]);
    git(&origin, &["add", "-A"]);
    git(&origin, &["commit", "-qm", "example state"]);
    // Nobody listens on this port until the git daemon starts there.
    let port = crate::daemon::free_port();
    let source = format!(
        "source:\n  git:\n    url: git://127.0.0.1:{port}/origin\n    ref: {{branch: main}}\n    interval: 1s\n"
    );
    let Some(env) = crate::daemon::env_with("", true, Some(&source)).await else {
        return;
    };
    let running = env.start(RunOptions::default());
    wait_healthy(env.http).await;

    let ready = get(env.http, "/readyz").await;
    assert_eq!(ready.status, 503, "{ready:?}");
    assert!(
        ready.body.contains("starting: no desired state loaded yet"),
        "{ready:?}"
    );
    let firing = post_alerts(&env, &bytes(&payload(&[vo_alert()])));
    let refused = exchange(env.http, firing.clone()).await.unwrap();
    assert_eq!(refused.status, 503, "{refused:?}");

    // The remote comes up; Alertmanager keeps retrying the same alert.
    let _git = crate::sources::git_daemon_on(served.path(), port);
    let t0 = std::time::Instant::now();
    let accepted = loop {
        let answer = exchange(env.http, firing.clone()).await.unwrap();
        if answer.status != 503 {
            break answer;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "still refused after the remote came up: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(accepted.status, 200, "{accepted:?}");
    assert_eq!(
        accepted.json(),
        Some(json!({"triggered": 1, "updated": 0, "duplicates": 0, "ignored": 0})),
        "{accepted:?}"
    );
    running.stop().await;
    let triggers = env.store().triggers().unwrap();
    assert_eq!(triggers.len(), 1, "{triggers:?}");
    assert_eq!(
        (triggers[0].service.as_str(), triggers[0].event.as_str()),
        (VO, EVENT)
    );
}
