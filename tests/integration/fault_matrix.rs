//! The fault matrix: for each external call of the daemon — helm, the
//! Karmada API, Prometheus, Grafana, NFVCL, the Git remote — a failure or
//! a timeout injected at that call leaves the store consistent (no intent
//! left, every live release recorded, nothing recorded as installed that
//! is not; no blueprint made twice, a sane provision record; no graph
//! removed on an unread remote), the failure in the status, and the next
//! pass converges to the desired state once the fault is gone. NFVCL and
//! Git are called by the running daemon only (the provisioning loop, the
//! Git poller): their rows run it and wait for the calls they count.

use crate::daemon::{Env, Running, env, env_with, free_port, wait_for};
use crate::grafana::{FakeGrafana, TOKEN};
use crate::nfvcl::daemon::{cluster_file, edge3};
use crate::nfvcl::{FakeNfvcl, PASSWORD};
use crate::prom::PromServer;
use crate::sources::{Served, git, git_daemon_on, served_example};
use fake_karmada::Fault;
use smo::daemon::RunOptions;
use smo::provision::run::Polling;
use smo::store::records::{ConditionKind, ProvisionStatus};
use smo::store::snapshot::StatusSnapshot;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

/// The releases the example installs (the event-triggered VO waits).
fn expected() -> BTreeMap<&'static str, BTreeSet<String>> {
    BTreeMap::from([
        (
            "athens",
            BTreeSet::from(["building-dashboard".into(), "occupancy-sensor".into()]),
        ),
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
    for ns in ["athens", "brussels", "demo2"] {
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

/// The NFVCL request that creates a blueprint, and the one that lists them.
const CREATE: &str = "/nfvcl/v2/api/blue/k8s";
const LIST: &str = "/nfvcl/v2/api/blue/?";

/// A daemon provisioning edge-3 (two workers) through `nfvcl`, with the
/// client's `timeout`; the directory keeps the VIM password file.
async fn nfvcl_daemon(nfvcl: &FakeNfvcl, timeout: &str) -> (Env, Running, tempfile::TempDir) {
    let secrets = tempfile::tempdir().unwrap();
    let password_file = secrets.path().join("vim-password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    let env = env(&format!(
        "nfvcl:\n  url: {}\n  timeout: {timeout}\n",
        nfvcl.url
    ))
    .await
    .unwrap();
    std::fs::write(
        env.descriptor("clusters/edge-3.yaml"),
        cluster_file(&password_file, 2),
    )
    .unwrap();
    let daemon = env.start(RunOptions {
        // Retries come fast, without turning into a busy loop.
        provision_polling: Polling {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(200),
        },
        ..RunOptions::default()
    });
    (env, daemon, secrets)
}

/// After the fault: NFVCL has no blueprint beyond `blueprints`, and edge-3
/// is recorded without one, saying why.
async fn nfvcl_held(env: &Env, nfvcl: &FakeNfvcl, row: &str, blueprints: usize, why: &str) {
    let r = wait_for(
        Duration::from_secs(60),
        &format!("{row}: the failure recorded"),
        || {
            edge3(env, |r| {
                r.detail.as_deref().is_some_and(|d| d.contains(why))
            })
        },
    )
    .await;
    assert_eq!(
        (r.status, r.blueprint_id.as_deref()),
        (ProvisionStatus::Pending, None),
        "{row}: {r:?}"
    );
    assert_eq!(nfvcl.blueprints().len(), blueprints, "{row}");
}

/// The fault gone: edge-3 Ready on NFVCL's only blueprint, recorded so
/// after the stop; the graphs' store consistent.
async fn nfvcl_converged(env: &Env, daemon: Running, nfvcl: &FakeNfvcl, row: &str) {
    let ready = wait_for(
        Duration::from_secs(60),
        &format!("{row}: edge-3 ready"),
        || edge3(env, |r| r.status == ProvisionStatus::Ready),
    )
    .await;
    let blueprints = nfvcl.blueprints();
    assert_eq!(blueprints.len(), 1, "{row}: {blueprints:?}");
    let (id, workers) = blueprints.into_iter().next().unwrap();
    assert_eq!(ready.blueprint_id.as_deref(), Some(id.as_str()), "{row}");
    assert_eq!((ready.workers, workers), (2, 2), "{row}");
    daemon.stop().await;
    let records = env.store().provisions().unwrap();
    assert_eq!(records.len(), 1, "{row}: {records:?}");
    assert_eq!(
        (records[0].status, records[0].blueprint_id.as_deref()),
        (ProvisionStatus::Ready, Some(id.as_str())),
        "{row}"
    );
    consistent(env, row);
}

/// The daemon's status once `f` holds.
async fn status(env: &Env, what: &str, f: impl Fn(&StatusSnapshot) -> bool) -> StatusSnapshot {
    wait_for(Duration::from_secs(120), what, || {
        env.snapshot().filter(|s| f(s))
    })
    .await
}

fn graphs_of(s: &StatusSnapshot) -> BTreeSet<String> {
    s.graphs
        .iter()
        .map(|g| format!("{}/{}", g.project, g.graph))
        .collect()
}

fn deployed(env: &Env, ns: &str) -> BTreeSet<String> {
    env.releases(ns)
        .into_iter()
        .filter(|(_, (_, status))| status == "deployed")
        .map(|(name, _)| name)
        .collect()
}

/// The Git row: a daemon following a repository served by `git daemon`
/// converges on a first commit; the remote goes away and a commit that
/// removes a graph lands meanwhile: the graphs are held at the last
/// snapshot through further passes; the remote back, the removal is
/// applied.
async fn git_row() {
    let row = "Git remote unreachable";
    eprintln!("fault matrix: {row}");
    let served = tempfile::tempdir().unwrap();
    let Served {
        daemon: remote,
        port,
        source,
        first,
        origin,
    } = served_example(served.path());
    let env = env_with("intervals:\n  resync: 1s\n", true, Some(&source))
        .await
        .unwrap();
    let daemon = env.start(RunOptions::default());
    let both: BTreeSet<String> = [
        "athens/smart-building-graph",
        "brussels/image-detection-graph",
        "demo2/gpu-offloading-graph",
    ]
    .map(String::from)
    .into();
    status(&env, "the first commit applied", |s| {
        s.source_revision.as_deref() == Some(&*first)
            && graphs_of(s) == both
            && expected()
                .into_iter()
                .all(|(ns, want)| deployed(&env, ns) == want)
    })
    .await;

    drop(remote);
    git(
        &origin,
        &["rm", "-q", "projects/demo2/gpu-offloading-graph.yaml"],
    );
    git(&origin, &["commit", "-qm", "remove demo2"]);
    let second = git(&origin, &["rev-parse", "HEAD"]);
    let unreachable = |s: &StatusSnapshot| {
        s.notes
            .iter()
            .any(|n| n.contains("source unreachable, keeping the last snapshot"))
    };
    let noted = status(&env, "the outage noted", unreachable).await;
    let last_run = noted.runs.first().map_or(0, |r| r.seq);
    // Passes went on after the outage: they had their chance to remove.
    let held = status(&env, "a pass after the outage", |s| {
        unreachable(s) && s.runs.first().is_some_and(|r| r.seq > last_run + 1)
    })
    .await;
    assert_eq!(held.source_revision.as_deref(), Some(&*first), "{row}");
    assert_eq!(graphs_of(&held), both, "{row}: graphs held");
    for (ns, want) in expected() {
        assert_eq!(deployed(&env, ns), want, "{row}: releases of {ns} held");
    }

    let remote = git_daemon_on(served.path(), port);
    status(&env, "the removal applied", |s| {
        s.source_revision.as_deref() == Some(&*second)
            && graphs_of(s)
                == BTreeSet::from([
                    "athens/smart-building-graph".to_owned(),
                    "brussels/image-detection-graph".to_owned(),
                ])
            && !unreachable(s)
            && env.releases("demo2").is_empty()
    })
    .await;
    // Another outage, over with no new commit: the note goes with it.
    drop(remote);
    status(&env, "the second outage noted", unreachable).await;
    let _remote = git_daemon_on(served.path(), port);
    status(&env, "the note cleared with the remote back", |s| {
        !unreachable(s) && s.source_revision.as_deref() == Some(&*second)
    })
    .await;
    daemon.stop().await;
    consistent(&env, row);
    assert_eq!(deployed(&env, "brussels"), expected()["brussels"], "{row}");
    assert_eq!(
        env.store().source_revision().unwrap().as_deref(),
        Some(&*second),
        "{row}"
    );
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

    // NFVCL fails every creation: retried without a blueprint recorded or
    // made; recovered, exactly one blueprint.
    {
        let row = "NFVCL fails";
        eprintln!("fault matrix: {row}");
        let nfvcl = FakeNfvcl::start(1);
        nfvcl.fail_until_cleared(CREATE, 500, "database unavailable");
        let (env, daemon, _secrets) = nfvcl_daemon(&nfvcl, "5s").await;
        wait_for(Duration::from_secs(60), "a creation retried", || {
            (nfvcl.creations() >= 2).then_some(())
        })
        .await;
        nfvcl_held(&env, &nfvcl, row, 0, "database unavailable").await;
        nfvcl.clear_faults();
        nfvcl_converged(&env, daemon, &nfvcl, row).await;
    }

    // NFVCL creates the blueprint but answers after the client's timeout,
    // and cannot list blueprints for a while: the retry looks for the
    // lost blueprint instead of creating another.
    {
        let row = "NFVCL times out";
        eprintln!("fault matrix: {row}");
        let nfvcl = FakeNfvcl::start(1);
        nfvcl.lose_next_answer(CREATE, Duration::from_secs(3));
        nfvcl.fail_until_cleared(LIST, 503, "NFVCL is restarting");
        let (env, daemon, _secrets) = nfvcl_daemon(&nfvcl, "1s").await;
        wait_for(Duration::from_secs(60), "the lookup retried", || {
            let lookups = nfvcl
                .requests()
                .iter()
                .filter(|r| r.method == "GET" && r.path.contains(LIST))
                .count();
            (lookups >= 2).then_some(())
        })
        .await;
        nfvcl_held(&env, &nfvcl, row, 1, "NFVCL is restarting").await;
        assert_eq!(nfvcl.creations(), 1, "{row}: {:?}", nfvcl.requests());
        nfvcl.clear_faults();
        nfvcl_converged(&env, daemon, &nfvcl, row).await;
        assert_eq!(nfvcl.creations(), 1, "{row}: {:?}", nfvcl.requests());
    }

    git_row().await;
}
