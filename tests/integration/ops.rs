//! Running as a service: the systemd notification protocol, JSON logs with
//! the reconcile's span fields, and secrets kept out of the logs. The real
//! binary as a child process, against the fake Karmada with the real helm.

use crate::daemon::{Smo, env, wait_for};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Datagrams received until `until` matches one, or `limit` passes.
fn receive_until(socket: &UnixDatagram, limit: Duration, until: &str) -> Vec<String> {
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let t0 = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while t0.elapsed() < limit {
        if let Ok(n) = socket.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            let done = text.contains(until);
            got.push(text);
            if done {
                break;
            }
        }
    }
    got
}

fn post(addr: std::net::SocketAddr, token: &str, body: &Value) -> u16 {
    let body = serde_json::to_vec(body).unwrap();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST /alerts HTTP/1.1\r\nHost: smo\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(&body).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn firing_vo_alert() -> Value {
    json!({
        "version": "4", "status": "firing", "receiver": "smo", "groupKey": "k",
        "alerts": [{
            "status": "firing",
            "labels": {
                "alertname": "noise-reduction-busy", "smo_project": "brussels",
                "smo_graph": "image-detection-graph", "smo_service": "image-compression-vo",
                "smo_event": "noise-reduction-busy",
            },
            "startsAt": "2026-01-01T00:00:00Z", "fingerprint": "0123456789abcdef",
        }],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_watchdog_json_logs_and_no_secret_in_them() {
    let Some(env) = env("log:\n  format: json\n  level: debug\n").await else {
        return;
    };
    let sock_path = env.data.path().join("notify.sock");
    let socket = UnixDatagram::bind(&sock_path).unwrap();
    let log_path = env.data.path().join("daemon.log");
    let mut daemon = Smo(Command::new(env!("CARGO_BIN_EXE_smo"))
        .args(["run", "--config"])
        .arg(&env.config)
        .env("NOTIFY_SOCKET", &sock_path)
        // 400 ms: a ping every 200 ms.
        .env("WATCHDOG_USEC", "400000")
        .env_remove("SMO_LOG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .expect("smo starts"));

    // READY=1 with the revision once the first snapshot is loaded, then
    // watchdog pings.
    let got = receive_until(&socket, Duration::from_secs(60), "READY=1");
    let ready = got.iter().find(|m| m.contains("READY=1"));
    assert!(
        ready.is_some_and(|m| m.contains("STATUS=revision ")),
        "{got:?}; log:\n{}",
        std::fs::read_to_string(&log_path).unwrap_or_default()
    );
    let pings = receive_until(&socket, Duration::from_secs(2), "never")
        .iter()
        .filter(|m| *m == "WATCHDOG=1")
        .count();
    assert!(
        pings >= 3,
        "{pings} watchdog pings in 2 s at a 200 ms period"
    );

    // The webhook with the right token (the VO deploys) and a wrong one.
    wait_for(Duration::from_secs(120), "the first pass", || {
        env.releases("brussels")
            .contains_key("noise-reduction")
            .then_some(())
    })
    .await;
    assert_eq!(post(env.http, &env.token, &firing_vo_alert()), 200);
    assert_eq!(post(env.http, "not-the-token", &firing_vo_alert()), 401);
    wait_for(Duration::from_secs(60), "the VO installed", || {
        env.releases("brussels")
            .contains_key("image-compression-vo")
            .then_some(())
    })
    .await;

    // SIGTERM: STOPPING=1, then a clean exit.
    let _ = Command::new("kill")
        .args(["-TERM", &daemon.0.id().to_string()])
        .status();
    let got = receive_until(&socket, Duration::from_secs(30), "STOPPING=1");
    assert!(got.iter().any(|m| m.contains("STOPPING=1")), "{got:?}");
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = daemon.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "{status:?}");

    // Every line is a JSON object with time, level and target; the
    // reconcile's lines carry project, graph and revision, a service's
    // helm and API calls the service too.
    let log = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() > 10, "{} lines", lines.len());
    for l in &lines {
        assert!(
            l["timestamp"].is_string() && l["level"].is_string() && l["target"].is_string(),
            "{l}"
        );
    }
    let in_span = |name: &str| {
        lines.iter().find(|l| {
            l["spans"]
                .as_array()
                .is_some_and(|spans| spans.iter().any(|s| s["name"] == name))
        })
    };
    let reconcile = in_span("reconcile").expect("a line inside a reconcile");
    let span = reconcile["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "reconcile")
        .unwrap();
    assert!(
        span["project"].is_string() && span["graph"].is_string() && span["revision"].is_string(),
        "{span}"
    );
    let service = in_span("service").expect("a line inside a service's calls");
    assert!(
        service["spans"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "service" && s["service"].is_string()),
        "{service}"
    );

    // The bearer token appears nowhere, not even after a failed attempt.
    assert!(
        !log.contains(&env.token),
        "the webhook token leaked into the log"
    );
}
