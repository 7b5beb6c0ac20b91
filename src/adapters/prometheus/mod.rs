//! Prometheus HTTP API: instant and range queries, configuration reload.
//!
//! A narrow client for the scaling loop (instant queries), `smo profile`
//! (range queries over the history) and the alert-rule sink (reload after
//! writing rule files). Transient failures — Prometheus
//! down, slow, or answering 5xx/429 — are retried here a few times with a
//! short jittered backoff, because a scaling tick is cheap to delay but
//! wasteful to lose; everything else (a bad query, a rejected reload, an
//! answer that is not the Prometheus API) is returned at once, classified by
//! [`PrometheusError::is_transient`].
//!
//! Invariant: the configured URL may carry credentials (`user:pass@`); every
//! message and log field uses the redacted form, and reqwest's own errors are
//! stripped of their URL before they are kept as a source.

mod decode;

use super::redact;
use decode::{classify_query, classify_range, truncate};
use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::time::Duration;

/// Where Prometheus is and how patiently to talk to it.
#[derive(Debug, Clone)]
pub struct PrometheusConfig {
    /// Base URL, e.g. `http://127.0.0.1:9090` (a path prefix such as
    /// `http://host/prometheus` is kept).
    pub url: String,
    /// Per-request timeout (connect and answer).
    pub timeout: Duration,
    /// Extra attempts after a transient failure of a query or reload.
    pub retries: u32,
}

/// One element of an instant vector (or a scalar, with no labels).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    /// As Prometheus printed it: `NaN`, `+Inf` and `-Inf` are kept.
    pub value: f64,
}

/// One series of a range query: its labels and its points in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    pub points: Vec<Point>,
}

/// One evaluation of a range query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Unix seconds, as Prometheus printed them.
    pub time: f64,
    /// `NaN` and ±Inf are kept, as in [`Sample`].
    pub value: f64,
}

/// Where and how finely a range query is evaluated: every `step` from
/// `start` to `end` (Unix seconds, inclusive).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub start: f64,
    pub end: f64,
    pub step: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    #[error(
        "prometheus.url {url:?} is not a usable URL: {reason}; set it to e.g. http://127.0.0.1:9090"
    )]
    InvalidUrl { url: String, reason: String },
    #[error("cannot build the HTTP client for Prometheus: {0}; check this machine's TLS setup")]
    Client(#[source] reqwest::Error),
    #[error(
        "Prometheus at {url} is unreachable: {source}; check prometheus.url and that Prometheus is running"
    )]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error(
        "Prometheus at {url} did not answer within {after:?}; check its load or raise prometheus.timeout"
    )]
    TimedOut {
        url: String,
        after: Duration,
        #[source]
        source: reqwest::Error,
    },
    #[error("Prometheus at {url} answered HTTP {status}: {body}{hint}", hint = status_hint(*status))]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error(
        "Prometheus rejected the query `{query}`: {message}; fix the query in the scaling or alert settings"
    )]
    BadQuery { query: String, message: String },
    #[error(
        "cannot read Prometheus's answer from {url}: {reason}; check that prometheus.url points at the Prometheus server itself (not a login page or a proxy)"
    )]
    Decode { url: String, reason: String },
    #[error("Prometheus refused to reload (HTTP {status}): {body}{hint}", hint = reload_hint(*status))]
    Reload { status: u16, body: String },
}

impl PrometheusError {
    /// Worth retrying as is: Prometheus (or the way to it) may recover.
    /// Everything else needs a change of configuration, query or rules.
    pub fn is_transient(&self) -> bool {
        match self {
            PrometheusError::Unreachable { .. } | PrometheusError::TimedOut { .. } => true,
            PrometheusError::Status { status, .. } => *status >= 500 || *status == 429,
            PrometheusError::InvalidUrl { .. }
            | PrometheusError::Client(_)
            | PrometheusError::BadQuery { .. }
            | PrometheusError::Decode { .. }
            | PrometheusError::Reload { .. } => false,
        }
    }
}

fn status_hint(status: u16) -> &'static str {
    match status {
        401 | 403 => "; check the credentials in prometheus.url",
        404 => "; check prometheus.url (including any path prefix)",
        429 | 500.. => "; Prometheus is overloaded or starting, smo will retry",
        _ => "",
    }
}

fn reload_hint(status: u16) -> &'static str {
    match status {
        403 => "; start Prometheus with --web.enable-lifecycle so smo can reload its rules",
        // Prometheus 2.x names only its main config file in this answer; the
        // offending rule file and line are in its own log.
        _ => {
            "; the previous rules stay active; run `promtool check rules` on the rule files and see Prometheus's log for the file at fault"
        }
    }
}

/// First and second backoff before a retry; short because the scaling loop
/// runs on a tick of seconds and would rather skip a tick than stall.
const RETRY_BASE: Duration = Duration::from_millis(200);
const RETRY_CAP: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct Prometheus {
    http: reqwest::Client,
    config: PrometheusConfig,
    /// `config.url` without a trailing slash: endpoint paths are appended.
    base: String,
    /// `base` without userinfo, for messages and logs.
    redacted: String,
}

impl std::fmt::Debug for Prometheus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prometheus")
            .field("url", &self.redacted)
            .field("timeout", &self.config.timeout)
            .field("retries", &self.config.retries)
            .finish_non_exhaustive()
    }
}

impl Prometheus {
    pub fn new(config: PrometheusConfig) -> Result<Self, PrometheusError> {
        let base = config.url.trim_end_matches('/').to_owned();
        let parsed = reqwest::Url::parse(&base).map_err(|e| PrometheusError::InvalidUrl {
            url: redact(&config.url),
            reason: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(PrometheusError::InvalidUrl {
                url: redact(&config.url),
                reason: format!("scheme {:?} is neither http nor https", parsed.scheme()),
            });
        }
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(PrometheusError::Client)?;
        let redacted = redact(&base);
        Ok(Prometheus {
            http,
            config,
            base,
            redacted,
        })
    }

    /// The base URL as configured (without a trailing slash). It may carry
    /// credentials: log [`Prometheus`]'s `Debug` form instead.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// Instant query (`GET /api/v1/query`). An instant vector becomes its
    /// samples, a scalar one sample without labels; other result types are a
    /// [`PrometheusError::Decode`] (the caller asked for a range or string).
    pub async fn query(&self, promql: &str) -> Result<Vec<Sample>, PrometheusError> {
        let endpoint = format!("{}/api/v1/query", self.base);
        self.with_retries("query", promql, || async {
            let (status, body) = self.get(&endpoint, &[("query", promql)]).await?;
            classify_query(&self.redacted, promql, status, &body)
        })
        .await
    }

    /// One GET with query parameters: the status and the whole body.
    async fn get(
        &self,
        endpoint: &str,
        params: &[(&str, &str)],
    ) -> Result<(u16, Vec<u8>), PrometheusError> {
        let response = self
            .http
            .get(endpoint)
            .query(params)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(e))?;
        Ok((status, body.to_vec()))
    }

    /// Range query (`GET /api/v1/query_range`): one [`Series`] per label
    /// set, evaluated at `range.start + k·range.step` up to `range.end`.
    /// Prometheus refuses more than 11,000 points per series (a
    /// [`PrometheusError::BadQuery`] saying so); choosing the step is the
    /// caller's job.
    pub async fn query_range(
        &self,
        promql: &str,
        range: &Range,
    ) -> Result<Vec<Series>, PrometheusError> {
        let endpoint = format!("{}/api/v1/query_range", self.base);
        let (start, end) = (range.start.to_string(), range.end.to_string());
        let step = range.step.as_secs_f64().to_string();
        self.with_retries("query_range", promql, || async {
            let params = [
                ("query", promql),
                ("start", start.as_str()),
                ("end", end.as_str()),
                ("step", step.as_str()),
            ];
            let (status, body) = self.get(&endpoint, &params).await?;
            classify_range(&self.redacted, promql, status, &body)
        })
        .await
    }

    /// `POST /-/reload` (Prometheus needs `--web.enable-lifecycle`). Returns
    /// once Prometheus has applied the configuration and rule files, or with
    /// [`PrometheusError::Reload`] carrying its explanation when it kept the
    /// previous ones.
    pub async fn reload(&self) -> Result<(), PrometheusError> {
        let endpoint = format!("{}/-/reload", self.base);
        self.with_retries("reload", "", || async {
            let response = self
                .http
                .post(&endpoint)
                .send()
                .await
                .map_err(|e| self.transport_error(e))?;
            let status = response.status();
            if status.is_success() {
                return Ok(());
            }
            let body = response.text().await.unwrap_or_default();
            let body = truncate(body.trim());
            // A 503 is Prometheus still starting (or a proxy in front):
            // transient, unlike a rejected configuration.
            if status.as_u16() == 503 || status.as_u16() == 429 || status.as_u16() >= 502 {
                return Err(PrometheusError::Status {
                    url: self.redacted.clone(),
                    status: status.as_u16(),
                    body,
                });
            }
            Err(PrometheusError::Reload {
                status: status.as_u16(),
                body,
            })
        })
        .await
    }

    /// `GET /-/ready`: `true` on 200, `false` on 503 (starting up or
    /// replaying its WAL). Not retried: it is itself a probe.
    pub async fn ready(&self) -> Result<bool, PrometheusError> {
        let endpoint = format!("{}/-/ready", self.base);
        let response = self
            .http
            .get(&endpoint)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        match response.status().as_u16() {
            200 => Ok(true),
            503 => Ok(false),
            status => {
                let body = response.text().await.unwrap_or_default();
                Err(PrometheusError::Status {
                    url: self.redacted.clone(),
                    status,
                    body: truncate(body.trim()),
                })
            }
        }
    }

    async fn with_retries<T, F, Fut>(
        &self,
        operation: &'static str,
        seed_text: &str,
        mut attempt: F,
    ) -> Result<T, PrometheusError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, PrometheusError>>,
    {
        // A fresh random seed per call, so concurrent callers do not retry
        // in lock-step; no RNG dependency needed.
        let seed = std::collections::hash_map::RandomState::new().hash_one(seed_text);
        let mut failures = 0u32;
        loop {
            match attempt().await {
                Err(error) if error.is_transient() && failures < self.config.retries => {
                    failures += 1;
                    let delay = crate::retry::backoff(failures, RETRY_BASE, RETRY_CAP, seed);
                    tracing::debug!(
                        operation,
                        url = %self.redacted,
                        attempt = failures,
                        retry_in = ?delay,
                        error = %error,
                        "prometheus request failed; retrying"
                    );
                    tokio::time::sleep(delay).await;
                }
                result => return result,
            }
        }
    }

    fn transport_error(&self, error: reqwest::Error) -> PrometheusError {
        // The URL is ours to print (redacted); reqwest's copy may hold
        // credentials and repeats the query string.
        let error = error.without_url();
        if error.is_timeout() {
            PrometheusError::TimedOut {
                url: self.redacted.clone(),
                after: self.config.timeout,
                source: error,
            }
        } else {
            PrometheusError::Unreachable {
                url: self.redacted.clone(),
                source: error,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_reach_messages() {
        assert_eq!(
            redact("http://user:secret@prom:9090/prefix"),
            "http://prom:9090/prefix"
        );
        assert_eq!(redact("http://prom:9090"), "http://prom:9090");
        let p = Prometheus::new(PrometheusConfig {
            url: "http://user:secret@prom:9090/".into(),
            timeout: Duration::from_secs(1),
            retries: 0,
        })
        .unwrap();
        assert_eq!(p.url(), "http://user:secret@prom:9090");
        assert!(!format!("{p:?}").contains("secret"));
    }

    #[test]
    fn a_url_without_http_is_refused() {
        for url in ["prom:9090", "ftp://prom", "not a url"] {
            let err = Prometheus::new(PrometheusConfig {
                url: url.into(),
                timeout: Duration::from_secs(1),
                retries: 0,
            })
            .unwrap_err();
            assert!(
                matches!(err, PrometheusError::InvalidUrl { .. }),
                "{url}: {err:?}"
            );
        }
    }
}
