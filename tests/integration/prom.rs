//! Real Prometheus and Alertmanager processes for the conditional-deployment and scaling tests.
//!
//! Support for end-to-end tests: each server runs on a free loopback port
//! in its own temporary directory (configuration, storage, log), is killed
//! on drop, and a wait that times out panics with the tail of its log.
//! Alongside: a test exporter whose request counters rise at a rate the test
//! sets, a recording webhook receiver, and `promtool` checks. The tests at
//! the bottom prove the harness and the real chain
//! (exporter → Prometheus → smo's adapter; rule → Prometheus → Alertmanager
//! → webhook).
//!
//! The harness's waits are blocking (std sockets and sleeps): called from
//! an async test they hold one worker for at most their timeout, which is
//! harmless because the exporter and the sink serve from their own threads.

use crate::daemon::free_port;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fake_karmada::testing::tool;
use smo::adapters::prometheus::{Prometheus, PrometheusConfig, PrometheusError};

/// Lines of a server's log shown when it fails.
const LOG_TAIL_LINES: usize = 40;

/// A YAML scalar for any string: JSON strings are YAML.
fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// A child process in its own temporary directory, logging to a file there.
struct Process {
    name: &'static str,
    child: Mutex<Child>,
    log: PathBuf,
    /// Held so the directory outlives the process (fields drop after
    /// `Drop::drop` has killed it).
    _dir: tempfile::TempDir,
}

impl Process {
    fn spawn(
        name: &'static str,
        binary: &Path,
        dir: tempfile::TempDir,
        args: impl Fn(&Path) -> Vec<String>,
    ) -> Process {
        let log = dir.path().join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("create the log file");
        let err = out.try_clone().expect("clone the log file handle");
        let child = Command::new(binary)
            .args(args(dir.path()))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({}): {e}", binary.display()));
        Process {
            name,
            child: Mutex::new(child),
            log,
            _dir: dir,
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }

    /// Polls `GET path` until it answers 200; panics with the log tail when
    /// the process exits or the time is up.
    fn wait_ready(&self, addr: &str, path: &str, timeout: Duration) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.lock().unwrap().try_wait().expect("try_wait") {
                panic!(
                    "{} exited with {status} before it was ready; last lines of its log:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            if http_get(addr, path).is_some_and(|(status, _)| status == 200) {
                return;
            }
            if start.elapsed() > timeout {
                panic!(
                    "{} at {addr} was not ready within {timeout:?}; last lines of its log:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A minimal blocking HTTP/1.0 GET (reqwest here has no blocking client):
/// status and body, or None when nothing answers.
fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let socket = addr.parse().ok()?;
    let mut stream = TcpStream::connect_timeout(&socket, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let response = String::from_utf8_lossy(&response);
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_owned());
    Some((status, body))
}

/// A Prometheus server: scrape and rule evaluation every second.
pub struct PromServer {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    addr: String,
    process: Process,
}

impl PromServer {
    /// Loads `rules_dir/*.yml` and `*.yaml`, sends alerts to `alertmanager`
    /// (a base URL) and scrapes `scrape_targets` (`127.0.0.1:PORT`) in one
    /// job `smo-test`. None when the tool is missing (the test is skipped).
    pub fn start(
        rules_dir: &Path,
        alertmanager: Option<&str>,
        scrape_targets: &[String],
    ) -> Option<PromServer> {
        let binary = tool("SMO_PROMETHEUS")?;
        let dir = tempfile::tempdir().expect("a temporary directory");
        Some(Self::spawn_in(
            &binary,
            dir,
            rules_dir,
            alertmanager,
            scrape_targets,
        ))
    }

    /// A Prometheus whose TSDB (`DIR/data`) is first filled from an
    /// OpenMetrics text by `promtool tsdb create-blocks-from openmetrics`;
    /// it scrapes nothing and loads no rules. None when a tool is missing.
    /// Prometheus keeps blocks only within its retention (15 days) and
    /// the text must end with `# EOF`.
    pub fn start_backfilled(openmetrics: &str) -> Option<PromServer> {
        let binary = tool("SMO_PROMETHEUS")?;
        let promtool = tool("SMO_PROMTOOL")?;
        let dir = tempfile::tempdir().expect("a temporary directory");
        let input = dir.path().join("history.om");
        std::fs::write(&input, openmetrics).expect("write the history");
        let output = Command::new(promtool)
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(&input)
            .arg(dir.path().join("data"))
            .output()
            .expect("run promtool");
        assert!(
            output.status.success(),
            "promtool could not backfill: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let no_rules = dir.path().join("no-rules");
        Some(Self::spawn_in(&binary, dir, &no_rules, None, &[]))
    }

    fn spawn_in(
        binary: &Path,
        dir: tempfile::TempDir,
        rules_dir: &Path,
        alertmanager: Option<&str>,
        scrape_targets: &[String],
    ) -> PromServer {
        let rules_dir = std::path::absolute(rules_dir).expect("an absolute rules dir");
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        std::fs::write(
            dir.path().join("prometheus.yml"),
            prometheus_config(&rules_dir, alertmanager, scrape_targets),
        )
        .expect("write prometheus.yml");
        let listen = addr.clone();
        let process = Process::spawn("prometheus", binary, dir, move |d| {
            vec![
                format!("--config.file={}", d.join("prometheus.yml").display()),
                format!("--storage.tsdb.path={}", d.join("data").display()),
                format!("--web.listen-address={listen}"),
                "--web.enable-lifecycle".into(),
                // The default (1m) would delay every re-sent alert in the tests.
                "--rules.alert.resend-delay=1s".into(),
            ]
        });
        PromServer {
            url: format!("http://{addr}"),
            addr,
            process,
        }
    }

    /// Polls `/-/ready`; panics with the log tail on timeout.
    pub fn wait_ready(&self, timeout: Duration) {
        self.process.wait_ready(&self.addr, "/-/ready", timeout);
    }

    pub fn log_tail(&self) -> String {
        self.process.log_tail()
    }
}

fn prometheus_config(rules_dir: &Path, alertmanager: Option<&str>, targets: &[String]) -> String {
    let mut yaml = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
         rule_files:\n  - {}\n  - {}\n",
        yaml_str(&rules_dir.join("*.yml").display().to_string()),
        yaml_str(&rules_dir.join("*.yaml").display().to_string()),
    );
    if let Some(url) = alertmanager {
        let url = reqwest::Url::parse(url).expect("an Alertmanager URL");
        let host = url.host_str().expect("a host in the Alertmanager URL");
        let port = url.port_or_known_default().expect("a port");
        yaml.push_str(&format!(
            "alerting:\n  alertmanagers:\n    - scheme: {}\n      path_prefix: {}\n      \
             static_configs:\n        - targets: [{}]\n",
            url.scheme(),
            yaml_str(url.path()),
            yaml_str(&format!("{host}:{port}")),
        ));
    }
    if !targets.is_empty() {
        let list: Vec<String> = targets.iter().map(|t| yaml_str(t)).collect();
        yaml.push_str(&format!(
            "scrape_configs:\n  - job_name: smo-test\n    static_configs:\n      - targets: [{}]\n",
            list.join(", ")
        ));
    }
    yaml
}

/// An Alertmanager that sends every group to one webhook, quickly.
pub struct AlertmanagerServer {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    addr: String,
    process: Process,
}

impl AlertmanagerServer {
    /// Receiver `smo` → `webhook_url` (resolved alerts too), with a bearer
    /// token read from `token_file` when given. Groups by the labels smo's
    /// rules carry; waits of 1s so a test sees a notification in seconds.
    pub fn start(webhook_url: &str, token_file: Option<&Path>) -> Option<AlertmanagerServer> {
        let binary = tool("SMO_ALERTMANAGER")?;
        let dir = tempfile::tempdir().expect("a temporary directory");
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut http_config = String::new();
        if let Some(file) = token_file {
            let file = std::path::absolute(file).expect("an absolute token file path");
            http_config = format!(
                "        http_config:\n          authorization:\n            credentials_file: {}\n",
                yaml_str(&file.display().to_string())
            );
        }
        let config = format!(
            "route:\n  receiver: smo\n  group_by: [alertname, smo_project, smo_graph, smo_service]\n  \
             group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n\
             receivers:\n  - name: smo\n    webhook_configs:\n      - url: {}\n        send_resolved: true\n{http_config}",
            yaml_str(webhook_url)
        );
        std::fs::write(dir.path().join("alertmanager.yml"), config)
            .expect("write alertmanager.yml");
        let listen = addr.clone();
        let process = Process::spawn("alertmanager", &binary, dir, move |d| {
            vec![
                format!("--config.file={}", d.join("alertmanager.yml").display()),
                format!("--storage.path={}", d.join("data").display()),
                format!("--web.listen-address={listen}"),
                // Empty disables clustering: its gossip needs a non-loopback
                // address to advertise, which a loopback-only machine lacks.
                "--cluster.listen-address=".into(),
            ]
        });
        Some(AlertmanagerServer {
            url: format!("http://{addr}"),
            addr,
            process,
        })
    }

    /// Polls `/-/ready`; panics with the log tail on timeout.
    pub fn wait_ready(&self, timeout: Duration) {
        self.process.wait_ready(&self.addr, "/-/ready", timeout);
    }

    pub fn log_tail(&self) -> String {
        self.process.log_tail()
    }
}

/// A counter rising at a rate that changes piecewise: the value at a time
/// is the integral of the rate, so a rate change never jumps the counter.
#[derive(Debug, Clone)]
struct Counter {
    /// Value at `since`.
    base: f64,
    since: Instant,
    per_second: f64,
}

impl Counter {
    fn value_at(&self, now: Instant) -> f64 {
        self.base + self.per_second * now.saturating_duration_since(self.since).as_secs_f64()
    }

    fn set_rate(&mut self, now: Instant, per_second: f64) {
        self.base = self.value_at(now);
        self.since = now;
        self.per_second = per_second;
    }
}

type Counters = Arc<Mutex<BTreeMap<String, Counter>>>;

/// Serves `/metrics` with `flask_http_request_total{service="NAME"}` per
/// service, each rising at the rate last set (0 at the start).
pub struct Exporter {
    /// `127.0.0.1:PORT`, a scrape target.
    pub addr: String,
    counters: Counters,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl Exporter {
    pub fn start(services: &[&str]) -> Exporter {
        let now = Instant::now();
        let counters: Counters = Arc::new(Mutex::new(
            services
                .iter()
                .map(|s| {
                    let counter = Counter {
                        base: 0.0,
                        since: now,
                        per_second: 0.0,
                    };
                    ((*s).to_owned(), counter)
                })
                .collect(),
        ));
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind the exporter"));
        let addr = server
            .server_addr()
            .to_ip()
            .expect("an IP listener")
            .to_string();
        let thread = {
            let server = Arc::clone(&server);
            let counters = Arc::clone(&counters);
            std::thread::spawn(move || {
                for request in server.incoming_requests() {
                    let response = if request.url() == "/metrics" {
                        let text = exposition(&counters.lock().unwrap(), Instant::now());
                        tiny_http::Response::from_string(text).with_header(
                            "Content-Type: text/plain; version=0.0.4"
                                .parse::<tiny_http::Header>()
                                .expect("a header"),
                        )
                    } else {
                        tiny_http::Response::from_string("not found").with_status_code(404)
                    };
                    let _ = request.respond(response);
                }
            })
        };
        Exporter {
            addr,
            counters,
            server,
            thread: Some(thread),
        }
    }

    /// From now on `service`'s counter rises by `per_second` each second.
    pub fn set_rate(&self, service: &str, per_second: f64) {
        self.counters
            .lock()
            .unwrap()
            .get_mut(service)
            .unwrap_or_else(|| panic!("the exporter has no service {service:?}"))
            .set_rate(Instant::now(), per_second);
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn exposition(counters: &BTreeMap<String, Counter>, now: Instant) -> String {
    let mut text = String::from(
        "# HELP flask_http_request_total Requests served (smo's test exporter).\n\
         # TYPE flask_http_request_total counter\n",
    );
    for (service, counter) in counters {
        text.push_str(&format!(
            "flask_http_request_total{{service=\"{}\"}} {}\n",
            label_value(service),
            counter.value_at(now)
        ));
    }
    text
}

/// Escapes a label value as the text format wants (`\\`, `\"`, `\n`).
fn label_value(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `promtool check rules FILE`: Ok, or Err with promtool's whole output.
/// None when the tool is missing (the test is skipped).
pub fn promtool_check_rules(file: &Path) -> Option<Result<(), String>> {
    let promtool = tool("SMO_PROMTOOL")?;
    let output = Command::new(promtool)
        .args(["check", "rules"])
        .arg(file)
        .output()
        .expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Some(if output.status.success() {
        Ok(())
    } else {
        Err(text)
    })
}

/// promtool's exit code for lint problems only (its `lintErrExitCode`): the
/// text parsed, but e.g. a metric lacks HELP or a counter lacks `_total`.
/// A parse error exits 1.
const PROMTOOL_LINT_ONLY: i32 = 3;

/// `promtool check metrics` on `text` (stdin): the real text-format parser.
/// Lint problems (exit 3) pass; a parse error (exit 1) is Err with the output.
pub fn promtool_check_metrics(text: &str) -> Option<Result<(), String>> {
    let promtool = tool("SMO_PROMTOOL")?;
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    // Written from a thread: promtool may answer before reading everything.
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = text.to_owned();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let output = child.wait_with_output().expect("wait for promtool");
    let _ = writer.join();
    let combined = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Some(match output.status.code() {
        Some(0 | PROMTOOL_LINT_ONLY) => Ok(()),
        _ => Err(combined),
    })
}

type Recorded = Arc<Mutex<Vec<(Option<String>, String)>>>;

/// Records every POST: its `Authorization` header and body. Answers 200.
pub struct WebhookSink {
    /// `http://127.0.0.1:PORT/webhook`
    pub url: String,
    recorded: Recorded,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl WebhookSink {
    pub fn start() -> WebhookSink {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind the sink"));
        let addr = server.server_addr().to_ip().expect("an IP listener");
        let recorded: Recorded = Arc::default();
        let thread = {
            let server = Arc::clone(&server);
            let recorded = Arc::clone(&recorded);
            std::thread::spawn(move || {
                for mut request in server.incoming_requests() {
                    if *request.method() == tiny_http::Method::Post {
                        let authorization = request
                            .headers()
                            .iter()
                            .find(|h| h.field.equiv("Authorization"))
                            .map(|h| h.value.as_str().to_owned());
                        let mut body = String::new();
                        let _ = request.as_reader().read_to_string(&mut body);
                        recorded.lock().unwrap().push((authorization, body));
                    }
                    let _ = request.respond(tiny_http::Response::empty(200));
                }
            })
        };
        WebhookSink {
            url: format!("http://{addr}/webhook"),
            recorded,
            server,
            thread: Some(thread),
        }
    }

    /// Every POST so far: (Authorization header, body).
    pub fn requests(&self) -> Vec<(Option<String>, String)> {
        self.recorded.lock().unwrap().clone()
    }
}

impl Drop for WebhookSink {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// ---------------------------------------------------------------------------
// Tests of the harness and of the real chain.

fn adapter(url: &str, retries: u32) -> Prometheus {
    Prometheus::new(PrometheusConfig {
        url: url.to_owned(),
        timeout: Duration::from_secs(5),
        retries,
    })
    .expect("a valid Prometheus config")
}

/// Polls `check` every 200ms until it yields, or panics with `what` and the
/// server's log tail.
async fn eventually<T, F, Fut>(
    timeout: Duration,
    what: &str,
    log: impl Fn() -> String,
    check: F,
) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if start.elapsed() > timeout {
            panic!(
                "{what} did not happen within {timeout:?}; last lines of the log:\n{}",
                log()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[test]
fn the_exporter_counter_integrates_rate_changes() {
    let t0 = Instant::now();
    let mut counter = Counter {
        base: 0.0,
        since: t0,
        per_second: 10.0,
    };
    let at = |s: f64| t0 + Duration::from_secs_f64(s);
    assert!((counter.value_at(at(2.0)) - 20.0).abs() < 1e-9);
    counter.set_rate(at(2.0), 30.0);
    assert!((counter.value_at(at(2.0)) - 20.0).abs() < 1e-9, "no jump");
    assert!((counter.value_at(at(3.0)) - 50.0).abs() < 1e-9);
    counter.set_rate(at(3.0), 0.0);
    assert!((counter.value_at(at(100.0)) - 50.0).abs() < 1e-9);
}

#[test]
fn the_exporter_serves_text_that_promtool_parses() {
    let exporter = Exporter::start(&["api", "db"]);
    exporter.set_rate("api", 1000.0);
    std::thread::sleep(Duration::from_millis(20));
    let (status, body) = http_get(&exporter.addr, "/metrics").expect("the exporter answers");
    assert_eq!(status, 200);
    assert!(
        body.contains("flask_http_request_total{service=\"api\"} "),
        "{body}"
    );
    assert!(
        body.contains("flask_http_request_total{service=\"db\"} 0\n"),
        "{body}"
    );
    let Some(check) = promtool_check_metrics(&body) else {
        return;
    };
    check.expect("promtool parses the exporter's text");
    // And the check does fail on what Prometheus would refuse to scrape.
    let broken = promtool_check_metrics("flask_http_request_total{service=\"api} 1\n")
        .expect("promtool is there");
    assert!(broken.unwrap_err().contains("parsing error"));
    // A lint problem alone (no HELP) is not a failure.
    promtool_check_metrics("flask_http_request_total{service=\"api\"} 1\n")
        .expect("promtool is there")
        .expect("lint problems pass");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_adapter_queries_the_exporter_rate() {
    let rules = tempfile::tempdir().unwrap();
    let exporter = Exporter::start(&["api"]);
    exporter.set_rate("api", 10.0);
    let Some(prom) = PromServer::start(rules.path(), None, std::slice::from_ref(&exporter.addr))
    else {
        return;
    };
    prom.wait_ready(Duration::from_secs(30));
    let client = adapter(&prom.url, 2);
    assert!(client.ready().await.expect("ready answers"));

    // rate() extrapolates a young series poorly (two samples in a 10s
    // window read as ~2/s), so wait for a full window first.
    eventually(
        Duration::from_secs(40),
        "a full 10s window of scrapes",
        || prom.log_tail(),
        || async {
            let samples = client
                .query(r#"count_over_time(flask_http_request_total{service="api"}[10s])"#)
                .await
                .expect("count query");
            samples.first().filter(|s| s.value >= 9.0).map(|_| ())
        },
    )
    .await;
    let samples = client
        .query(r#"sum(rate(flask_http_request_total{service="api"}[10s])) by (service)"#)
        .await
        .expect("rate query");
    assert_eq!(samples.len(), 1, "{samples:?}");
    assert_eq!(
        samples[0].labels.get("service").map(String::as_str),
        Some("api")
    );
    let rate = samples[0].value;
    assert!((8.0..=12.0).contains(&rate), "rate {rate}, expected 10 ± 2");

    let err = client.query("sum(").await.unwrap_err();
    assert!(
        matches!(&err, PrometheusError::BadQuery { message, .. } if message.contains("parse error")),
        "{err:?}"
    );
    assert!(!err.is_transient());

    let closed = format!("http://127.0.0.1:{}", free_port());
    let started = Instant::now();
    let err = adapter(&closed, 1).query("up").await.unwrap_err();
    assert!(
        matches!(err, PrometheusError::Unreachable { .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert!(err.to_string().contains("check prometheus.url"), "{err}");
    // One retry, after a backoff of 100–200ms.
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_chain_reaches_a_webhook() {
    let work = tempfile::tempdir().unwrap();
    let rules = work.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("smo.yml"),
        "groups:\n  - name: smo-test\n    rules:\n      - alert: SmoTestAlert\n        \
         expr: vector(1)\n        for: 0s\n        labels:\n          smo_project: p\n          \
         smo_graph: g\n          smo_service: s\n          smo_event: scale-out\n",
    )
    .unwrap();
    if let Some(check) = promtool_check_rules(&rules.join("smo.yml")) {
        check.expect("the test's rules file is valid");
    }
    let token_file = work.path().join("token");
    std::fs::write(&token_file, "s3cr3t-token").unwrap();

    let sink = WebhookSink::start();
    let Some(am) = AlertmanagerServer::start(&sink.url, Some(&token_file)) else {
        return;
    };
    am.wait_ready(Duration::from_secs(30));
    let started = Instant::now();
    let Some(prom) = PromServer::start(&rules, Some(&am.url), &[]) else {
        return;
    };
    prom.wait_ready(Duration::from_secs(30));
    let ready = Instant::now();

    let (authorization, body) = eventually(
        Duration::from_secs(30),
        "a webhook POST from Alertmanager",
        || {
            format!(
                "{}\n--- alertmanager ---\n{}",
                prom.log_tail(),
                am.log_tail()
            )
        },
        || async { sink.requests().into_iter().next() },
    )
    .await;
    eprintln!(
        "alert chain: first webhook {:?} after Prometheus started, {:?} after it was ready",
        started.elapsed(),
        ready.elapsed()
    );
    let payload: serde_json::Value = serde_json::from_str(&body).expect("JSON body");
    assert_eq!(payload["version"], "4", "{payload}");
    assert_eq!(payload["status"], "firing", "{payload}");
    assert_eq!(
        payload["alerts"][0]["labels"]["smo_event"], "scale-out",
        "{payload}"
    );
    assert_eq!(
        payload["alerts"][0]["labels"]["smo_service"], "s",
        "{payload}"
    );
    assert_eq!(authorization.as_deref(), Some("Bearer s3cr3t-token"));

    // A rule added later, the way smo's rule sink adds one: write, reload.
    // Measured with Prometheus 2.42: the alert is active within ~0.4s, but
    // reaches Alertmanager ~4s later, as the first one did: a reload
    // restarts alertmanager discovery, whose updates are throttled to one
    // per 5s, and alerts wait for it (budget ~5–8s per alert after a reload).
    std::fs::write(
        rules.join("more.yml"),
        "groups:\n  - name: smo-test-2\n    rules:\n      - alert: SmoTestAlert\n        \
         expr: vector(1)\n        labels:\n          smo_project: p\n          \
         smo_graph: g\n          smo_service: t\n          smo_event: scale-in\n",
    )
    .unwrap();
    let reloaded = Instant::now();
    adapter(&prom.url, 2).reload().await.expect("reload");
    let body = eventually(
        Duration::from_secs(30),
        "a webhook POST for the reloaded rule",
        || {
            format!(
                "{}\n--- alertmanager ---\n{}",
                prom.log_tail(),
                am.log_tail()
            )
        },
        || async {
            sink.requests()
                .into_iter()
                .map(|(_, body)| body)
                .find(|body| body.contains("scale-in"))
        },
    )
    .await;
    eprintln!(
        "alert chain: {:?} from a reload to its webhook",
        reloaded.elapsed()
    );
    let payload: serde_json::Value = serde_json::from_str(&body).expect("JSON body");
    assert_eq!(
        payload["alerts"][0]["labels"]["smo_service"], "t",
        "{payload}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_picks_up_a_new_rules_file() {
    let rules = tempfile::tempdir().unwrap();
    let Some(prom) = PromServer::start(rules.path(), None, &[]) else {
        return;
    };
    prom.wait_ready(Duration::from_secs(30));
    let client = adapter(&prom.url, 2);
    let http = reqwest::Client::new();
    let groups = || async {
        let body: serde_json::Value = http
            .get(format!("{}/api/v1/rules", prom.url))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let names: Vec<String> = body["data"]["groups"]
            .as_array()?
            .iter()
            .filter_map(|g| g["name"].as_str().map(str::to_owned))
            .collect();
        Some(names)
    };
    assert_eq!(groups().await, Some(vec![]));

    std::fs::write(
        rules.path().join("smo.yaml"),
        "groups:\n  - name: smo-reloaded\n    rules:\n      - record: smo:one\n        expr: vector(1)\n",
    )
    .unwrap();
    client
        .reload()
        .await
        .expect("reload accepts a valid rules file");
    eventually(
        Duration::from_secs(10),
        "the reloaded group in /api/v1/rules",
        || prom.log_tail(),
        || async {
            groups()
                .await
                .filter(|g| g.iter().any(|n| n == "smo-reloaded"))
        },
    )
    .await;

    let bad = rules.path().join("broken.yml");
    std::fs::write(
        &bad,
        "groups:\n  - name: smo-broken\n    rules:\n      - alert: Broken\n        expr: sum(\n",
    )
    .unwrap();
    let err = client.reload().await.unwrap_err();
    let PrometheusError::Reload { status, body } = &err else {
        panic!("expected a Reload error, got {err:?}");
    };
    assert_eq!(*status, 500, "{body}");
    assert!(body.contains("failed to reload config"), "{body}");
    assert!(!err.is_transient());
    assert!(err.to_string().contains("promtool check rules"), "{err}");
    // Prometheus 2.42 names only its config file in the answer; the rule
    // file at fault is in its log, and promtool names it too.
    assert!(
        prom.log_tail().contains("broken.yml"),
        "{}",
        prom.log_tail()
    );
    if let Some(check) = promtool_check_rules(&bad) {
        let output = check.unwrap_err();
        assert!(output.contains("broken.yml"), "{output}");
        assert!(output.contains("unclosed left parenthesis"), "{output}");
    }
    // The previous rules stay active.
    assert_eq!(groups().await, Some(vec!["smo-reloaded".to_owned()]));
}

/// Transient answers are retried within the configured budget; a fake
/// server counts the attempts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_retries_503_within_its_budget() {
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
    let url = format!("http://{}", server.server_addr().to_ip().unwrap());
    let attempts = Arc::new(Mutex::new(0u32));
    let thread = {
        let server = Arc::clone(&server);
        let attempts = Arc::clone(&attempts);
        std::thread::spawn(move || {
            for request in server.incoming_requests() {
                let mut n = attempts.lock().unwrap();
                *n += 1;
                // Every third attempt succeeds.
                let response = if n.is_multiple_of(3) {
                    tiny_http::Response::from_string(
                        r#"{"status":"success","data":{"resultType":"scalar","result":[1,"7"]}}"#,
                    )
                } else {
                    tiny_http::Response::from_string(
                        r#"{"status":"error","errorType":"unavailable","error":"starting"}"#,
                    )
                    .with_status_code(503)
                };
                let _ = request.respond(response);
            }
        })
    };
    let samples = adapter(&url, 2).query("q").await.expect("third attempt");
    assert_eq!(samples[0].value, 7.0);
    assert_eq!(*attempts.lock().unwrap(), 3);

    let err = adapter(&url, 1).query("q").await.unwrap_err();
    assert!(
        matches!(&err, PrometheusError::Status { status: 503, body, .. } if body == "unavailable: starting"),
        "{err:?}"
    );
    assert_eq!(*attempts.lock().unwrap(), 5);
    server.unblock();
    thread.join().unwrap();
}
