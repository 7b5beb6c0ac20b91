//! Alertmanager's side of the crash suite: deliveries and retries.

use super::EVENT;
use super::model::Target;
use crate::daemon::Env;
use crate::webhook::{exchange, raw};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

pub(super) fn alert_payload(t: &Target) -> Vec<u8> {
    let (p, g, s) = t;
    // A stable fingerprint per target (FNV-1a).
    let fp = format!("{p}/{g}/{s}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
    let body = json!({
        "receiver": "smo",
        "status": "firing",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": EVENT, "smo_project": p, "smo_graph": g, "smo_service": s, "smo_event": EVENT},
            "annotations": {},
            "startsAt": "2024-05-02T10:15:00.000Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": format!("{fp:016x}"),
        }],
        "groupLabels": {"alertname": EVENT},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": "{}:{alertname=\"load-high\"}",
        "truncatedAlerts": 0,
    });
    serde_json::to_vec(&body).unwrap()
}

/// One delivery: the answer's status and body, or why there was none.
pub(super) async fn post(env: &Env, t: &Target) -> Result<(u16, String), String> {
    let auth = format!("Bearer {}", env.token);
    exchange(
        env.http,
        raw(
            "POST",
            "/alerts",
            &[("Authorization", &auth)],
            &alert_payload(t),
        ),
    )
    .await
    .map(|a| (a.status, a.body))
}

/// Alertmanager's retry after the restart: until a 200.
pub(super) async fn deliver(env: &Env, t: &Target) -> Value {
    let t0 = Instant::now();
    loop {
        match post(env, t).await {
            Ok((200, body)) => return serde_json::from_str(&body).unwrap_or(Value::Null),
            other => assert!(
                t0.elapsed() < Duration::from_secs(90),
                "{t:?} still not accepted: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
