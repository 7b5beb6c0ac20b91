//! Metadata-only reads (kube's `Api<PartialObjectMeta<K>>`, client-go's
//! metadata informers): lists and watches answer with the objects'
//! metadata, never their bodies, as the API server does for
//! `as=PartialObjectMetadata(List)`. smo watches helm's release records
//! this way.

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use kube::core::PartialObjectMeta;
use kube::runtime::{WatchStreamExt, watcher};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support;
use fake_karmada::FakeKarmada;

fn secret(name: &str, version: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": "default",
            "labels": {"owner": "helm", "version": version}},
        "data": {"release": "c2VjcmV0"},
    })
}

/// The raw answer to a GET with a metadata-only Accept header.
async fn raw_get(fake: &FakeKarmada, path_and_query: &str, accept: &str) -> String {
    let mut conn = tokio::net::TcpStream::connect(fake.addr())
        .await
        .expect("connect");
    let request = format!(
        "GET {path_and_query} HTTP/1.1\r\nHost: fake\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    );
    conn.write_all(request.as_bytes())
        .await
        .expect("request sent");
    let mut raw = String::new();
    conn.read_to_string(&mut raw).await.expect("response read");
    raw
}

#[tokio::test]
async fn metadata_only_lists_carry_labels_but_no_bodies() {
    let fake = support::start().await;
    let client = support::client(&fake).await;
    fake.put_object(secret("s", "1")).expect("stored");
    let api: Api<Secret> = Api::all(client);
    let list = api
        .list_metadata(&ListParams::default().labels("owner=helm"))
        .await
        .expect("listed");
    assert_eq!(list.items.len(), 1);
    let item = &list.items[0];
    assert_eq!(item.metadata.labels.as_ref().unwrap()["owner"], "helm");
    // What went over the wire: metadata only, not the Secret's data.
    let raw = raw_get(
        &fake,
        "/api/v1/secrets?labelSelector=owner%3Dhelm",
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
    )
    .await;
    assert!(raw.contains("PartialObjectMetadataList"), "{raw}");
    assert!(raw.contains("\"owner\":\"helm\""), "{raw}");
    assert!(!raw.contains("c2VjcmV0"), "the body was sent: {raw}");
}

#[tokio::test]
async fn metadata_only_watches_carry_labels_but_no_bodies() {
    let fake = support::start().await;
    fake.put_object(secret("a", "1")).expect("stored");
    // A metadata watch from the start (its initial ADDED events) that the
    // server ends after a second.
    let raw = raw_get(
        &fake,
        "/api/v1/secrets?watch=true&labelSelector=owner%3Dhelm&timeoutSeconds=1",
        "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
    )
    .await;
    assert!(raw.contains("\"type\":\"ADDED\""), "{raw}");
    assert!(raw.contains("\"kind\":\"PartialObjectMetadata\""), "{raw}");
    assert!(raw.contains("\"version\":\"1\""), "{raw}");
    assert!(!raw.contains("c2VjcmV0"), "the body was sent: {raw}");
    // A plain watch still gets whole objects.
    let raw = raw_get(
        &fake,
        "/api/v1/secrets?watch=true&labelSelector=owner%3Dhelm&timeoutSeconds=1",
        "application/json",
    )
    .await;
    assert!(raw.contains("c2VjcmV0"), "{raw}");
}

#[tokio::test]
async fn kube_runtime_follows_a_metadata_watch() {
    let fake = support::start().await;
    let client = support::client(&fake).await;
    fake.put_object(secret("a", "1")).expect("stored");
    let api: Api<PartialObjectMeta<Secret>> = Api::all(client);
    let mut events = watcher(api, watcher::Config::default().labels("owner=helm"))
        .default_backoff()
        .boxed();
    let mut listed = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), events.next()).await {
            Ok(Some(Ok(watcher::Event::InitApply(o)))) => listed.push(o),
            Ok(Some(Ok(watcher::Event::InitDone))) => break,
            Ok(Some(Ok(_))) => {}
            other => panic!("no initial list: {other:?}"),
        }
    }
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].metadata.labels.as_ref().unwrap()["version"], "1");
    // A new revision's record arrives as an event with its labels.
    fake.put_object(secret("b", "2")).expect("stored");
    loop {
        match tokio::time::timeout(Duration::from_secs(10), events.next()).await {
            Ok(Some(Ok(watcher::Event::Apply(o)))) => {
                assert_eq!(o.metadata.name.as_deref(), Some("b"));
                assert_eq!(o.metadata.labels.as_ref().unwrap()["version"], "2");
                break;
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("no event for the new record: {other:?}"),
        }
    }
}
