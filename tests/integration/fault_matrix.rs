//! The fault matrix: for each external call of a reconcile — helm, the
//! Karmada API, Prometheus, Grafana — a failure or a timeout injected at
//! that call leaves the store consistent (no intent left, every live
//! release recorded, nothing recorded as installed that is not), the
//! failure in the graph's status, and the next pass converges to the
//! desired state once the fault is gone. NFVCL (`nfvcl::`) and the Git
//! source (`daemon_faults::`, `sources::`) have their fault tests next to
//! their fakes.

use crate::daemon::{Env, env, free_port};
use crate::grafana::{FakeGrafana, TOKEN};
use crate::prom::PromServer;
use fake_karmada::Fault;
use smo::store::records::ConditionKind;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

/// The releases the example installs (the event-triggered VO waits).
fn expected() -> BTreeMap<&'static str, BTreeSet<String>> {
    BTreeMap::from([
        (
            "brussels",
            BTreeSet::from(["image-detection".into(), "noise-reduction".into()]),
        ),
        (
            "demo2",
            BTreeSet::from(["ml-inference".into(), "web-frontend".into()]),
        ),
    ])
}

/// The store and the live state agree, whatever the pass did.
fn consistent(env: &Env, row: &str) {
    let store = env.store();
    let intents = store.intents().unwrap();
    assert!(intents.is_empty(), "{row}: intents left: {intents:?}");
    let services = store.services().unwrap();
    for ns in ["brussels", "demo2"] {
        let live: BTreeSet<String> = env.releases(ns).into_keys().collect();
        let recorded: BTreeSet<String> = services
            .iter()
            .filter(|s| s.namespace == ns)
            .map(|s| s.release.clone())
            .collect();
        let installed: BTreeSet<String> = services
            .iter()
            .filter(|s| s.namespace == ns && s.release_revision.is_some())
            .map(|s| s.release.clone())
            .collect();
        assert!(
            live.is_subset(&recorded),
            "{row}: live releases the store does not know: {live:?} vs {recorded:?}"
        );
        assert!(
            installed.is_subset(&live),
            "{row}: recorded as installed but absent: {installed:?} vs {live:?}"
        );
    }
}

/// The graph's Ready condition is false and says `why`.
fn not_ready_because(env: &Env, row: &str, graph: &str, why: &str) {
    let g = env.store().graph(graph).unwrap().expect("graph recorded");
    let ready = g
        .conditions
        .iter()
        .find(|c| c.kind == ConditionKind::Ready)
        .expect("a Ready condition");
    assert!(!ready.status, "{row}: {graph} is Ready: {ready:?}");
    let said = format!(
        "{} {}",
        ready.message,
        g.last_error.clone().unwrap_or_default()
    );
    assert!(
        said.contains(why),
        "{row}: {graph} does not say {why:?}: {said}"
    );
}

fn converged(env: &Env, row: &str) {
    for (ns, want) in expected() {
        let live: BTreeSet<String> = env
            .releases(ns)
            .into_iter()
            .filter(|(_, (_, status))| status == "deployed")
            .map(|(name, _)| name)
            .collect();
        assert_eq!(live, want, "{row}: releases of {ns}");
    }
    consistent(env, row);
}

/// Rewrites the daemon configuration (it is read again by every pass).
fn reconfigure(env: &Env, from: &str, to: &str) {
    let text = std::fs::read_to_string(&env.config).unwrap();
    assert!(text.contains(from), "{from:?} not in the config:\n{text}");
    std::fs::write(&env.config, text.replacen(from, to, 1)).unwrap();
}

/// A helm that misbehaves on its first `upgrade` (`script` runs instead of
/// helm), then is the real helm.
fn faulty_helm(env: &Env, dir: &Path, script: &str) {
    let real = fake_karmada::testing::tool("SMO_HELM").expect("helm");
    let wrapper = dir.join("helm");
    let once = dir.join("failed-once");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nif [ \"$1\" = upgrade ] && [ ! -e '{once}' ]; then\n  touch '{once}'\n  {script}\nfi\nexec '{real}' \"$@\"\n",
            once = once.display(),
            real = real.display(),
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    reconfigure(
        env,
        &format!("binary: {}", real.display()),
        &format!("binary: {}", wrapper.display()),
    );
    reconfigure(env, "timeout: 60s", "timeout: 3s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_at_any_external_call_leaves_the_store_consistent_and_the_next_pass_converges() {
    let Some(probe) = env("").await else { return };
    drop(probe);
    let scratch = tempfile::tempdir().unwrap();

    // helm fails: an upgrade refused by the API server.
    {
        let row = "helm fails";
        eprintln!("fault matrix: {row}");
        let env = env("").await.unwrap();
        faulty_helm(
            &env,
            scratch.path(),
            "echo 'Error: UPGRADE FAILED: the server is currently unable to handle the request' >&2; exit 1",
        );
        let report = env.once().await;
        assert!(!report.converged, "{row}: {report:?}");
        consistent(&env, row);
        assert!(env.once().await.converged, "{row}: no recovery");
        converged(&env, row);
    }

    // helm hangs: killed at helm.timeout.
    {
        let row = "helm times out";
        eprintln!("fault matrix: {row}");
        let dir = tempfile::tempdir().unwrap();
        let env = env("").await.unwrap();
        faulty_helm(&env, dir.path(), "sleep 30; exit 1");
        let report = env.once().await;
        assert!(!report.converged, "{row}: {report:?}");
        consistent(&env, row);
        assert!(env.once().await.converged, "{row}: no recovery");
        converged(&env, row);
    }

    // The Karmada API refuses writes: the namespaces cannot be applied.
    {
        let row = "Karmada refuses a write";
        eprintln!("fault matrix: {row}");
        let env = env("").await.unwrap();
        env.fake.fail_next(
            Fault::status(500)
                .method("PATCH")
                .path_prefix("/api/v1/namespaces")
                .times(20),
        );
        let report = env.once().await;
        assert!(!report.converged, "{row}: {report:?}");
        consistent(&env, row);
        assert!(env.releases("brussels").is_empty(), "{row}");
        not_ready_because(&env, row, "brussels/image-detection-graph", "500");
        env.fake.clear_faults();
        assert!(env.once().await.converged, "{row}: no recovery");
        converged(&env, row);
    }

    // The Karmada API is unavailable for reads: the dependency's
    // readiness cannot be read.
    {
        let row = "Karmada unavailable for reads";
        eprintln!("fault matrix: {row}");
        let env = env("").await.unwrap();
        assert!(env.once().await.converged);
        // helm --wait reads the workloads too: fail it fast.
        reconfigure(&env, "timeout: 60s", "timeout: 5s");
        // A changed dependent needs its dependency's readiness again.
        env.edit(
            "projects/brussels/image-detection-graph.yaml",
            "cpu: small",
            "cpu: medium",
        );
        env.fake.fail_next(
            Fault::status(503)
                .method("GET")
                .path_prefix("/apis/apps/v1")
                .times(1000),
        );
        let report = env.once().await;
        assert!(!report.converged, "{row}: {report:?}");
        consistent(&env, row);
        env.fake.clear_faults();
        assert!(env.once().await.converged, "{row}: no recovery");
        converged(&env, row);
    }

    // Prometheus is down: the alert rules of the event-triggered service
    // are written but the reload is owed.
    {
        let row = "Prometheus unreachable";
        eprintln!("fault matrix: {row}");
        let rules = tempfile::tempdir().unwrap();
        let dead = format!("http://127.0.0.1:{}", free_port());
        let env = env(&format!(
            "prometheus:\n  url: {dead}\n  rulesDir: {}\n",
            rules.path().display()
        ))
        .await
        .unwrap();
        let report = env.once().await;
        assert!(!report.converged, "{row}: {report:?}");
        consistent(&env, row);
        not_ready_because(&env, row, "brussels/image-detection-graph", "reload");
        let Some(prom) = PromServer::start(rules.path(), None, &[]) else {
            return;
        };
        prom.wait_ready(Duration::from_secs(60));
        reconfigure(&env, &dead, &prom.url);
        assert!(env.once().await.converged, "{row}: no recovery");
        converged(&env, row);
    }

    // Grafana is down: dashboards cannot be published.
    {
        let row = "Grafana unreachable";
        eprintln!("fault matrix: {row}");
        let grafana = FakeGrafana::start();
        let token = scratch.path().join("grafana-token");
        std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
        let dead = format!("http://127.0.0.1:{}", free_port());
        let env = env(&format!(
            "grafana:\n  url: {dead}\n  tokenFile: {}\n",
            token.display()
        ))
        .await
        .unwrap();
        let report = env.once().await;
        assert!(!report.converged, "{row}: {report:?}");
        consistent(&env, row);
        assert!(grafana.dashboards().is_empty());
        reconfigure(&env, &dead, &grafana.url);
        assert!(env.once().await.converged, "{row}: no recovery");
        converged(&env, row);
        assert!(!grafana.dashboards().is_empty(), "{row}: nothing published");
    }
}
