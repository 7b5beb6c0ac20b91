//! `smo validate oci://…` and `smo plan` of a state root with an
//! `hdaGraphRef`, against the real registry (a temporary cache each run).

use super::{Entry, oras_push, started, tar_gz, tools};
use crate::support::repo;
use serde_json::Value;
use std::process::Command;

fn smo(args: &[&str]) -> (Option<i32>, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_smo"))
        .args(args)
        .output()
        .unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_and_plan_pull_what_a_reference_names() {
    let Some(t) = tools() else { return };
    let reg = started(t.registry.clone()).await;
    let addr = reg.addr.to_string();
    let work = tempfile::tempdir().unwrap();
    // A static graph whose chart (inside the artifact) names its cluster.
    let descriptor = "hdaGraph:\n  imVersion: 0.4.0\n  id: kiosk\n  hdaGraphIntent: {useStaticPlacement: True}\n  services:\n    - id: kiosk\n      deployment: {trigger: {auto: {}}, intent: {compute: {cpu: light, ram: light}}}\n      artifact: {ociImage: charts/kiosk, ociConfig: {type: App, implementer: HELM}}\n";
    let archive = tar_gz(&[
        Entry::File("kiosk/hdag.yaml", descriptor.as_bytes()),
        Entry::File(
            "kiosk/charts/kiosk/Chart.yaml",
            b"apiVersion: v2\nname: kiosk\nversion: 0.1.0\n",
        ),
        Entry::File(
            "kiosk/charts/kiosk/values.yaml",
            b"clustersAffinity: [athens-core]\n",
        ),
    ]);
    oras_push(&t.oras_py, &reg, work.path(), "proj/kiosk:1.0", &archive);

    let url = format!("oci://{addr}/proj/kiosk:1.0");
    let (code, out, err) = smo(&[
        "validate",
        "--insecure-registry",
        &addr,
        "--format",
        "json",
        &url,
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["graphs"][0]["id"], "kiosk", "{report:#}");

    // Without the plain-HTTP allowance the registry is not reached: an
    // error naming the reference, exit 1.
    let (code, out, _) = smo(&["validate", &url]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains(&url) && out.contains("hdaGraphRef"), "{out}");

    let missing = format!("oci://{addr}/proj/kiosk:9.9");
    let (code, out, _) = smo(&["validate", "--insecure-registry", &addr, &missing]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("9.9"), "{out}");

    // smo plan of a state root holding the reference, with the registry
    // allowed through smo's configuration file.
    let state = tempfile::tempdir().unwrap();
    let project = state.path().join("projects/shop");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join("kiosk.yaml"),
        format!("hdaGraphRef:\n  oci: oci://{addr}/proj/kiosk\n  semver: \"^1\"\n"),
    )
    .unwrap();
    let config = work.path().join("smo.yaml");
    std::fs::write(
        &config,
        format!(
            "source:\n  dir: {}\nhelm:\n  insecureRegistries: [\"{addr}\"]\n",
            state.path().display()
        ),
    )
    .unwrap();
    let inventory = repo().join("state-example/inventory.yaml");
    let (code, out, err) = smo(&[
        "plan",
        "--state",
        state.path().to_str().unwrap(),
        "--inventory",
        inventory.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    let plan: Value = serde_json::from_str(&out).unwrap();
    let kiosk = &plan["graphs"][0];
    assert_eq!(kiosk["graph"], "kiosk", "{plan:#}");
    assert_eq!(kiosk["services"][0]["reason"], "static (chart decides)");
    assert_eq!(
        kiosk["services"][0]["clusters"],
        serde_json::json!(["athens-core"]),
        "the chart inside the artifact decides: {plan:#}"
    );
}
