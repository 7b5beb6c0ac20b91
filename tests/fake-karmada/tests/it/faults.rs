//! Fault injection: error statuses, latency, outage and recovery.

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};

use crate::support;
use fake_karmada::Fault;

#[tokio::test]
async fn an_injected_500_fails_one_request_then_service_resumes() {
    let fake = support::start().await;
    let client = support::client(&fake).await;
    let nss: Api<Namespace> = Api::all(client);
    fake.fail_next(
        Fault::status(500)
            .method("GET")
            .path_prefix("/api/v1/namespaces"),
    );
    match nss.list(&ListParams::default()).await {
        Err(kube::Error::Api(s)) => assert_eq!((s.code, s.reason.as_str()), (500, "InternalError")),
        other => panic!("expected the injected 500, got {other:?}"),
    }
    let list = nss
        .list(&ListParams::default())
        .await
        .expect("next request succeeds");
    assert!(
        list.items
            .iter()
            .any(|n| n.metadata.name.as_deref() == Some("default"))
    );

    // Rules only hit what they match, and count down.
    fake.fail_next(Fault::status(503).path_prefix("/apis/").times(2));
    nss.list(&ListParams::default())
        .await
        .expect("core group not matched");
    let failed: Vec<u16> = fake
        .requests()
        .iter()
        .map(|r| r.status)
        .filter(|s| *s >= 500)
        .collect();
    assert_eq!(failed, [500]);
    fake.clear_faults();
}

#[tokio::test]
async fn latency_delays_but_does_not_fail() {
    let fake = support::start().await;
    let client = support::client(&fake).await;
    let nss: Api<Namespace> = Api::all(client);
    fake.set_latency(Duration::from_millis(50));
    nss.list(&ListParams::default())
        .await
        .expect("slow but fine");
    fake.set_latency(Duration::ZERO);
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn outage_refuses_connections_and_recovery_restores_service() {
    let mut fake = support::start().await;
    let client = support::client(&fake).await;
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.list(&ListParams::default()).await.expect("up");

    fake.outage().await;
    let err = nss.list(&ListParams::default()).await.expect_err("down");
    assert!(
        !matches!(err, kube::Error::Api(_)),
        "a transport error, not an answer: {err:?}"
    );
    let refused = std::net::TcpStream::connect(fake.addr());
    assert_eq!(
        refused.expect_err("refused").kind(),
        std::io::ErrorKind::ConnectionRefused
    );

    fake.recover().await.expect("re-bind");
    let list = nss.list(&ListParams::default()).await.expect("up again");
    assert!(!list.items.is_empty(), "state survived the outage");
}
