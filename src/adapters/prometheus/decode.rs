//! Decoding the Prometheus HTTP API's answers (`/api/v1/query`,
//! `/api/v1/query_range`) into samples or classified errors. Pure, so the
//! API's shapes are unit-tested without a server.

use super::{Point, PrometheusError, Sample, Series};
use std::collections::BTreeMap;

/// Bodies are quoted in errors; a proxy's HTML page must not flood a log.
const MAX_BODY_IN_ERROR: usize = 1024;

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
    Matrix(Vec<MatrixElement>),
    String(serde::de::IgnoredAny),
}

#[derive(serde::Deserialize)]
struct MatrixElement {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<TimeValue>,
}

#[derive(serde::Deserialize)]
struct VectorElement {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: TimeValue,
}

/// `[<unix seconds>, "<value>"]`: values are strings so NaN and ±Inf fit.
#[derive(serde::Deserialize)]
struct TimeValue(f64, String);

/// Turns one HTTP answer to an instant query into samples or a classified
/// error.
pub(super) fn classify_query(
    url: &str,
    query: &str,
    status: u16,
    body: &[u8],
) -> Result<Vec<Sample>, PrometheusError> {
    decode_instant(url, classify(url, query, status, body)?)
}

/// Turns one HTTP answer to a range query into series or a classified
/// error.
pub(super) fn classify_range(
    url: &str,
    query: &str,
    status: u16,
    body: &[u8],
) -> Result<Vec<Series>, PrometheusError> {
    decode_range(url, classify(url, query, status, body)?)
}

/// The data of a successful answer, or the error the answer describes.
fn classify(
    url: &str,
    query: &str,
    status: u16,
    body: &[u8],
) -> Result<Option<QueryData>, PrometheusError> {
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
            return Ok(envelope.data);
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

fn decode_error(url: &str) -> impl Fn(String) -> PrometheusError + '_ {
    move |reason| PrometheusError::Decode {
        url: url.to_owned(),
        reason,
    }
}

fn decode_instant(url: &str, data: Option<QueryData>) -> Result<Vec<Sample>, PrometheusError> {
    let decode = decode_error(url);
    match data {
        Some(QueryData::Vector(elements)) => elements
            .into_iter()
            .map(|e| {
                Ok(Sample {
                    value: parse_value(&e.value.1).map_err(&decode)?,
                    labels: e.metric,
                })
            })
            .collect(),
        Some(QueryData::Scalar(v)) => Ok(vec![Sample {
            labels: BTreeMap::new(),
            value: parse_value(&v.1).map_err(&decode)?,
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

fn decode_range(url: &str, data: Option<QueryData>) -> Result<Vec<Series>, PrometheusError> {
    let decode = decode_error(url);
    match data {
        Some(QueryData::Matrix(elements)) => elements
            .into_iter()
            .map(|e| {
                let points = e
                    .values
                    .iter()
                    .map(|v| {
                        Ok(Point {
                            time: v.0,
                            value: parse_value(&v.1).map_err(&decode)?,
                        })
                    })
                    .collect::<Result<_, PrometheusError>>()?;
                Ok(Series {
                    labels: e.metric,
                    points,
                })
            })
            .collect(),
        Some(_) => Err(decode(
            "a range query answered with something other than a matrix".to_owned(),
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

pub(super) fn truncate(text: &str) -> String {
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
    fn a_matrix_becomes_one_series_per_label_set_with_its_points() {
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"service":"api"},"values":[[1700000000,"1.5"],[1700000060.5,"NaN"]]},
            {"metric":{},"values":[]}]}}"#;
        let series = classify_range(URL, "q", 200, body.as_bytes()).expect("decodes");
        assert_eq!(series.len(), 2);
        assert_eq!(series[0].labels, labels(&[("service", "api")]));
        assert_eq!(
            series[0].points[0],
            Point {
                time: 1_700_000_000.0,
                value: 1.5
            }
        );
        assert_eq!(series[0].points[1].time, 1_700_000_060.5);
        assert!(series[0].points[1].value.is_nan());
        assert!(series[1].points.is_empty());
    }

    #[test]
    fn a_range_query_that_is_rejected_is_a_bad_query() {
        let body = r#"{"status":"error","errorType":"bad_data","error":"exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"}"#;
        let err = classify_range(URL, "up", 400, body.as_bytes()).unwrap_err();
        assert!(
            matches!(&err, PrometheusError::BadQuery { message, .. } if message.contains("11,000")),
            "{err:?}"
        );
    }

    #[test]
    fn a_vector_answer_to_a_range_query_is_a_decode_error() {
        let body = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        let err = classify_range(URL, "q", 200, body.as_bytes()).unwrap_err();
        assert!(matches!(err, PrometheusError::Decode { .. }), "{err:?}");
    }

    #[test]
    fn a_range_vector_is_refused_with_a_hint() {
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        let err = classify_query(URL, "up[1m]", 200, body.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("range vector"), "{err}");
    }

    #[test]
    fn long_bodies_are_cut_on_a_char_boundary() {
        let text = "é".repeat(MAX_BODY_IN_ERROR);
        let cut = truncate(&text);
        assert!(cut.len() < text.len());
        assert!(cut.ends_with(&format!("({} bytes)", text.len())));
    }
}
