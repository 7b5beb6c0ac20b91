//! The `ha` block: leader election on a `coordination.k8s.io/v1` Lease on
//! the Karmada API server (see [`crate::ha`]). Off by default: one host
//! acts alone, as before.

use super::Stage;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(in crate::spec) struct RawHa {
    enabled: Option<bool>,
    lease_name: Option<String>,
    namespace: Option<String>,
    lease_duration: Option<String>,
    renew_deadline: Option<String>,
    retry_period: Option<String>,
    identity: Option<String>,
}

/// The validated `ha` block. The three durations follow client-go's
/// leader election, whose defaults they are.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ha {
    pub enabled: bool,
    pub lease_name: String,
    pub namespace: String,
    /// How long a standby waits, after it last saw the Lease change, before
    /// it takes the Lease over.
    pub lease_duration: Duration,
    /// How long the leader keeps acting without a successful renewal.
    pub renew_deadline: Duration,
    /// How often the Lease is tried (acquired or renewed).
    pub retry_period: Duration,
    /// This instance's name in the Lease (the host name by default): it
    /// must differ between the instances.
    pub identity: String,
}

/// client-go's jitter factor: a standby's retries are spread over
/// `retryPeriod × (1 + 1.2 × random)`, and the renew deadline must leave
/// room for one such retry.
pub const JITTER: f64 = 1.2;

impl Stage<'_> {
    pub(super) fn ha(&mut self, raw: RawHa) -> Ha {
        let lease_duration = self.duration(
            raw.lease_duration.as_deref(),
            "/ha/leaseDuration",
            Duration::from_secs(15),
        );
        let renew_deadline = self.duration(
            raw.renew_deadline.as_deref(),
            "/ha/renewDeadline",
            Duration::from_secs(10),
        );
        let retry_period = self.duration(
            raw.retry_period.as_deref(),
            "/ha/retryPeriod",
            Duration::from_secs(2),
        );
        if renew_deadline >= lease_duration {
            self.error(
                "/ha/renewDeadline",
                format!(
                    "must be shorter than leaseDuration ({lease_duration:?}): a leader must stop acting before a standby may take over"
                ),
            );
        } else if renew_deadline.as_secs_f64() <= JITTER * retry_period.as_secs_f64() {
            self.error(
                "/ha/renewDeadline",
                format!(
                    "must be longer than {JITTER} × retryPeriod ({retry_period:?}): the leader needs room for a retry before its deadline"
                ),
            );
        }
        if lease_duration.subsec_nanos() != 0 {
            self.error(
                "/ha/leaseDuration",
                "must be whole seconds (a Lease records leaseDurationSeconds)".into(),
            );
        }
        Ha {
            enabled: raw.enabled.unwrap_or(false),
            lease_name: raw.lease_name.unwrap_or_else(|| "smo-leader".into()),
            namespace: raw.namespace.unwrap_or_else(|| "kube-system".into()),
            lease_duration,
            renew_deadline,
            retry_period,
            identity: raw.identity.unwrap_or_else(super::events::hostname),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ConfigError, parse};
    use std::path::Path;
    use std::time::Duration;

    #[test]
    fn ha_defaults_are_client_gos_and_off() {
        let c = parse("source:\n  dir: state\n", "c.yaml", Path::new("/")).unwrap();
        assert!(!c.ha.enabled);
        assert_eq!(
            (c.ha.lease_duration, c.ha.renew_deadline, c.ha.retry_period),
            (
                Duration::from_secs(15),
                Duration::from_secs(10),
                Duration::from_secs(2)
            )
        );
        assert_eq!(
            (c.ha.namespace.as_str(), c.ha.lease_name.as_str()),
            ("kube-system", "smo-leader")
        );
        assert!(!c.ha.identity.is_empty());
    }

    #[test]
    fn a_renew_deadline_past_the_lease_is_refused_with_its_line() {
        let text = "source:\n  dir: state\nha:\n  enabled: true\n  leaseDuration: 10s\n  renewDeadline: 12s\n";
        let Err(ConfigError::Invalid { findings, .. }) = parse(text, "c.yaml", Path::new("/"))
        else {
            panic!("refused");
        };
        assert_eq!(
            (findings[0].line, findings[0].pointer.as_str()),
            (6, "/ha/renewDeadline")
        );
        assert!(findings[0].message.contains("shorter than leaseDuration"));

        let text = "source:\n  dir: state\nha:\n  retryPeriod: 9s\n";
        let Err(ConfigError::Invalid { findings, .. }) = parse(text, "c.yaml", Path::new("/"))
        else {
            panic!("refused");
        };
        assert!(findings[0].message.contains("retryPeriod"), "{findings:?}");

        let text = "source:\n  dir: state\nha:\n  enabled: true\n  identity: host-a\n  leaseDuration: 6s\n  renewDeadline: 4s\n  retryPeriod: 1s\n";
        let c = parse(text, "c.yaml", Path::new("/")).unwrap();
        assert_eq!(
            (c.ha.enabled, c.ha.identity.as_str(), c.ha.lease_duration),
            (true, "host-a", Duration::from_secs(6))
        );
    }
}
