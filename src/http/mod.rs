//! The HTTP endpoint (tiny_http): Alertmanager webhook, health, readiness, metrics.
//!
//! tiny_http is blocking, so it runs on its own threads and never on a
//! tokio worker: each thread loops on `recv_timeout` and hands anything
//! that needs the daemon's state to the async side as a [`Request`] over a
//! bounded channel, waiting for the reply with a deadline. Routes:
//!
//! | route           | method | answer                                          |
//! |-----------------|--------|-------------------------------------------------|
//! | `/healthz`      | GET    | 200 `ok` (no token: liveness of the process)    |
//! | `/readyz`       | GET    | 200 `ready` (`ready-standby` on a standby), or 503 with the reasons |
//! | `/metrics`      | GET    | 200, Prometheus text format 0.0.4               |
//! | `/alerts`       | POST   | the Alertmanager webhook, bearer token if set   |
//!
//! Invariants: the bearer token is compared in constant time and never
//! logged; a body is never read past the configured limit; a panic while
//! handling one request answers 500 and leaves the thread serving.
//!
//! Two flaws of the published tiny_http 0.12.0 that this module cannot fix
//! from the outside are fixed in the vendored copy we build against
//! (`vendor/tiny_http`, see its VENDORED.md): when a request with a
//! `Content-Length` was answered without reading its whole body, tiny_http
//! drained the rest into one buffer of the declared size, so a single
//! request declaring more than memory aborted the process; the copy drains
//! through a fixed buffer (as tiny-http pull request #290 does). And
//! tiny_http set no socket read timeout, so a client that stopped sending
//! held a worker thread until it disconnected; the copy gives every
//! accepted connection a 30 s read timeout. (The copy also fixes a lost
//! wake-up in tiny_http's connection pool that could leave a new
//! connection unserved until another one closed.)
//!
//! Layout: this file holds the configuration, the messages to the async
//! side and the [`Server`] with its worker threads; `handler` serves one
//! request (routing, readiness, metrics, the webhook), `auth` the bearer
//! token, `body` the bounded body read and `reply` the responses.

mod auth;
mod body;
mod handler;
mod reply;

pub use auth::{Auth, Secret};

use crate::metrics::Metrics;
use crate::webhook::Payload;
use auth::digest;
use handler::Handler;
use std::fmt;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Alertmanager's payloads are a few kilobytes per alert; 1 MiB holds
/// hundreds of alerts and bounds what one request can make us allocate.
pub const DEFAULT_MAX_BODY: usize = 1 << 20;

/// Enough for a probe, a scrape and a webhook in flight at once on a
/// small machine; every thread is idle most of the time.
pub const DEFAULT_THREADS: usize = 4;

/// Alertmanager's own webhook timeout defaults to 10 s as well; past it,
/// Alertmanager gives up and retries, so waiting longer is pointless.
pub const DEFAULT_REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// How often an idle worker checks for shutdown.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// The endpoint's settings. [`HttpConfig::new`] fills in the defaults.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    pub auth: Auth,
    /// Largest accepted webhook body in bytes; default [`DEFAULT_MAX_BODY`].
    pub max_body: usize,
    /// Worker threads; default [`DEFAULT_THREADS`], at least 1.
    pub threads: usize,
    /// How long a webhook waits for the daemon; default
    /// [`DEFAULT_REPLY_TIMEOUT`].
    pub reply_timeout: Duration,
}

impl HttpConfig {
    pub fn new(listen: SocketAddr, auth: Auth) -> HttpConfig {
        HttpConfig {
            listen,
            auth,
            max_body: DEFAULT_MAX_BODY,
            threads: DEFAULT_THREADS,
            reply_timeout: DEFAULT_REPLY_TIMEOUT,
        }
    }
}

/// What the endpoint asks of the async side.
// A few hundred bytes per message on a short channel: boxing the payload
// would cost an allocation per webhook to save nothing measurable.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Request {
    /// A parsed webhook delivery. Reply once the alerts are committed (the
    /// 200 tells Alertmanager to stop retrying).
    Alerts {
        payload: Payload,
        reply: oneshot::Sender<AlertsReply>,
    },
    Ready {
        reply: oneshot::Sender<Readiness>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertsReply {
    /// Counts of the payload's alerts: events that fired now, changes of
    /// events already fired (a resolution, a newer instance of the same
    /// alert), redeliveries already recorded, alerts not aimed at smo.
    Accepted {
        triggered: usize,
        updated: usize,
        duplicates: usize,
        ignored: usize,
    },
    /// The alerts could not be recorded (store failure); answered 503 so
    /// Alertmanager retries. The reason is logged, not sent.
    Unavailable(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    pub ready: bool,
    /// Why not ready, one short line each.
    pub reasons: Vec<String>,
    /// Ready, but standing by: another instance holds the leader Lease
    /// (answered 200 `ready-standby`).
    pub standby: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot read the webhook token file {}: {source}", path.display())]
    ReadSecret {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the webhook token from {origin} {problem}; it must hold the bearer token Alertmanager sends, on one line"
    )]
    InvalidSecret {
        origin: String,
        problem: &'static str,
    },
    #[error(
        "cannot listen on {addr}: {source}; check the listen address and that the port is free"
    )]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the HTTP server on {addr}: {source}")]
    Start {
        addr: SocketAddr,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot start an HTTP worker thread: {source}")]
    Spawn {
        #[source]
        source: std::io::Error,
    },
}

/// The running endpoint. Dropping it stops it, like [`Server::shutdown`].
pub struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    http: Arc<tiny_http::Server>,
    workers: Vec<JoinHandle<()>>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .field("workers", &self.workers.len())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Binds (port 0 picks a free port), starts the worker threads and
    /// returns at once.
    pub fn start(
        config: HttpConfig,
        tx: mpsc::Sender<Request>,
        metrics: Arc<Metrics>,
    ) -> Result<Server, HttpError> {
        let bind = |source| HttpError::Bind {
            addr: config.listen,
            source,
        };
        // Binding ourselves gives a typed error and the real port.
        let listener = TcpListener::bind(config.listen).map_err(bind)?;
        let addr = listener.local_addr().map_err(bind)?;
        let http = tiny_http::Server::from_listener(listener, None)
            .map_err(|source| HttpError::Start { addr, source })?;
        let handler = Arc::new(Handler {
            token_digest: match &config.auth {
                Auth::None => None,
                Auth::Bearer(secret) => Some(digest(secret.0.as_bytes())),
            },
            max_body: config.max_body,
            reply_timeout: config.reply_timeout,
            tx,
            metrics,
        });
        // Built before the threads, so a failure part-way stops those
        // already running when it is dropped.
        let mut server = Server {
            addr,
            stop: Arc::new(AtomicBool::new(false)),
            http: Arc::new(http),
            workers: Vec::new(),
        };
        for i in 0..config.threads.max(1) {
            // Each worker waits for replies with its own small runtime: a
            // deadline on a oneshot needs a timer, and these threads must
            // not borrow the daemon's runtime.
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .map_err(|source| HttpError::Spawn { source })?;
            let (http, stop, handler) = (server.http.clone(), server.stop.clone(), handler.clone());
            let worker = std::thread::Builder::new()
                .name(format!("smo-http-{i}"))
                .spawn(move || work(&http, &stop, &handler, &rt))
                .map_err(|source| HttpError::Spawn { source })?;
            server.workers.push(worker);
        }
        tracing::info!(addr = %addr, threads = server.workers.len(), "http endpoint listening");
        Ok(server)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting requests, lets the workers finish the request in
    /// hand (at most the reply timeout) and joins them.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for _ in &self.workers {
            self.http.unblock();
        }
        for worker in self.workers.drain(..) {
            // A worker cannot panic out of its loop (handling is guarded);
            // if it did anyway, there is nothing more to do with it.
            let _ = worker.join();
        }
    }
}

fn work(
    http: &tiny_http::Server,
    stop: &AtomicBool,
    handler: &Handler,
    rt: &tokio::runtime::Runtime,
) {
    while !stop.load(Ordering::SeqCst) {
        match http.recv_timeout(POLL_INTERVAL) {
            Ok(Some(request)) => handler.serve(rt, request),
            Ok(None) => {}
            Err(error) => {
                // tiny_http's accept thread has stopped (it reports its
                // error once, then accepts nothing more): the process stays
                // up but unreachable, which the liveness probe will notice.
                tracing::error!(error = %error, "http endpoint stopped accepting connections");
                std::thread::sleep(POLL_INTERVAL);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::reply::{METRICS_CONTENT_TYPE, TEXT};
    use super::*;
    use crate::webhook::payload::tests::FIRING;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    const TOKEN: &str = "s3cret-token";

    type Answer = Box<dyn Fn(Request) + Send + 'static>;

    /// A server on 127.0.0.1:0 with a task on its own runtime answering
    /// the [`Request`]s, or none (the channel closed) when `answer` is None.
    struct Harness {
        server: Server,
        metrics: Arc<Metrics>,
        _rt: tokio::runtime::Runtime,
    }

    fn harness(auth: Auth, max_body: usize, answer: Option<Answer>) -> Harness {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (tx, mut rx) = mpsc::channel(4);
        match answer {
            Some(answer) => {
                rt.spawn(async move {
                    while let Some(request) = rx.recv().await {
                        answer(request);
                    }
                });
            }
            None => drop(rx),
        }
        let metrics = Arc::new(Metrics::new());
        let config = HttpConfig {
            max_body,
            threads: 2,
            reply_timeout: Duration::from_millis(500),
            ..HttpConfig::new("127.0.0.1:0".parse().unwrap(), auth)
        };
        let server = Server::start(config, tx, metrics.clone()).unwrap();
        Harness {
            server,
            metrics,
            _rt: rt,
        }
    }

    fn bearer() -> Auth {
        Auth::Bearer(Secret::new(TOKEN.to_owned()).unwrap())
    }

    /// Counts alerts with a target as triggered, the rest as ignored.
    fn accept(request: Request) {
        match request {
            Request::Alerts { payload, reply } => {
                let triggered = payload
                    .alerts
                    .iter()
                    .filter(|a| a.target().is_some())
                    .count();
                let _ = reply.send(AlertsReply::Accepted {
                    triggered,
                    updated: 0,
                    duplicates: 0,
                    ignored: payload.alerts.len() - triggered,
                });
            }
            Request::Ready { reply } => {
                let _ = reply.send(Readiness {
                    standby: false,
                    ready: true,
                    reasons: vec![],
                });
            }
        }
    }

    #[derive(Debug)]
    struct Response {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    }

    impl Response {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    /// Sends raw bytes and reads one response (headers, then exactly
    /// Content-Length bytes: the server may keep the connection open).
    fn exchange(h: &Harness, raw: &[u8]) -> Response {
        let mut stream = TcpStream::connect(h.server.local_addr()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(raw).unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            let n = stream.read(&mut chunk).unwrap();
            assert!(n > 0, "connection closed before the response headers");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.trim().to_owned(), v.trim().to_owned())
            })
            .collect();
        let mut response = Response {
            status,
            headers,
            body: String::new(),
        };
        let len: usize = response
            .header("Content-Length")
            .expect("responses have a Content-Length")
            .parse()
            .unwrap();
        let mut body = buf[head_end + 4..].to_vec();
        while body.len() < len {
            let n = stream.read(&mut chunk).unwrap();
            assert!(n > 0, "connection closed inside the body");
            body.extend_from_slice(&chunk[..n]);
        }
        response.body = String::from_utf8(body).unwrap();
        response
    }

    fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
        let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
        for (n, v) in headers {
            raw.push_str(&format!("{n}: {v}\r\n"));
        }
        if !body.is_empty() {
            raw.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        raw.push_str("\r\n");
        let mut raw = raw.into_bytes();
        raw.extend_from_slice(body);
        raw
    }

    fn get(h: &Harness, path: &str) -> Response {
        exchange(h, &request("GET", path, &[], b""))
    }

    fn post_alerts(h: &Harness, token: Option<&str>, body: &[u8]) -> Response {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("Authorization", a)])
            .unwrap_or_default();
        exchange(h, &request("POST", "/alerts", &headers, body))
    }

    fn counted(h: &Harness, family: &str, outcome: &str) -> String {
        let prefix = format!("{family}{{outcome=\"{outcome}\"}} ");
        h.metrics
            .render()
            .lines()
            .find_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
            .unwrap_or_else(|| "absent".to_owned())
    }

    #[test]
    fn healthz_needs_no_token() {
        let h = harness(bearer(), DEFAULT_MAX_BODY, None);
        let r = get(&h, "/healthz?verbose=1");
        assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
        assert_eq!(r.header("Content-Type"), Some(TEXT));
    }

    #[test]
    fn readyz_asks_the_daemon() {
        let h = harness(Auth::None, DEFAULT_MAX_BODY, Some(Box::new(accept)));
        let r = get(&h, "/readyz");
        assert_eq!((r.status, r.body.as_str()), (200, "ready\n"));

        let not_ready: Answer = Box::new(|request| {
            if let Request::Ready { reply } = request {
                let _ = reply.send(Readiness {
                    standby: false,
                    ready: false,
                    reasons: vec!["source not read yet".into(), "store\nlocked".into()],
                });
            }
        });
        let h = harness(Auth::None, DEFAULT_MAX_BODY, Some(not_ready));
        let r = get(&h, "/readyz");
        assert_eq!(r.status, 503);
        assert_eq!(r.body, "source not read yet\nstore locked\n");
    }

    #[test]
    fn readyz_on_a_standby_is_ready_standby() {
        let standby: Answer = Box::new(|request| {
            if let Request::Ready { reply } = request {
                let _ = reply.send(Readiness {
                    standby: true,
                    ready: true,
                    reasons: Vec::new(),
                });
            }
        });
        let h = harness(Auth::None, DEFAULT_MAX_BODY, Some(standby));
        let r = get(&h, "/readyz");
        assert_eq!((r.status, r.body.as_str()), (200, "ready-standby\n"));
    }

    #[test]
    fn readyz_without_the_daemon_is_unavailable() {
        let h = harness(Auth::None, DEFAULT_MAX_BODY, None);
        let r = get(&h, "/readyz");
        assert_eq!((r.status, r.body.as_str()), (503, "shutting down\n"));
    }

    #[test]
    fn metrics_are_served_in_text_format() {
        let h = harness(bearer(), DEFAULT_MAX_BODY, None);
        let r = get(&h, "/metrics");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("Content-Type"), Some(METRICS_CONTENT_TYPE));
        assert!(
            r.body
                .contains("# TYPE smo_webhook_requests_total counter\n")
        );
        assert!(r.body.contains("smo_build_info{version="));
    }

    #[test]
    fn alerts_without_or_with_a_wrong_token_are_unauthorized() {
        let h = harness(bearer(), DEFAULT_MAX_BODY, Some(Box::new(accept)));
        for token in [None, Some("wrong"), Some("s3cret-token-longer"), Some("")] {
            let r = post_alerts(&h, token, FIRING.as_bytes());
            assert_eq!(r.status, 401, "token {token:?}");
            assert_eq!(r.header("WWW-Authenticate"), Some("Bearer"));
            assert!(!r.body.contains(TOKEN));
        }
        let basic = request(
            "POST",
            "/alerts",
            &[("Authorization", "Basic czNjcmV0")],
            FIRING.as_bytes(),
        );
        assert_eq!(exchange(&h, &basic).status, 401);
        assert_eq!(
            counted(&h, "smo_webhook_requests_total", "unauthorized"),
            "5"
        );
    }

    #[test]
    fn alerts_with_the_token_are_accepted_with_counts() {
        let h = harness(bearer(), DEFAULT_MAX_BODY, Some(Box::new(accept)));
        let r = post_alerts(&h, Some(TOKEN), FIRING.as_bytes());
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.header("Content-Type"), Some("application/json"));
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"triggered": 1, "updated": 0, "duplicates": 0, "ignored": 1})
        );
        assert_eq!(counted(&h, "smo_webhook_requests_total", "accepted"), "1");
        assert_eq!(counted(&h, "smo_webhook_alerts_total", "triggered"), "1");
        assert_eq!(counted(&h, "smo_webhook_alerts_total", "ignored"), "1");

        // The scheme is case-insensitive.
        let lower = request(
            "POST",
            "/alerts",
            &[("authorization", "bearer s3cret-token")],
            FIRING.as_bytes(),
        );
        assert_eq!(exchange(&h, &lower).status, 200);
    }

    #[test]
    fn auth_none_accepts_without_a_token() {
        let h = harness(Auth::None, DEFAULT_MAX_BODY, Some(Box::new(accept)));
        assert_eq!(post_alerts(&h, None, FIRING.as_bytes()).status, 200);
    }

    #[test]
    fn a_declared_length_over_the_limit_is_refused_unread() {
        let h = harness(Auth::None, 2048, Some(Box::new(accept)));
        // Headers only: the body never comes, so a 413 proves it was not awaited.
        let raw = "POST /alerts HTTP/1.1\r\nHost: test\r\nContent-Length: 100000\r\n\r\n";
        let r = exchange(&h, raw.as_bytes());
        assert_eq!(r.status, 413);
        assert_eq!(counted(&h, "smo_webhook_requests_total", "too_large"), "1");
    }

    /// Guards the vendored tiny_http fix: it used to drain an unread body
    /// into one allocation of the declared length, whose failure aborted
    /// the whole process (the test binary, here).
    #[test]
    fn a_huge_declared_body_does_not_abort_the_process() {
        let h = harness(Auth::None, DEFAULT_MAX_BODY, Some(Box::new(accept)));
        let raw = "GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\
                   Content-Length: 1099511627776\r\n\r\nabcdef";
        // `exchange` returns once the answer is read and drops (closes) the
        // connection, which ends tiny_http's drain of the unread body.
        assert_eq!(exchange(&h, raw.as_bytes()).status, 200);
        // The drain happens on a tiny_http thread after the answer: give it
        // time to run (and, before the fix, to abort) before probing again.
        std::thread::sleep(Duration::from_millis(200));
        let r = get(&h, "/healthz");
        assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
    }

    #[test]
    fn a_chunked_body_over_the_limit_is_refused() {
        let h = harness(Auth::None, 64, Some(Box::new(accept)));
        let mut raw = b"POST /alerts HTTP/1.1\r\nHost: test\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..3 {
            raw.extend_from_slice(format!("28\r\n{}\r\n", "x".repeat(40)).as_bytes());
        }
        raw.extend_from_slice(b"0\r\n\r\n");
        let r = exchange(&h, &raw);
        assert_eq!(r.status, 413);
        assert_eq!(counted(&h, "smo_webhook_requests_total", "too_large"), "1");
    }

    #[test]
    fn a_chunked_body_within_the_limit_is_read() {
        let h = harness(Auth::None, DEFAULT_MAX_BODY, Some(Box::new(accept)));
        let mut raw = b"POST /alerts HTTP/1.1\r\nHost: test\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for part in FIRING.as_bytes().chunks(500) {
            raw.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
            raw.extend_from_slice(part);
            raw.extend_from_slice(b"\r\n");
        }
        raw.extend_from_slice(b"0\r\n\r\n");
        assert_eq!(exchange(&h, &raw).status, 200);
    }

    #[test]
    fn a_truncated_payload_is_a_bad_request_with_one_line() {
        let h = harness(Auth::None, DEFAULT_MAX_BODY, Some(Box::new(accept)));
        let r = post_alerts(&h, None, &FIRING.as_bytes()[..100]);
        assert_eq!(r.status, 400);
        assert!(
            r.body.starts_with("not an Alertmanager webhook payload: "),
            "{}",
            r.body
        );
        assert_eq!(r.body.matches('\n').count(), 1, "{}", r.body);
        assert_eq!(
            counted(&h, "smo_webhook_requests_total", "bad_request"),
            "1"
        );
    }

    #[test]
    fn wrong_methods_get_405_with_allow() {
        let h = harness(Auth::None, DEFAULT_MAX_BODY, None);
        let r = get(&h, "/alerts");
        assert_eq!(r.status, 405);
        assert_eq!(r.header("Allow"), Some("POST"));
        let r = exchange(&h, &request("POST", "/healthz", &[], b"x"));
        assert_eq!(r.status, 405);
        assert_eq!(r.header("Allow"), Some("GET, HEAD"));
        assert_eq!(
            counted(&h, "smo_webhook_requests_total", "method_not_allowed"),
            "1"
        );
    }

    #[test]
    fn unknown_paths_get_404() {
        let h = harness(Auth::None, DEFAULT_MAX_BODY, None);
        assert_eq!(get(&h, "/alert").status, 404);
        assert_eq!(get(&h, "/").status, 404);
        assert_eq!(counted(&h, "smo_webhook_requests_total", "not_found"), "2");
    }

    #[test]
    fn an_unavailable_store_is_503() {
        let unavailable: Answer = Box::new(|request| {
            if let Request::Alerts { reply, .. } = request {
                let _ = reply.send(AlertsReply::Unavailable(
                    "store at /secret/path: disk full".into(),
                ));
            }
        });
        let h = harness(Auth::None, DEFAULT_MAX_BODY, Some(unavailable));
        let r = post_alerts(&h, None, FIRING.as_bytes());
        assert_eq!((r.status, r.body.as_str()), (503, "unavailable\n"));
        assert_eq!(
            counted(&h, "smo_webhook_requests_total", "unavailable"),
            "1"
        );
    }

    #[test]
    fn a_closed_channel_is_503() {
        let h = harness(Auth::None, DEFAULT_MAX_BODY, None);
        assert_eq!(post_alerts(&h, None, FIRING.as_bytes()).status, 503);
    }

    #[test]
    fn a_daemon_that_never_answers_is_503_busy() {
        // Forgetting the request keeps its reply sender alive forever.
        let h = harness(
            Auth::None,
            DEFAULT_MAX_BODY,
            Some(Box::new(std::mem::forget)),
        );
        let r = post_alerts(&h, None, FIRING.as_bytes());
        assert_eq!((r.status, r.body.as_str()), (503, "busy\n"));
    }

    #[test]
    fn shutdown_joins_the_workers() {
        let h = harness(Auth::None, DEFAULT_MAX_BODY, None);
        let addr = h.server.local_addr();
        let started = std::time::Instant::now();
        h.server.shutdown();
        assert!(started.elapsed() < Duration::from_secs(5));
        // tiny_http closes its listener on its own accept thread, shortly after.
        let closed = (0..50).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            TcpStream::connect(addr).is_err()
        });
        assert!(closed, "still listening");
    }
}
