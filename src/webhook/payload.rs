//! Alertmanager's webhook payload, version 4, and its parser.
//!
//! The body comes from the network, so the parser is defensive: the number
//! of alerts is capped while reading (a huge array is refused before it is
//! built), every error is one bounded line that never echoes much of the
//! input, and unknown fields are ignored so a newer Alertmanager that adds
//! fields keeps working. `null` where a map or string is expected reads as
//! empty: Go encodes a nil map as `null`.

use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The most alerts one payload may carry. Alertmanager's own `max_alerts`
/// is configurable and unlimited by default, but a group of more than a
/// thousand alerts aimed at smo is a misconfiguration or an attack;
/// Alertmanager reports the rest in `truncatedAlerts` when it is set.
pub const MAX_ALERTS: usize = 1000;

/// The only payload version smo reads.
pub const VERSION: &str = "4";

/// The longest error message [`parse`] returns, in characters.
pub const MAX_REASON_CHARS: usize = 200;

/// Whether an alert (or a whole group) is firing or resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Firing,
    Resolved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One webhook delivery: a group of alerts sharing the route's group labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payload {
    #[serde(default, deserialize_with = "null_as_default")]
    pub receiver: String,
    pub status: Status,
    #[serde(deserialize_with = "capped_alerts")]
    pub alerts: Vec<Alert>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub group_labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub common_labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub common_annotations: BTreeMap<String, String>,
    #[serde(rename = "externalURL", default, deserialize_with = "null_as_default")]
    pub external_url: String,
    pub version: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub group_key: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub truncated_alerts: u64,
}

/// One alert of a payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// Required: an alert without a status cannot be acted on.
    pub status: Status,
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339, as Alertmanager sends it; kept verbatim because it is part
    /// of the delivery key and must compare equal across redeliveries.
    #[serde(default, deserialize_with = "null_as_default")]
    pub starts_at: String,
    /// `0001-01-01T00:00:00Z` while firing.
    #[serde(default, deserialize_with = "null_as_default")]
    pub ends_at: String,
    #[serde(rename = "generatorURL", default, deserialize_with = "null_as_default")]
    pub generator_url: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub fingerprint: String,
}

/// Why a body is not a payload smo accepts. The message is one line of at
/// most [`MAX_REASON_CHARS`] characters, fit for a 400 response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("not an Alertmanager webhook payload: {reason}")]
    Decode { reason: String },
    #[error(
        "unsupported payload version \"{version}\"; smo reads version 4 (Alertmanager 0.16 or later)"
    )]
    Version { version: String },
}

/// Parses a webhook body. See the module documentation for the rules.
pub fn parse(body: &[u8]) -> Result<Payload, PayloadError> {
    // A first pass reads only `version` (everything else is skipped
    // without being built), so a payload of another version is reported as
    // such rather than as whatever field it lacks.
    #[derive(Deserialize)]
    struct Probe {
        #[serde(default)]
        version: Option<String>,
    }
    let probe: Probe = serde_json::from_slice(body).map_err(decode_error)?;
    if let Some(version) = probe.version
        && version != VERSION
    {
        return Err(PayloadError::Version {
            version: one_line(&version, 32),
        });
    }
    serde_json::from_slice(body).map_err(decode_error)
}

fn decode_error(e: serde_json::Error) -> PayloadError {
    // serde_json appends the position; keep it whole and bound the rest,
    // which can quote input (`invalid type: string "…"`).
    let full = e.to_string();
    let position = if e.line() == 0 {
        String::new()
    } else {
        format!(" at line {} column {}", e.line(), e.column())
    };
    let message = full.strip_suffix(&position).unwrap_or(&full);
    PayloadError::Decode {
        reason: format!("{}{position}", one_line(message, 120)),
    }
}

/// Control characters become spaces and the text is cut to `max` characters.
fn one_line(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Reads the `alerts` array, refusing it as soon as it grows past
/// [`MAX_ALERTS`].
fn capped_alerts<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Alert>, D::Error> {
    struct Capped;
    impl<'de> serde::de::Visitor<'de> for Capped {
        type Value = Vec<Alert>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "an array of at most {MAX_ALERTS} alerts")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Vec<Alert>, A::Error> {
            let mut alerts = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_ALERTS));
            while let Some(alert) = seq.next_element()? {
                if alerts.len() == MAX_ALERTS {
                    return Err(serde::de::Error::custom(format_args!(
                        "more than {MAX_ALERTS} alerts in one payload"
                    )));
                }
                alerts.push(alert);
            }
            Ok(alerts)
        }
    }
    d.deserialize_seq(Capped)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// What Alertmanager 0.25 posts for a group of two firing alerts
    /// (webhook_config with default settings), values anonymised.
    pub(crate) const FIRING: &str = r#"{
  "receiver": "smo",
  "status": "firing",
  "alerts": [
    {
      "status": "firing",
      "labels": {
        "alertname": "FrontendHighLatency",
        "instance": "frontend-7d9c:8080",
        "severity": "warning",
        "smo_event": "latency-high",
        "smo_graph": "shop",
        "smo_project": "demo",
        "smo_service": "frontend"
      },
      "annotations": {
        "summary": "p99 latency above 500ms"
      },
      "startsAt": "2023-03-14T09:26:43.512Z",
      "endsAt": "0001-01-01T00:00:00Z",
      "generatorURL": "http://prometheus:9090/graph?g0.expr=histogram_quantile%280.99%29&g0.tab=1",
      "fingerprint": "1a2b3c4d5e6f7081"
    },
    {
      "status": "firing",
      "labels": {
        "alertname": "FrontendHighLatency",
        "instance": "frontend-7d9c:8081",
        "severity": "warning"
      },
      "annotations": {},
      "startsAt": "2023-03-14T09:26:58.001Z",
      "endsAt": "0001-01-01T00:00:00Z",
      "generatorURL": "http://prometheus:9090/graph?g0.expr=histogram_quantile%280.99%29&g0.tab=1",
      "fingerprint": "90a1b2c3d4e5f607"
    }
  ],
  "groupLabels": {
    "alertname": "FrontendHighLatency"
  },
  "commonLabels": {
    "alertname": "FrontendHighLatency",
    "severity": "warning"
  },
  "commonAnnotations": {},
  "externalURL": "http://alertmanager:9093",
  "version": "4",
  "groupKey": "{}:{alertname=\"FrontendHighLatency\"}",
  "truncatedAlerts": 0
}"#;

    fn json(v: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    fn reason(body: &[u8]) -> String {
        let e = parse(body).unwrap_err().to_string();
        assert!(!e.contains('\n'), "multi-line reason: {e}");
        assert!(
            e.chars().count() <= MAX_REASON_CHARS,
            "reason too long: {e}"
        );
        e
    }

    #[test]
    fn alertmanager_0_25_firing_payload() {
        let p = parse(FIRING.as_bytes()).unwrap();
        assert_eq!(p.receiver, "smo");
        assert_eq!(p.status, Status::Firing);
        assert_eq!(p.version, "4");
        assert_eq!(p.external_url, "http://alertmanager:9093");
        assert_eq!(p.group_key, "{}:{alertname=\"FrontendHighLatency\"}");
        assert_eq!(p.truncated_alerts, 0);
        assert_eq!(p.group_labels["alertname"], "FrontendHighLatency");
        assert_eq!(p.common_labels.len(), 2);
        assert!(p.common_annotations.is_empty());
        assert_eq!(p.alerts.len(), 2);
        let a = &p.alerts[0];
        assert_eq!(a.status, Status::Firing);
        assert_eq!(a.labels["smo_service"], "frontend");
        assert_eq!(a.annotations["summary"], "p99 latency above 500ms");
        assert_eq!(a.starts_at, "2023-03-14T09:26:43.512Z");
        assert_eq!(a.ends_at, "0001-01-01T00:00:00Z");
        assert!(a.generator_url.starts_with("http://prometheus:9090/graph?"));
        assert_eq!(a.fingerprint, "1a2b3c4d5e6f7081");
    }

    #[test]
    fn resolved_payload() {
        let body = json(serde_json::json!({
            "status": "resolved", "version": "4",
            "alerts": [{"status": "resolved", "labels": {"alertname": "X"},
                        "startsAt": "2023-03-14T09:26:43.512Z",
                        "endsAt": "2023-03-14T09:31:43.512Z", "fingerprint": "ab"}]
        }));
        let p = parse(&body).unwrap();
        assert_eq!(p.status, Status::Resolved);
        assert_eq!(p.alerts[0].status, Status::Resolved);
        assert_eq!(p.alerts[0].ends_at, "2023-03-14T09:31:43.512Z");
    }

    #[test]
    fn optional_fields_default_and_null_reads_as_empty() {
        let body = json(serde_json::json!({
            "status": "firing", "version": "4", "receiver": null, "commonAnnotations": null,
            "alerts": [{"status": "firing", "labels": null, "annotations": null}]
        }));
        let p = parse(&body).unwrap();
        assert_eq!(p.receiver, "");
        assert!(p.group_labels.is_empty() && p.common_annotations.is_empty());
        assert_eq!(p.truncated_alerts, 0);
        assert!(p.alerts[0].labels.is_empty() && p.alerts[0].fingerprint.is_empty());
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let body = json(serde_json::json!({
            "status": "firing", "version": "4", "futureField": {"nested": [1, 2]},
            "alerts": [{"status": "firing", "silencedBy": [], "extra": 1}]
        }));
        assert_eq!(parse(&body).unwrap().alerts.len(), 1);
    }

    #[test]
    fn wrong_version_is_refused_as_such() {
        let mut v: serde_json::Value = serde_json::from_str(FIRING).unwrap();
        v["version"] = "3".into();
        let e = reason(&json(v));
        assert!(e.contains("unsupported payload version \"3\""), "{e}");
    }

    #[test]
    fn a_huge_version_string_is_not_echoed() {
        let body = json(
            serde_json::json!({"version": "9".repeat(10_000), "status": "firing", "alerts": []}),
        );
        let e = reason(&body);
        assert!(e.contains("unsupported payload version"), "{e}");
    }

    #[test]
    fn truncated_json_is_refused() {
        let e = reason(&FIRING.as_bytes()[..FIRING.len() / 2]);
        assert!(
            e.starts_with("not an Alertmanager webhook payload: EOF"),
            "{e}"
        );
        assert!(e.contains(" at line "), "{e}");
        reason(b"");
        reason(b"not json at all");
    }

    #[test]
    fn wrong_types_are_refused() {
        let e = reason(&json(
            serde_json::json!({"status": "firing", "version": "4", "alerts": {}}),
        ));
        assert!(e.contains("invalid type: map"), "{e}");
        let e = reason(&json(serde_json::json!({
            "status": "firing", "version": "4",
            "alerts": [{"status": "firing", "labels": {"severity": 3}}]
        })));
        assert!(e.contains("invalid type: integer"), "{e}");
        let e = reason(&json(
            serde_json::json!({"status": "burning", "version": "4", "alerts": []}),
        ));
        assert!(e.contains("unknown variant"), "{e}");
        let e = reason(&json(
            serde_json::json!({"status": "firing", "version": 4, "alerts": []}),
        ));
        assert!(e.contains("invalid type: integer"), "{e}");
    }

    #[test]
    fn a_long_string_of_the_wrong_type_is_not_echoed_whole() {
        let body = json(serde_json::json!({
            "status": "firing", "version": "4",
            "alerts": [{"status": "firing", "labels": format!("line\n{}", "x".repeat(100_000))}]
        }));
        let e = reason(&body);
        assert!(e.contains(" at line 1 column "), "position kept: {e}");
    }

    #[test]
    fn more_than_max_alerts_is_refused() {
        let alert = serde_json::json!({"status": "firing"});
        let ok = json(
            serde_json::json!({"status": "firing", "version": "4", "alerts": vec![alert.clone(); MAX_ALERTS]}),
        );
        assert_eq!(parse(&ok).unwrap().alerts.len(), MAX_ALERTS);
        let body = json(
            serde_json::json!({"status": "firing", "version": "4", "alerts": vec![alert; MAX_ALERTS + 1]}),
        );
        let e = reason(&body);
        assert!(e.contains("more than 1000 alerts"), "{e}");
    }

    #[test]
    fn required_fields_are_required() {
        for missing in ["alerts", "version", "status"] {
            let mut v: serde_json::Value = serde_json::from_str(FIRING).unwrap();
            v.as_object_mut().unwrap().remove(missing);
            let e = reason(&json(v));
            assert!(e.contains(&format!("missing field `{missing}`")), "{e}");
        }
        let e = reason(&json(
            serde_json::json!({"status": "firing", "version": "4", "alerts": [{}]}),
        ));
        assert!(e.contains("missing field `status`"), "{e}");
    }
}
