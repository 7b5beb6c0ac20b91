//! Crash injection ("Safe by default"): the real binary, in `smo run`
//! mode, is killed with SIGKILL at a seeded random moment while it
//! converges a state of 20+ graphs — from scratch, after a descriptor
//! edit, after a removal of several descriptors, after new descriptors
//! appear — and while a burst of webhook alerts arrives. After every kill
//! a restarted daemon must converge to exactly the desired state: no
//! orphaned or missing release, no generated PropagationPolicy without its
//! release (nor a release without the policy its chart lacks), no release
//! left pending, no intent left behind, and every alert answered 200 in
//! effect.
//!
//! `SMO_CRASH_SEED` replays a run's random choices (the kill moments are
//! printed with it); `SMO_CRASH_KILLS` sets the number of kills (10 by
//! default, 200 for the long form); `SMO_CRASH_KEEP` keeps the state, the
//! store and the daemon's logs.

use crate::daemon::{Env, Smo, copy_dir, free_port, log_of, spawn_smo};
use crate::support::{graph, repo};
use crate::webhook::{exchange, raw, wait_healthy};
use fake_karmada::testing::tool;
use fake_karmada::{FakeKarmada, Inventory, Options};
use serde_json::{Value, json};
use smo::store::records::{ConditionKind, ServicePhase};
use smo::store::snapshot::StatusSnapshot;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PROJECTS: [&str; 3] = ["alpha", "beta", "gamma"];
const PP: &str = "policy.karmada.io/v1alpha1";
const EVENT: &str = "load-high";
/// A chart with its own PropagationPolicy (the example's), and the same
/// chart without it: smo generates one (an owned object).
const CHART: &str = "charts/service";
const PLAIN: &str = "charts/plain";
const GRAPHS: usize = 21;
/// Generous: a restarted daemon may have a whole state to converge.
const CONVERGE: Duration = Duration::from_secs(240);

/// Member clusters large enough that placement never becomes the subject.
const INVENTORY: &str = "clusters:
  - {name: edge-a, ready: true, cpu: {allocatable: \"64\", allocated: \"0\"}, memory: {allocatable: 256Gi, allocated: 0Gi}}
  - {name: core-b, ready: true, cpu: {allocatable: \"64\", allocated: \"0\"}, memory: {allocatable: 256Gi, allocated: 0Gi}}
  - {name: core-c, ready: true, cpu: {allocatable: \"64\", allocated: \"0\"}, memory: {allocatable: 256Gi, allocated: 0Gi}}
";

// ---------------------------------------------------------------------
// A seeded PRNG (xorshift64*)

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// `k` distinct elements of `items`, in random order.
    fn pick<T: Clone>(&mut self, items: &[T], k: usize) -> Vec<T> {
        let mut v = items.to_vec();
        for i in (1..v.len()).rev() {
            v.swap(i, usize::try_from(self.below(i as u64 + 1)).unwrap());
        }
        v.truncate(k);
        v
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.parse()
            .unwrap_or_else(|e| panic!("{name}={v:?} is not a number: {e}")),
    )
}

// ---------------------------------------------------------------------
// The desired state, as the test knows it

#[derive(Debug, Clone)]
struct Svc {
    id: String,
    chart: &'static str,
    deps: Vec<String>,
    event: bool,
}

#[derive(Debug, Clone)]
struct Graph {
    project: &'static str,
    id: String,
    cpu: &'static str,
    services: Vec<Svc>,
}

impl Graph {
    /// Graph number `n`: a service `a` in every graph, `b` depending on it
    /// in every other one, an event-triggered `ev` in every third; charts
    /// with and without their own policy mixed.
    fn new(n: usize) -> Graph {
        let id = format!("g{n:03}");
        let svc = |name: &str, chart, deps: &[&str], event| Svc {
            id: format!("{id}-{name}"),
            chart,
            deps: deps.iter().map(|d| format!("{id}-{d}")).collect(),
            event,
        };
        let mut services = vec![svc(
            "a",
            if n.is_multiple_of(4) { PLAIN } else { CHART },
            &[],
            false,
        )];
        if n % 2 == 1 {
            services.push(svc(
                "b",
                if n.is_multiple_of(3) { PLAIN } else { CHART },
                &["a"],
                false,
            ));
        }
        if n.is_multiple_of(3) {
            services.push(svc(
                "ev",
                if n.is_multiple_of(2) { CHART } else { PLAIN },
                &[],
                true,
            ));
        }
        Graph {
            project: PROJECTS[(n + n / 3) % PROJECTS.len()],
            id,
            cpu: "light",
            services,
        }
    }

    fn key(&self) -> String {
        format!("{}/{}", self.project, self.id)
    }

    fn file(&self) -> String {
        format!("projects/{}/{}.yaml", self.project, self.id)
    }

    fn yaml(&self) -> String {
        let mut b = graph(&self.id);
        for s in &self.services {
            b = b.service(&s.id).cpu(self.cpu).chart(s.chart);
            for d in &s.deps {
                b = b.depends_on(d);
            }
            if s.event {
                b = b.event(EVENT);
            }
        }
        b.yaml()
    }
}

/// An event-triggered service: (project, graph, service).
type Target = (String, String, String);

#[derive(Debug, Default)]
struct Model {
    graphs: BTreeMap<String, Graph>,
    /// Alerts answered 200.
    fired: BTreeSet<Target>,
    next: usize,
}

impl Model {
    fn add(&mut self, env: &Env) -> Graph {
        let g = Graph::new(self.next);
        self.next += 1;
        std::fs::write(env.descriptor(&g.file()), g.yaml()).unwrap();
        self.graphs.insert(g.key(), g.clone());
        g
    }

    fn wanted(&self, g: &Graph, s: &Svc) -> bool {
        !s.event
            || self
                .fired
                .contains(&(g.project.into(), g.id.clone(), s.id.clone()))
    }

    /// Releases wanted in `ns`: name → whether the chart lacks a policy.
    fn releases(&self, ns: &str) -> BTreeMap<String, bool> {
        self.graphs
            .values()
            .filter(|g| g.project == ns)
            .flat_map(|g| {
                g.services
                    .iter()
                    .filter(|s| self.wanted(g, s))
                    .map(|s| (s.id.clone(), s.chart == PLAIN))
            })
            .collect()
    }

    fn targets(&self) -> Vec<Target> {
        self.graphs
            .values()
            .flat_map(|g| {
                g.services
                    .iter()
                    .filter(|s| s.event)
                    .map(|s| (g.project.to_owned(), g.id.clone(), s.id.clone()))
            })
            .collect()
    }

    /// Does the daemon's own status say it reached this state?
    fn mismatch(&self, s: &StatusSnapshot) -> Option<String> {
        let graphs: BTreeSet<String> = s
            .graphs
            .iter()
            .map(|g| format!("{}/{}", g.project, g.graph))
            .collect();
        let want: BTreeSet<String> = self.graphs.keys().cloned().collect();
        if graphs != want {
            return Some(format!(
                "graphs: extra {:?}, missing {:?}",
                graphs.difference(&want).collect::<Vec<_>>(),
                want.difference(&graphs).collect::<Vec<_>>()
            ));
        }
        // Every graph reconciled to the end at the state's current revision
        // (a start reconciles every graph; a pass is only recorded once the
        // queue is idle, which a resync shorter than a pass under load
        // never lets happen).
        let Some(revision) = &s.source_revision else {
            return Some("no source revision yet".into());
        };
        for g in &s.graphs {
            if g.last_applied_revision.as_ref() != Some(revision) {
                return Some(format!(
                    "{}/{} last applied {:?}, the state is {revision}",
                    g.project, g.graph, g.last_applied_revision
                ));
            }
            let ready = g
                .conditions
                .iter()
                .any(|c| c.kind == ConditionKind::Ready && c.status);
            if !ready {
                return Some(format!(
                    "{}/{} not Ready: {:?}",
                    g.project, g.graph, g.conditions
                ));
            }
        }
        let mut services: BTreeMap<String, ServicePhase> = s
            .services
            .iter()
            .map(|r| (format!("{}/{}/{}", r.project, r.graph, r.service), r.phase))
            .collect();
        for g in self.graphs.values() {
            for svc in &g.services {
                let key = format!("{}/{}", g.key(), svc.id);
                let want = if self.wanted(g, svc) {
                    ServicePhase::Deployed
                } else {
                    ServicePhase::WaitingForTrigger
                };
                match services.remove(&key) {
                    Some(p) if p == want => {}
                    other => return Some(format!("{key}: {other:?}, want {want:?}")),
                }
            }
        }
        (!services.is_empty()).then(|| format!("services not desired: {services:?}"))
    }
}

// ---------------------------------------------------------------------
// The environment and the daemon

async fn crash_env() -> Option<Env> {
    let helm = tool("SMO_HELM")?;
    let inventory = Inventory::parse(INVENTORY).unwrap();
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
    let config = data.path().join("config.yaml");
    let http = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let token = format!("crash-token-{}", http.port());
    let token_file = data.path().join("webhook-token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    std::fs::write(
        &config,
        format!(
            "source:\n  dir: {state}\nstateDir: {var}\nkarmada:\n  kubeconfig: {kube}\nhelm:\n  binary: {helm}\n  timeout: 60s\nhttp:\n  listen: {http}\n  tokenFile: {token_file}\nintervals:\n  resync: 10s\n",
            state = state.path().display(),
            var = data.path().join("var").display(),
            kube = fake.kubeconfig_path().display(),
            helm = helm.display(),
            token_file = token_file.display(),
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

/// The intents a killed daemon left in the store. The killed process is
/// reaped before this runs; should the store's lock still be held (a child
/// of the daemon between fork and exec shares it), the open is retried for
/// a while and the wait is printed, so a run shows whether it happens.
fn intents_left(env: &Env) -> usize {
    let path = smo::store::Store::path_in(&env.data.path().join("var"));
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
            Err(e) => panic!("the store cannot be opened after the kill: {e}"),
        }
    }
}

fn tail(env: &Env, log: &str) -> String {
    let text = log_of(env, log);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Waits until the status the daemon publishes (the test removes it
/// before each start) shows the model's state reached: every graph
/// applied at the current revision and Ready, services in the wanted
/// phase. Returns how long it took.
async fn converged(env: &Env, model: &Model, smo: &mut Smo, log: &str) -> Duration {
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
            match model.mismatch(&s) {
                Some(m) => last = m,
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
async fn stop(env: &Env, mut smo: Smo, log: &str) {
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
fn problems(env: &Env, model: &Model) -> Vec<String> {
    let mut out = Vec::new();
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

// ---------------------------------------------------------------------
// Alerts

fn alert_payload(t: &Target) -> Vec<u8> {
    let (p, g, s) = t;
    // A stable fingerprint per target (FNV-1a).
    let fp = format!("{p}/{g}/{s}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
    let body = json!({
        "receiver": "smo",
        "status": "firing",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": EVENT, "smo_project": p, "smo_graph": g, "smo_service": s, "smo_event": EVENT},
            "annotations": {},
            "startsAt": "2024-05-02T10:15:00.000Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": format!("{fp:016x}"),
        }],
        "groupLabels": {"alertname": EVENT},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": "{}:{alertname=\"load-high\"}",
        "truncatedAlerts": 0,
    });
    serde_json::to_vec(&body).unwrap()
}

/// One delivery: the answer's status and body, or why there was none.
async fn post(env: &Env, t: &Target) -> Result<(u16, String), String> {
    let auth = format!("Bearer {}", env.token);
    exchange(
        env.http,
        raw(
            "POST",
            "/alerts",
            &[("Authorization", &auth)],
            &alert_payload(t),
        ),
    )
    .await
    .map(|a| (a.status, a.body))
}

/// Alertmanager's retry after the restart: until a 200.
async fn deliver(env: &Env, t: &Target) -> Value {
    let t0 = Instant::now();
    loop {
        match post(env, t).await {
            Ok((200, body)) => return serde_json::from_str(&body).unwrap_or(Value::Null),
            other => assert!(
                t0.elapsed() < Duration::from_secs(90),
                "{t:?} still not accepted: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

// ---------------------------------------------------------------------
// The suite

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Initial,
    Edit,
    Remove,
    Burst,
    Add,
}

impl Phase {
    fn of(kill: usize) -> Phase {
        const CYCLE: [Phase; 4] = [Phase::Edit, Phase::Remove, Phase::Burst, Phase::Add];
        if kill == 0 {
            Phase::Initial
        } else {
            CYCLE[(kill - 1) % CYCLE.len()]
        }
    }

    /// The kill moment is drawn in `[0, window)` ms after the change.
    fn window_ms(self) -> u64 {
        match self {
            Phase::Initial => 15_000,
            Phase::Edit | Phase::Remove | Phase::Add => 5_000,
            Phase::Burst => 3_000,
        }
    }
}

/// Per delivery of a burst: the target and its answer (`None`: attempted,
/// no answer).
type Posted = Arc<Mutex<Vec<(Target, Option<u16>)>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_never_orphans_loses_or_leaves_anything_pending() {
    let Some(mut env) = crash_env().await else {
        return;
    };
    if std::env::var_os("SMO_CRASH_KEEP").is_some() {
        env.state.disable_cleanup(true);
        env.data.disable_cleanup(true);
        println!(
            "crash: keeping the state {} and the daemon's data and logs {}",
            env.state.path().display(),
            env.data.path().display()
        );
    }
    let env = Arc::new(env);
    let seed = env_u64("SMO_CRASH_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    });
    let kills = usize::try_from(env_u64("SMO_CRASH_KILLS").unwrap_or(10)).unwrap();
    println!("crash: seed {seed} (SMO_CRASH_SEED={seed} replays the choices), {kills} kills");
    let mut rng = Rng::new(seed);
    let mut model = Model::default();
    for p in PROJECTS {
        std::fs::create_dir_all(env.descriptor(&format!("projects/{p}"))).unwrap();
    }
    for _ in 0..GRAPHS {
        model.add(&env);
    }
    let started = Instant::now();
    let mut survived = 0;
    for kill in 0..kills {
        let phase = Phase::of(kill);
        let log = format!("smo-{kill}.log");
        let _ = std::fs::remove_file(env.data.path().join("var/status.json"));
        let mut smo = spawn_smo(&env, &["run"], &log);
        if phase != Phase::Initial {
            // Settled on the previous state first: the change below is
            // what it is converging when killed.
            converged(&env, &model, &mut smo, &log).await;
        }
        let delay = rng.below(phase.window_ms());
        let mut burst = None;
        let what = match phase {
            Phase::Initial => format!("{} graphs from scratch", model.graphs.len()),
            Phase::Edit => {
                let keys: Vec<String> = model.graphs.keys().cloned().collect();
                let picked = rng.pick(&keys, 4);
                for k in &picked {
                    let g = model.graphs.get_mut(k).unwrap();
                    g.cpu = if g.cpu == "light" { "small" } else { "light" };
                    std::fs::write(env.descriptor(&g.file()), g.yaml()).unwrap();
                }
                format!("cpu class of {picked:?}")
            }
            Phase::Remove => {
                let keys: Vec<String> = model.graphs.keys().cloned().collect();
                let picked = rng.pick(&keys, 3);
                for k in &picked {
                    let g = model.graphs.remove(k).unwrap();
                    std::fs::remove_file(env.descriptor(&g.file())).unwrap();
                    model
                        .fired
                        .retain(|(p, gid, _)| !(p == g.project && *gid == g.id));
                }
                format!("removed {picked:?}")
            }
            Phase::Add => {
                let added: Vec<String> = (0..3).map(|_| model.add(&env).key()).collect();
                format!("added {added:?}")
            }
            Phase::Burst => {
                let targets = model.targets();
                let fresh: Vec<Target> = targets
                    .iter()
                    .filter(|t| !model.fired.contains(*t))
                    .cloned()
                    .collect();
                let mut list = rng.pick(&fresh, 4);
                // Alertmanager repeats: a duplicate of one of them, and of
                // one that fired before.
                list.extend(rng.pick(&list.clone(), 1));
                list.extend(rng.pick(&model.fired.iter().cloned().collect::<Vec<_>>(), 1));
                let posted: Posted = Arc::default();
                let killed = Arc::new(AtomicBool::new(false));
                let task = {
                    let (env, posted, killed, list) = (
                        Arc::clone(&env),
                        Arc::clone(&posted),
                        Arc::clone(&killed),
                        list.clone(),
                    );
                    tokio::spawn(async move {
                        for t in list {
                            if killed.load(Ordering::SeqCst) {
                                return;
                            }
                            let i = {
                                let mut p = posted.lock().unwrap();
                                p.push((t.clone(), None));
                                p.len() - 1
                            };
                            if let Ok((status, _)) = post(&env, &t).await {
                                posted.lock().unwrap()[i].1 = Some(status);
                            }
                            tokio::time::sleep(Duration::from_millis(150)).await;
                        }
                    })
                };
                burst = Some((posted, killed, task));
                format!("alerts for {list:?}")
            }
        };
        tokio::time::sleep(Duration::from_millis(delay)).await;
        smo.0.kill().unwrap();
        smo.0.wait().unwrap();
        let mut unanswered = Vec::new();
        if let Some((posted, killed, task)) = burst {
            killed.store(true, Ordering::SeqCst);
            task.await.unwrap();
            for (t, status) in posted.lock().unwrap().iter() {
                match status {
                    Some(200) => {
                        model.fired.insert(t.clone());
                    }
                    _ => unanswered.push(t.clone()),
                }
            }
        }
        let intents = intents_left(&env);
        println!(
            "crash: kill {kill} ({phase:?}: {what}) after {delay} ms, {intents} intent(s) left"
        );

        // Recovery.
        let _ = std::fs::remove_file(env.data.path().join("var/status.json"));
        let log = format!("smo-{kill}-recovery.log");
        let mut smo = spawn_smo(&env, &["run"], &log);
        if !unanswered.is_empty() {
            wait_healthy(env.http).await;
            for t in unanswered {
                let answer = deliver(&env, &t).await;
                println!("crash: {t:?} re-delivered: {answer}");
                model.fired.insert(t);
            }
        }
        let took = converged(&env, &model, &mut smo, &log).await;
        stop(&env, smo, &log).await;
        println!("crash: kill {kill}: recovered in {took:?}");
        let found = problems(&env, &model);
        if !found.is_empty() {
            println!("crash: {survived} kills survived / {} runs", kill + 1);
            panic!(
                "seed {seed}, kill {kill} ({phase:?}: {what}) after {delay} ms:\n  {}",
                found.join("\n  ")
            );
        }
        survived += 1;
    }
    println!(
        "crash: {survived} kills survived / {kills} runs ({} graphs at the end, {:?})",
        model.graphs.len(),
        started.elapsed()
    );
}
