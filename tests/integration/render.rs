//! `smo render` on the example state with the real helm: every service's
//! chart rendered with the values smo computes from the placement.

use crate::support::repo;
use fake_karmada::testing::copy_dir;
use fake_karmada::testing::tool;
use serde_json::Value;
use smo::validate::yaml::parse_documents;
use std::path::Path;
use std::process::Command;

fn objects(file: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("{} not rendered: {e}", file.display()));
    parse_documents(&text)
        .unwrap()
        .into_iter()
        .map(|d| d.value)
        .filter(|v| !v.is_null())
        .collect()
}

fn find<'a>(objs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objs.iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {objs:#?}"))
}

fn cluster_names(policy: &Value) -> Vec<&str> {
    policy["spec"]["placement"]["clusterAffinity"]["clusterNames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

#[test]
fn render_state_example_writes_every_service_with_placement_values() {
    let Some(helm) = tool("SMO_HELM") else { return };
    let out = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_smo"))
        .args(["render", "--state", "state-example", "--inventory"])
        .arg("state-example/inventory.yaml")
        .arg("--out")
        .arg(out.path())
        .arg("--helm")
        .arg(&helm)
        .current_dir(repo())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        stdout.ends_with("7 service(s) rendered, 0 error(s)\n"),
        "{stdout}"
    );

    // demo2: web-frontend on two clusters (high availability); it calls
    // ml-inference, which therefore imports into both of them.
    let demo2 = out.path().join("demo2/gpu-offloading-graph");
    let web = objects(&demo2.join("web-frontend.yaml"));
    assert_eq!(
        cluster_names(find(&web, "PropagationPolicy", "web-frontend")),
        ["brussels-edge", "lyon-gpu"]
    );
    let ml = objects(&demo2.join("ml-inference.yaml"));
    assert_eq!(
        cluster_names(find(&ml, "PropagationPolicy", "ml-inference")),
        ["lyon-gpu"]
    );
    assert_eq!(
        cluster_names(find(&ml, "PropagationPolicy", "ml-inference-import")),
        ["brussels-edge", "lyon-gpu"]
    );
    find(&ml, "ServiceImport", "ml-inference");
    // Nobody calls the front end: no import.
    assert!(!web.iter().any(|o| o["kind"] == "ServiceImport"));

    // brussels: the WOT virtual object reads its placement from
    // voChartOverwrite; its own values (thing) are kept.
    let brussels = out.path().join("brussels/image-detection-graph");
    let vo = objects(&brussels.join("image-compression-vo.yaml"));
    assert_eq!(
        cluster_names(find(&vo, "PropagationPolicy", "image-compression-vo")),
        ["lyon-gpu"]
    );
    let nr = objects(&brussels.join("noise-reduction.yaml"));
    assert_eq!(
        cluster_names(find(&nr, "PropagationPolicy", "noise-reduction-import")),
        ["lyon-gpu"],
        "image-compression-vo calls noise-reduction from lyon-gpu"
    );
    find(&nr, "Deployment", "noise-reduction");

    // athens: static placement without pins. smo sets no cluster values;
    // the chart's own default (athens-core) decides.
    let athens = out.path().join("athens/smart-building-graph");
    let sensor = objects(&athens.join("occupancy-sensor.yaml"));
    assert_eq!(
        cluster_names(find(&sensor, "PropagationPolicy", "occupancy-sensor")),
        ["athens-core"]
    );
}

#[test]
fn render_reports_a_broken_chart_and_still_renders_the_rest() {
    let Some(helm) = tool("SMO_HELM") else { return };
    let state = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("state-example"), state.path());
    // A template error in one chart of one graph.
    std::fs::write(
        state
            .path()
            .join("projects/brussels/charts/noise-reduction/templates/broken.yaml"),
        "{{ .Values.no.such.key }}\n",
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_smo"))
        .arg("render")
        .arg("--state")
        .arg(state.path())
        .arg("--inventory")
        .arg(state.path().join("inventory.yaml"))
        .arg("--out")
        .arg(out.path())
        .arg("--helm")
        .arg(&helm)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.ends_with("6 service(s) rendered, 1 error(s)\n"),
        "{stdout}"
    );
    assert!(
        stderr.contains("brussels/image-detection-graph/noise-reduction")
            && stderr.contains("RenderError"),
        "{stderr}"
    );
    assert!(
        out.path()
            .join("demo2/gpu-offloading-graph/ml-inference.yaml")
            .is_file()
    );
    assert!(
        !out.path()
            .join("brussels/image-detection-graph/noise-reduction.yaml")
            .exists()
    );
}
