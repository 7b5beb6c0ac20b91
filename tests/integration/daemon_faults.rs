//! The daemon under faults: a Git source that moves (a bad commit, a
//! force-push), a dependency that never becomes ready, an API server
//! outage, a SIGKILL in the middle of a pass, and `smo status` next to a
//! running daemon.

use crate::daemon::{Env, copy_dir, env, env_with, log_of, spawn_smo};
use crate::sources::{Served, git, served_example};
use crate::support::{graph, repo};
use serde_json::Value;
use smo::daemon::{RunOptions, RunReport, run};
use smo::store::records::{ConditionKind, ServicePhase};
use smo::store::snapshot::{self, StatusSnapshot};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};
use tokio::sync::watch;

const BRUSSELS_FILE: &str = "projects/brussels/image-detection-graph.yaml";
const DEMO2_FILE: &str = "projects/demo2/gpu-offloading-graph.yaml";
const BRUSSELS: &str = "brussels/image-detection-graph";
const DEMO2: &str = "demo2/gpu-offloading-graph";

/// The releases the example installs (the event-triggered VO waits).
fn expected_releases() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    BTreeMap::from([
        (
            "athens",
            BTreeSet::from(["building-dashboard", "occupancy-sensor"]),
        ),
        (
            "brussels",
            BTreeSet::from(["image-detection", "noise-reduction"]),
        ),
        ("demo2", BTreeSet::from(["ml-inference", "web-frontend"])),
    ])
}

fn state_dir(env: &Env) -> PathBuf {
    env.data.path().join("var")
}

/// One `--once` pass in process with a given deadline for blocked work.
async fn once_within(env: &Env, deadline: Duration) -> RunReport {
    let (_tx, rx) = watch::channel(false);
    let opts = RunOptions {
        once: true,
        once_deadline: deadline,
        ..RunOptions::default()
    };
    run(env.config(), opts, rx).await.unwrap()
}

/// The CPU request of a Deployment's first container.
fn cpu_request(env: &Env, ns: &str, name: &str) -> Value {
    env.object("apps/v1", "Deployment", ns, name)
        .unwrap_or_else(|| panic!("no Deployment {ns}/{name}"))["spec"]["template"]["spec"]
        ["containers"][0]["resources"]["requests"]["cpu"]
        .clone()
}

/// Replaces the first `from` after `anchor` in a file.
fn edit_after(path: &Path, anchor: &str, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    let at = text
        .find(anchor)
        .unwrap_or_else(|| panic!("{anchor:?} not in {}", path.display()));
    let (head, tail) = text.split_at(at);
    assert!(tail.contains(from), "{from:?} not after {anchor:?}");
    std::fs::write(path, format!("{head}{}", tail.replacen(from, to, 1))).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_source_applies_commits_isolates_a_broken_descriptor_and_follows_a_force_push() {
    // The served repository: the example state committed on `main`.
    let served = tempfile::tempdir().unwrap();
    let Served {
        daemon: _daemon,
        source,
        first,
        origin,
        ..
    } = served_example(served.path());
    let Some(env) = env_with("", true, Some(&source)).await else {
        return;
    };

    // (a) The first commit is applied and recorded as the revision.
    let report = env.once().await;
    assert!(report.converged, "{report:?}");
    {
        let store = env.store();
        assert_eq!(store.source_revision().unwrap().as_deref(), Some(&*first));
        for key in [BRUSSELS, DEMO2] {
            let g = store.graph(key).unwrap().unwrap();
            assert_eq!(g.last_applied_revision.as_deref(), Some(&*first), "{key}");
        }
    }
    let original_cpu = cpu_request(&env, "demo2", "web-frontend");

    // (b) One commit breaks brussels (an unknown CPU class) and gives
    // web-frontend more CPU: demo2 moves on, brussels keeps what it had.
    edit_after(
        &origin.join(BRUSSELS_FILE),
        "    - id: image-detection",
        "cpu: small",
        "cpu: gigantic",
    );
    edit_after(
        &origin.join(DEMO2_FILE),
        "    - id: web-frontend",
        "cpu: small",
        "cpu: medium",
    );
    git(
        &origin,
        &["commit", "-qam", "break brussels, grow web-frontend"],
    );
    let second = git(&origin, &["rev-parse", "HEAD"]);
    let report = env.once().await;
    assert!(!report.converged, "brussels is invalid: {report:?}");
    assert!(
        report.failed.iter().any(|f| f.starts_with(BRUSSELS)),
        "{report:?}"
    );
    let d = env.releases("demo2");
    assert_eq!(d["web-frontend"], (2, "deployed".to_owned()), "{d:?}");
    assert_eq!(d["ml-inference"].0, 1, "{d:?}");
    let grown = cpu_request(&env, "demo2", "web-frontend");
    assert_ne!(grown, original_cpu, "web-frontend's CPU did not change");
    let b = env.releases("brussels");
    assert_eq!(b.len(), 2, "{b:?}");
    assert!(
        b.values().all(|(rev, st)| *rev == 1 && st == "deployed"),
        "brussels must keep its last good releases: {b:?}"
    );
    {
        let store = env.store();
        assert_eq!(store.source_revision().unwrap().as_deref(), Some(&*second));
        let g = store.graph(BRUSSELS).unwrap().unwrap();
        let err = g.last_error.clone().unwrap_or_default();
        assert!(err.contains(BRUSSELS_FILE), "last_error: {err:?}");
        assert_eq!(g.last_applied_revision.as_deref(), Some(&*first));
        assert_eq!(g.last_attempted_revision.as_deref(), Some(&*second));
        let d = store.graph(DEMO2).unwrap().unwrap();
        assert_eq!(d.last_applied_revision.as_deref(), Some(&*second));
    }

    // (c) Force-push `main` back to the first commit: demo2 converges back.
    git(&origin, &["reset", "-q", "--hard", &first]);
    let report = env.once().await;
    assert!(report.converged, "{report:?}");
    let d = env.releases("demo2");
    assert_eq!(d["web-frontend"], (3, "deployed".to_owned()), "{d:?}");
    assert_eq!(cpu_request(&env, "demo2", "web-frontend"), original_cpu);
    let b = env.releases("brussels");
    assert!(b.values().all(|(rev, _)| *rev == 1), "{b:?}");
    let store = env.store();
    assert_eq!(store.source_revision().unwrap().as_deref(), Some(&*first));
    let g = store.graph(BRUSSELS).unwrap().unwrap();
    assert_eq!(g.last_error, None);
    assert_eq!(g.last_applied_revision.as_deref(), Some(&*first));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dependency_that_never_becomes_ready_blocks_its_dependent() {
    // No simulated members: Deployments never report ready replicas.
    let Some(env) = env_with("", false, None).await else {
        return;
    };
    for project in ["brussels", "demo2"] {
        std::fs::remove_dir_all(env.descriptor(&format!("projects/{project}"))).unwrap();
    }
    copy_dir(
        &repo().join("state-example/projects/demo2/charts/service"),
        &env.descriptor("projects/deps/charts/service"),
    );
    let descriptor = graph("chain")
        .service("database")
        .chart("charts/service")
        .service("api")
        .chart("charts/service")
        .depends_on("database")
        .yaml();
    std::fs::write(env.descriptor("projects/deps/chain.yaml"), descriptor).unwrap();

    let started = Instant::now();
    let report = once_within(&env, Duration::from_secs(3)).await;
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "--once must give up on blocked work at its deadline"
    );
    assert!(!report.converged, "{report:?}");
    assert!(
        report.failed.iter().any(|f| f.starts_with("deps/chain")),
        "{report:?}"
    );
    let r = env.releases("deps");
    assert_eq!(r.keys().collect::<Vec<_>>(), ["database"], "{r:?}");
    assert!(
        env.object("apps/v1", "Deployment", "deps", "api").is_none(),
        "api was installed before database was ready"
    );

    let store = env.store();
    let api = store
        .services_of("deps", "chain")
        .unwrap()
        .into_iter()
        .find(|s| s.service == "api")
        .expect("a record for api");
    assert_eq!(api.phase, ServicePhase::BlockedByDependency, "{api:?}");
    let why = api.blocked_by.clone().unwrap_or_default();
    assert!(why.contains("database"), "blocked_by: {why:?}");
    assert_eq!(api.release_revision, None, "{api:?}");
    let g = store.graph("deps/chain").unwrap().unwrap();
    let blocked = g
        .conditions
        .iter()
        .find(|c| c.kind == ConditionKind::BlockedByDependency)
        .expect("a BlockedByDependency condition");
    assert!(blocked.status, "{:?}", g.conditions);
    assert!(blocked.message.contains("api"), "{blocked:?}");
    let ready = g
        .conditions
        .iter()
        .find(|c| c.kind == ConditionKind::Ready)
        .unwrap();
    assert!(!ready.status, "{:?}", g.conditions);
}

/// Every graph of the snapshot is Ready and every expected release is
/// deployed.
fn all_deployed(env: &Env) -> bool {
    expected_releases().iter().all(|(ns, names)| {
        let r = env.releases(ns);
        names
            .iter()
            .all(|n| r.get(*n).is_some_and(|(_, st)| st == "deployed"))
    })
}

fn graphs_ready(snap: &StatusSnapshot) -> bool {
    snap.graphs.len() == 3
        && snap.graphs.iter().all(|g| {
            g.conditions
                .iter()
                .any(|c| c.kind == ConditionKind::Ready && c.status)
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_survives_an_api_server_outage_and_converges_after_it() {
    let Some(mut env) = env("intervals: {resync: 2s}\n").await else {
        return;
    };
    let (stop, stopped) = watch::channel(false);
    let opts = RunOptions {
        backoff_base: Duration::from_millis(200),
        backoff_cap: Duration::from_secs(2),
        inventory_interval: Some(Duration::from_millis(500)),
        ..RunOptions::default()
    };
    let daemon = tokio::spawn(run(env.config(), opts, stopped));

    // Down as soon as the daemon has talked to the API server once.
    let t0 = Instant::now();
    while env.fake.requests().is_empty() {
        assert!(t0.elapsed() < Duration::from_secs(30), "no request yet");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    env.fake.outage().await;
    let installed = env.releases("brussels").len() + env.releases("demo2").len();
    assert!(installed < 4, "the first pass finished before the outage");

    // The issue asks for a 60 s outage; 5 s takes the same paths (failed
    // inventory reads, helm and API errors, retries with backoff at the
    // cap) without a minute of waiting.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(!daemon.is_finished(), "the daemon ended during the outage");
    let during = snapshot::read(&state_dir(&env)).ok();
    env.fake.recover().await.unwrap();

    let t0 = Instant::now();
    loop {
        let snap = snapshot::read(&state_dir(&env)).ok();
        if all_deployed(&env) && snap.as_ref().is_some_and(graphs_ready) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "not converged 60 s after the outage: {:?} {:?}; snapshot: {snap:#?}",
            env.releases("brussels"),
            env.releases("demo2"),
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The outage was seen and published, and not as success.
    let during = during.expect("a status snapshot published during the outage");
    assert!(
        during
            .notes
            .iter()
            .any(|n| n.contains("cluster inventory unavailable")),
        "{:?}",
        during.notes
    );
    assert!(!graphs_ready(&during), "{during:#?}");
    for (ns, names) in expected_releases() {
        let r = env.releases(ns);
        assert_eq!(r.keys().map(String::as_str).collect::<BTreeSet<_>>(), names);
        assert!(r.values().all(|(_, st)| st == "deployed"), "{ns}: {r:?}");
    }
    assert!(!daemon.is_finished(), "the daemon ended by itself");
    stop.send(true).unwrap();
    let report = tokio::time::timeout(Duration::from_secs(90), daemon)
        .await
        .expect("the daemon stops after shutdown")
        .expect("the daemon task did not panic")
        .expect("the daemon ends without an error");
    assert_eq!(report.graphs, 3, "{report:?}");
}

/// Waits for a child without blocking the runtime.
async fn wait_child(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// Helm's release Secrets of a namespace: name → [(revision, status)].
fn release_secrets(env: &Env, ns: &str) -> BTreeMap<String, Vec<(u64, String)>> {
    let mut out: BTreeMap<String, Vec<(u64, String)>> = BTreeMap::new();
    for s in env.fake.list_objects("v1", "Secret", Some(ns)) {
        let l = &s["metadata"]["labels"];
        if l["owner"] != "helm" {
            continue;
        }
        let name = l["name"].as_str().unwrap().to_owned();
        let rev: u64 = l["version"].as_str().unwrap().parse().unwrap();
        let object = s["metadata"]["name"].as_str().unwrap();
        assert_eq!(object, format!("sh.helm.release.v1.{name}.v{rev}"));
        out.entry(name)
            .or_default()
            .push((rev, l["status"].as_str().unwrap().to_owned()));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_in_the_middle_of_a_pass_leaves_nothing_that_the_next_pass_does_not_repair() {
    let Some(env) = env("").await else { return };
    // Slow API calls so that the kill lands while helm is working.
    env.fake.set_latency(Duration::from_millis(50));
    let mut child = spawn_smo(&env, &["run"], "daemon.log");
    let t0 = Instant::now();
    while release_secrets(&env, "brussels").is_empty() && release_secrets(&env, "demo2").is_empty()
    {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "no release after 120 s; log:\n{}",
            log_of(&env, "daemon.log")
        );
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "smo run exited; log:\n{}",
            log_of(&env, "daemon.log")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.0.kill().unwrap(); // SIGKILL
    child.0.wait().unwrap();
    // helm writes the release as pending-install first: the kill leaves
    // at least one release that blocks every later helm operation on it
    // unless smo repairs it.
    let mut pending = 0;
    for (ns, names) in expected_releases() {
        let r = release_secrets(&env, ns);
        assert!(r.keys().all(|n| names.contains(n.as_str())), "{ns}: {r:?}");
        pending += r
            .values()
            .flatten()
            .filter(|(_, st)| st.starts_with("pending-"))
            .count();
    }
    assert!(
        pending > 0,
        "the kill did not land mid-install: {:?} {:?}",
        release_secrets(&env, "brussels"),
        release_secrets(&env, "demo2")
    );

    env.fake.set_latency(Duration::ZERO);
    let mut once = spawn_smo(&env, &["run", "--once"], "once.log");
    let status = wait_child(&mut once.0, Duration::from_secs(240))
        .await
        .expect("smo run --once finishes");
    assert_eq!(
        status.code(),
        Some(0),
        "smo run --once after the kill; log:\n{}",
        log_of(&env, "once.log")
    );

    for (ns, names) in expected_releases() {
        let r = release_secrets(&env, ns);
        assert_eq!(
            r.keys().map(String::as_str).collect::<BTreeSet<_>>(),
            names,
            "{ns}: {r:?}"
        );
        for (name, revisions) in &r {
            let deployed = revisions.iter().filter(|(_, st)| st == "deployed").count();
            assert_eq!(deployed, 1, "{ns}/{name}: {revisions:?}");
            assert!(
                revisions.iter().all(|(_, st)| !st.starts_with("pending-")),
                "{ns}/{name} stuck: {revisions:?}"
            );
        }
        // Only the expected services have Deployments and policies.
        for (api, kind) in [
            ("apps/v1", "Deployment"),
            ("policy.karmada.io/v1alpha1", "PropagationPolicy"),
        ] {
            for o in env.fake.list_objects(api, kind, Some(ns)) {
                let name = o["metadata"]["name"].as_str().unwrap();
                let service = name.strip_suffix("-import").unwrap_or(name);
                assert!(names.contains(service), "unexpected {kind} {ns}/{name}");
            }
        }
    }
    assert!(
        env.object("apps/v1", "Deployment", "brussels", "image-compression-vo")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smo_status_reads_the_running_daemons_snapshot_and_sigterm_stops_it_cleanly() {
    let Some(env) = env("").await else { return };
    let mut child = spawn_smo(&env, &["run"], "daemon.log");
    let dir = state_dir(&env);
    let t0 = Instant::now();
    loop {
        if snapshot::read(&dir).is_ok_and(|s| s.graphs.len() == 3 && s.source_revision.is_some()) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "no status snapshot with every graph; log:\n{}",
            log_of(&env, "daemon.log")
        );
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "smo run exited; log:\n{}",
            log_of(&env, "daemon.log")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let status = |format: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_smo"))
            .args(["status", "--format", format, "--config"])
            .arg(&env.config)
            .output()
            .unwrap();
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "smo status --format {format}: {out:?}"
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let json: Value = serde_json::from_str(&status("json")).unwrap();
    let revision = json["sourceRevision"]
        .as_str()
        .or_else(|| json["source_revision"].as_str())
        .unwrap_or_else(|| panic!("no source revision in {json:#}"));
    assert!(revision.starts_with("sha256:"), "{revision}");
    let keys: BTreeSet<String> = json["graphs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            format!(
                "{}/{}",
                g["project"].as_str().unwrap(),
                g["graph"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "athens/smart-building-graph".to_owned(),
            BRUSSELS.to_owned(),
            DEMO2.to_owned()
        ])
    );
    let services = json["services"].as_array().unwrap();
    assert!(!services.is_empty(), "{json:#}");
    for s in services {
        assert!(
            s["phase"].as_str().is_some_and(|p| !p.is_empty()),
            "a service without a phase: {s:#}"
        );
    }
    let text = status("text");
    for key in [BRUSSELS, DEMO2] {
        assert!(text.contains(key), "{key} not in:\n{text}");
    }
    assert!(text.contains(revision), "{text}");

    let term = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let exit = wait_child(&mut child.0, Duration::from_secs(30)).await;
    let Some(exit) = exit else {
        panic!(
            "smo run did not stop within 30 s of SIGTERM; log:\n{}",
            log_of(&env, "daemon.log")
        );
    };
    assert_eq!(exit.code(), Some(0), "log:\n{}", log_of(&env, "daemon.log"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_git_remote_unreachable_at_start_is_reported_and_the_daemon_waits_for_it() {
    let served = tempfile::tempdir().unwrap();
    let origin = served.path().join("origin");
    copy_dir(&repo().join("state-example"), &origin);
    git(&origin, &["init", "-q"]);
    git(&origin, &["add", "-A"]);
    git(&origin, &["commit", "-qm", "example state"]);
    let first = git(&origin, &["rev-parse", "HEAD"]);
    // A port nobody listens on yet; the git daemon starts there later.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let source = format!(
        "source:\n  git:\n    url: git://127.0.0.1:{port}/origin\n    ref: {{branch: main}}\n    interval: 1s\n"
    );
    let Some(env) = env_with("", true, Some(&source)).await else {
        return;
    };
    let (stop, stopped) = watch::channel(false);
    let daemon = tokio::spawn(run(env.config(), RunOptions::default(), stopped));

    // Up, not crashed, and saying why nothing happens.
    let t0 = Instant::now();
    let note = loop {
        if let Ok(s) = snapshot::read(&state_dir(&env))
            && let Some(n) = s.notes.iter().find(|n| n.contains("source unreachable"))
        {
            break n.clone();
        }
        assert!(
            !daemon.is_finished(),
            "the daemon ended: {:?}",
            daemon.await
        );
        assert!(t0.elapsed() < Duration::from_secs(30), "no note published");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        note.contains(&port.to_string()) || note.contains("git"),
        "{note}"
    );
    assert!(env.releases("demo2").is_empty());

    // The remote comes up: the first commit is applied.
    let _git = crate::sources::git_daemon_on(served.path(), port);
    let t0 = Instant::now();
    while env.releases("demo2").len() < 2 || env.releases("brussels").len() < 2 {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "not applied after the remote came up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.send(true).unwrap();
    daemon.await.unwrap().unwrap();
    assert_eq!(
        env.store().source_revision().unwrap().as_deref(),
        Some(&*first)
    );
}
