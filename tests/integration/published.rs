//! Descriptors as NEPHELE partners publish them (`tests/fixtures/published`):
//! each validates with exactly the warnings it lists (`# expect:` lines, as
//! the invalid fixtures), and plans as the original SMO would run it.

use crate::support::{expectations, findings_of, fixtures, repo};
use serde_json::Value;
use smo::desired::loader::{load_files, load_root};
use std::path::{Path, PathBuf};
use std::process::Command;

fn published() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(fixtures("published"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "json"))
        .collect();
    v.sort();
    v
}

#[test]
fn published_descriptors_validate_with_exactly_their_expected_warnings() {
    let files = published();
    assert!(files.len() >= 8, "{files:?}");
    let mut failures = Vec::new();
    for file in files {
        let (actual, state) = findings_of(&file);
        let expected = expectations(&file);
        if actual != expected || state.valid_graphs().count() != 1 {
            failures.push(format!(
                "{}:\n  expected {expected:?}\n  actual   {actual:?}\n  messages {:#?}",
                file.display(),
                state
                    .findings
                    .iter()
                    .map(|f| &f.message)
                    .collect::<Vec<_>>()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn load_one(name: &str) -> smo::desired::Graph {
    let state = load_files(&[fixtures("published").join(name)]).unwrap();
    state.valid_graphs().next().expect("valid").clone()
}

#[test]
fn an_older_information_model_is_read_as_the_current_one() {
    let g = load_one("im-0.3.0.yaml");
    let hda = &g.descriptor.hda_graph;
    assert_eq!(hda.im_version.0, "0.3.0");
    assert_eq!(
        hda.hda_graph_intent.description.as_deref(),
        Some("Low latency")
    );
    let compute = &hda.services[0].deployment.intent.compute;
    let j = serde_json::to_value(compute).unwrap();
    assert_eq!(j["cpu"], "small", "{j}");
    assert_eq!(j["ram"], "small", "{j}");
    assert_eq!(j["storage"], "small", "{j}");
    let warning = load_files(&[fixtures("published").join("im-0.3.0.yaml")])
        .unwrap()
        .findings;
    assert!(
        warning[0].message.contains("0.3.0"),
        "{:?}",
        warning[0].message
    );
}

#[test]
fn network_connection_points_are_connection_points() {
    let g = load_one("network-connection-points.yaml");
    let s = &g.descriptor.hda_graph.services;
    assert_eq!(s[0].deployment.intent.connection_points, vec!["detect"]);
    assert!(s[1].deployment.intent.connection_points.is_empty());
}

#[test]
fn static_placement_without_pins_sets_no_cluster_values() {
    let g = load_one("static-chart-decides.yaml");
    let values = smo::release::values::values(&g, &Default::default());
    for (s, v) in g.descriptor.hda_graph.services.iter().zip(&values) {
        let text = v.to_string();
        assert!(
            !text.contains("clustersAffinity") && !text.contains("serviceImportClusters"),
            "{}: {text}",
            s.id
        );
        assert!(v.to_string().contains("computeResources"), "{text}");
    }
}

fn smo_plan(state: &Path, inventory: &Path) -> (Option<i32>, Value, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_smo"))
        .args(["plan", "--state"])
        .arg(state)
        .arg("--inventory")
        .arg(inventory)
        .args(["--format", "json"])
        .output()
        .unwrap();
    let json = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
    let text = Command::new(env!("CARGO_BIN_EXE_smo"))
        .args(["plan", "--state"])
        .arg(state)
        .arg("--inventory")
        .arg(inventory)
        .output()
        .unwrap();
    (
        o.status.code(),
        json,
        String::from_utf8_lossy(&text.stdout).into_owned(),
    )
}

fn service<'a>(plan: &'a Value, graph: &str, id: &str) -> &'a Value {
    plan["graphs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["graph"] == graph)
        .unwrap_or_else(|| panic!("{graph} not planned: {plan:#}"))["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("{graph}/{id} not planned: {plan:#}"))
}

/// Every published fixture in one state root (the JSON one too) plans: GPU
/// services on the GPU cluster whatever the boolean's spelling, static
/// services left to their charts (with what a local chart's values name),
/// a pin still honoured next to them.
#[test]
fn published_descriptors_plan_as_the_original_would_run_them() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("projects/partners");
    std::fs::create_dir_all(&project).unwrap();
    for f in published() {
        std::fs::copy(&f, project.join(f.file_name().unwrap())).unwrap();
    }
    // A static graph with a local chart whose values name a cluster, and
    // a pinned service beside it.
    let chart = project.join("charts/kiosk");
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: kiosk\nversion: 0.1.0\n",
    )
    .unwrap();
    std::fs::write(
        chart.join("values.yaml"),
        "clustersAffinity: [athens-core]\n",
    )
    .unwrap();
    std::fs::write(
        project.join("kiosk.yaml"),
        "hdaGraph:\n  imVersion: 0.4.0\n  id: kiosk\n  hdaGraphIntent: {useStaticPlacement: True}\n  services:\n    - id: kiosk\n      deployment: {trigger: {auto: {}}, intent: {compute: {cpu: light, ram: light}}}\n      artifact: {ociImage: charts/kiosk, ociConfig: {type: App, implementer: HELM}}\n    - id: pinned\n      deployment: {trigger: {auto: {}}, intent: {clusters: [brussels-edge], compute: {cpu: light, ram: light}}}\n      artifact: {ociImage: oci://127.0.0.1:5000/charts/p, ociConfig: {type: App, implementer: HELM}}\n",
    )
    .unwrap();
    let state = load_root(dir.path()).unwrap();
    let errors: Vec<_> = state.findings.iter().filter(|f| f.is_error()).collect();
    assert!(errors.is_empty(), "{errors:#?}");

    let inventory = repo().join("state-example/inventory.yaml");
    let (code, plan, text) = smo_plan(dir.path(), &inventory);
    assert_eq!(code, Some(0), "{plan:#}");
    for id in ["trainer", "inferer"] {
        assert_eq!(
            service(&plan, "gpu-graph", id)["clusters"],
            serde_json::json!(["lyon-gpu"]),
            "{id}"
        );
    }
    let graphs = plan["graphs"].as_array().unwrap();
    let smart = graphs
        .iter()
        .find(|g| g["graph"] == "smart-building")
        .unwrap();
    assert_eq!(smart["status"], "static", "{smart:#}");
    for id in ["occupancy-vo", "dashboard"] {
        let s = service(&plan, "smart-building", id);
        assert_eq!(s["reason"], "static (chart decides)", "{s:#}");
        assert_eq!(s["clusters"], serde_json::json!([]), "{s:#}");
    }
    let kiosk = graphs.iter().find(|g| g["graph"] == "kiosk").unwrap();
    assert_eq!(kiosk["status"], "placed", "{kiosk:#}");
    assert_eq!(
        service(&plan, "kiosk", "kiosk")["clusters"],
        serde_json::json!(["athens-core"])
    );
    assert_eq!(
        service(&plan, "kiosk", "kiosk")["reason"],
        "static (chart decides)"
    );
    assert_eq!(
        service(&plan, "kiosk", "pinned")["clusters"],
        serde_json::json!(["brussels-edge"])
    );
    assert!(
        graphs.iter().any(|g| g["graph"] == "json-graph"),
        "{plan:#}"
    );
    assert!(
        text.contains("static (chart decides)"),
        "the text plan says so: {text}"
    );
}

#[test]
fn validate_reports_the_information_model_of_each_graph() {
    let o = Command::new(env!("CARGO_BIN_EXE_smo"))
        .args(["validate", "--format", "json"])
        .arg(fixtures("published").join("im-0.3.0.yaml"))
        .arg(fixtures("published").join("api-body.json"))
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let versions: Vec<(&str, &str)> = v["graphs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["id"].as_str().unwrap(), g["imVersion"].as_str().unwrap()))
        .collect();
    assert!(versions.contains(&("vo-example", "0.3.0")), "{versions:?}");
    assert!(versions.contains(&("json-graph", "0.4.0")), "{versions:?}");
}

/// End to end with the real helm: a static graph that names no cluster
/// (as most published ones) is installed with no cluster values of smo's,
/// the chart's own values decide where it runs (its PropagationPolicy names
/// what its values.yaml says), smo records no placement and generates no
/// policy, and the next pass has nothing to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_graph_without_pins_is_deployed_where_its_charts_say() {
    let Some(env) = crate::daemon::env("").await else {
        return;
    };
    let project = env.state.path().join("projects/partner");
    let chart = project.join("charts/service");
    crate::daemon::copy_dir(
        &env.state.path().join("projects/demo2/charts/service"),
        &chart,
    );
    let values = chart.join("values.yaml");
    let text = std::fs::read_to_string(&values).unwrap();
    std::fs::write(
        &values,
        text.replace("clustersAffinity: []", "clustersAffinity: [athens-core]"),
    )
    .unwrap();
    std::fs::write(
        project.join("static.yaml"),
        "hdaGraph:\n  imVersion: 0.4.0\n  id: static-graph\n  hdaGraphIntent:\n    useStaticPlacement: True\n  services:\n    - id: front\n      deployment:\n        trigger: {auto: {dependencies: []}}\n        intent:\n          compute: {cpu: light, ram: light, gpu: {enabled: \"False\"}}\n          connectionPoints: [back]\n      artifact:\n        ociImage: charts/service\n        ociConfig: {type: App, implementer: HELM}\n    - id: back\n      deployment:\n        trigger: {auto: {dependencies: []}}\n        intent:\n          compute: {cpu: light, ram: light}\n      artifact:\n        ociImage: charts/service\n        ociConfig: {type: App, implementer: HELM}\n",
    )
    .unwrap();

    let report = env.once().await;
    assert!(report.converged, "{report:?}");
    let releases = env.releases("partner");
    assert_eq!(
        releases.keys().collect::<Vec<_>>(),
        ["back", "front"],
        "{releases:?}"
    );
    for name in ["front", "back"] {
        let policy = env
            .object(
                "policy.karmada.io/v1alpha1",
                "PropagationPolicy",
                "partner",
                name,
            )
            .unwrap_or_else(|| panic!("the chart's policy for {name}"));
        assert_eq!(
            policy["spec"]["placement"]["clusterAffinity"]["clusterNames"],
            serde_json::json!(["athens-core"]),
            "{name}: {policy}"
        );
    }
    let store = env.store();
    let record = store.graph("partner/static-graph").unwrap().unwrap();
    assert!(record.placement.is_empty(), "{:?}", record.placement);
    drop(store);

    env.fake.clear_requests();
    let report = env.once().await;
    assert!(report.converged, "{report:?}");
    assert_eq!(env.helm_requests(), 0, "a no-op pass ran helm");
}
