//! Crash injection ("Safe by default"): the real binary, in `smo run`
//! mode, is killed with SIGKILL at a seeded random moment while it
//! converges a state of 20+ graphs and one cluster provisioned through
//! NFVCL, with dashboards in Grafana — from scratch, after a descriptor
//! edit, after a removal of several descriptors, after new descriptors
//! appear — and while a burst of webhook alerts arrives. After every kill
//! a restarted daemon must converge to exactly the desired state: no
//! orphaned or missing release, no generated PropagationPolicy without its
//! release (nor a release without the policy its chart lacks), no release
//! left pending, no intent left behind, every alert answered 200 in
//! effect, NFVCL asked for the cluster once (one blueprint, recorded), and
//! Grafana holding exactly the wanted dashboards.
//!
//! `SMO_CRASH_SEED` replays a run's random choices (the kill moments are
//! printed with it); `SMO_CRASH_KILLS` sets the number of kills (10 by
//! default, 200 for the long form); `SMO_CRASH_KEEP` keeps the state, the
//! store and the daemon's logs.

mod alerts;
mod model;
mod world;

use crate::daemon::spawn_smo;
use crate::webhook::wait_healthy;
use alerts::{deliver, post};
use model::{Model, Rng, Target, env_u64};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use world::{converged, crash_env, intents_left, problems, stop};

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

/// The cluster provisioned through NFVCL (`crate::nfvcl::daemon::cluster_file`)
/// and its workers.
const PROVISIONED: &str = "edge-3";
const WORKERS: u32 = 2;

/// Member clusters large enough that placement never becomes the subject.
const INVENTORY: &str = "clusters:
  - {name: edge-a, ready: true, cpu: {allocatable: \"64\", allocated: \"0\"}, memory: {allocatable: 256Gi, allocated: 0Gi}}
  - {name: core-b, ready: true, cpu: {allocatable: \"64\", allocated: \"0\"}, memory: {allocatable: 256Gi, allocated: 0Gi}}
  - {name: core-c, ready: true, cpu: {allocatable: \"64\", allocated: \"0\"}, memory: {allocatable: 256Gi, allocated: 0Gi}}
";

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
    let Some((mut env, outside)) = crash_env().await else {
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
            converged(&env, &outside, &model, &mut smo, &log).await;
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
            "crash: kill {kill} ({phase:?}: {what}) after {delay} ms, {intents} intent(s) left, {} NFVCL creation(s) asked",
            outside.nfvcl.creations()
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
        let took = converged(&env, &outside, &model, &mut smo, &log).await;
        stop(&env, smo, &log).await;
        println!("crash: kill {kill}: recovered in {took:?}");
        let found = problems(&env, &outside, &model);
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
