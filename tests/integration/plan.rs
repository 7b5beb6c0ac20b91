//! `smo plan` and `smo bench` as operators run them.

use crate::support::{graph, repo};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn smo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smo"))
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap()
}

fn plan_json(state: &str, inventory: &str, extra: &[&str]) -> (Option<i32>, Value) {
    let mut args = vec![
        "plan",
        "--state",
        state,
        "--inventory",
        inventory,
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    let o = smo(&args);
    let v = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
    (o.status.code(), v)
}

/// Solve times vary from run to run; everything else must not.
fn normalise(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("  solve: ") {
            Some(i) => {
                let status = l[i + 9..].split(' ').next().unwrap_or_default();
                format!("{}  solve: {status} in N ms", &l[..i])
            }
            None => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn plan_of_the_example_matches_its_snapshot() {
    let o = smo(&[
        "plan",
        "--state",
        "state-example",
        "--inventory",
        "state-example/inventory.yaml",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let actual = normalise(&String::from_utf8_lossy(&o.stdout));
    let path = repo().join("tests/snapshots/plan-state-example.txt");
    if std::env::var_os("SMO_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &actual).unwrap();
    }
    let expected =
        std::fs::read_to_string(&path).expect("snapshot exists (SMO_UPDATE_SNAPSHOTS=1 writes it)");
    assert_eq!(
        actual, expected,
        "plan output changed; review it and rerun with SMO_UPDATE_SNAPSHOTS=1"
    );
}

#[test]
fn plan_places_gpu_work_on_the_gpu_cluster_within_capacity_and_explains_everything() {
    let (code, v) = plan_json("state-example", "state-example/inventory.yaml", &[]);
    assert_eq!(code, Some(0));
    let inventory =
        smo::spec::inventory::load(&repo().join("state-example/inventory.yaml")).unwrap();
    let state = smo::desired::loader::load_root(&repo().join("state-example")).unwrap();
    let (facts, _) = smo::observe::clusters::merge(&inventory, &state.clusters);
    let names: Vec<&str> = facts.iter().map(|f| f.name.as_str()).collect();
    let mut used: std::collections::BTreeMap<String, f64> = Default::default();
    for g in v["graphs"].as_array().unwrap() {
        if g["status"] == "static" {
            // The example's static graph names no cluster: its chart does.
            assert_eq!(g["graph"], "smart-building-graph", "{g}");
            for s in g["services"].as_array().unwrap() {
                assert_eq!(s["reason"], "static (chart decides)", "{s}");
                assert_eq!(s["clusters"], serde_json::json!(["athens-core"]), "{s}");
            }
            continue;
        }
        assert_eq!(g["status"], "placed", "{g}");
        assert!(g["objective"]["total"].is_number());
        assert!(g["solve"]["status"].is_string() && g["solve"]["millis"].is_number());
        for s in g["services"].as_array().unwrap() {
            let clusters: Vec<&str> = s["clusters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap())
                .collect();
            assert!(!clusters.is_empty());
            assert!(!s["reason"].as_str().unwrap().is_empty(), "{s}");
            // Every cluster not chosen is explained.
            let rejected: Vec<&str> = s["rejected"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["cluster"].as_str().unwrap())
                .collect();
            for n in &names {
                assert!(clusters.contains(n) ^ rejected.contains(n), "{n} in {s}");
            }
            let cpu = s["cpu"].as_f64().unwrap() * s["replicas"].as_f64().unwrap();
            for c in clusters {
                *used.entry(c.to_owned()).or_default() += cpu;
            }
            if s["id"] == "ml-inference" {
                assert_eq!(s["clusters"], serde_json::json!(["lyon-gpu"]));
                assert_eq!(s["gpu"], true);
            }
        }
    }
    for f in &facts {
        assert!(
            used.get(&f.name).copied().unwrap_or(0.0) <= f.free_cpu + 1e-9,
            "{} over capacity",
            f.name
        );
    }
}

#[test]
fn current_placement_is_measured_as_movement() {
    let (_, first) = plan_json("state-example", "state-example/inventory.yaml", &[]);
    // Pretend image-detection runs on athens-core today.
    let mut current = first.clone();
    for g in current["graphs"].as_array_mut().unwrap() {
        for s in g["services"].as_array_mut().unwrap() {
            if s["id"] == "image-detection" {
                s["clusters"] = serde_json::json!(["athens-core"]);
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("current.json");
    std::fs::write(&path, serde_json::to_string(&current).unwrap()).unwrap();
    let (code, second) = plan_json(
        "state-example",
        "state-example/inventory.yaml",
        &["--current", path.to_str().unwrap()],
    );
    assert_eq!(code, Some(0));
    let brussels = |v: &Value| {
        v["graphs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["project"] == "brussels")
            .unwrap()
            .clone()
    };
    let (a, b) = (brussels(&first), brussels(&second));
    assert_eq!(a["objective"]["movement"]["raw"], 0.0);
    let detection = b["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "image-detection")
        .unwrap();
    let moved = detection["clusters"] != serde_json::json!(["athens-core"]);
    assert_eq!(
        b["objective"]["movement"]["raw"].as_f64().unwrap() > 0.0,
        moved,
        "{b}"
    );
}

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

#[test]
fn invalid_and_infeasible_graphs_are_reported_and_exit_one() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "projects/p/big.yaml",
        &graph("big")
            .service("a")
            .cpu("large")
            .service("b")
            .cpu("large")
            .yaml(),
    );
    write(
        dir.path(),
        "projects/p/ok.yaml",
        &graph("ok").service("c").cpu("light").yaml(),
    );
    write(
        dir.path(),
        "projects/p/broken.yaml",
        "hdaGraph: {id: broken}\n",
    );
    write(
        dir.path(),
        "inventory.yaml",
        "clusters:\n  - {name: small, ready: true, cpu: {allocatable: '4'}, memory: {allocatable: 16Gi}}\n",
    );
    let root = dir.path().to_str().unwrap().to_owned();
    let inv = dir
        .path()
        .join("inventory.yaml")
        .to_str()
        .unwrap()
        .to_owned();
    let (code, v) = plan_json(&root, &inv, &[]);
    assert_eq!(code, Some(1));
    let status: Vec<(String, String)> = graphs_of(&v)
        .into_iter()
        .map(|(graph, status, _)| (graph, status))
        .collect();
    assert_eq!(
        status,
        vec![
            ("big".to_owned(), "infeasible".to_owned()),
            ("ok".to_owned(), "placed".to_owned()),
            ("broken".to_owned(), "invalid".to_owned())
        ]
    );
    let error = v["graphs"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("CPU"),
        "the message names the binding resource: {error}"
    );
    assert!(!v["findings"].as_array().unwrap().is_empty());
}

#[test]
fn unreadable_inputs_exit_two() {
    let o = smo(&[
        "plan",
        "--state",
        "state-example",
        "--inventory",
        "no/such/inventory.yaml",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let o = smo(&[
        "plan",
        "--state",
        "state-example",
        "--inventory",
        "state-example/inventory.yaml",
        "--current",
        "state-example/smo.yaml",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--current"));
}

#[test]
fn bench_prints_one_line_of_figures() {
    let o = smo(&[
        "bench",
        "placement",
        "--services",
        "12",
        "--clusters",
        "4",
        "--seed",
        "7",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8_lossy(&o.stdout);
    let last = text.lines().last().unwrap();
    assert!(
        last.starts_with("placement services=12 clusters=4 strategy=milp model=full status="),
        "{last}"
    );
    for key in ["build_ms=", "solve_ms=", "objective=", "gap="] {
        assert!(last.contains(key), "{last}");
    }
    let o = smo(&["bench", "scaling", "--services", "50", "--seed", "7"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .last()
            .unwrap()
            .starts_with("scaling services=50")
    );
}

#[test]
fn graph_pinned_to_a_small_edge_cluster_is_placed_although_a_flexible_graph_comes_first() {
    // Issue 17: the flexible graph comes first in file and name order and,
    // alone, would take the edge cluster (ties go to the cluster earlier
    // in name order); the pinned graph needs all of it.
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "projects/p/a-flexible.yaml",
        &graph("a-flexible").service("web").cpu("large").yaml(),
    );
    write(
        dir.path(),
        "projects/p/z-pinned.yaml",
        &graph("z-pinned")
            .service("camera")
            .cpu("large")
            .yaml()
            .replace(
                "compute: {cpu: large}",
                "compute: {cpu: large}\n          clusters: [a-edge]",
            ),
    );
    write(
        dir.path(),
        "inventory.yaml",
        "clusters:\n  - {name: a-edge, ready: true, cpu: {allocatable: '10'}, memory: {allocatable: 16Gi}}\n  - {name: b-core, ready: true, cpu: {allocatable: '10'}, memory: {allocatable: 16Gi}}\n",
    );
    let root = dir.path().to_str().unwrap().to_owned();
    let inv = dir.path().join("inventory.yaml");
    let (code, v) = plan_json(&root, inv.to_str().unwrap(), &[]);
    assert_eq!(code, Some(0), "{v}");
    let placed = graphs_of(&v);
    assert_eq!(
        placed,
        vec![
            (
                "a-flexible".to_owned(),
                "placed".to_owned(),
                serde_json::json!(["b-core"])
            ),
            (
                "z-pinned".to_owned(),
                "placed".to_owned(),
                serde_json::json!(["a-edge"])
            ),
        ]
    );
}

/// Each graph of `smo plan --format json`: its id, its status and where
/// its first service goes.
fn graphs_of(v: &Value) -> Vec<(String, String, Value)> {
    v["graphs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["graph"].as_str().unwrap().to_owned(),
                g["status"].as_str().unwrap().to_owned(),
                g["services"][0]["clusters"].clone(),
            )
        })
        .collect()
}

#[test]
fn bench_and_plan_export_the_exact_model_and_bench_compares_with_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.mps");
    let o = smo(&[
        "bench",
        "placement",
        "--services",
        "100",
        "--clusters",
        "10",
        "--seed",
        "1",
        "--time-limit",
        "1",
        "--export-mps",
        file.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let line = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    // The committed reference has this instance: a number, not `-`/`stale`.
    let ref_gap = line.split("ref_gap=").nth(1).unwrap_or_default();
    assert!(ref_gap.parse::<f64>().is_ok(), "{line}");
    let mps = std::fs::read_to_string(&file).unwrap();
    assert!(mps.contains("\nNAME smo-placement\n") && mps.ends_with("ENDATA\n"));
    assert!(mps.contains("* service s99 = s0099") && mps.contains(" BV bnd x_s99_c"));
    // The answer as a start: every column of the model has a value, and
    // each service (or group) sits on at least one cluster.
    let start = std::fs::read_to_string(file.with_extension("start")).unwrap();
    let columns = mps
        .lines()
        .filter(|l| l.starts_with(" BV ") || l.starts_with(" LO ") || l.starts_with(" FX "))
        .count();
    assert_eq!(start.lines().count(), columns);
    let chosen: std::collections::BTreeSet<&str> = start
        .lines()
        .filter(|l| l.starts_with("x_") && l.ends_with(" 1"))
        .map(|l| l.split("_c").next().unwrap())
        .collect();
    assert!(
        chosen.len() >= 90 && chosen.contains("x_s0"),
        "{}",
        chosen.len()
    );

    let out = dir.path().join("models");
    let (code, v) = plan_json(
        "state-example",
        "state-example/inventory.yaml",
        &["--export-mps", out.to_str().unwrap()],
    );
    assert_eq!(code, Some(0));
    let placed: Vec<&Value> = v["graphs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["status"] == "placed")
        .collect();
    let name = |g: &Value| {
        format!(
            "{}.{}.mps",
            g["project"].as_str().unwrap(),
            g["graph"].as_str().unwrap()
        )
    };
    let mut expected: Vec<String> = placed.iter().map(|g| name(g)).collect();
    expected.sort();
    let mut written: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert!(!expected.is_empty());
    assert_eq!(written, expected);
    for g in placed {
        let text = std::fs::read_to_string(out.join(name(g))).unwrap();
        for s in g["services"].as_array().unwrap() {
            let id = s["id"].as_str().unwrap();
            let by_chart = s["reason"] == "static (chart decides)";
            assert_eq!(
                text.contains(&format!(" = {id}\n")),
                !by_chart,
                "{}: service {id}",
                name(g)
            );
        }
    }
}
