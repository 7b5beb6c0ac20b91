//! Webhook benchmarks: `cargo bench --bench webhook [-- GRAPHS DELIVERIES]`.
//!
//! Prints figures; asserts nothing about time. The release `smo` binary runs
//! as a child process against the fake Karmada (real HTTP) with the real
//! helm (`SMO_HELM`), its endpoint on a loopback port with a bearer token:
//!
//! 1. webhook → first helm call: GRAPHS (default 20) graphs of one
//!    event-triggered service each wait for their event; for each in turn
//!    a firing alert is POSTed, and the time until helm's first request
//!    for that release reaches the fake is measured (a fired alert skips
//!    the work queue's debounce), as is the time until the POST's 200 (the
//!    fired event is committed before the answer);
//! 2. throughput over 8 concurrent loopback connections, DELIVERIES
//!    (default 5000) requests or 30 s per run, whichever ends first:
//!    redeliveries of an already-fired alert (answered from a read
//!    transaction), alerts for unknown graphs (ignored without touching
//!    the store), and new instances of one already-fired event (distinct
//!    `startsAt`: one durable commit each).
//!
//! `SMO_BENCH_STALLED_SINK=1` adds an event sink whose receiver accepts
//! connections and never answers (each delivery waits for its 10 s
//! timeout, then retries): the figures with and without it show whether a
//! stalled receiver slows reconciliation.

use fake_karmada::testing::copy_dir;
use fake_karmada::{FakeKarmada, LoggedRequest};
use serde_json::{Value, json};
use smo::desired::loader::load_root;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

mod support;

const CLUSTERS: usize = 3;
const PROJECT: &str = "bench";
/// The one event of every graph's service.
const EVENT: &str = "load-high";
const TOKEN: &str = "bench-webhook-token";
/// Alertmanager posts one group at a time per receiver, but several
/// receivers or replicas post concurrently; 8 is well past what one
/// Alertmanager does and still leaves the daemon a core of 2.
const CONNECTIONS: usize = 8;
/// Bounds each throughput run, should the daemon be much slower than
/// expected.
const RUN_LIMIT: Duration = Duration::from_secs(30);

fn main() {
    if !support::started_by_cargo_bench() {
        println!("webhook bench: built, not run (run it with `cargo bench --bench webhook`)");
        return;
    }
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let graphs = args.first().copied().unwrap_or(20).max(1);
    let deliveries = args.get(1).copied().unwrap_or(5000);
    let helm = support::helm_or_exit("webhook");
    support::runtime().block_on(bench(graphs, deliveries, &helm));
}

async fn bench(graphs: usize, deliveries: usize, helm: &Path) {
    let fake = support::fake(CLUSTERS).await;
    fake.put_object(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": PROJECT}}),
    )
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    seed(dir.path(), graphs);
    let port = free_port();
    // Never accepted: connections complete in the kernel's backlog and
    // the request is never read.
    let stalled = std::env::var_os("SMO_BENCH_STALLED_SINK")
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind the stalled sink"));
    let sink = stalled.as_ref().map(|l| l.local_addr().unwrap());
    if let Some(addr) = sink {
        println!("with a stalled event sink at {addr}");
    }
    let cfg = config(dir.path(), &fake, helm, port, sink);
    let log = dir.path().join("smo.log");
    let mut child = support::daemon(&cfg, "warn", Some(&log));
    let status = dir.path().join("var/status.json");
    if !wait_waiting(&status, graphs, &mut child, Duration::from_secs(120)).await {
        support::stop(&mut child);
        eprintln!(
            "webhook bench: the daemon did not reach {graphs} waiting services\n{}",
            tail(&log)
        );
        std::process::exit(1);
    }
    support::wait_idle(&fake).await;

    let url = format!("http://127.0.0.1:{port}/alerts");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONNECTIONS)
        .build()
        .unwrap();

    // 1. Webhook → first helm call, and the acknowledgement.
    let mut to_helm = Vec::new();
    let mut acks = Vec::new();
    for g in 0..graphs {
        let release = service_id(g);
        fake.clear_requests();
        let body = alert(&format!("g{g}"), &release, &starts_at(0), "firing");
        let t = Instant::now();
        let answer = client
            .post(&url)
            .bearer_auth(TOKEN)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await;
        match answer {
            Ok(r) if r.status() == 200 => {}
            Ok(r) => eprintln!("graph g{g}: webhook answered {}", r.status()),
            Err(e) => eprintln!("graph g{g}: webhook failed: {e}"),
        }
        acks.push(ms(t.elapsed()));
        loop {
            if fake.requests().iter().any(|r| is_helm_for(r, &release)) {
                to_helm.push(ms(t.elapsed()));
                break;
            }
            if t.elapsed() > Duration::from_secs(30) {
                eprintln!("graph g{g}: no helm request within 30 s of its alert");
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        support::wait_idle(&fake).await;
    }
    let installed = deployed(&status);
    println!(
        "webhook→helm: {}; installed {installed}/{graphs}",
        summary(&mut to_helm)
    );
    println!("webhook ack: {}", summary(&mut acks));

    // 2. Throughput. g0's alert fired above: the same body is a duplicate.
    fake.clear_requests();
    let duplicate = alert("g0", &service_id(0), &starts_at(0), "firing");
    let run = throughput(&client, &url, deliveries, move |_| duplicate.clone()).await;
    println!("throughput duplicates: {run}");
    let run = throughput(&client, &url, deliveries, |i| {
        alert(&format!("unknown-{i}"), "nobody", &starts_at(0), "firing")
    })
    .await;
    println!("throughput unknown graphs (ignored): {run}");
    let run = throughput(&client, &url, deliveries, |i| {
        alert("g0", &service_id(0), &starts_at(i + 1), "firing")
    })
    .await;
    println!("throughput new instances of one event (one commit each): {run}");
    support::wait_idle(&fake).await;
    println!(
        "helm requests during the throughput runs: {} (expect 0: the refreshed graph is in sync)",
        fake.requests()
            .iter()
            .filter(|r| fake_karmada::testing::is_helm_storage(r))
            .count()
    );

    let rss = smo::daemon::usage::of(&child.id().to_string()).map(|u| u.rss_kib);
    let alive = child.try_wait().unwrap().is_none();
    support::stop(&mut child);
    println!(
        "daemon after the runs: alive={alive} rss_kib={}",
        rss.unwrap_or(0)
    );
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let noted: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();
    println!("daemon log: {} warnings or errors", noted.len());
    for line in noted.iter().take(5) {
        println!("  {line}");
    }
    if !alive {
        eprintln!("{}", tail(&log));
    }
}

/// One throughput run's result.
struct Run {
    done: usize,
    non_200: usize,
    failed: usize,
    elapsed: Duration,
    /// Of each request, in ms.
    latencies: Vec<f64>,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut latencies = self.latencies.clone();
        latencies.sort_by(f64::total_cmp);
        let pct = |p: f64| {
            latencies
                .get(((latencies.len().max(1) - 1) as f64 * p).round() as usize)
                .copied()
                .unwrap_or(0.0)
        };
        write!(
            f,
            "{:.0} req/s, errors={} (non-200 {}, failed {}), n={} in {} ms; latency p50={:.1} ms p99={:.1} ms max={:.1} ms, {} over 1 s",
            self.done as f64 / self.elapsed.as_secs_f64(),
            self.non_200 + self.failed,
            self.non_200,
            self.failed,
            self.done,
            self.elapsed.as_millis(),
            pct(0.5),
            pct(0.99),
            pct(1.0),
            latencies.iter().filter(|&&l| l > 1000.0).count(),
        )
    }
}

/// Sends up to `n` bodies made by `body(i)` over CONNECTIONS concurrent
/// connections, until all are answered or RUN_LIMIT passed.
async fn throughput<F>(client: &reqwest::Client, url: &str, n: usize, body: F) -> Run
where
    F: Fn(usize) -> String + Send + Sync + 'static,
{
    let body = Arc::new(body);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let (client, url, body, next) = (
            client.clone(),
            url.to_owned(),
            Arc::clone(&body),
            Arc::clone(&next),
        );
        tasks.push(tokio::spawn(async move {
            let (mut done, mut non_200, mut failed) = (0, 0, 0);
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n || start.elapsed() > RUN_LIMIT {
                    break;
                }
                let t = Instant::now();
                let answer = client
                    .post(&url)
                    .bearer_auth(TOKEN)
                    .header("Content-Type", "application/json")
                    .body(body(i))
                    .send()
                    .await;
                done += 1;
                match answer {
                    // Read the body so the connection goes back to the pool.
                    Ok(r) if r.status() == 200 => drop(r.bytes().await),
                    Ok(r) => {
                        if non_200 == 0 {
                            eprintln!("first non-200 answer: {}", r.status());
                        }
                        non_200 += 1;
                        drop(r.bytes().await);
                    }
                    Err(e) => {
                        if failed == 0 {
                            eprintln!("first failed request: {e}");
                        }
                        failed += 1;
                    }
                }
                latencies.push(ms(t.elapsed()));
            }
            (done, non_200, failed, latencies)
        }));
    }
    let mut run = Run {
        done: 0,
        non_200: 0,
        failed: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    for t in tasks {
        let (d, n, f, l) = t.await.unwrap();
        run.done += d;
        run.non_200 += n;
        run.failed += f;
        run.latencies.extend(l);
    }
    run.elapsed = start.elapsed();
    run
}

/// An Alertmanager v4 payload with one alert aimed at `graph`'s service.
fn alert(graph: &str, service: &str, starts_at: &str, status: &str) -> String {
    let fingerprint = format!("{:016x}", fnv(&format!("{graph}/{service}/{EVENT}")));
    json!({
        "version": "4",
        "status": status,
        "receiver": "smo",
        "groupKey": format!("{{}}:{{smo_graph=\"{graph}\"}}"),
        "groupLabels": {"smo_graph": graph},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "truncatedAlerts": 0,
        "alerts": [{
            "status": status,
            "labels": {
                "alertname": EVENT,
                "smo_project": PROJECT,
                "smo_graph": graph,
                "smo_service": service,
                "smo_event": EVENT,
            },
            "annotations": {},
            "startsAt": starts_at,
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "",
            "fingerprint": fingerprint,
        }],
    })
    .to_string()
}

/// Alertmanager's fingerprints are hashes of the label set; any stable
/// hash does here.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// A distinct, well-formed start time per `i` (milliseconds after a base).
fn starts_at(i: usize) -> String {
    let (s, ms) = (i / 1000, i % 1000);
    format!(
        "2026-01-01T{:02}:{:02}:{:02}.{ms:03}Z",
        (s / 3600) % 24,
        (s / 60) % 60,
        s % 60
    )
}

fn service_id(graph: usize) -> String {
    format!("g{graph}-vo")
}

/// A request helm made for `release`: it reads its storage (Secrets) by
/// label selector `name=<release>` or by the storage object's name.
fn is_helm_for(r: &LoggedRequest, release: &str) -> bool {
    if !fake_karmada::testing::is_helm_storage(r) {
        return false;
    }
    if r.path.contains(&format!("sh.helm.release.v1.{release}.")) {
        return true;
    }
    let query = r
        .query
        .replace("%3D", "=")
        .replace("%3d", "=")
        .replace("%2C", ",")
        .replace("%2c", ",");
    let selector = format!("name={release}");
    query
        .split(['&', ','])
        .any(|p| p.strip_prefix("labelSelector=").unwrap_or(p) == selector)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn summary(values: &mut [f64]) -> String {
    if values.is_empty() {
        return "no samples".into();
    }
    values.sort_by(f64::total_cmp);
    let pct = |p: f64| values[((values.len() as f64 - 1.0) * p).round() as usize];
    format!(
        "p50={:.1} ms p95={:.1} ms max={:.1} ms (n={})",
        pct(0.5),
        pct(0.95),
        values[values.len() - 1],
        values.len()
    )
}

/// Services in `status.json`, or none while it is absent or being replaced.
fn services(status: &Path) -> Vec<Value> {
    std::fs::read(status)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v["services"].as_array().cloned())
        .unwrap_or_default()
}

fn deployed(status: &Path) -> usize {
    services(status)
        .iter()
        .filter(|s| s["phase"] == "Deployed")
        .count()
}

/// Until every graph's service waits for its trigger (the first pass is
/// done); false if the daemon exited or `limit` passed.
async fn wait_waiting(status: &Path, graphs: usize, child: &mut Child, limit: Duration) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        let waiting = services(status)
            .iter()
            .filter(|s| s["phase"] == "WaitingForTrigger")
            .count();
        if waiting == graphs {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// A port that was free a moment ago (the daemon binds it by number).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

fn config(
    dir: &Path,
    fake: &FakeKarmada,
    helm: &Path,
    port: u16,
    sink: Option<std::net::SocketAddr>,
) -> PathBuf {
    let token = dir.join("webhook-token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let cfg = dir.join("config.yaml");
    let events = sink.map_or_else(String::new, |addr| {
        format!("events:\n  sinks:\n  - name: stalled\n    url: http://{addr}/events\n    timeout: 10s\n")
    });
    std::fs::write(
        &cfg,
        format!(
            "source:\n  dir: {}\n  debounce: 50ms\nstateDir: {}\nkarmada:\n  kubeconfig: {}\nhelm:\n  binary: {}\n  timeout: 60s\nlog:\n  level: warn\nhttp:\n  listen: 127.0.0.1:{port}\n  tokenFile: {}\nprometheus:\n  rulesDir: {}\n{events}",
            dir.join("state").display(),
            dir.join("var").display(),
            fake.kubeconfig_path().display(),
            helm.display(),
            token.display(),
            dir.join("rules").display(),
        ),
    )
    .unwrap();
    cfg
}

/// One service, deployed only when its event fires.
fn descriptor(graph: usize) -> String {
    let id = service_id(graph);
    format!(
        "hdaGraph:\n  imVersion: 0.4.0\n  id: g{graph}\n  services:\n    - id: {id}\n      deployment:\n        trigger:\n          event:\n            condition: ANY\n            events:\n              - id: {EVENT}\n                condition:\n                  promQuery: vector(1)\n                  gracePeriod: 0s\n        intent:\n          compute: {{cpu: small, ram: small, storage: small, gpu: {{enabled: False}}}}\n          connectionPoints: []\n      artifact:\n        ociImage: charts/service\n        valuesOverwrite:\n          image: {{repository: registry.example/{id}, tag: \"1\"}}\n          service: {{port: 80}}\n"
    )
}

fn seed(dir: &Path, graphs: usize) {
    let root = dir.join("state");
    let chart =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("state-example/projects/demo2/charts/service");
    copy_dir(
        &chart,
        &root.join(format!("projects/{PROJECT}/charts/service")),
    );
    for g in 0..graphs {
        std::fs::write(
            root.join(format!("projects/{PROJECT}/g{g}.yaml")),
            descriptor(g),
        )
        .unwrap();
    }
    let state = load_root(&root).unwrap();
    assert!(!state.has_errors(), "{:?}", state.findings.first());
    std::fs::create_dir_all(dir.join("var")).unwrap();
    std::fs::create_dir_all(dir.join("rules")).unwrap();
}
