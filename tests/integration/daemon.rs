//! The daemon end to end: a directory source, the real helm, the fake
//! Karmada (real HTTP, production clients unchanged).

use crate::support::repo;
pub use fake_karmada::testing::copy_dir;
use fake_karmada::testing::tool;
use fake_karmada::{FakeKarmada, Inventory, Options};
use serde_json::Value;
use smo::daemon::{RunOptions, RunReport, run};
use smo::spec::config;
use smo::store::Store;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::sync::watch;

pub struct Env {
    pub fake: FakeKarmada,
    pub state: tempfile::TempDir,
    pub data: tempfile::TempDir,
    pub config: PathBuf,
    /// The daemon's HTTP endpoint (a free loopback port) and its bearer
    /// token, unless the test's own configuration has an `http:` block.
    pub http: std::net::SocketAddr,
    pub token: String,
}

/// A free loopback port (bound, read and released: a race with another
/// process is possible but unlikely on a test machine).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The example state in a temporary directory, the fake seeded with the
/// example inventory, and a configuration pointing at both.
pub async fn env(extra_config: &str) -> Option<Env> {
    env_with(extra_config, true, None).await
}

/// [`env`] with the fake's simulated member clusters on or off (off:
/// Deployments never report ready replicas) and another `source:` block
/// (the state directory when `None`).
pub async fn env_with(
    extra_config: &str,
    simulate_members: bool,
    source: Option<&str>,
) -> Option<Env> {
    env_with_helm("SMO_HELM", extra_config, simulate_members, source).await
}

/// [`env_with`] with the helm binary named by another variable
/// (`SMO_HELM3` for helm 3).
pub async fn env_with_helm(
    helm_var: &str,
    extra_config: &str,
    simulate_members: bool,
    source: Option<&str>,
) -> Option<Env> {
    let helm = tool(helm_var)?;
    let example = repo().join("state-example");
    let inventory = Inventory::load(&example.join("inventory.yaml")).unwrap();
    let mut options = Options::default().clusters(inventory.clusters);
    if simulate_members {
        options = options.simulate_members(Duration::from_millis(200));
    }
    let fake = FakeKarmada::start(options).await.unwrap();
    let state = tempfile::tempdir().unwrap();
    copy_dir(&example, state.path());
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("config.yaml");
    let source = source.map_or_else(
        || format!("source:\n  dir: {}\n", state.path().display()),
        str::to_owned,
    );
    let http = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let token = format!("test-token-{}", http.port());
    let token_file = data.path().join("webhook-token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let http_block = if extra_config.lines().any(|l| l.starts_with("http:")) {
        String::new()
    } else {
        format!(
            "http:\n  listen: {http}\n  tokenFile: {}\n",
            token_file.display()
        )
    };
    std::fs::write(
        &config,
        format!(
            "{source}stateDir: {data}\nkarmada:\n  kubeconfig: {kube}\nhelm:\n  binary: {helm}\n  timeout: 60s\n{http_block}{extra_config}",
            data = data.path().join("var").display(),
            kube = fake.kubeconfig_path().display(),
            helm = helm.display(),
        ),
    )
    .unwrap();
    Some(Env {
        fake,
        state,
        data,
        config,
        http,
        token,
    })
}

impl Env {
    pub fn config(&self) -> config::Config {
        config::load(&self.config).unwrap_or_else(|e| panic!("{e}"))
    }

    /// One full pass, in process (`smo run --once`).
    pub async fn once(&self) -> RunReport {
        let (_tx, rx) = watch::channel(false);
        let opts = RunOptions {
            once: true,
            once_deadline: Duration::from_secs(60),
            ..RunOptions::default()
        };
        run(self.config(), opts, rx).await.unwrap()
    }

    /// The daemon running in this process until [`Running::stop`].
    pub fn start(&self, opts: RunOptions) -> Running {
        let (stop, stopped) = watch::channel(false);
        Running {
            stop,
            task: tokio::spawn(run(self.config(), opts, stopped)),
        }
    }

    /// The status snapshot the running daemon publishes.
    pub fn snapshot(&self) -> Option<smo::store::StatusSnapshot> {
        smo::store::snapshot::read(&self.data.path().join("var")).ok()
    }

    pub fn store(&self) -> Store {
        Store::open(self.data.path().join("var/smo.redb")).unwrap()
    }

    pub fn descriptor(&self, rel: &str) -> PathBuf {
        self.state.path().join(rel)
    }

    pub fn edit(&self, rel: &str, from: &str, to: &str) {
        let p = self.descriptor(rel);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains(from), "{from:?} not in {rel}");
        std::fs::write(&p, text.replacen(from, to, 1)).unwrap();
    }

    /// Releases in a namespace: name → (revision, status), from helm's
    /// own storage (Secrets labelled owner=helm), latest revision each.
    pub fn releases(&self, ns: &str) -> BTreeMap<String, (u64, String)> {
        let mut out: BTreeMap<String, (u64, String)> = BTreeMap::new();
        for s in self.fake.list_objects("v1", "Secret", Some(ns)) {
            let l = &s["metadata"]["labels"];
            if l["owner"] != "helm" {
                continue;
            }
            let name = l["name"].as_str().unwrap().to_owned();
            let rev: u64 = l["version"].as_str().unwrap().parse().unwrap();
            let status = l["status"].as_str().unwrap().to_owned();
            if out.get(&name).is_none_or(|(r, _)| *r < rev) {
                out.insert(name, (rev, status));
            }
        }
        out
    }

    /// Requests helm made to its release storage: every helm command
    /// reads it (smo's own reads of it are not counted).
    pub fn helm_requests(&self) -> usize {
        self.fake
            .requests()
            .iter()
            .filter(|r| fake_karmada::testing::is_helm_storage(r))
            .count()
    }

    /// The clusters the PropagationPolicy smo generated for the release
    /// `service` in `ns` names.
    pub fn placed_on(&self, ns: &str, service: &str) -> Option<Vec<String>> {
        let pp = self.object(
            "policy.karmada.io/v1alpha1",
            "PropagationPolicy",
            ns,
            service,
        )?;
        let names = pp["spec"]["placement"]["clusterAffinity"]["clusterNames"].as_array()?;
        Some(
            names
                .iter()
                .filter_map(|n| n.as_str().map(str::to_owned))
                .collect(),
        )
    }

    pub fn object(&self, api_version: &str, kind: &str, ns: &str, name: &str) -> Option<Value> {
        self.fake.get_object(api_version, kind, Some(ns), name)
    }
}

/// A daemon started by [`Env::start`].
pub struct Running {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<RunReport, smo::daemon::DaemonError>>,
}

impl Running {
    /// SIGTERM's path: stop and wait for the report.
    pub async fn stop(self) -> RunReport {
        // The daemon may have ended by itself (its error is reported below).
        let _ = self.stop.send(true);
        tokio::time::timeout(Duration::from_secs(90), self.task)
            .await
            .expect("the daemon stops after shutdown")
            .expect("the daemon task did not panic")
            .expect("the daemon ends without an error")
    }

    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// Polls `f` every 100 ms until it returns `Some`, or panics after `limit`
/// with `what` and the last observation.
pub async fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let t0 = std::time::Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            t0.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn cluster_names(policy: &Value) -> Vec<String> {
    policy["spec"]["placement"]["clusterAffinity"]["clusterNames"]
        .as_array()
        .unwrap_or_else(|| panic!("no clusterNames in {policy}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

const PP: &str = "policy.karmada.io/v1alpha1";
const BRUSSELS: &str = "projects/brussels/image-detection-graph.yaml";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn examples_deploy_end_to_end_and_a_no_op_pass_calls_helm_zero_times() {
    let Some(env) = env("").await else { return };
    let report = env.once().await;
    assert!(report.converged, "{report:?}");

    // brussels: three services, the event-triggered VO not installed.
    let b = env.releases("brussels");
    assert_eq!(
        b.keys().collect::<Vec<_>>(),
        ["image-detection", "noise-reduction"],
        "{b:?}"
    );
    assert!(
        b.values().all(|(rev, st)| *rev == 1 && st == "deployed"),
        "{b:?}"
    );
    let d = env.releases("demo2");
    assert_eq!(
        d.keys().collect::<Vec<_>>(),
        ["ml-inference", "web-frontend"]
    );

    // Policies (from the charts) name the placed clusters.
    let store = env.store();
    let placed = store
        .graph("demo2/gpu-offloading-graph")
        .unwrap()
        .unwrap()
        .placement;
    let web = env
        .object(PP, "PropagationPolicy", "demo2", "web-frontend")
        .unwrap();
    assert_eq!(cluster_names(&web), placed["web-frontend"]);
    assert_eq!(
        placed["web-frontend"].len(),
        2,
        "high availability: {placed:?}"
    );
    let ml = env
        .object(PP, "PropagationPolicy", "demo2", "ml-inference")
        .unwrap();
    assert_eq!(cluster_names(&ml), placed["ml-inference"]);
    // web-frontend calls ml-inference: ml-inference is imported where
    // web-frontend runs.
    let import = env
        .object(PP, "PropagationPolicy", "demo2", "ml-inference-import")
        .unwrap();
    let mut want = placed["web-frontend"].clone();
    want.sort();
    assert_eq!(cluster_names(&import), want);
    let vo = store
        .services_of("brussels", "image-detection-graph")
        .unwrap()
        .into_iter()
        .find(|s| s.service == "image-compression-vo")
        .unwrap();
    assert_eq!(format!("{:?}", vo.phase), "WaitingForTrigger");
    // The pass is in the run history.
    let runs = store.runs(10).unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert!(
        runs[0].graphs_reconciled >= 2 && runs[0].errors == 0,
        "{runs:?}"
    );
    drop(store);

    // A second pass with nothing changed: no helm call at all.
    env.fake.clear_requests();
    let report = env.once().await;
    assert!(report.converged, "{report:?}");
    assert_eq!(env.helm_requests(), 0, "a no-op pass ran helm");
    assert_eq!(env.releases("brussels")["noise-reduction"].0, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_3_installs_upgrades_and_uninstalls_the_examples_too() {
    let Some(env) = env_with_helm("SMO_HELM3", "", true, None).await else {
        return;
    };
    let report = env.once().await;
    assert!(report.converged, "{report:?}");
    assert_eq!(env.releases("brussels").len(), 2);
    assert_eq!(env.releases("demo2").len(), 2);
    grow_image_detection_cpu(&env);
    assert!(env.once().await.converged);
    let b = env.releases("brussels");
    assert_eq!(b["image-detection"], (2, "deployed".to_owned()), "{b:?}");
    assert_eq!(b["noise-reduction"].0, 1, "{b:?}");
    suspend_demo2(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_one_service_upgrades_only_that_release() {
    let Some(env) = env("").await else { return };
    assert!(env.once().await.converged);
    grow_image_detection_cpu(&env);

    let report = env.once().await;
    assert!(report.converged, "{report:?}");
    let b = env.releases("brussels");
    assert_eq!(b["image-detection"], (2, "deployed".to_owned()), "{b:?}");
    assert_eq!(b["noise-reduction"].0, 1, "{b:?}");
    let d = env.releases("demo2");
    assert!(d.values().all(|(rev, _)| *rev == 1), "{d:?}");

    // helm's upgrade re-applied the release's PropagationPolicy, whose
    // selectors share one name: it is left exactly as the chart has it, so
    // the next pass sees no drift and calls no upgrade.
    let policy = env
        .object(
            "policy.karmada.io/v1alpha1",
            "PropagationPolicy",
            "brussels",
            "image-detection",
        )
        .expect("the release's PropagationPolicy");
    let kinds: Vec<&str> = policy["spec"]["resourceSelectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["Deployment", "Service", "ServiceExport"],
        "{policy}"
    );
    let report = env.once().await;
    assert!(report.converged, "{report:?}");
    let b = env.releases("brussels");
    assert_eq!(b["image-detection"].0, 2, "a pass after the upgrade: {b:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_descriptor_uninstalls_and_removing_all_trips_the_prune_guard() {
    let Some(env) = env("").await else { return };
    assert!(env.once().await.converged);

    // All descriptors gone at once: nothing removed, and status says why.
    let brussels = std::fs::read(env.descriptor(BRUSSELS)).unwrap();
    std::fs::remove_file(env.descriptor(BRUSSELS)).unwrap();
    let demo2 = "projects/demo2/gpu-offloading-graph.yaml";
    std::fs::remove_file(env.descriptor(demo2)).unwrap();
    let report = env.once().await;
    assert!(!report.converged, "the prune guard must hold the pass back");
    assert_eq!(env.releases("brussels").len(), 2);
    assert_eq!(env.releases("demo2").len(), 2);
    let snap = smo::store::snapshot::read(&env.data.path().join("var")).unwrap();
    assert!(
        snap.notes.iter().any(|n| n.contains("prune guard")),
        "{:?}",
        snap.notes
    );

    // One of two removed (50%, the default limit): allowed.
    std::fs::write(env.descriptor(BRUSSELS), brussels).unwrap();
    let report = env.once().await;
    assert!(report.converged, "{report:?}");
    assert!(
        env.releases("demo2").is_empty(),
        "{:?}",
        env.releases("demo2")
    );
    assert_eq!(env.releases("brussels").len(), 2);
    let store = env.store();
    assert!(store.graph("demo2/gpu-offloading-graph").unwrap().is_none());
    assert!(
        store
            .services_of("demo2", "gpu-offloading-graph")
            .unwrap()
            .is_empty()
    );
}

/// image-detection (brussels): CPU small → medium.
fn grow_image_detection_cpu(env: &Env) {
    let p = env.descriptor(BRUSSELS);
    let text = std::fs::read_to_string(&p).unwrap();
    let at = text.find("    - id: image-detection").unwrap();
    let (head, tail) = text.split_at(at);
    std::fs::write(
        &p,
        format!("{head}{}", tail.replacen("cpu: small", "cpu: medium", 1)),
    )
    .unwrap();
}

const DEMO2_FILE: &str = "projects/demo2/gpu-offloading-graph.yaml";

/// Sets `suspend: true` on demo2 and checks a pass uninstalls it.
async fn suspend_demo2(env: &Env) {
    env.edit(
        DEMO2_FILE,
        "  id: gpu-offloading-graph\n",
        "  id: gpu-offloading-graph\n  suspend: true\n",
    );
    env.once().await;
    assert!(
        env.releases("demo2").is_empty(),
        "{:?}",
        env.releases("demo2")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspend_uninstalls_and_keeps_the_record_resume_installs_again() {
    let Some(env) = env("").await else { return };
    assert!(env.once().await.converged);
    suspend_demo2(&env).await;
    {
        let store = env.store();
        let g = store.graph("demo2/gpu-offloading-graph").unwrap().unwrap();
        assert!(g.suspended);
        assert!(!g.placement.is_empty(), "placement kept while suspended");
    }
    env.edit(DEMO2_FILE, "  suspend: true\n", "  suspend: false\n");
    assert!(env.once().await.converged);
    let d = env.releases("demo2");
    assert_eq!(d.len(), 2, "{d:?}");
    assert!(d.values().all(|(_, st)| st == "deployed"), "{d:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_corrected_or_only_reported_in_warn_mode() {
    let Some(env) = env("").await else { return };
    assert!(env.once().await.converged);
    let image = |env: &Env| crate::watches::image(env).unwrap();
    let good = image(&env);
    crate::watches::tamper(&env);
    assert!(env.once().await.converged);
    assert_eq!(image(&env), good, "drift corrected");
    assert_eq!(
        env.releases("demo2")["web-frontend"].0,
        2,
        "corrected by an upgrade"
    );

    // warn: reported, not touched.
    env.edit("smo.yaml", "drift: correct", "drift: warn");
    crate::watches::tamper(&env);
    env.once().await;
    assert_eq!(image(&env), Value::String("evil:latest".into()));
    let store = env.store();
    let g = store.graph("demo2/gpu-offloading-graph").unwrap().unwrap();
    assert!(
        g.conditions
            .iter()
            .any(|c| format!("{:?}", c.kind) == "Drifted"
                && c.status
                && c.message.contains("web-frontend")),
        "{:?}",
        g.conditions
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_not_ready_past_the_grace_period_fails_over() {
    let Some(env) = env("").await else { return };
    // A zero grace period: the next pass moves at once.
    env.edit(
        "smo.yaml",
        "failoverGracePeriod: 60s",
        "failoverGracePeriod: 0s",
    );
    assert!(env.once().await.converged);
    let before = env
        .store()
        .graph("brussels/image-detection-graph")
        .unwrap()
        .unwrap()
        .placement;
    let used = before["image-detection"][0].clone();
    assert_eq!(used, "lyon-gpu", "the example places brussels on lyon-gpu");
    env.fake.set_cluster_ready(&used, false).unwrap();
    let report = env.once().await;
    // The GPU service has nowhere else to go: that graph stalls with the
    // reason and keeps running where it was; the other graph moves.
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert!(
        report.failed[0].starts_with("demo2/gpu-offloading-graph")
            && report.failed[0].contains("needs a GPU"),
        "{report:?}"
    );
    assert_eq!(env.releases("demo2").len(), 2);
    let after = env
        .store()
        .graph("brussels/image-detection-graph")
        .unwrap()
        .unwrap()
        .placement;
    assert!(
        after.values().flatten().all(|c| *c != used),
        "still on {used}: {after:?}"
    );
    let pp = env
        .object(PP, "PropagationPolicy", "brussels", "image-detection")
        .unwrap();
    assert_eq!(cluster_names(&pp), after["image-detection"]);
}

/// A child `smo`, killed on drop so that a failing test leaves no daemon
/// behind.
pub struct Smo(pub Child);

impl Drop for Smo {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The real binary, logging to a file (a pipe nobody reads would fill up
/// and block it).
pub fn spawn_smo(env: &Env, args: &[&str], log: &str) -> Smo {
    let log = std::fs::File::create(env.data.path().join(log)).unwrap();
    Command::new(env!("CARGO_BIN_EXE_smo"))
        .args(args)
        .arg("--config")
        .arg(&env.config)
        .env("SMO_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map(Smo)
        .expect("smo starts")
}

pub fn log_of(env: &Env, log: &str) -> String {
    std::fs::read_to_string(env.data.path().join(log)).unwrap_or_default()
}

/// A local chart whose `files/creds` links to a file outside the state
/// root: the graph is refused, and helm never sees it.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chart_linking_outside_the_state_root_is_never_installed() {
    let Some(env) = env("").await else { return };
    let secret = env.data.path().join("secret.txt");
    std::fs::write(&secret, "hunter2-do-not-leak\n").unwrap();
    let chart = env.descriptor("projects/brussels/charts/noise-reduction");
    std::fs::create_dir_all(chart.join("files")).unwrap();
    std::os::unix::fs::symlink(&secret, chart.join("files/creds")).unwrap();
    std::fs::write(
        chart.join("templates/creds.yaml"),
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\ndata:\n  creds: {{ .Files.Get \"files/creds\" | b64enc }}\n",
    )
    .unwrap();

    env.once().await;
    // The other project was deployed: the pass had its chance.
    assert_eq!(env.releases("demo2").len(), 2);
    assert!(env.releases("brussels").is_empty());
    let touched: Vec<_> = env
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/namespaces/brussels/secrets"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(touched.is_empty(), "helm ran for brussels: {touched:?}");
    assert!(
        env.fake
            .list_objects("v1", "Secret", Some("brussels"))
            .is_empty()
    );
}

const LEAK: &str = "hunter2-do-not-leak";

/// A chart with a Secret: its value reaches the cluster, and none of
/// status.json, `smo status` (text and JSON) or the daemon's log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_values_of_a_chart_stay_out_of_status_and_logs() {
    let Some(env) = env("").await else { return };
    std::fs::write(
        env.descriptor("projects/brussels/charts/noise-reduction/templates/secret.yaml"),
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {{{{ .Release.Name }}}}-creds\ntype: Opaque\nstringData:\n  password: {LEAK}\n"
        ),
    )
    .unwrap();
    let mut once = spawn_smo(&env, &["run", "--once"], "once.log");
    let exit = wait_for(Duration::from_secs(240), "smo run --once to end", || {
        once.0.try_wait().unwrap()
    })
    .await;
    let log = log_of(&env, "once.log");
    assert_eq!(exit.code(), Some(0), "log:\n{log}");
    // Deployed: the Secret carries the value (the API server keeps it as
    // base64 data, or as the stringData helm sent).
    let secret = env
        .object("v1", "Secret", "brussels", "noise-reduction-creds")
        .expect("the chart's Secret is applied");
    let encoded = "aHVudGVyMi1kby1ub3QtbGVhaw"; // base64 of LEAK, unpadded
    assert!(
        secret["stringData"]["password"] == LEAK
            || secret["data"]["password"] == format!("{encoded}=="),
        "{secret:#}"
    );

    let snapshot = std::fs::read_to_string(env.data.path().join("var/status.json")).unwrap();
    let status = |format: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_smo"))
            .args(["status", "--format", format, "--config"])
            .arg(&env.config)
            .output()
            .unwrap();
        assert!(matches!(out.status.code(), Some(0 | 1)), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let (text, json) = (status("text"), status("json"));
    for (what, output) in [
        ("status.json", &snapshot),
        ("smo status", &text),
        ("smo status --format json", &json),
        ("the log", &log),
    ] {
        assert!(!output.contains(LEAK), "{what} leaks the Secret:\n{output}");
        assert!(
            !output.contains(encoded),
            "{what} leaks the Secret:\n{output}"
        );
    }
    // What status shows instead: the Secret by name, with a digest.
    let json: Value = serde_json::from_str(&json).unwrap();
    let objects = json["releaseObjects"]
        .as_array()
        .unwrap_or_else(|| panic!("no releaseObjects in {json:#}"));
    let creds = objects
        .iter()
        .filter(|r| r["service"] == "noise-reduction")
        .flat_map(|r| r["objects"].as_array().unwrap())
        .find(|o| o["kind"] == "Secret" && o["name"] == "noise-reduction-creds")
        .unwrap_or_else(|| panic!("no Secret summary in {objects:#?}"));
    assert!(creds["digest"].as_str().unwrap().starts_with("sha256:"));
}
