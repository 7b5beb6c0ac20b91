//! kube-rs against the fake: Karmada Clusters, server-side apply, scale,
//! watch, selectors, error bodies and optimistic concurrency.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
    WatchEvent, WatchParams,
};
use serde_json::json;

use crate::support;
use fake_karmada::{ClusterResources, FakeKarmada, Options, ResourcePair};

fn dynamic(
    client: &kube::Client,
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    ns: Option<&str>,
) -> Api<DynamicObject> {
    let ar =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
    match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    }
}

fn clusters_api(client: &kube::Client) -> Api<DynamicObject> {
    dynamic(
        client,
        "cluster.karmada.io",
        "v1alpha1",
        "Cluster",
        "clusters",
        None,
    )
}

fn api_error(e: kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.reason.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "registry.invalid/c:1"}]}},
        },
    }))
    .expect("valid Deployment")
}

#[tokio::test]
async fn clusters_carry_the_inventory_resource_summary() {
    let fake = support::start().await;
    let client = support::client(&fake).await;
    let clusters = clusters_api(&client);
    let list = clusters
        .list(&ListParams::default())
        .await
        .expect("list clusters");
    let names: Vec<_> = list
        .items
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    assert_eq!(names, ["brussels-edge", "ghent-core"]);
    let be = &list.items[0].data;
    assert_eq!(be["status"]["resourceSummary"]["allocatable"]["cpu"], "8");
    assert_eq!(be["status"]["resourceSummary"]["allocated"]["cpu"], "2500m");
    assert_eq!(
        be["status"]["resourceSummary"]["allocatable"]["memory"],
        "32Gi"
    );
    assert_eq!(
        be["status"]["resourceSummary"]["allocatable"]["nvidia.com/gpu"],
        "1"
    );
    assert_eq!(be["status"]["conditions"][0]["type"], "Ready");
    assert_eq!(be["status"]["conditions"][0]["status"], "True");
    let gc = &list.items[1].data;
    assert_eq!(gc["status"]["conditions"][0]["status"], "False");
    assert!(
        gc["status"]["resourceSummary"]["allocatable"]
            .get("nvidia.com/gpu")
            .is_none()
    );

    // Controls change what clients see.
    fake.set_cluster_ready("ghent-core", true)
        .expect("cluster exists");
    fake.set_cluster_resources(
        "brussels-edge",
        &ClusterResources {
            cpu: ResourcePair::new("16", "1"),
            memory: ResourcePair::new("64Gi", "1Gi"),
            gpu: None,
        },
    )
    .expect("cluster exists");
    let gc = clusters.get("ghent-core").await.expect("get");
    assert_eq!(gc.data["status"]["conditions"][0]["status"], "True");
    let be = clusters.get("brussels-edge").await.expect("get");
    assert_eq!(
        be.data["status"]["resourceSummary"]["allocatable"]["cpu"],
        "16"
    );
    assert!(fake.set_cluster_ready("nowhere", true).is_err());
    let bad = ClusterResources {
        cpu: ResourcePair::new("lots", "0"),
        memory: ResourcePair::new("1Gi", "0"),
        gpu: None,
    };
    assert!(fake.set_cluster_resources("ghent-core", &bad).is_err());
}

#[tokio::test]
async fn server_side_apply_is_idempotent_and_records_managers() {
    let fake = support::start().await;
    let client = support::client(&fake).await;
    let rules = dynamic(
        &client,
        "monitoring.coreos.com",
        "v1",
        "PrometheusRule",
        "prometheusrules",
        Some("default"),
    );
    let rule = json!({
        "apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
        "metadata": {"name": "smo-alerts", "labels": {"app.kubernetes.io/managed-by": "smo"}},
        "spec": {"groups": [{"name": "g", "rules": [{"alert": "High", "expr": "up == 0"}]}]},
    });
    let pp = PatchParams::apply("smo");
    let first = rules
        .patch("smo-alerts", &pp, &Patch::Apply(&rule))
        .await
        .expect("apply creates");
    let second = rules
        .patch("smo-alerts", &pp, &Patch::Apply(&rule))
        .await
        .expect("apply again");
    assert_eq!(
        first.metadata.resource_version, second.metadata.resource_version,
        "second apply is a no-op"
    );
    assert_eq!(first.metadata.generation, Some(1));
    let mf = second
        .metadata
        .managed_fields
        .clone()
        .expect("managedFields");
    assert_eq!(mf.len(), 1);
    assert_eq!(mf[0].manager.as_deref(), Some("smo"));
    assert_eq!(mf[0].operation.as_deref(), Some("Apply"));
    let fields = serde_json::to_value(&mf[0].fields_v1).expect("fieldsV1");
    assert!(fields.pointer("/f:spec/f:groups").is_some(), "{fields}");
    assert!(
        fields
            .pointer("/f:metadata/f:labels/f:app.kubernetes.io~1managed-by")
            .is_some(),
        "{fields}"
    );

    // Another manager changing an owned field conflicts unless forced.
    let mut other = rule.clone();
    other["metadata"]["labels"]["app.kubernetes.io/managed-by"] = json!("someone-else");
    let err = rules
        .patch(
            "smo-alerts",
            &PatchParams::apply("intruder"),
            &Patch::Apply(&other),
        )
        .await
        .expect_err("conflict");
    assert_eq!(api_error(err), (409, "Conflict".to_string()));
    let forced = rules
        .patch(
            "smo-alerts",
            &PatchParams::apply("intruder").force(),
            &Patch::Apply(&other),
        )
        .await
        .expect("forced apply");
    assert_eq!(
        forced.metadata.labels.as_ref().expect("labels")["app.kubernetes.io/managed-by"],
        "someone-else"
    );
    let managers: Vec<_> = forced
        .metadata
        .managed_fields
        .expect("managedFields")
        .iter()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert!(
        managers.contains(&"intruder".to_string()) && managers.contains(&"smo".to_string()),
        "{managers:?}"
    );

    // Dropping a field from the applied config removes it when nobody else owns it.
    let mut smaller = rule.clone();
    smaller["metadata"]["labels"] = json!({"app.kubernetes.io/managed-by": "someone-else"});
    smaller["metadata"]["annotations"] = json!({"note": "x"});
    let obj = rules
        .patch(
            "smo-alerts",
            &PatchParams::apply("smo").force(),
            &Patch::Apply(&smaller),
        )
        .await
        .expect("apply");
    assert_eq!(
        obj.metadata.annotations.as_ref().expect("annotations")["note"],
        "x"
    );
    let smallest = json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
        "metadata": {"name": "smo-alerts"}, "spec": {"groups": []}});
    let obj = rules
        .patch(
            "smo-alerts",
            &PatchParams::apply("smo"),
            &Patch::Apply(&smallest),
        )
        .await
        .expect("apply");
    assert!(
        obj.metadata
            .annotations
            .as_ref()
            .is_none_or(|a| !a.contains_key("note")),
        "{:?}",
        obj.metadata.annotations
    );
    // "intruder" applied the same groups too, so it co-owns them: they stay.
    assert_eq!(obj.data["spec"]["groups"][0]["name"], "g");
}

#[tokio::test]
async fn scale_subresource_patch_is_seen_by_a_watch() {
    let fake = support::start().await;
    let client = support::client(&fake).await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let created = deploys
        .create(&PostParams::default(), &deployment("web", 1))
        .await
        .expect("create");
    let rv = created
        .metadata
        .resource_version
        .clone()
        .expect("resourceVersion");
    let mut events = deploys
        .watch(&WatchParams::default().fields("metadata.name=web"), &rv)
        .await
        .expect("watch starts")
        .boxed();

    let scale = deploys
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 4}})),
        )
        .await
        .expect("scale patch");
    assert_eq!(scale.spec.and_then(|s| s.replicas), Some(4));
    let read = deploys.get_scale("web").await.expect("get scale");
    assert_eq!(read.spec.and_then(|s| s.replicas), Some(4));
    assert_eq!(
        read.status.and_then(|s| s.selector).as_deref(),
        Some("app=web")
    );
    let d = deploys.get("web").await.expect("get");
    assert_eq!(d.spec.replicas, Some(4));
    assert_eq!(d.metadata.generation, Some(2));

    // The watch reports the change. The timeout only guards against a hang.
    let seen = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(ev) = events.next().await {
            if let WatchEvent::Modified(d) = ev.expect("watch event") {
                return d.spec.replicas;
            }
        }
        None
    })
    .await
    .expect("watch delivered an event");
    assert_eq!(seen, Some(4));
}

#[tokio::test]
async fn errors_are_status_bodies() {
    let fake = support::start().await;
    let client = support::client(&fake).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    assert_eq!(
        api_error(cms.get("absent").await.expect_err("404")),
        (404, "NotFound".into())
    );

    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "c"}, "data": {"a": "1"}})).expect("cm");
    let created = cms
        .create(&PostParams::default(), &cm)
        .await
        .expect("create");
    assert!(created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some());
    assert_eq!(
        api_error(
            cms.create(&PostParams::default(), &cm)
                .await
                .expect_err("409")
        ),
        (409, "AlreadyExists".into())
    );

    // Optimistic concurrency: a stale resourceVersion is refused.
    let mut stale = created.clone();
    let mut fresh = created.clone();
    fresh.data = Some([("a".to_string(), "2".to_string())].into());
    let updated = cms
        .replace("c", &PostParams::default(), &fresh)
        .await
        .expect("update");
    assert!(updated.metadata.resource_version > created.metadata.resource_version);
    stale.data = Some([("a".to_string(), "3".to_string())].into());
    assert_eq!(
        api_error(
            cms.replace("c", &PostParams::default(), &stale)
                .await
                .expect_err("stale")
        ),
        (409, "Conflict".into())
    );

    // Namespaced creates need the namespace.
    let elsewhere: Api<ConfigMap> = Api::namespaced(client.clone(), "no-such-ns");
    assert_eq!(
        api_error(
            elsewhere
                .create(&PostParams::default(), &cm)
                .await
                .expect_err("404")
        ),
        (404, "NotFound".into())
    );

    // Malformed input is answered with a Status, not a crash.
    let bad = cms
        .patch(
            "c",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"name": "renamed"}})),
        )
        .await;
    assert_eq!(api_error(bad.expect_err("400")), (400, "BadRequest".into()));
    assert_eq!(fake.requests().last().map(|r| r.status), Some(400));
}

#[tokio::test]
async fn label_and_field_selectors_filter_lists() {
    let fake = support::start().await;
    let client = support::client(&fake).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for (name, labels) in [
        ("a", json!({"tier": "front", "env": "prod"})),
        ("b", json!({"tier": "back"})),
        ("c", json!({})),
    ] {
        let cm: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}}))
                .expect("cm");
        cms.create(&PostParams::default(), &cm)
            .await
            .expect("create");
    }
    let names = |l: kube::core::ObjectList<ConfigMap>| -> Vec<String> {
        l.items
            .into_iter()
            .filter_map(|c| c.metadata.name)
            .collect()
    };
    let q = |s: &str| ListParams::default().labels(s);
    assert_eq!(
        names(cms.list(&q("tier=front")).await.expect("list")),
        ["a"]
    );
    assert_eq!(
        names(cms.list(&q("tier in (front,back)")).await.expect("list")),
        ["a", "b"]
    );
    assert_eq!(
        names(cms.list(&q("tier notin (front)")).await.expect("list")),
        ["b", "c"]
    );
    assert_eq!(names(cms.list(&q("tier")).await.expect("list")), ["a", "b"]);
    assert_eq!(names(cms.list(&q("!env")).await.expect("list")), ["b", "c"]);
    assert_eq!(
        names(
            cms.list(&ListParams::default().fields("metadata.name=c"))
                .await
                .expect("list")
        ),
        ["c"]
    );
    let bad = cms
        .list(&q("tier in front"))
        .await
        .expect_err("bad selector");
    assert_eq!(api_error(bad).0, 400);
    cms.delete_collection(&Default::default(), &q("tier"))
        .await
        .expect("deletecollection");
    assert_eq!(
        names(cms.list(&ListParams::default()).await.expect("list")),
        ["c"]
    );
}

#[tokio::test]
async fn simulated_members_make_deployments_ready() {
    let mut fake =
        FakeKarmada::start(Options::default().simulate_members(Duration::from_millis(20)))
            .await
            .expect("fake starts");
    // Simulation survives an outage.
    fake.outage().await;
    fake.recover().await.expect("recover");
    let client = support::client(&fake).await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let created = deploys
        .create(&PostParams::default(), &deployment("w", 3))
        .await
        .expect("create");
    assert!(created.status.is_none(), "no status at creation");
    let rv = created.metadata.resource_version.clone().expect("rv");
    let mut events = deploys
        .watch(&WatchParams::default(), &rv)
        .await
        .expect("watch")
        .boxed();
    let ready = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(ev) = events.next().await {
            if let WatchEvent::Modified(d) = ev.expect("event")
                && let Some(s) = d.status
            {
                return (s.replicas, s.ready_replicas, s.available_replicas);
            }
        }
        (None, None, None)
    })
    .await
    .expect("member simulation reported status");
    assert_eq!(ready, (Some(3), Some(3), Some(3)));
}

#[tokio::test]
async fn out_of_band_drift_is_visible_to_clients() {
    let fake = support::start().await;
    let client = support::client(&fake).await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let created = deploys
        .create(&PostParams::default(), &deployment("d", 2))
        .await
        .expect("create");
    let drifted = fake
        .mutate_object("apps/v1", "Deployment", Some("default"), "d", |d| {
            d["spec"]["replicas"] = json!(7)
        })
        .expect("object exists");
    assert_eq!(drifted["metadata"]["generation"], 2);
    let read = deploys.get("d").await.expect("get");
    assert_eq!(read.spec.replicas, Some(7));
    assert!(read.metadata.resource_version > created.metadata.resource_version);

    // Extra kinds can be registered and are served at once.
    fake.register_kind(fake_karmada::KindSpec::namespaced(
        "example.com/v1",
        "Widget",
        "widgets",
    ));
    let widgets = dynamic(
        &client,
        "example.com",
        "v1",
        "Widget",
        "widgets",
        Some("default"),
    );
    let w = widgets
        .patch("w1", &PatchParams::apply("t"), &Patch::Apply(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 3}})))
        .await
        .expect("apply to a registered kind");
    assert_eq!(w.data["spec"]["size"], 3);
    let disc = client
        .list_api_group_resources("example.com/v1")
        .await
        .expect("discovery");
    assert_eq!(disc.resources[0].kind, "Widget");
}

#[tokio::test]
async fn legacy_and_aggregated_discovery_agree() {
    let fake = support::start().await;
    let client = support::client(&fake).await;
    for discovery in [
        kube::Discovery::new(client.clone())
            .run()
            .await
            .expect("legacy discovery"),
        kube::Discovery::new(client.clone())
            .run_aggregated()
            .await
            .expect("aggregated discovery"),
    ] {
        let gvk = GroupVersionKind::gvk("cluster.karmada.io", "v1alpha1", "Cluster");
        let (ar, caps) = discovery.resolve_gvk(&gvk).expect("Cluster discovered");
        assert_eq!(ar.plural, "clusters");
        assert_eq!(caps.scope, kube::discovery::Scope::Cluster);
        let gvk = GroupVersionKind::gvk("apps", "v1", "Deployment");
        let (ar, caps) = discovery.resolve_gvk(&gvk).expect("Deployment discovered");
        assert_eq!(ar.plural, "deployments");
        assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
        assert!(
            caps.subresources
                .iter()
                .any(|(sub, _)| sub.plural == "deployments/scale" || sub.plural == "scale"),
            "{:?}",
            caps.subresources
        );
        let gvk = GroupVersionKind::gvk("", "v1", "Secret");
        assert!(
            discovery.resolve_gvk(&gvk).is_some(),
            "core kinds discovered"
        );
    }
}

#[tokio::test]
async fn kube_runtime_watcher_follows_cluster_changes() {
    use kube::runtime::watcher;
    let fake = support::start().await;
    let client = support::client(&fake).await;
    let clusters = clusters_api(&client);
    for config in [
        watcher::Config::default(),
        watcher::Config::default().streaming_lists(),
    ] {
        let mut events = watcher::watcher(clusters.clone(), config).boxed();
        // The initial listing ends with InitDone; then a change arrives.
        let mut initial = Vec::new();
        loop {
            match events.next().await.expect("stream open").expect("watch ok") {
                watcher::Event::InitApply(c) => initial.push(c.metadata.name.unwrap_or_default()),
                watcher::Event::InitDone => break,
                _ => {}
            }
        }
        initial.sort();
        assert_eq!(initial, ["brussels-edge", "ghent-core"]);
        fake.set_cluster_ready("brussels-edge", false)
            .expect("cluster exists");
        let changed = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                if let watcher::Event::Apply(c) = events.next().await.expect("open").expect("ok") {
                    return c;
                }
            }
        })
        .await
        .expect("change delivered");
        assert_eq!(changed.data["status"]["conditions"][0]["status"], "False");
        fake.set_cluster_ready("brussels-edge", true)
            .expect("cluster exists");
    }
}

type ClusterEvents = futures::stream::BoxStream<
    'static,
    Result<kube::runtime::watcher::Event<DynamicObject>, kube::runtime::watcher::Error>,
>;

/// A kube-runtime watcher on the clusters, past its initial list.
async fn listed_cluster_watch() -> (FakeKarmada, ClusterEvents) {
    use kube::runtime::watcher;
    let fake = support::start().await;
    let client = support::client(&fake).await;
    let mut events = watcher::watcher(clusters_api(&client), watcher::Config::default()).boxed();
    while !matches!(next_event(&mut events).await, Ok(watcher::Event::InitDone)) {}
    (fake, events)
}

async fn next_event(
    events: &mut ClusterEvents,
) -> Result<kube::runtime::watcher::Event<DynamicObject>, kube::runtime::watcher::Error> {
    tokio::time::timeout(Duration::from_secs(30), events.next())
        .await
        .expect("an event within 30 s")
        .expect("stream open")
}

#[tokio::test]
async fn kube_runtime_watcher_relists_after_410_and_sees_changes_made_meanwhile() {
    use kube::runtime::watcher;
    let (fake, mut events) = listed_cluster_watch().await;
    let mut next = async || next_event(&mut events).await;
    // The history is compacted and the watch cut; a change lands before
    // the watcher is back, so only a new list can show it.
    fake.expire_watches();
    fake.set_cluster_ready("brussels-edge", false)
        .expect("cluster exists");
    let mut saw_gone = false;
    let mut relisted = None;
    while relisted.is_none() {
        match next().await {
            Err(e) => saw_gone |= format!("{e:?}").contains("410"),
            Ok(watcher::Event::InitApply(c))
                if c.metadata.name.as_deref() == Some("brussels-edge") =>
            {
                relisted = Some(c);
            }
            Ok(_) => {}
        }
    }
    assert!(saw_gone, "the resumed watch was told 410 Gone");
    let c = relisted.unwrap();
    assert_eq!(c.data["status"]["conditions"][0]["status"], "False");
}

#[tokio::test]
async fn kube_runtime_watcher_resumes_after_a_dropped_connection_without_missing_a_change() {
    use kube::runtime::watcher;
    let (fake, mut events) = listed_cluster_watch().await;
    let mut next = async || next_event(&mut events).await;
    fake.drop_connections();
    fake.set_cluster_ready("brussels-edge", false)
        .expect("cluster exists");
    // Resumed from its version: the change arrives as an event, no relist.
    loop {
        match next().await {
            Ok(watcher::Event::Apply(c)) if c.metadata.name.as_deref() == Some("brussels-edge") => {
                assert_eq!(c.data["status"]["conditions"][0]["status"], "False");
                break;
            }
            Ok(watcher::Event::Init) => panic!("a dropped connection should not force a relist"),
            _ => {}
        }
    }
}
