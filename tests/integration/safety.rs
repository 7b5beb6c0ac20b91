//! Safe by default: a bad edit, a crash, a restart or a hostile input
//! never removes, loses or takes over anything.

use crate::daemon::env;
use smo::store::ConditionKind;

const BRUSSELS: &str = "projects/brussels/image-detection-graph.yaml";
const BRUSSELS_KEY: &str = "brussels/image-detection-graph";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_descriptor_that_is_present_but_broken_holds_its_graph_and_only_a_gone_one_removes() {
    let Some(env) = env("").await else { return };
    assert!(env.once().await.converged);
    let before = env.releases("brussels");
    assert_eq!(before.len(), 2, "{before:?}");
    let good = std::fs::read_to_string(env.descriptor(BRUSSELS)).unwrap();

    // Every way an editor, a non-atomic save or a merge can leave the file
    // unreadable: no graph id can be read from any of them.
    let broken = [
        ("bad YAML", "hdaGraph: [unclosed\n".to_owned()),
        ("an empty file (a non-atomic save)", String::new()),
        (
            "a duplicate key",
            format!("{good}\nhdaGraph:\n  id: other\n"),
        ),
        ("two documents", format!("{good}\n---\n{good}")),
        (
            "a merge conflict",
            format!("<<<<<<< HEAD\n{good}=======\n{good}>>>>>>> theirs\n"),
        ),
    ];
    for (what, text) in broken {
        std::fs::write(env.descriptor(BRUSSELS), text).unwrap();
        let report = env.once().await;
        assert!(!report.converged, "{what}: {report:?}");
        assert_eq!(
            env.releases("brussels"),
            before,
            "{what}: the releases changed"
        );
        let store = env.store();
        let g = store
            .graph(BRUSSELS_KEY)
            .unwrap()
            .unwrap_or_else(|| panic!("{what}: the graph was forgotten"));
        assert_eq!(
            store
                .services_of("brussels", "image-detection-graph")
                .unwrap()
                .len(),
            3,
            "{what}"
        );
        let stalled = g
            .conditions
            .iter()
            .find(|c| c.kind == ConditionKind::Stalled)
            .unwrap();
        assert!(
            stalled.status
                && stalled
                    .message
                    .contains("image-detection-graph.yaml is invalid"),
            "{what}: {stalled:?}"
        );
        drop(store);
        // smo status shows why.
        let snap = smo::store::snapshot::read(&env.data.path().join("var")).unwrap();
        let shown = snap
            .graphs
            .iter()
            .find(|g| g.graph == "image-detection-graph")
            .unwrap();
        assert!(
            shown
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("last good state is kept")),
            "{what}"
        );
    }

    // Repaired: converges without touching the releases.
    std::fs::write(env.descriptor(BRUSSELS), &good).unwrap();
    assert!(env.once().await.converged);
    assert_eq!(env.releases("brussels"), before);

    // Gone: removed.
    std::fs::remove_file(env.descriptor(BRUSSELS)).unwrap();
    env.once().await;
    assert!(
        env.releases("brussels").is_empty(),
        "{:?}",
        env.releases("brussels")
    );
    assert!(env.store().graph(BRUSSELS_KEY).unwrap().is_none());
}

/// Runs the real helm against the fake Karmada, as another tool would.
fn helm(env: &crate::daemon::Env, args: &[&str]) {
    let helm = fake_karmada::testing::tool("SMO_HELM").expect("helm");
    let out = std::process::Command::new(helm)
        .args(args)
        .arg("--kubeconfig")
        .arg(env.fake.kubeconfig_path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "helm {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_smo_did_not_install_is_never_touched_unless_the_descriptor_adopts_it() {
    let Some(env) = env("").await else { return };
    // Someone else's release, of a service's name, already there.
    let chart = env.descriptor("projects/brussels/charts/noise-reduction");
    helm(
        &env,
        &[
            "upgrade",
            "--install",
            "noise-reduction",
            chart.to_str().unwrap(),
            "--namespace",
            "brussels",
            "--create-namespace",
        ],
    );
    assert_eq!(env.releases("brussels")["noise-reduction"].0, 1);

    let report = env.once().await;
    assert!(!report.converged, "{report:?}");
    assert_eq!(
        env.releases("brussels")["noise-reduction"].0,
        1,
        "the foreign release was upgraded"
    );
    let store = env.store();
    let svc = store
        .services_of("brussels", "image-detection-graph")
        .unwrap()
        .into_iter()
        .find(|s| s.service == "noise-reduction")
        .unwrap();
    assert_eq!(svc.phase, smo::store::ServicePhase::Blocked, "{svc:?}");
    assert!(
        svc.last_error.as_deref().is_some_and(|e| e.contains("release noise-reduction exists and is not managed by smo")),
        "{svc:?}"
    );
    // The other graph is not held back by it.
    assert_eq!(env.releases("demo2").len(), 2);
    drop(store);

    // The operator adopts it: upgraded, and labelled as smo's from now on.
    env.edit(
        BRUSSELS,
        "ociImage: charts/noise-reduction",
        "ociImage: charts/noise-reduction\n        adopt: true",
    );
    assert!(env.once().await.converged);
    assert_eq!(env.releases("brussels")["noise-reduction"].0, 2);
    let labelled = env
        .fake
        .list_objects("v1", "Secret", Some("brussels"))
        .into_iter()
        .any(|s| {
            let l = &s["metadata"]["labels"];
            l["name"] == "noise-reduction"
                && l["version"] == "2"
                && l["app.kubernetes.io/managed-by"] == "smo"
                && l["smo.nephele.eu/graph"] == "image-detection-graph"
        });
    assert!(
        labelled,
        "helm's record of the adopted release carries smo's labels"
    );
}

/// What carries smo's labels and the store lost (a record deleted, a
/// restored backup) is found again at start: a release of a service still
/// in the descriptor is recorded and kept (as it is: its inputs label names
/// the desired inputs), a graph no file declares is
/// removed through the removal path; too many such orphans are held by the
/// prune guard until the operator's marker allows them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_store_lost_is_found_by_its_labels_and_kept_or_removed() {
    let Some(env) = env("").await else { return };
    assert!(env.once().await.converged);
    assert_eq!(env.releases("demo2").len(), 2);
    let noise_before = env.releases("brussels")["noise-reduction"].0;

    // The store forgets one service of brussels and the whole demo2
    // graph, whose file is gone too: its releases are orphans.
    std::fs::remove_file(env.descriptor("projects/demo2/gpu-offloading-graph.yaml")).unwrap();
    {
        let store = env.store();
        store
            .write(|tx| {
                tx.delete_service("brussels/image-detection-graph/noise-reduction")?;
                tx.delete_graph("demo2/gpu-offloading-graph")
            })
            .unwrap();
    }
    let report = env.once().await;
    assert!(report.converged, "{report:?}");
    assert!(
        env.releases("demo2").is_empty(),
        "the orphan graph's releases stay: {:?}",
        env.releases("demo2")
    );
    let store = env.store();
    assert!(store.graph("demo2/gpu-offloading-graph").unwrap().is_none());
    let noise = store
        .services_of("brussels", "image-detection-graph")
        .unwrap()
        .into_iter()
        .find(|s| s.service == "noise-reduction")
        .expect("the lost record is back");
    assert_eq!(noise.phase, smo::store::ServicePhase::Deployed, "{noise:?}");
    assert!(
        noise.manifest.is_some()
            && noise.input_hash.is_some()
            && !smo::release::inputs_from_a_label(noise.input_hash.as_deref()),
        "{noise:?}"
    );
    assert_eq!(
        env.releases("brussels")["noise-reduction"].0,
        noise_before,
        "the found release, whose inputs label names the desired inputs, is kept as it is"
    );
    let swept: Vec<_> = store
        .events(100)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "Swept")
        .map(|e| format!("{}/{}: {}", e.project, e.graph, e.message))
        .collect();
    assert!(
        swept
            .iter()
            .any(|m| m
                .starts_with("brussels/image-detection-graph: release brussels/noise-reduction"))
            && swept
                .iter()
                .any(|m| m.starts_with("demo2/gpu-offloading-graph: release demo2/")),
        "{swept:#?}"
    );
    drop(store);

    // Now the whole store is lost and brussels' file too: removing the
    // only graph smo would know of is more than the prune guard allows.
    std::fs::remove_file(env.descriptor(BRUSSELS)).unwrap();
    std::fs::remove_file(smo::store::Store::path_in(&env.data.path().join("var"))).unwrap();
    let before = env.releases("brussels");
    assert!(!before.is_empty());
    env.once().await;
    assert_eq!(
        env.releases("brussels"),
        before,
        "held orphans were touched"
    );
    assert!(env.store().graph(BRUSSELS_KEY).unwrap().is_none());
    let snap = env.snapshot().expect("status");
    assert!(
        snap.notes
            .iter()
            .any(|n| n.starts_with("sweep:") && n.contains("brussels/image-detection-graph")),
        "{:?}",
        snap.notes
    );

    // The operator's marker allows it.
    std::fs::write(env.state.path().join(smo::daemon::ALLOW_PRUNE_MARKER), "").unwrap();
    env.once().await;
    assert!(
        env.releases("brussels").is_empty(),
        "{:?}",
        env.releases("brussels")
    );
}
