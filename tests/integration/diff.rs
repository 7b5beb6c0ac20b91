//! `smo diff` end to end: the example deployed by the daemon on the fake
//! Karmada with the real helm, then the binary compares edited states with
//! the live releases and with the store.

use crate::daemon::{Env, env};
use serde_json::Value;
use std::process::{Command, Output};

const BRUSSELS: &str = "projects/brussels/image-detection-graph.yaml";
const DEMO2: &str = "projects/demo2/gpu-offloading-graph.yaml";

fn diff(env: &Env, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smo"))
        .arg("diff")
        .arg("--state")
        .arg(env.state.path())
        .arg("--config")
        .arg(&env.config)
        .args(extra)
        .output()
        .unwrap()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

fn service<'a>(report: &'a Value, graph: &str, id: &str) -> &'a Value {
    report["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["graph"] == graph && s["service"] == id)
        .unwrap_or_else(|| panic!("no {graph}/{id} in {report:#}"))
}

fn verdicts(report: &Value) -> Vec<String> {
    report["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{}/{}={}",
                s["graph"].as_str().unwrap(),
                s["service"].as_str().unwrap(),
                s["verdict"].as_str().unwrap()
            )
        })
        .collect()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_shows_what_an_edited_state_would_change_live_and_offline() {
    let Some(env) = env("").await else { return };
    assert!(env.once().await.converged);

    // What the daemon applied: nothing to change.
    let o = diff(&env, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("0 install, 0 upgrade, 0 uninstall, 7 unchanged"),
        "{out}"
    );
    assert!(
        out.contains(
            "brussels/image-detection-graph/image-compression-vo: none (waits for its trigger"
        ),
        "{out}"
    );

    // A value edited: that release is upgraded, the changed line shown.
    env.edit(BRUSSELS, "port: 8080", "port: 8081");
    let o = diff(&env, &["--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = json(&o);
    assert_eq!(r["changes"], true);
    let noise = service(&r, "image-detection-graph", "noise-reduction");
    assert_eq!(noise["verdict"], "upgrade", "{noise:#}");
    let values = noise["valuesDiff"].as_str().unwrap();
    assert!(
        values.contains("-  port: 8080\n+  port: 8081\n"),
        "{values}"
    );
    let manifest = noise["manifestDiff"].as_str().unwrap();
    assert!(manifest.contains("8081"), "{manifest}");
    assert_eq!(
        service(&r, "image-detection-graph", "image-detection")["verdict"],
        "none"
    );
    // The text form, uncoloured off a terminal.
    let o = diff(&env, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("brussels/image-detection-graph/noise-reduction: upgrade\n"),
        "{out}"
    );
    assert!(out.contains("    +  port: 8081\n"), "{out}");
    assert!(!out.contains('\x1b'), "{out}");
    let o = diff(&env, &["--color", "always"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("\x1b[32m+  port: 8081"));

    // A graph removed: its releases are uninstalled.
    std::fs::remove_file(env.descriptor(DEMO2)).unwrap();
    let o = diff(&env, &["--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = json(&o);
    let mut v = verdicts(&r);
    v.sort();
    assert_eq!(
        v,
        [
            "gpu-offloading-graph/ml-inference=uninstall",
            "gpu-offloading-graph/web-frontend=uninstall",
            "image-detection-graph/image-compression-vo=none",
            "image-detection-graph/image-detection=none",
            "image-detection-graph/noise-reduction=upgrade",
            "smart-building-graph/building-dashboard=none",
            "smart-building-graph/occupancy-sensor=none",
        ],
        "{r:#}"
    );
    let ml = service(&r, "gpu-offloading-graph", "ml-inference");
    assert_eq!(ml["note"], "no descriptor declares its graph");
    assert!(
        ml["manifestDiff"]
            .as_str()
            .unwrap()
            .contains("\n-kind: Deployment\n"),
        "{ml:#}"
    );

    // Offline, against the store the daemon wrote: the same verdicts;
    // values are not compared (the store keeps their hash).
    let inventory = crate::support::repo().join("state-example/inventory.yaml");
    let o = diff(
        &env,
        &[
            "--offline",
            "--inventory",
            inventory.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r2 = json(&o);
    assert_eq!(r2["mode"], "offline");
    let mut v2 = verdicts(&r2);
    v2.sort();
    assert_eq!(v2, v, "{r2:#}");
    let noise = service(&r2, "image-detection-graph", "noise-reduction");
    assert_eq!(noise["valuesCompared"], false);
    assert!(
        noise["note"].as_str().unwrap().contains("hash"),
        "{noise:#}"
    );
    assert!(
        noise["manifestDiff"].as_str().unwrap().contains("8081"),
        "{noise:#}"
    );

    // Back to what runs: nothing to change, offline too.
    std::fs::remove_file(env.descriptor(DEMO2)).ok();
    crate::daemon::copy_dir(
        &crate::support::repo().join("state-example/projects/demo2"),
        &env.descriptor("projects/demo2"),
    );
    env.edit(BRUSSELS, "port: 8081", "port: 8080");
    let o = diff(
        &env,
        &["--offline", "--inventory", inventory.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // A chart that does not render: the diff is incomplete, exit 2, and
    // the service is held rather than reported as removed.
    std::fs::write(
        env.descriptor("projects/brussels/charts/image-detection/templates/broken.yaml"),
        "{{ .Values.no.such.value }}\n",
    )
    .unwrap();
    let o = diff(&env, &["--format", "json"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("image-detection"), "{stderr}");
    let r = json(&o);
    let detection = service(&r, "image-detection-graph", "image-detection");
    assert_eq!(detection["verdict"], "none", "{detection:#}");
    assert!(
        detection["note"]
            .as_str()
            .unwrap()
            .contains("does not render"),
        "{detection:#}"
    );
}

#[test]
fn offline_diff_without_a_store_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "source:\n  dir: {}\nstateDir: {}\n",
            crate::support::repo().join("state-example").display(),
            dir.path().join("var").display()
        ),
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_smo"))
        .args([
            "diff",
            "--state",
            "state-example",
            "--offline",
            "--inventory",
            "state-example/inventory.yaml",
            "--config",
        ])
        .arg(&config)
        .current_dir(crate::support::repo())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("no store at"), "{}", text(&o));
}
