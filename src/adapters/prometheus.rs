//! Prometheus HTTP API: instant queries and configuration reload.
//!
//! A narrow client for the scaling loop (instant queries) and the alert-rule
//! sink (reload after writing rule files). Transient failures — Prometheus
//! down, slow, or answering 5xx/429 — are retried here a few times with a
//! short jittered backoff, because a scaling tick is cheap to delay but
//! wasteful to lose; everything else (a bad query, a rejected reload, an
//! answer that is not the Prometheus API) is returned at once, classified by
//! [`PrometheusError::is_transient`].
//!
//! Invariant: the configured URL may carry credentials (`user:pass@`); every
//! message and log field uses the redacted form, and reqwest's own errors are
//! stripped of their URL before they are kept as a source.

use super::redact;
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

/// Bodies are quoted in errors; a proxy's HTML page must not flood a log.
const MAX_BODY_IN_ERROR: usize = 1024;

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
            let response = self
                .http
                .get(&endpoint)
                .query(&[("query", promql)])
                .send()
                .await
                .map_err(|e| self.transport_error(e))?;
            let status = response.status().as_u16();
            let body = response
                .bytes()
                .await
                .map_err(|e| self.transport_error(e))?;
            classify_query(&self.redacted, promql, status, &body)
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

/// The Prometheus API envelope (`/api/v1/*`).
#[derive(serde::Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<QueryData>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum QueryData {
    Vector(Vec<VectorElement>),
    Scalar(TimeValue),
    Matrix(serde::de::IgnoredAny),
    String(serde::de::IgnoredAny),
}

#[derive(serde::Deserialize)]
struct VectorElement {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: TimeValue,
}

/// `[<unix seconds>, "<value>"]`: values are strings so NaN and ±Inf fit.
#[derive(serde::Deserialize)]
struct TimeValue(#[allow(dead_code)] f64, String);

/// Turns one HTTP answer to an instant query into samples or a classified
/// error. Pure, so the API's shapes are unit-tested without a server.
fn classify_query(
    url: &str,
    query: &str,
    status: u16,
    body: &[u8],
) -> Result<Vec<Sample>, PrometheusError> {
    let success = (200..300).contains(&status);
    let raw_body = || truncate(String::from_utf8_lossy(body).trim());
    let envelope: Envelope = match serde_json::from_slice(body) {
        Ok(envelope) => envelope,
        Err(e) if success => {
            return Err(PrometheusError::Decode {
                url: url.to_owned(),
                reason: e.to_string(),
            });
        }
        // Not the API's JSON on an error status: a proxy, or Prometheus
        // failing before its API handler ran.
        Err(_) => {
            return Err(PrometheusError::Status {
                url: url.to_owned(),
                status,
                body: raw_body(),
            });
        }
    };
    if success {
        if envelope.status == "success" {
            return decode_data(url, envelope.data);
        }
        return Err(PrometheusError::Decode {
            url: url.to_owned(),
            reason: format!(
                "status {:?} with error {:?}",
                envelope.status,
                envelope.error.unwrap_or_default()
            ),
        });
    }
    match (status, envelope.error) {
        // 400 bad_data (parse error), 422 execution error: the query is at
        // fault, retrying cannot help.
        (400 | 422, Some(message)) => Err(PrometheusError::BadQuery {
            query: query.to_owned(),
            message,
        }),
        (_, Some(message)) => Err(PrometheusError::Status {
            url: url.to_owned(),
            status,
            body: match envelope.error_type {
                Some(t) => format!("{t}: {message}"),
                None => message,
            },
        }),
        (_, None) => Err(PrometheusError::Status {
            url: url.to_owned(),
            status,
            body: raw_body(),
        }),
    }
}

fn decode_data(url: &str, data: Option<QueryData>) -> Result<Vec<Sample>, PrometheusError> {
    let decode = |reason: String| PrometheusError::Decode {
        url: url.to_owned(),
        reason,
    };
    match data {
        Some(QueryData::Vector(elements)) => elements
            .into_iter()
            .map(|e| {
                Ok(Sample {
                    value: parse_value(&e.value.1).map_err(decode)?,
                    labels: e.metric,
                })
            })
            .collect(),
        Some(QueryData::Scalar(v)) => Ok(vec![Sample {
            labels: BTreeMap::new(),
            value: parse_value(&v.1).map_err(decode)?,
        }]),
        Some(QueryData::Matrix(_)) => Err(decode(
            "the query returned a range vector; an instant query needs an instant vector or scalar (drop the [range] or wrap it in rate())"
                .to_owned(),
        )),
        Some(QueryData::String(_)) => Err(decode(
            "the query returned a string; expected an instant vector or scalar".to_owned(),
        )),
        None => Err(decode("a successful answer without data".to_owned())),
    }
}

/// Prometheus prints Go's `strconv.FormatFloat`: `NaN`, `+Inf`, `-Inf`,
/// or a decimal/exponent form; Rust's parser accepts all of them.
fn parse_value(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .map_err(|e| format!("sample value {text:?} is not a number: {e}"))
}

fn truncate(text: &str) -> String {
    if text.len() <= MAX_BODY_IN_ERROR {
        return text.to_owned();
    }
    let mut end = MAX_BODY_IN_ERROR;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "http://prom:9090";

    fn ok(body: &str) -> Vec<Sample> {
        classify_query(URL, "q", 200, body.as_bytes()).expect("decodes")
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_vector_becomes_one_sample_per_series() {
        let samples = ok(
            r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"service":"api"},"value":[1796181731.906,"10.5"]},
            {"metric":{"service":"db","job":"x"},"value":[1796181731.906,"1e3"]}]}}"#,
        );
        assert_eq!(
            samples,
            vec![
                Sample {
                    labels: labels(&[("service", "api")]),
                    value: 10.5
                },
                Sample {
                    labels: labels(&[("job", "x"), ("service", "db")]),
                    value: 1000.0
                },
            ]
        );
    }

    #[test]
    fn a_scalar_becomes_one_sample_without_labels() {
        let samples = ok(
            r#"{"status":"success","data":{"resultType":"scalar","result":[1796181731.925,"3"]}}"#,
        );
        assert_eq!(
            samples,
            vec![Sample {
                labels: BTreeMap::new(),
                value: 3.0
            }]
        );
    }

    #[test]
    fn nan_and_infinities_are_kept() {
        let samples = ok(
            r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"a":"1"},"value":[1,"NaN"]},
            {"metric":{"a":"2"},"value":[1,"+Inf"]},
            {"metric":{"a":"3"},"value":[1,"-Inf"]}]}}"#,
        );
        assert!(samples[0].value.is_nan());
        assert_eq!(samples[1].value, f64::INFINITY);
        assert_eq!(samples[2].value, f64::NEG_INFINITY);
    }

    #[test]
    fn an_empty_result_is_no_samples() {
        assert!(
            ok(r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#).is_empty()
        );
    }

    #[test]
    fn warnings_and_unknown_fields_are_ignored() {
        let samples = ok(
            r#"{"status":"success","warnings":["w"],"infos":[],"data":{"resultType":"scalar","result":[1,"1"],"stats":{}}}"#,
        );
        assert_eq!(samples.len(), 1);
    }

    #[test]
    fn a_parse_error_is_a_bad_query_with_prometheus_text() {
        let body = r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:5: parse error: unclosed left parenthesis"}"#;
        let err = classify_query(URL, "sum(", 400, body.as_bytes()).unwrap_err();
        match &err {
            PrometheusError::BadQuery { query, message } => {
                assert_eq!(query, "sum(");
                assert!(message.contains("unclosed left parenthesis"), "{message}");
            }
            other => panic!("expected BadQuery, got {other:?}"),
        }
        assert!(!err.is_transient());
        assert!(err.to_string().contains("fix the query"), "{err}");
    }

    #[test]
    fn an_execution_error_is_a_bad_query() {
        let body = r#"{"status":"error","errorType":"execution","error":"found duplicate series for the match group"}"#;
        let err = classify_query(URL, "a * on() b", 422, body.as_bytes()).unwrap_err();
        assert!(matches!(err, PrometheusError::BadQuery { .. }), "{err:?}");
    }

    #[test]
    fn a_query_timeout_is_a_transient_status_with_the_message() {
        let body = r#"{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}"#;
        let err = classify_query(URL, "q", 503, body.as_bytes()).unwrap_err();
        match &err {
            PrometheusError::Status { status, body, .. } => {
                assert_eq!(*status, 503);
                assert_eq!(body, "timeout: query timed out in expression evaluation");
            }
            other => panic!("expected Status, got {other:?}"),
        }
        assert!(err.is_transient());
    }

    #[test]
    fn a_proxy_error_page_is_a_transient_status() {
        let err = classify_query(URL, "q", 502, b"<html>Bad Gateway</html>").unwrap_err();
        assert!(
            matches!(&err, PrometheusError::Status { status: 502, body, .. } if body.contains("Bad Gateway")),
            "{err:?}"
        );
        assert!(err.is_transient());
    }

    #[test]
    fn a_non_api_answer_is_a_decode_error() {
        let err = classify_query(URL, "q", 200, b"<html>login</html>").unwrap_err();
        assert!(matches!(err, PrometheusError::Decode { .. }), "{err:?}");
        assert!(!err.is_transient());
    }

    #[test]
    fn a_range_vector_is_refused_with_a_hint() {
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        let err = classify_query(URL, "up[1m]", 200, body.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("range vector"), "{err}");
    }

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

    #[test]
    fn long_bodies_are_cut_on_a_char_boundary() {
        let text = "é".repeat(MAX_BODY_IN_ERROR);
        let cut = truncate(&text);
        assert!(cut.len() < text.len());
        assert!(cut.ends_with(&format!("({} bytes)", text.len())));
    }
}
