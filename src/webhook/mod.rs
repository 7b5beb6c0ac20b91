//! Alertmanager webhook payloads and how their alerts become triggers.
//!
//! Pure code: [`payload`] reads the wire format; this module says which
//! alerts concern smo ([`Alert::target`]) and how a redelivery of the same
//! alert is recognised ([`Alert::delivery_key`]). Alertmanager retries a
//! webhook until it gets a 2xx and re-sends firing groups every
//! `repeat_interval`, so the same alert arrives many times; the key lets
//! the store acknowledge each delivery once.

pub mod payload;

pub use payload::{Alert, MAX_ALERTS, Payload, PayloadError, Status, parse};

use sha2::{Digest, Sha256};

/// The labels that route an alert to an smo service event. All four must
/// be present and non-empty; the alert rules smo generates set them.
pub const LABEL_PROJECT: &str = "smo_project";
pub const LABEL_GRAPH: &str = "smo_graph";
pub const LABEL_SERVICE: &str = "smo_service";
pub const LABEL_EVENT: &str = "smo_event";

/// The service event an alert is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    pub project: String,
    pub graph: String,
    pub service: String,
    pub event: String,
}

impl Alert {
    /// The smo target of this alert, or `None` when any of the four smo
    /// labels is missing or empty (an alert routed to smo by mistake).
    pub fn target(&self) -> Option<Target> {
        let label = |name: &str| {
            self.labels
                .get(name)
                .filter(|v| !v.is_empty())
                .map(String::to_owned)
        };
        Some(Target {
            project: label(LABEL_PROJECT)?,
            graph: label(LABEL_GRAPH)?,
            service: label(LABEL_SERVICE)?,
            event: label(LABEL_EVENT)?,
        })
    }

    /// The idempotency key of this delivery: fingerprint, start time and
    /// status. A redelivery (retry or repeat) has the same key; the alert
    /// firing again later has a new `startsAt`, and its resolution a new
    /// status.
    ///
    /// Alertmanager always sends a fingerprint; should it be missing, a
    /// digest of the labels stands in for it (the fingerprint is a hash of
    /// the labels too), so unrelated alerts never share a key.
    pub fn delivery_key(&self) -> String {
        let fingerprint = if self.fingerprint.is_empty() {
            let mut h = Sha256::new();
            // Length-prefixed, so `{"ab": "c"}` and `{"a": "bc"}` differ.
            for (k, v) in &self.labels {
                h.update((k.len() as u64).to_le_bytes());
                h.update(k.as_bytes());
                h.update((v.len() as u64).to_le_bytes());
                h.update(v.as_bytes());
            }
            let hex = crate::digest::hex(&h.finalize());
            format!("labels:{hex}")
        } else {
            self.fingerprint.clone()
        };
        format!("{fingerprint}/{}/{}", self.starts_at, self.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(labels: &[(&str, &str)]) -> Alert {
        Alert {
            status: Status::Firing,
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            annotations: Default::default(),
            starts_at: "2023-03-14T09:26:43.512Z".to_owned(),
            ends_at: "0001-01-01T00:00:00Z".to_owned(),
            generator_url: String::new(),
            fingerprint: "1a2b".to_owned(),
        }
    }

    const ALL: [(&str, &str); 4] = [
        ("smo_project", "demo"),
        ("smo_graph", "shop"),
        ("smo_service", "frontend"),
        ("smo_event", "latency-high"),
    ];

    #[test]
    fn target_of_the_real_payload() {
        let p = parse(payload::tests::FIRING.as_bytes()).unwrap();
        assert_eq!(
            p.alerts[0].target(),
            Some(Target {
                project: "demo".into(),
                graph: "shop".into(),
                service: "frontend".into(),
                event: "latency-high".into(),
            })
        );
        assert_eq!(p.alerts[1].target(), None);
    }

    #[test]
    fn target_needs_all_four_labels_non_empty() {
        assert!(alert(&ALL).target().is_some());
        for i in 0..ALL.len() {
            let mut missing = ALL.to_vec();
            missing.remove(i);
            assert_eq!(alert(&missing).target(), None, "without {}", ALL[i].0);
            let mut empty = ALL.to_vec();
            empty[i].1 = "";
            assert_eq!(alert(&empty).target(), None, "empty {}", ALL[i].0);
        }
    }

    #[test]
    fn delivery_key_changes_with_start_and_status_only() {
        let a = alert(&ALL);
        assert_eq!(a.delivery_key(), "1a2b/2023-03-14T09:26:43.512Z/firing");
        let mut annotated = a.clone();
        annotated.annotations.insert("summary".into(), "x".into());
        assert_eq!(annotated.delivery_key(), a.delivery_key());
        let mut resolved = a.clone();
        resolved.status = Status::Resolved;
        assert_ne!(resolved.delivery_key(), a.delivery_key());
        let mut again = a.clone();
        again.starts_at = "2023-03-14T10:00:00Z".into();
        assert_ne!(again.delivery_key(), a.delivery_key());
    }

    #[test]
    fn delivery_key_without_fingerprint_uses_the_labels() {
        let mut a = alert(&[("ab", "c")]);
        a.fingerprint.clear();
        let mut b = alert(&[("a", "bc")]);
        b.fingerprint.clear();
        assert!(a.delivery_key().starts_with("labels:"));
        assert_ne!(a.delivery_key(), b.delivery_key());
        assert_eq!(a.delivery_key(), a.clone().delivery_key());
    }
}
