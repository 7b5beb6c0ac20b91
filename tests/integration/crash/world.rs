//! The crash suite's environment, the daemon's life (convergence, stop)
//! and the check of the live state against the model.

use super::model::Model;
use super::{CONVERGE, INVENTORY, PP, PROJECTS, WORKERS};
use crate::daemon::{Env, Smo, copy_dir, free_port, log_of};
use crate::grafana::{FakeGrafana, TOKEN};
use crate::nfvcl::daemon::cluster_file;
use crate::nfvcl::{FakeNfvcl, PASSWORD};
use crate::support::repo;
use fake_karmada::testing::tool;
use fake_karmada::{FakeKarmada, Inventory, Options};
use smo::dashboards;
use smo::store::records::ProvisionStatus;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// NFVCL and Grafana, which outlive every kill of the daemon.
pub(super) struct Outside {
    pub(super) nfvcl: FakeNfvcl,
    pub(super) grafana: FakeGrafana,
    /// The member clusters, which get a dashboard each.
    pub(super) clusters: Vec<String>,
}

/// The creation's answer comes this late (within the client's timeout):
/// a kill between NFVCL's creation and smo's record of it becomes likely.
const SLOW_CREATION: Duration = Duration::from_secs(2);

/// The state directory, the daemon's configuration, the fake Karmada, and
/// NFVCL (asked for one cluster by `clusters/edge-3.yaml`) and Grafana.
pub(super) async fn crash_env() -> Option<(Env, Outside)> {
    let helm = tool("SMO_HELM")?;
    let inventory = Inventory::parse(INVENTORY).unwrap();
    let clusters = inventory.clusters.iter().map(|c| c.name.clone()).collect();
    let fake = FakeKarmada::start(
        Options::default()
            .clusters(inventory.clusters)
            .simulate_members(Duration::from_millis(200)),
    )
    .await
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    std::fs::write(
        state.path().join("smo.yaml"),
        "prune:\n  maxDeletePercent: 50\npropagationPolicy:\n  generate: true\n",
    )
    .unwrap();
    let chart = repo().join("state-example/projects/demo2/charts/service");
    for p in PROJECTS {
        let charts = state.path().join("projects").join(p).join("charts");
        copy_dir(&chart, &charts.join("service"));
        copy_dir(&chart, &charts.join("plain"));
        std::fs::remove_file(charts.join("plain/templates/multicluster.yaml")).unwrap();
    }
    let data = tempfile::tempdir().unwrap();
    let nfvcl = FakeNfvcl::start(1);
    nfvcl.lose_next_answer("/nfvcl/v2/api/blue/k8s", SLOW_CREATION);
    let password_file = data.path().join("vim-password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    std::fs::create_dir_all(state.path().join("clusters")).unwrap();
    std::fs::write(
        state.path().join("clusters/edge-3.yaml"),
        cluster_file(&password_file, WORKERS),
    )
    .unwrap();
    let grafana = FakeGrafana::start();
    let grafana_token = data.path().join("grafana-token");
    std::fs::write(&grafana_token, format!("{TOKEN}\n")).unwrap();
    let config = data.path().join("config.yaml");
    let http = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let token = format!("crash-token-{}", http.port());
    let token_file = data.path().join("webhook-token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    std::fs::write(
        &config,
        format!(
            "source:\n  dir: {state}\nstateDir: {var}\nkarmada:\n  kubeconfig: {kube}\nhelm:\n  binary: {helm}\n  timeout: 60s\nhttp:\n  listen: {http}\n  tokenFile: {token_file}\nintervals:\n  resync: 10s\nnfvcl:\n  url: {nfvcl}\n  timeout: 5s\ngrafana:\n  url: {grafana}\n  tokenFile: {grafana_token}\n",
            state = state.path().display(),
            var = data.path().join("var").display(),
            kube = fake.kubeconfig_path().display(),
            helm = helm.display(),
            token_file = token_file.display(),
            nfvcl = nfvcl.url,
            grafana = grafana.url,
            grafana_token = grafana_token.display(),
        ),
    )
    .unwrap();
    Some((
        Env {
            fake,
            state,
            data,
            config,
            http,
            token,
        },
        Outside {
            nfvcl,
            grafana,
            clusters,
        },
    ))
}

/// The intents a killed daemon left in the store. The killed process is
/// reaped before this runs; should the store's lock still be held (a child
/// of the daemon between fork and exec shares it), the open is retried for
/// a while and the wait is printed, so a run shows whether it happens.
pub(super) fn intents_left(env: &Env) -> usize {
    let path = smo::store::Store::path_in(&env.data.path().join("var"));
    if !path.exists() {
        // Killed before it made its store: nothing was ever recorded.
        return 0;
    }
    let started = std::time::Instant::now();
    loop {
        match smo::store::Store::open(&path) {
            Ok(store) => {
                if started.elapsed() > Duration::from_millis(100) {
                    println!(
                        "crash: the store's lock was held {:?} after the kill",
                        started.elapsed()
                    );
                }
                return store.intents().unwrap().len();
            }
            Err(e) if e.is_locked() && started.elapsed() < Duration::from_secs(30) => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("the store cannot be opened after the kill: {e}: {e:?}"),
        }
    }
}

pub(super) fn tail(env: &Env, log: &str) -> String {
    let text = log_of(env, log);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Waits until the status the daemon publishes (the test removes it
/// before each start) shows the model's state reached: every graph
/// applied at the current revision and Ready, services in the wanted
/// phase. Returns how long it took.
pub(super) async fn converged(
    env: &Env,
    outside: &Outside,
    model: &Model,
    smo: &mut Smo,
    log: &str,
) -> Duration {
    let t0 = Instant::now();
    let mut last = String::from("no status snapshot yet");
    loop {
        if let Some(exit) = smo.0.try_wait().unwrap() {
            panic!(
                "smo exited ({exit}) while converging; log:\n{}",
                tail(env, log)
            );
        }
        if let Some(s) = env.snapshot() {
            // Cluster dashboards are published beside the reconciles.
            let missing = dashboards(outside, model).1;
            match model.mismatch(&s) {
                Some(m) => last = m,
                None if !missing.is_empty() => last = format!("dashboards missing: {missing:?}"),
                None => return t0.elapsed(),
            }
        }
        assert!(
            t0.elapsed() < CONVERGE,
            "not converged after {CONVERGE:?}: {last}; log:\n{}",
            tail(env, log)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// SIGTERM, then the exit.
pub(super) async fn stop(env: &Env, mut smo: Smo, log: &str) {
    let pid = smo.0.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    let t0 = Instant::now();
    let exit = loop {
        if let Some(exit) = smo.0.try_wait().unwrap() {
            break exit;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "smo did not stop after SIGTERM; log:\n{}",
            tail(env, log)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(exit.code(), Some(0), "log:\n{}", tail(env, log));
}

/// What is on the (fake) Karmada against the model; empty when exact.
/// Grafana's dashboards against the model: (orphans, missing).
fn dashboards(outside: &Outside, model: &Model) -> (Vec<String>, Vec<String>) {
    let mut want = model.dashboards();
    want.extend(outside.clusters.iter().map(|c| dashboards::cluster_uid(c)));
    let have: BTreeSet<String> = outside.grafana.dashboards().into_keys().collect();
    (
        have.difference(&want).cloned().collect(),
        want.difference(&have).cloned().collect(),
    )
}

/// NFVCL's blueprints and smo's record of them: one creation asked, one
/// blueprint, recorded Ready.
fn provisioning(env: &Env, outside: &Outside) -> Vec<String> {
    let mut out = Vec::new();
    let (creations, blueprints) = (outside.nfvcl.creations(), outside.nfvcl.blueprints());
    if creations != 1 || blueprints.len() != 1 {
        out.push(format!(
            "NFVCL was asked for {creations} creation(s) and has {blueprints:?}"
        ));
    }
    let records = env.store().provisions().unwrap();
    match records.as_slice() {
        [r] if r.status == ProvisionStatus::Ready
            && r.workers == WORKERS
            && r.blueprint_id
                .as_ref()
                .is_some_and(|id| blueprints.get(id) == Some(&WORKERS)) => {}
        other => out.push(format!(
            "provision records: {other:?}, blueprints {blueprints:?}"
        )),
    }
    out
}

pub(super) fn problems(env: &Env, outside: &Outside, model: &Model) -> Vec<String> {
    let mut out = provisioning(env, outside);
    // helm's values files live in stateDir/tmp; a kill mid-call leaves one
    // there, which the next start removes.
    match std::fs::read_dir(env.data.path().join("var/tmp")) {
        Ok(left) => {
            let left: Vec<_> = left.map(|e| e.unwrap().file_name()).collect();
            if !left.is_empty() {
                out.push(format!("values files left after a clean stop: {left:?}"));
            }
        }
        Err(e) => out.push(format!("no scratch directory stateDir/tmp: {e}")),
    }
    let (orphans, missing) = dashboards(outside, model);
    if !orphans.is_empty() || !missing.is_empty() {
        out.push(format!(
            "Grafana: orphaned dashboards {orphans:?}, missing {missing:?}"
        ));
    }
    for ns in PROJECTS {
        let want = model.releases(ns);
        let have = env.releases(ns);
        for (name, (rev, status)) in &have {
            if !want.contains_key(name) {
                out.push(format!(
                    "{ns}: orphaned release {name} (rev {rev}, {status})"
                ));
            } else if status != "deployed" {
                out.push(format!("{ns}: release {name} rev {rev} is {status}"));
            }
        }
        for name in want.keys().filter(|n| !have.contains_key(*n)) {
            out.push(format!("{ns}: release {name} missing"));
        }
        let generated: BTreeSet<String> = env
            .fake
            .list_objects(PP, "PropagationPolicy", Some(ns))
            .into_iter()
            .filter(|o| o["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "smo")
            .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_owned))
            .collect();
        for name in &generated {
            match want.get(name) {
                _ if !have.contains_key(name) => {
                    out.push(format!("{ns}: generated policy {name} without its release"));
                }
                Some(false) => out.push(format!(
                    "{ns}: generated policy {name} for a chart that has its own"
                )),
                _ => {}
            }
        }
        for (name, plain) in &want {
            if *plain && have.contains_key(name) && !generated.contains(name) {
                out.push(format!("{ns}: release {name} has no generated policy"));
            }
        }
        for d in env.fake.list_objects("apps/v1", "Deployment", Some(ns)) {
            let name = d["metadata"]["name"].as_str().unwrap_or_default();
            if !have.contains_key(name) {
                out.push(format!("{ns}: Deployment {name} outlives its release"));
            }
        }
    }
    for (p, g, s) in &model.fired {
        let graph_present = model.graphs.contains_key(&format!("{p}/{g}"));
        if graph_present && !env.releases(p).contains_key(s) {
            out.push(format!(
                "alert for {p}/{g}/{s} answered 200 but not in effect"
            ));
        }
    }
    let intents = env.store().intents().unwrap();
    if !intents.is_empty() {
        out.push(format!("intents left after a clean stop: {intents:?}"));
    }
    out
}
