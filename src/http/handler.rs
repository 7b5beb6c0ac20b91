//! Serving one request: routing, `/readyz`, `/metrics` and the
//! Alertmanager webhook on `/alerts`, and asking the async side for what
//! needs the daemon's state.

use super::auth::{bearer_token, constant_time_eq, digest};
use super::body::{BodyError, read_body};
use super::reply::{METRICS_CONTENT_TYPE, Outcome, Reply, guarded};
use super::{AlertsReply, Readiness, Request};
use crate::metrics::{Family, Metrics};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// A readiness probe times out after `timeoutSeconds` (1 s by default in
/// Kubernetes); waiting longer for the daemon only holds a thread.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

enum Route {
    Healthz,
    Readyz,
    Metrics,
    Alerts,
}

impl Route {
    fn of(path: &str) -> Option<Route> {
        match path {
            "/healthz" => Some(Route::Healthz),
            "/readyz" => Some(Route::Readyz),
            "/metrics" => Some(Route::Metrics),
            "/alerts" => Some(Route::Alerts),
            _ => None,
        }
    }

    /// The methods the route answers (`Allow` of a 405).
    fn allow(&self) -> &'static str {
        match self {
            Route::Alerts => "POST",
            _ => "GET, HEAD",
        }
    }

    fn accepts(&self, method: &tiny_http::Method) -> bool {
        use tiny_http::Method::{Get, Head, Post};
        match self {
            Route::Alerts => *method == Post,
            _ => matches!(method, Get | Head),
        }
    }
}

pub(super) struct Handler {
    /// SHA-256 of the token: comparing digests makes every comparison the
    /// same length, so timing reveals neither content nor length.
    pub(super) token_digest: Option<[u8; 32]>,
    pub(super) max_body: usize,
    pub(super) reply_timeout: Duration,
    pub(super) tx: mpsc::Sender<Request>,
    pub(super) metrics: Arc<Metrics>,
}

impl Handler {
    pub(super) fn serve(&self, rt: &tokio::runtime::Runtime, mut request: tiny_http::Request) {
        let (reply, outcome) = guarded(|| self.handle(rt, &mut request));
        if let Some(outcome) = outcome {
            self.metrics
                .inc(Family::WebhookRequests, &[outcome.as_str()]);
        }
        let status = reply.status;
        // Guarded too: on an absurd Content-Length, tiny_http's drain of
        // the unread body (when the request is dropped) can panic.
        let sent = catch_unwind(AssertUnwindSafe(|| request.respond(reply.into_response())));
        match sent {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::debug!(error = %error, status, "http response not sent"),
            Err(_) => tracing::warn!(status, "http response or body drain panicked"),
        }
    }

    /// The reply, and the outcome to count when the request concerns the
    /// webhook: every request to `/alerts`, and unknown paths (a webhook
    /// URL with a typo is the 404 an operator needs to see).
    fn handle(
        &self,
        rt: &tokio::runtime::Runtime,
        request: &mut tiny_http::Request,
    ) -> (Reply, Option<Outcome>) {
        // Routing ignores the query string.
        let path = request.url().split('?').next().unwrap_or_default();
        let Some(route) = Route::of(path) else {
            tracing::debug!(path = %truncate(path, 100), "http path not found");
            return (Reply::text(404, "not found\n"), Some(Outcome::NotFound));
        };
        if !route.accepts(request.method()) {
            let reply = Reply::text(405, "method not allowed\n").header("Allow", route.allow());
            return match route {
                Route::Alerts => {
                    tracing::warn!(
                        outcome = Outcome::MethodNotAllowed.as_str(),
                        method = %request.method(),
                        remote = ?request.remote_addr(),
                        "webhook request rejected"
                    );
                    (reply, Some(Outcome::MethodNotAllowed))
                }
                _ => (reply, None),
            };
        }
        match route {
            Route::Healthz => (Reply::text(200, "ok\n"), None),
            Route::Readyz => (self.readyz(rt), None),
            Route::Metrics => {
                let mut reply = Reply::text(200, self.metrics.render());
                reply.content_type = METRICS_CONTENT_TYPE;
                (reply, None)
            }
            Route::Alerts => {
                let (reply, outcome) = self.alerts(rt, request);
                if outcome != Outcome::Accepted {
                    tracing::warn!(
                        outcome = outcome.as_str(),
                        status = reply.status,
                        remote = ?request.remote_addr(),
                        "webhook request rejected"
                    );
                }
                (reply, Some(outcome))
            }
        }
    }

    fn readyz(&self, rt: &tokio::runtime::Runtime) -> Reply {
        let (reply, answer) = oneshot::channel();
        match self.ask(rt, Request::Ready { reply }, answer, READY_TIMEOUT) {
            Ok(Readiness {
                ready: true,
                standby: true,
                ..
            }) => Reply::text(200, "ready-standby\n"),
            Ok(Readiness { ready: true, .. }) => Reply::text(200, "ready\n"),
            Ok(Readiness { reasons, .. }) if reasons.is_empty() => Reply::text(503, "not ready\n"),
            Ok(Readiness { reasons, .. }) => {
                let body: String = reasons
                    .iter()
                    .map(|r| format!("{}\n", r.replace(['\n', '\r'], " ")))
                    .collect();
                Reply::text(503, body)
            }
            Err(Unanswered::Closed) => Reply::text(503, "shutting down\n"),
            Err(Unanswered::Timeout) => Reply::text(503, "busy\n"),
        }
    }

    fn alerts(
        &self,
        rt: &tokio::runtime::Runtime,
        request: &mut tiny_http::Request,
    ) -> (Reply, Outcome) {
        if !self.authorized(request.headers()) {
            return (
                Reply::text(401, "unauthorized\n").header("WWW-Authenticate", "Bearer"),
                Outcome::Unauthorized,
            );
        }
        let body = match read_body(request, self.max_body) {
            Ok(body) => body,
            Err(BodyError::TooLarge) => {
                let message = format!("body larger than {} bytes\n", self.max_body);
                return (Reply::text(413, message), Outcome::TooLarge);
            }
            Err(BodyError::Read(error)) => {
                tracing::debug!(error = %error, "webhook body unreadable");
                return (
                    Reply::text(400, "cannot read the body\n"),
                    Outcome::BadRequest,
                );
            }
        };
        let payload = match crate::webhook::parse(&body) {
            Ok(payload) => payload,
            Err(error) => {
                // One bounded line by construction (webhook::parse).
                tracing::debug!(error = %error, "webhook payload refused");
                return (Reply::text(400, format!("{error}\n")), Outcome::BadRequest);
            }
        };
        let alerts = payload.alerts.len();
        let (reply, answer) = oneshot::channel();
        // On a timeout the daemon may still record the alerts after we
        // answered 503; Alertmanager's retry is then a duplicate, which the
        // delivery key recognises.
        match self.ask(
            rt,
            Request::Alerts { payload, reply },
            answer,
            self.reply_timeout,
        ) {
            Ok(AlertsReply::Accepted {
                triggered,
                updated,
                duplicates,
                ignored,
            }) => {
                for (outcome, n) in [
                    ("triggered", triggered),
                    ("updated", updated),
                    ("duplicate", duplicates),
                    ("ignored", ignored),
                ] {
                    if n > 0 {
                        self.metrics
                            .add(Family::WebhookAlerts, &[outcome], n as f64);
                    }
                }
                tracing::info!(
                    alerts,
                    triggered,
                    updated,
                    duplicates,
                    ignored,
                    "webhook alerts accepted"
                );
                let body = serde_json::json!({
                    "triggered": triggered,
                    "updated": updated,
                    "duplicates": duplicates,
                    "ignored": ignored,
                });
                let mut reply = Reply::text(200, format!("{body}\n"));
                reply.content_type = "application/json";
                (reply, Outcome::Accepted)
            }
            Ok(AlertsReply::Unavailable(reason)) => {
                tracing::warn!(reason = %reason, "webhook alerts not recorded");
                (Reply::text(503, "unavailable\n"), Outcome::Unavailable)
            }
            Err(Unanswered::Closed) => (Reply::text(503, "shutting down\n"), Outcome::Unavailable),
            Err(Unanswered::Timeout) => (Reply::text(503, "busy\n"), Outcome::Unavailable),
        }
    }

    /// Sends `request` and waits for its answer, both within `timeout`: a
    /// full channel (the daemon stuck) must not hold the thread forever
    /// either.
    fn ask<T>(
        &self,
        rt: &tokio::runtime::Runtime,
        request: Request,
        answer: oneshot::Receiver<T>,
        timeout: Duration,
    ) -> Result<T, Unanswered> {
        rt.block_on(async {
            tokio::time::timeout(timeout, async {
                self.tx
                    .send(request)
                    .await
                    .map_err(|_| Unanswered::Closed)?;
                answer.await.map_err(|_| Unanswered::Closed)
            })
            .await
            .unwrap_or(Err(Unanswered::Timeout))
        })
    }

    fn authorized(&self, headers: &[tiny_http::Header]) -> bool {
        let Some(expected) = &self.token_digest else {
            return true;
        };
        let Some(token) = bearer_token(headers) else {
            return false;
        };
        constant_time_eq(&digest(token.as_bytes()), expected)
    }
}

enum Unanswered {
    Closed,
    Timeout,
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}
