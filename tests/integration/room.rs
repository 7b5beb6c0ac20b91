//! Fleet placement in the daemon (issue 17): a graph pinned to a small
//! edge cluster that a flexible graph already fills is placed there, and
//! the flexible graph moves, through a persisted move request.

use crate::daemon::{Env, env, wait_for};
use fake_karmada::{ClusterResources, ResourcePair};
use smo::daemon::RunOptions;
use smo::store::Kind;
use std::time::Duration;

const QUIET: &str = "intervals: {resync: 1h, inventory: 1h}\n";
const LIMIT: Duration = Duration::from_secs(90);

/// A one-service graph of project brussels on the example's
/// image-detection chart, needing 4 CPUs (`medium`), optionally pinned.
fn descriptor(id: &str, service: &str, pin: Option<&str>) -> String {
    let pin = pin.map_or_else(String::new, |c| format!("\n          clusters: [{c}]"));
    format!(
        "hdaGraph:
  imVersion: 0.4.0
  id: {id}
  version: \"1\"
  designer: t
  hdaGraphIntent: {{}}
  services:
    - id: {service}
      deployment:
        trigger: {{auto: {{dependencies: []}}}}
        intent:
          compute: {{cpu: medium, ram: small, storage: small, gpu: {{enabled: false}}}}{pin}
      artifact:
        ociImage: charts/image-detection
        ociConfig: {{type: App, implementer: HELM}}
        ociRun: {{name: HELM, version: v3}}
"
    )
}

/// CPUs `allocatable` with `allocated` of them handed out, and room in
/// memory.
pub(crate) fn cpus(allocatable: u32, allocated: u32) -> ClusterResources {
    ClusterResources {
        cpu: ResourcePair {
            allocatable: allocatable.to_string(),
            allocated: Some(allocated.to_string()),
        },
        memory: ResourcePair {
            allocatable: "64Gi".into(),
            allocated: Some("0".into()),
        },
        gpu: None,
    }
}

/// The clusters the generated PropagationPolicy of `service` names.
pub(crate) fn placed_on(env: &Env, service: &str) -> Option<Vec<String>> {
    env.placed_on("brussels", service)
}

pub(crate) fn deployed(env: &Env, release: &str) -> bool {
    env.releases("brussels")
        .get(release)
        .is_some_and(|(_, st)| st == "deployed")
}

/// The example's state reduced to one flexible graph, `a-flex` (service
/// `flex`, 4 CPUs), with only the edge cluster free enough for it.
async fn flexible_graph_alone() -> Option<Env> {
    flexible_graph_alone_with("").await
}

/// [`flexible_graph_alone`] with more configuration.
pub(crate) async fn flexible_graph_alone_with(extra: &str) -> Option<Env> {
    let env = env(&format!("{QUIET}{extra}")).await?;
    let projects = env.descriptor("projects");
    for gone in ["athens", "demo2"] {
        std::fs::remove_dir_all(projects.join(gone)).unwrap();
    }
    std::fs::remove_file(projects.join("brussels/image-detection-graph.yaml")).unwrap();
    std::fs::write(
        projects.join("brussels/a-flex.yaml"),
        descriptor("a-flex", "flex", None),
    )
    .unwrap();
    for (name, r) in [
        ("brussels-edge", cpus(6, 0)),
        ("athens-core", cpus(6, 6)),
        ("lyon-gpu", cpus(16, 16)),
    ] {
        env.fake.set_cluster_resources(name, &r).unwrap();
    }
    Some(env)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_graph_gets_its_edge_cluster_and_the_flexible_graph_moves() {
    let Some(env) = flexible_graph_alone().await else {
        return;
    };
    let projects = env.descriptor("projects");
    let set = |name: &str, r: ClusterResources| env.fake.set_cluster_resources(name, &r).unwrap();

    let daemon = env.start(RunOptions::default());
    let first = wait_for(LIMIT, "a-flex deployed on the edge", || {
        placed_on(&env, "flex").filter(|_| deployed(&env, "flex"))
    })
    .await;
    assert_eq!(first, ["brussels-edge"]);

    daemon.stop().await;

    // Karmada counts flex on the edge; the core frees up. A graph pinned
    // to the edge now needs 4 CPUs there, where 2 are free.
    set("brussels-edge", cpus(6, 4));
    set("athens-core", cpus(6, 0));
    std::fs::write(
        projects.join("brussels/z-pinned.yaml"),
        descriptor("z-pinned", "camera", Some("brussels-edge")),
    )
    .unwrap();
    // `smo diff` predicts what the daemon will do: install camera, and
    // upgrade flex (its placement is in its values).
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_smo"))
        .args(["diff", "--format", "json", "--state"])
        .arg(env.state.path())
        .arg("--config")
        .arg(&env.config)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
    let mut verdicts: Vec<String> = report["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| format!("{}/{}={}", s["graph"], s["service"], s["verdict"]).replace('"', ""))
        .collect();
    verdicts.sort();
    assert_eq!(
        verdicts,
        ["a-flex/flex=upgrade", "z-pinned/camera=install"],
        "{report:#}"
    );
    let daemon = env.start(RunOptions::default());
    let (camera, flex) = wait_for(LIMIT, "camera on the edge, flex moved", || {
        let camera = placed_on(&env, "camera")?;
        let flex = placed_on(&env, "flex").filter(|f| f != &first)?;
        (deployed(&env, "camera") && deployed(&env, "flex")).then_some((camera, flex))
    })
    .await;
    assert_eq!(camera, ["brussels-edge"]);
    assert_eq!(flex, ["athens-core"]);
    daemon.stop().await;

    let store = env.store();
    assert!(
        store.moves().unwrap().is_empty(),
        "the move was taken: {:?}",
        store.moves()
    );
    let events = store.events(100).unwrap();
    let said = |graph: &str, kind: Kind, part: &str| {
        events
            .iter()
            .any(|e| e.graph == graph && e.kind() == Some(kind) && e.message.contains(part))
    };
    assert!(
        said("z-pinned", Kind::Placed, "moving brussels/a-flex"),
        "{events:#?}"
    );
    assert!(
        said("a-flex", Kind::ReplacementRequested, "brussels/z-pinned"),
        "{events:#?}"
    );
    assert!(
        said(
            "a-flex",
            Kind::Replaced,
            "to make room for brussels/z-pinned"
        ),
        "{events:#?}"
    );
}

/// A move request left by a crash (written with the placement of the graph
/// it made room for, before the moving graph's reconcile took it) is
/// carried out at the next start; one planned on other inputs, or asked of
/// a graph whose file is broken, is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_left_by_a_crash_is_made_at_the_next_start_and_a_stale_one_dropped() {
    let Some(env) = flexible_graph_alone().await else {
        return;
    };
    let projects = env.descriptor("projects");
    let daemon = env.start(RunOptions::default());
    wait_for(LIMIT, "a-flex deployed on the edge", || {
        placed_on(&env, "flex").filter(|p| p == &["brussels-edge"] && deployed(&env, "flex"))
    })
    .await;
    daemon.stop().await;

    let hash = {
        let store = env.store();
        let rec = store.graph("brussels/a-flex").unwrap().unwrap();
        rec.placement_inputs_hash.unwrap()
    };
    let asked = |inputs_hash: &str| smo::store::MoveRecord {
        project: "brussels".into(),
        graph: "a-flex".into(),
        placement: [("flex".to_owned(), vec!["athens-core".to_owned()])].into(),
        inputs_hash: inputs_hash.into(),
        for_graph: "brussels/z-gone".into(),
        requested_at: 1,
    };
    let pending = |env: &Env| env.store().moves().unwrap();

    // Planned on other inputs: taken and dropped, nothing moves.
    env.store()
        .write(|tx| tx.put_move(&asked("other inputs")))
        .unwrap();
    let runs = |env: &Env| env.snapshot().map_or(0, |s| s.runs.len());
    let before = runs(&env);
    let daemon = env.start(RunOptions::default());
    // A pass is recorded when the queue drains: a-flex was reconciled at
    // this start (the daemon holds the store; its status says so).
    wait_for(LIMIT, "a pass at the new start", || {
        (runs(&env) > before).then_some(())
    })
    .await;
    daemon.stop().await;
    assert!(pending(&env).is_empty(), "{:?}", pending(&env));
    assert_eq!(placed_on(&env, "flex").unwrap(), ["brussels-edge"]);

    // Asked of a graph whose file is broken (held): dropped, so that it
    // does not keep other graphs waiting; nothing moves.
    let file = projects.join("brussels/a-flex.yaml");
    let good = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{good}  broken: [\n")).unwrap();
    env.store().write(|tx| tx.put_move(&asked(&hash))).unwrap();
    let before = runs(&env);
    let daemon = env.start(RunOptions::default());
    wait_for(LIMIT, "a pass with a-flex held", || {
        (runs(&env) > before).then_some(())
    })
    .await;
    daemon.stop().await;
    assert!(pending(&env).is_empty(), "{:?}", pending(&env));
    assert_eq!(placed_on(&env, "flex").unwrap(), ["brussels-edge"]);
    std::fs::write(&file, good).unwrap();

    // Planned on its inputs: made.
    env.store().write(|tx| tx.put_move(&asked(&hash))).unwrap();
    let daemon = env.start(RunOptions::default());
    wait_for(LIMIT, "a-flex moved to the core", || {
        placed_on(&env, "flex").filter(|p| p == &["athens-core"] && deployed(&env, "flex"))
    })
    .await;
    daemon.stop().await;
    assert!(pending(&env).is_empty(), "{:?}", pending(&env));
}
