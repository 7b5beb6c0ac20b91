//! `coordination.k8s.io/v1` Leases through kube-rs, with the optimistic
//! concurrency that leader election relies on (issue 20): one create wins,
//! an update must name the version it read, and a watch sees every
//! change of holder.

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams, WatchEvent, WatchParams};
use serde_json::json;

use crate::support;

fn lease(holder: &str) -> Lease {
    serde_json::from_value(json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "smo-leader"},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15, "leaseTransitions": 0},
    }))
    .expect("valid Lease")
}

fn code(e: kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.reason.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn holder(l: &Lease) -> Option<&str> {
    l.spec.as_ref()?.holder_identity.as_deref()
}

#[tokio::test]
async fn leases_have_one_creator_and_guarded_updates() {
    let fake = support::start().await;
    let client = support::client(&fake).await;
    let pp = PostParams::default();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = serde_json::from_value(json!({"metadata": {"name": "smo-system"}})).unwrap();
    namespaces.create(&pp, &ns).await.expect("namespace");
    let leases: Api<Lease> = Api::namespaced(client, "smo-system");

    let a = leases.create(&pp, &lease("host-a")).await.expect("create");
    // The second candidate's create loses.
    let (status, reason) = code(leases.create(&pp, &lease("host-b")).await.unwrap_err());
    assert_eq!((status, reason.as_str()), (409, "AlreadyExists"));

    let mut watch = leases
        .watch(
            &WatchParams::default(),
            a.metadata.resource_version.as_deref().unwrap(),
        )
        .await
        .expect("watch")
        .boxed();

    // host-b read the Lease, then host-a renewed it: host-b's takeover,
    // which names the version it read, is refused.
    let read_by_b = leases.get("smo-leader").await.expect("get");
    let mut renewed = read_by_b.clone();
    renewed.spec.as_mut().unwrap().lease_duration_seconds = Some(16);
    let renewed = leases
        .replace("smo-leader", &pp, &renewed)
        .await
        .expect("renew with the version read");
    assert_ne!(
        renewed.metadata.resource_version,
        read_by_b.metadata.resource_version
    );
    let mut takeover = read_by_b;
    takeover.spec.as_mut().unwrap().holder_identity = Some("host-b".into());
    let (status, reason) = code(
        leases
            .replace("smo-leader", &pp, &takeover)
            .await
            .unwrap_err(),
    );
    assert_eq!((status, reason.as_str()), (409, "Conflict"));
    assert_eq!(
        holder(&leases.get("smo-leader").await.unwrap()),
        Some("host-a")
    );

    // From the current version, the takeover goes through.
    let mut takeover = renewed;
    takeover.spec.as_mut().unwrap().holder_identity = Some("host-b".into());
    takeover.spec.as_mut().unwrap().lease_transitions = Some(1);
    let taken = leases
        .replace("smo-leader", &pp, &takeover)
        .await
        .expect("takeover from the current version");
    assert_eq!(holder(&taken), Some("host-b"));

    // The watch saw the renewal, then the change of holder.
    let mut seen = Vec::new();
    while seen.len() < 2 {
        match watch.next().await.expect("event").expect("no error") {
            WatchEvent::Modified(l) => seen.push(holder(&l).unwrap_or_default().to_owned()),
            WatchEvent::Bookmark(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, ["host-a", "host-b"]);
    fake.shutdown().await;
}
