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
