//! The real helm (v4 and v3.18) through a whole release lifecycle.

use serde_json::Value;

use crate::support::{self, Helm};
use fake_karmada::FakeKarmada;

const NS: &str = "shop";
const REL: &str = "web";

fn deployment(fake: &FakeKarmada) -> Option<Value> {
    fake.get_object("apps/v1", "Deployment", Some(NS), REL)
}

fn release_secrets(fake: &FakeKarmada) -> Vec<Value> {
    fake.list_objects("v1", "Secret", Some(NS))
        .into_iter()
        .filter(|s| s["metadata"]["labels"]["owner"] == "helm")
        .collect()
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("helm printed no JSON ({e}): {text}"))
}

/// install → ls → get manifest → status → upgrade → history → rollback → uninstall.
async fn lifecycle(bin: std::path::PathBuf) -> FakeKarmada {
    let fake = support::start().await;
    let helm = Helm::new(bin, &fake);
    let chart = support::chart_dir();
    let chart = chart.to_str().expect("utf-8 path");
    assert!(fake.get_object("v1", "Namespace", None, NS).is_none());

    helm.run(&[
        "upgrade",
        "--install",
        REL,
        chart,
        "-n",
        NS,
        "--create-namespace",
    ])
    .await;
    assert!(
        fake.get_object("v1", "Namespace", None, NS).is_some(),
        "--create-namespace made it"
    );
    let d = deployment(&fake).expect("Deployment created");
    assert_eq!(d["spec"]["replicas"], 1);
    assert_eq!(d["metadata"]["namespace"], NS);
    assert!(fake.get_object("v1", "Service", Some(NS), REL).is_some());
    let pp = fake
        .get_object(
            "policy.karmada.io/v1alpha1",
            "PropagationPolicy",
            Some(NS),
            REL,
        )
        .expect("PropagationPolicy created");
    assert_eq!(
        pp["spec"]["placement"]["clusterAffinity"]["clusterNames"][0],
        "brussels-edge"
    );
    assert!(
        fake.get_object(
            "multicluster.x-k8s.io/v1alpha1",
            "ServiceExport",
            Some(NS),
            REL
        )
        .is_some()
    );
    let secrets = release_secrets(&fake);
    assert_eq!(secrets.len(), 1, "one release Secret: {secrets:?}");
    assert_eq!(secrets[0]["metadata"]["labels"]["status"], "deployed");
    assert_eq!(secrets[0]["type"], "helm.sh/release.v1");

    let ls = json(&helm.run(&["ls", "-n", NS, "-o", "json"]).await);
    assert_eq!(ls[0]["name"], REL);
    assert_eq!(ls[0]["status"], "deployed");
    assert_eq!(ls[0]["revision"], "1");

    let manifest = helm.run(&["get", "manifest", REL, "-n", NS]).await;
    for kind in [
        "kind: Deployment",
        "kind: Service",
        "kind: PropagationPolicy",
        "kind: ServiceExport",
    ] {
        assert!(
            manifest.contains(kind),
            "{kind} missing from manifest:\n{manifest}"
        );
    }
    let status = json(&helm.run(&["status", REL, "-n", NS, "-o", "json"]).await);
    assert_eq!(status["info"]["status"], "deployed");

    let gen_before = d["metadata"]["generation"].as_i64().expect("generation");
    helm.run(&[
        "upgrade",
        REL,
        chart,
        "-n",
        NS,
        "--set",
        "replicas=3",
        "--set",
        "clusters={brussels-edge,ghent-core}",
    ])
    .await;
    let d = deployment(&fake).expect("Deployment still there");
    assert_eq!(
        d["spec"]["replicas"], 3,
        "upgrade changed the Deployment: {d}"
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"],
        "3"
    );
    assert!(d["metadata"]["generation"].as_i64().expect("generation") > gen_before);
    let pp = fake
        .get_object(
            "policy.karmada.io/v1alpha1",
            "PropagationPolicy",
            Some(NS),
            REL,
        )
        .expect("PropagationPolicy kept");
    assert_eq!(
        pp["spec"]["placement"]["clusterAffinity"]["clusterNames"][1],
        "ghent-core"
    );

    let history = json(&helm.run(&["history", REL, "-n", NS, "-o", "json"]).await);
    let statuses: Vec<&str> = history
        .as_array()
        .expect("history list")
        .iter()
        .map(|h| h["status"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(statuses, ["superseded", "deployed"]);

    helm.run(&["rollback", REL, "1", "-n", NS]).await;
    let d = deployment(&fake).expect("Deployment still there");
    assert_eq!(
        d["spec"]["replicas"], 1,
        "rollback restored revision 1: {d}"
    );
    let history = json(&helm.run(&["history", REL, "-n", NS, "-o", "json"]).await);
    assert_eq!(history.as_array().map(Vec::len), Some(3));
    assert_eq!(history[2]["status"], "deployed");

    helm.run(&["uninstall", REL, "-n", NS]).await;
    assert!(deployment(&fake).is_none(), "Deployment deleted");
    assert!(fake.get_object("v1", "Service", Some(NS), REL).is_none());
    assert!(
        fake.get_object(
            "policy.karmada.io/v1alpha1",
            "PropagationPolicy",
            Some(NS),
            REL
        )
        .is_none()
    );
    assert!(
        fake.get_object(
            "multicluster.x-k8s.io/v1alpha1",
            "ServiceExport",
            Some(NS),
            REL
        )
        .is_none()
    );
    assert!(release_secrets(&fake).is_empty(), "release Secrets deleted");
    let ls = json(&helm.run(&["ls", "-A", "-o", "json"]).await);
    assert_eq!(ls, serde_json::json!([]));

    // No request the fake could not serve (a 404 on discovery or OpenAPI
    // would mean helm fell back to another code path).
    let unserved: Vec<String> = fake
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/openapi") || r.path.starts_with("/api"))
        .filter(|r| r.status == 404 && !is_expected_not_found(&r.method, &r.path))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(unserved.is_empty(), "{unserved:?}");
    fake
}

/// Helm looks objects up before creating them; those 404s are expected.
fn is_expected_not_found(method: &str, path: &str) -> bool {
    method == "GET" && path.contains("/namespaces/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm4_release_lifecycle() {
    let Some(bin) = support::tool("SMO_HELM") else {
        return;
    };
    let fake = lifecycle(bin).await;
    let log = fake.requests();
    // Helm 4 applies server-side, as manager "helm".
    assert!(
        log.iter().any(|r| r.method == "PATCH"
            && r.content_type.starts_with("application/apply-patch")
            && r.field_manager.as_deref() == Some("helm")),
        "no server-side apply by helm seen"
    );
    // It uses OpenAPI v3 to decide on validation; it must not need v2.
    assert!(log.iter().any(|r| r.path.starts_with("/openapi/v3")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm3_release_lifecycle() {
    let Some(bin) = support::tool("SMO_HELM3") else {
        return;
    };
    let fake = lifecycle(bin).await;
    // Helm 3 upgrades by three-way strategic merge patch of built-in kinds.
    assert!(fake.requests().iter().any(|r| {
        r.method == "PATCH"
            && r.content_type
                .starts_with("application/strategic-merge-patch+json")
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm4_release_secrets_arrive_as_protobuf_and_are_decoded() {
    let Some(bin) = support::tool("SMO_HELM") else {
        return;
    };
    let fake = support::start().await;
    let helm = Helm::new(bin, &fake);
    let chart = support::chart_dir();
    helm.run(&[
        "install",
        "p",
        chart.to_str().expect("utf-8"),
        "-n",
        "default",
    ])
    .await;
    let writes: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/secrets") && (r.method == "POST" || r.method == "PUT"))
        .collect();
    assert!(!writes.is_empty(), "helm wrote its release Secret");
    assert!(
        writes.iter().all(|w| w
            .content_type
            .starts_with("application/vnd.kubernetes.protobuf")),
        "helm 4.1 writes release Secrets as protobuf"
    );
    let stored = fake
        .get_object("v1", "Secret", Some("default"), "sh.helm.release.v1.p.v1")
        .expect("stored");
    assert!(
        stored["data"]["release"]
            .as_str()
            .is_some_and(|r| r.len() > 100),
        "release payload kept"
    );
    for w in &writes {
        let body = w
            .body_json
            .as_ref()
            .unwrap_or_else(|| panic!("undecoded body ({})", w.content_type));
        assert_eq!(body["kind"], "Secret");
        assert_eq!(body["metadata"]["labels"]["owner"], "helm");
    }
}

/// `--wait` with member simulation: helm sees the workload become ready.
async fn wait_for_ready(bin: std::path::PathBuf) {
    let fake = FakeKarmada::start(
        fake_karmada::Options::default()
            .clusters(support::clusters())
            .simulate_members(std::time::Duration::from_millis(100)),
    )
    .await
    .expect("fake starts");
    let helm = Helm::new(bin, &fake);
    let chart = support::chart_dir();
    let chart = chart.to_str().expect("utf-8");
    for replicas in ["2", "3"] {
        helm.run(&[
            "upgrade",
            "--install",
            REL,
            chart,
            "-n",
            NS,
            "--create-namespace",
            "--wait",
            "--timeout",
            "120s",
            "--set",
            &format!("replicas={replicas}"),
        ])
        .await;
        let d = deployment(&fake).expect("Deployment");
        assert_eq!(d["status"]["readyReplicas"].to_string(), replicas, "{d}");
    }
    let svc = fake
        .get_object("v1", "Service", Some(NS), REL)
        .expect("Service");
    assert!(
        svc["spec"]["clusterIP"]
            .as_str()
            .is_some_and(|ip| !ip.is_empty()),
        "{svc}"
    );
    let rs = fake.list_objects("apps/v1", "ReplicaSet", Some(NS));
    assert_eq!(rs.len(), 2, "one ReplicaSet per template: {rs:?}");
    helm.run(&["uninstall", REL, "-n", NS, "--wait"]).await;
    assert!(
        fake.list_objects("apps/v1", "ReplicaSet", Some(NS))
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm4_wait_sees_simulated_members() {
    let Some(bin) = support::tool("SMO_HELM") else {
        return;
    };
    wait_for_ready(bin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm3_wait_sees_simulated_members() {
    let Some(bin) = support::tool("SMO_HELM3") else {
        return;
    };
    wait_for_ready(bin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm4_wait_fails_when_nothing_becomes_ready() {
    let Some(bin) = support::tool("SMO_HELM") else {
        return;
    };
    let fake = support::start().await;
    let helm = Helm::new(bin, &fake);
    let chart = support::chart_dir();
    let out = helm
        .try_run(&[
            "install",
            REL,
            chart.to_str().expect("utf-8"),
            "-n",
            "default",
            "--wait",
            "--timeout",
            "2s",
        ])
        .await;
    assert!(
        !out.ok,
        "no member simulation: the Deployment never becomes ready"
    );
    assert!(out.stderr.contains("Deployment"), "{}", out.stderr);
}
