//! The Karmada adapter against the fake API server: real HTTP, real
//! kube-rs, production code unchanged.

use fake_karmada::{ClusterResources, ClusterSpec, FakeKarmada, Fault, Options, ResourcePair};
use serde_json::{Value, json};
use smo::adapters::karmada::{Karmada, KarmadaError, ObjectRef, Owner};

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

fn clusters() -> Vec<ClusterSpec> {
    let spec = |name: &str, ready, cpu: (&str, &str), gpu: Option<ResourcePair>| ClusterSpec {
        name: name.into(),
        ready,
        resources: ClusterResources {
            cpu: ResourcePair::new(cpu.0, cpu.1),
            memory: ResourcePair::new("32Gi", "4Gi"),
            gpu,
        },
    };
    // Seeded out of name order: the adapter sorts.
    vec![
        spec("ghent-core", false, ("16", "1"), None),
        spec(
            "brussels-edge",
            true,
            ("8", "2500m"),
            Some(ResourcePair::new("2", "1")),
        ),
    ]
}

async fn start() -> (FakeKarmada, Karmada) {
    let fake = FakeKarmada::start(Options::default().clusters(clusters()))
        .await
        .expect("fake starts");
    let karmada = Karmada::connect(Some(fake.kubeconfig_path()), Some("fake-karmada"))
        .await
        .expect("connects");
    (fake, karmada)
}

fn owner(graph: &str) -> Owner {
    Owner {
        project: "shop".into(),
        graph: graph.into(),
    }
}

fn config_map(name: &str, data: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": data,
    })
}

fn cm_ref(name: &str) -> ObjectRef {
    ObjectRef {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: Some("shop".into()),
        name: name.into(),
    }
}

fn deployment(name: &str, replicas: i32) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "registry.invalid/c:1"}]}},
        },
    })
}

#[tokio::test]
async fn inventory_follows_cluster_readiness_and_resources() {
    let (fake, karmada) = start().await;
    let inv = karmada
        .inventory("nvidia.com/gpu")
        .await
        .expect("inventory");
    let names: Vec<_> = inv.clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["brussels-edge", "ghent-core"]);
    let be = &inv.clusters[0];
    assert!(be.ready);
    assert_eq!((be.cpu.allocatable, be.cpu.allocated), (8.0, 2.5));
    assert_eq!(
        (be.memory.allocatable, be.memory.allocated),
        (32.0 * GIB, 4.0 * GIB)
    );
    assert_eq!((be.gpu.allocatable, be.gpu.allocated), (2.0, 1.0));
    let gc = &inv.clusters[1];
    assert!(!gc.ready);
    assert_eq!(gc.gpu.allocatable, 0.0, "no GPU reported");
    // Another GPU resource name sees no GPUs anywhere.
    let other = karmada.inventory("amd.com/gpu").await.expect("inventory");
    assert!(other.clusters.iter().all(|c| c.gpu.allocatable == 0.0));

    fake.set_cluster_ready("ghent-core", true).expect("exists");
    fake.set_cluster_ready("brussels-edge", false)
        .expect("exists");
    fake.set_cluster_resources(
        "ghent-core",
        &ClusterResources {
            cpu: ResourcePair::new("32", "750m"),
            memory: ResourcePair::allocatable_only("64Gi"),
            gpu: Some(ResourcePair::new("4", "0")),
        },
    )
    .expect("exists");
    let inv = karmada
        .inventory("nvidia.com/gpu")
        .await
        .expect("inventory");
    assert!(!inv.clusters[0].ready);
    let gc = &inv.clusters[1];
    assert!(gc.ready);
    assert_eq!((gc.cpu.allocatable, gc.cpu.allocated), (32.0, 0.75));
    assert_eq!(
        (gc.memory.allocatable, gc.memory.allocated),
        (64.0 * GIB, 0.0)
    );
    assert_eq!(gc.gpu.allocatable, 4.0);

    // A cluster without a resource summary: zeros, readiness as reported.
    fake.mutate_object(
        "cluster.karmada.io/v1alpha1",
        "Cluster",
        None,
        "ghent-core",
        |c| {
            c["status"]
                .as_object_mut()
                .expect("status")
                .remove("resourceSummary");
        },
    )
    .expect("exists");
    let inv = karmada
        .inventory("nvidia.com/gpu")
        .await
        .expect("inventory");
    let gc = &inv.clusters[1];
    assert!(gc.ready);
    assert_eq!((gc.cpu.allocatable, gc.memory.allocatable), (0.0, 0.0));
}

#[tokio::test]
async fn apply_creates_then_updates_with_owner_labels_and_field_manager() {
    let (fake, karmada) = start().await;
    karmada.ensure_namespace("shop").await.expect("namespace");
    let ns = fake
        .get_object("v1", "Namespace", None, "shop")
        .expect("namespace created");
    assert_eq!(
        ns["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "smo"
    );
    assert_eq!(ns["metadata"]["labels"]["smo.nephele.eu/project"], "shop");

    let o = owner("web");
    karmada
        .apply(&config_map("settings", json!({"a": "1"})), &o)
        .await
        .expect("apply creates");
    let live = fake
        .get_object("v1", "ConfigMap", Some("shop"), "settings")
        .expect("created in the owner's project namespace");
    assert_eq!(live["data"]["a"], "1");
    let labels = &live["metadata"]["labels"];
    assert_eq!(labels["app.kubernetes.io/managed-by"], "smo");
    assert_eq!(labels["smo.nephele.eu/project"], "shop");
    assert_eq!(labels["smo.nephele.eu/graph"], "web");

    karmada
        .apply(&config_map("settings", json!({"a": "2", "b": "3"})), &o)
        .await
        .expect("apply updates");
    let live = fake
        .get_object("v1", "ConfigMap", Some("shop"), "settings")
        .expect("still there");
    assert_eq!(live["data"], json!({"a": "2", "b": "3"}));
    let via_adapter = karmada
        .get(&cm_ref("settings"))
        .await
        .expect("get")
        .expect("present");
    assert_eq!(via_adapter["data"]["b"], "3");
    assert_eq!(via_adapter["kind"], "ConfigMap");

    let applies: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert_eq!(applies.len(), 3, "namespace + two applies");
    for r in &applies {
        assert_eq!(r.field_manager.as_deref(), Some("smo"), "{}", r.path);
        assert_eq!(r.content_type, "application/apply-patch+yaml");
        assert!(r.query.contains("force=true"), "{}", r.query);
    }
    let managers: Vec<_> = live["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .map(|m| (m["manager"].clone(), m["operation"].clone()))
        .collect();
    assert_eq!(managers, [(json!("smo"), json!("Apply"))]);
    assert_eq!(
        karmada.get(&cm_ref("absent")).await.expect("get"),
        None,
        "absent is None"
    );
}

#[tokio::test]
async fn apply_resolves_karmada_kinds_through_cached_discovery() {
    let (fake, karmada) = start().await;
    karmada.ensure_namespace("shop").await.expect("namespace");
    let policy = |clusters: Value| {
        json!({
            "apiVersion": "policy.karmada.io/v1alpha1", "kind": "PropagationPolicy",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {
                "resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}],
                "placement": {"clusterAffinity": {"clusterNames": clusters}},
            },
        })
    };
    let o = owner("web");
    karmada
        .apply(&policy(json!(["brussels-edge"])), &o)
        .await
        .expect("apply");
    karmada
        .apply(&policy(json!(["ghent-core"])), &o)
        .await
        .expect("apply again");
    let live = fake
        .get_object(
            "policy.karmada.io/v1alpha1",
            "PropagationPolicy",
            Some("shop"),
            "web",
        )
        .expect("created");
    assert_eq!(
        live["spec"]["placement"]["clusterAffinity"]["clusterNames"],
        json!(["ghent-core"])
    );
    let discovery_calls = fake
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path == "/apis/policy.karmada.io/v1alpha1")
        .count();
    assert_eq!(discovery_calls, 1, "discovery is cached in the handle");
    let clones = karmada.clone();
    clones
        .apply(&policy(json!(["a"])), &o)
        .await
        .expect("apply through a clone");
    assert_eq!(
        fake.requests()
            .iter()
            .filter(|r| r.path == "/apis/policy.karmada.io/v1alpha1")
            .count(),
        1,
        "clones share the cache"
    );

    // Cluster-scoped: a namespace in the object is dropped, not an error.
    let cpp = json!({
        "apiVersion": "policy.karmada.io/v1alpha1", "kind": "ClusterPropagationPolicy",
        "metadata": {"name": "web-crds", "namespace": "shop"},
        "spec": {"resourceSelectors": [{"apiVersion": "v1", "kind": "Namespace", "name": "shop"}]},
    });
    karmada.apply(&cpp, &o).await.expect("cluster-scoped apply");
    let live = fake
        .get_object(
            "policy.karmada.io/v1alpha1",
            "ClusterPropagationPolicy",
            None,
            "web-crds",
        )
        .expect("created");
    assert!(live["metadata"].get("namespace").is_none(), "{live}");
    assert_eq!(live["metadata"]["labels"]["smo.nephele.eu/graph"], "web");
    let cpp_path = fake.requests().last().expect("logged").path.clone();
    assert_eq!(
        cpp_path,
        "/apis/policy.karmada.io/v1alpha1/clusterpropagationpolicies/web-crds"
    );

    let unknown =
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}});
    match karmada.apply(&unknown, &o).await {
        Err(e @ KarmadaError::UnknownKind { .. }) => {
            assert!(!e.is_transient());
            assert!(e.to_string().contains("install the CRD"), "{e}");
        }
        other => panic!("expected UnknownKind, got {other:?}"),
    }
    let nameless = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}});
    assert!(matches!(
        karmada.apply(&nameless, &o).await,
        Err(KarmadaError::Invalid { .. })
    ));
}

#[tokio::test]
async fn list_owned_and_delete_prune_only_the_owners_objects() {
    let (fake, karmada) = start().await;
    karmada.ensure_namespace("shop").await.expect("namespace");
    let (web, api) = (owner("web"), owner("api"));
    for name in ["b", "a"] {
        karmada
            .apply(&config_map(name, json!({})), &web)
            .await
            .expect("apply");
    }
    karmada
        .apply(&config_map("c", json!({})), &api)
        .await
        .expect("apply");
    // Someone else's object with a look-alike label is never listed.
    fake.put_object(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "foreign", "namespace": "shop",
            "labels": {"smo.nephele.eu/project": "shop", "smo.nephele.eu/graph": "web"}},
    }))
    .expect("put");

    let owned = karmada
        .list_owned("v1", "ConfigMap", &web)
        .await
        .expect("list");
    assert_eq!(owned, [cm_ref("a"), cm_ref("b")], "sorted, owner's only");
    let query = fake.requests().last().expect("logged").query.clone();
    assert!(query.contains("labelSelector="), "{query}");

    karmada.delete(&owned[0]).await.expect("delete");
    karmada.delete(&owned[0]).await.expect("absent is fine");
    assert!(
        fake.get_object("v1", "ConfigMap", Some("shop"), "a")
            .is_none()
    );
    assert_eq!(
        karmada
            .list_owned("v1", "ConfigMap", &web)
            .await
            .expect("list"),
        [cm_ref("b")]
    );
    assert!(
        fake.get_object("v1", "ConfigMap", Some("shop"), "c")
            .is_some()
    );
    assert!(
        fake.get_object("v1", "ConfigMap", Some("shop"), "foreign")
            .is_some()
    );
    assert_eq!(
        karmada
            .list_owned("example.com/v1", "Widget", &web)
            .await
            .expect("unserved kind"),
        []
    );
}

#[tokio::test]
async fn scale_writes_replicas_through_the_subresource_and_readiness_follows() {
    let (fake, karmada) = start().await;
    karmada.ensure_namespace("shop").await.expect("namespace");
    assert_eq!(
        karmada.deployment_ready("shop", "web").await.expect("get"),
        None
    );
    karmada
        .apply(&deployment("web", 2), &owner("web"))
        .await
        .expect("apply");
    assert_eq!(
        karmada.deployment_ready("shop", "web").await.expect("get"),
        Some(false),
        "no status yet"
    );

    karmada
        .scale("shop", "Deployment", "web", 5)
        .await
        .expect("scale");
    let live = fake
        .get_object("apps/v1", "Deployment", Some("shop"), "web")
        .expect("exists");
    assert_eq!(live["spec"]["replicas"], 5);
    let scale_req = fake.requests().into_iter().last().expect("logged");
    assert_eq!(scale_req.method, "PATCH");
    assert!(
        scale_req.path.ends_with("/deployments/web/scale"),
        "{}",
        scale_req.path
    );
    assert_eq!(scale_req.field_manager.as_deref(), Some("smo-scaler"));

    // Members report 3 of 5 ready, then all 5 (observedGeneration caught up).
    let set_status = |status: Value| {
        fake.mutate_object("apps/v1", "Deployment", Some("shop"), "web", |d| {
            d["status"] = status;
        })
        .expect("exists");
    };
    let generation = live["metadata"]["generation"].clone();
    set_status(
        json!({"readyReplicas": 3, "availableReplicas": 3, "observedGeneration": generation}),
    );
    assert_eq!(
        karmada.deployment_ready("shop", "web").await.expect("get"),
        Some(false)
    );
    set_status(
        json!({"readyReplicas": 5, "availableReplicas": 5, "observedGeneration": generation}),
    );
    assert_eq!(
        karmada.deployment_ready("shop", "web").await.expect("get"),
        Some(true)
    );

    match karmada.scale("shop", "Deployment", "absent", 1).await {
        Err(e @ KarmadaError::Api { code: 404, .. }) => assert!(!e.is_transient()),
        other => panic!("expected a 404, got {other:?}"),
    }
}

#[tokio::test]
async fn server_errors_are_transient_api_errors() {
    let (fake, karmada) = start().await;
    fake.fail_next(Fault::status(500).path_prefix("/apis/cluster.karmada.io"));
    let err = karmada
        .inventory("nvidia.com/gpu")
        .await
        .expect_err("injected 500");
    match &err {
        KarmadaError::Api {
            operation, code, ..
        } => assert_eq!((*operation, *code), ("list", 500)),
        other => panic!("expected an API error, got {other:?}"),
    }
    assert!(err.is_transient());
    karmada
        .inventory("nvidia.com/gpu")
        .await
        .expect("the next call succeeds");

    fake.fail_next(Fault::status(403).method("PATCH"));
    let err = karmada
        .ensure_namespace("shop")
        .await
        .expect_err("injected 403");
    assert_eq!(err.code(), Some(403));
    assert!(!err.is_transient());
    assert!(err.to_string().contains("RBAC"), "{err}");
}

#[tokio::test]
async fn an_outage_is_unreachable_and_transient() {
    let (mut fake, karmada) = start().await;
    fake.outage().await;
    let err = karmada
        .inventory("nvidia.com/gpu")
        .await
        .expect_err("server down");
    assert!(matches!(err, KarmadaError::Unreachable { .. }), "{err:?}");
    assert!(err.is_transient());
    assert!(err.to_string().contains("cannot reach"), "{err}");
    let err = karmada.get(&cm_ref("x")).await.expect_err("server down");
    assert!(matches!(err, KarmadaError::Unreachable { .. }), "{err:?}");

    fake.recover().await.expect("recover");
    karmada
        .inventory("nvidia.com/gpu")
        .await
        .expect("the same handle works again");
}

#[tokio::test]
async fn a_bad_kubeconfig_is_a_kubeconfig_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("absent");
    let err = Karmada::connect(Some(&missing), None)
        .await
        .expect_err("missing file");
    assert!(matches!(err, KarmadaError::Kubeconfig { .. }), "{err:?}");
    assert!(err.to_string().contains("karmada.kubeconfig"), "{err}");

    let fake = FakeKarmada::start(Options::default()).await.expect("fake");
    let err = Karmada::connect(Some(fake.kubeconfig_path()), Some("no-such-context"))
        .await
        .expect_err("unknown context");
    assert!(matches!(err, KarmadaError::Kubeconfig { .. }), "{err:?}");
}
