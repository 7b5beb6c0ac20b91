//! The daemon's watch caches end to end: what changes on Karmada is acted
//! on when it happens, not at the next resync or inventory relist (both
//! set to an hour here, so only a watch can explain a reaction), and a
//! broken watch (dropped connection, 410 Gone after compaction) misses
//! nothing. And what changes in the desired state is acted on only where
//! it can matter.

use crate::daemon::{Env, env, wait_for};
use serde_json::Value;
use smo::daemon::RunOptions;
use std::collections::BTreeMap;
use std::time::Duration;

/// Long enough that neither the resync nor the inventory relist happens
/// during a test.
const QUIET: &str = "intervals: {resync: 1h, inventory: 1h}\n";
/// Generous for a loaded 2-core machine; the watch path takes well under a
/// second (measured by `cargo bench --bench daemon`).
const LIMIT: Duration = Duration::from_secs(60);

/// web-frontend's image, live.
pub fn image(env: &Env) -> Option<Value> {
    env.object("apps/v1", "Deployment", "demo2", "web-frontend")
        .map(|d| d["spec"]["template"]["spec"]["containers"][0]["image"].clone())
}

/// An out-of-band change of web-frontend's image (to `evil:latest`).
pub fn tamper(env: &Env) {
    env.fake
        .mutate_object(
            "apps/v1",
            "Deployment",
            Some("demo2"),
            "web-frontend",
            |d| {
                d["spec"]["template"]["spec"]["containers"][0]["image"] =
                    Value::String("evil:latest".into());
            },
        )
        .unwrap();
}

/// Waits for the image to be the chart's again, by an upgrade past
/// `revision`; returns the new revision.
async fn corrected(env: &Env, good: &Value, revision: u64, what: &str) -> u64 {
    wait_for(LIMIT, what, || {
        let rev = env.releases("demo2").get("web-frontend")?.0;
        (rev > revision && image(env).as_ref() == Some(good)).then_some(rev)
    })
    .await
}

/// Whether the fake has served a watch of Deployments (the daemon's cache
/// for that kind has listed and is following changes).
fn deployments_watched(env: &Env) -> bool {
    env.fake
        .requests()
        .iter()
        .any(|r| r.path.contains("deployments") && r.query.contains("watch=true"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_band_edits_are_corrected_without_a_resync_even_across_broken_watches() {
    let Some(mut env) = env(QUIET).await else {
        return;
    };
    let daemon = env.start(RunOptions::default());
    let good = wait_for(LIMIT, "web-frontend installed", || {
        image(&env).filter(|_| deployments_watched(&env))
    })
    .await;
    let rev = wait_for(LIMIT, "web-frontend deployed", || {
        env.releases("demo2")
            .get("web-frontend")
            .filter(|(_, st)| st == "deployed")
            .map(|(r, _)| *r)
    })
    .await;

    // A change while the watch runs.
    tamper(&env);
    let rev = corrected(&env, &good, rev, "a live edit corrected").await;

    // A change while the connection is down: the watch resumes from its
    // version and replays it.
    env.fake.drop_connections();
    tamper(&env);
    let rev = corrected(
        &env,
        &good,
        rev,
        "an edit during a dropped connection corrected",
    )
    .await;

    // A change during an outage, after which the history is compacted:
    // the watch gets 410 Gone, lists again and finds the change there.
    env.fake.outage().await;
    tamper(&env);
    env.fake.expire_watches();
    env.fake.recover().await.unwrap();
    corrected(&env, &good, rev, "an edit hidden behind a 410 corrected").await;

    let report = daemon.stop().await;
    assert_eq!(report.graphs, 3, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_turning_not_ready_starts_failover_at_once() {
    let Some(env) = env(QUIET).await else { return };
    env.edit(
        "smo.yaml",
        "failoverGracePeriod: 60s",
        "failoverGracePeriod: 0s",
    );
    let daemon = env.start(RunOptions::default());
    // Where the policy smo generated sends image-detection.
    let placed_on = |env: &Env| env.placed_on("brussels", "image-detection");
    let used = wait_for(LIMIT, "brussels placed and deployed", || {
        let deployed = env.releases("brussels").len() == 2;
        placed_on(&env).filter(|_| deployed)
    })
    .await;
    assert_eq!(
        used,
        ["lyon-gpu"],
        "the example places brussels on lyon-gpu"
    );
    env.fake.set_cluster_ready("lyon-gpu", false).unwrap();
    let moved = wait_for(LIMIT, "brussels moved off lyon-gpu", || {
        placed_on(&env).filter(|p| !p.contains(&"lyon-gpu".to_owned()))
    })
    .await;
    assert!(!moved.is_empty());
    daemon.stop().await;
}

/// The source revision in force and, per project (one graph each in the
/// example), the revision its graph was last reconciled at.
fn attempted(env: &Env) -> Option<(String, BTreeMap<String, String>)> {
    let s = env.snapshot()?;
    let at = s
        .graphs
        .iter()
        .map(|g| {
            let rev = g.last_attempted_revision.clone().unwrap_or_default();
            (g.project.clone(), rev)
        })
        .collect();
    Some((s.source_revision?, at))
}

/// Whether the queue drained at `revision`: a run is recorded only when
/// nothing is pending, delayed re-checks included.
fn drained_at(env: &Env, revision: &str) -> bool {
    env.snapshot().is_some_and(|s| {
        s.runs
            .iter()
            .any(|r| r.revision.as_deref() == Some(revision))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_reconciles_only_the_graphs_it_can_affect() {
    let Some(env) = env(QUIET).await else { return };
    let daemon = env.start(RunOptions::default());
    let first = wait_for(LIMIT, "every graph reconciled, the queue drained", || {
        let (rev, at) = attempted(&env)?;
        let all = at.len() == 3 && at.values().all(|r| *r == rev);
        (all && drained_at(&env, &rev)).then_some(rev)
    })
    .await;

    // One descriptor: its graph only. Before, every other graph was
    // checked again two seconds later, in the same pass.
    env.edit(
        "projects/demo2/gpu-offloading-graph.yaml",
        "cpu: small",
        "cpu: medium",
    );
    let second = wait_for(
        LIMIT,
        "demo2 reconciled at the edit, the queue drained",
        || {
            let (rev, at) = attempted(&env)?;
            (rev != first && at["demo2"] == rev && drained_at(&env, &rev)).then_some(rev)
        },
    )
    .await;
    let (_, at) = attempted(&env).unwrap();
    assert_eq!(at["athens"], first, "athens has nothing new: {at:?}");
    assert_eq!(at["brussels"], first, "brussels has nothing new: {at:?}");

    // A file of athens's local chart: athens's graph is checked again (and
    // upgraded, its chart changed); brussels still is not.
    let before = env.releases("athens");
    let values = "projects/athens/charts/building/values.yaml";
    env.edit(values, "tag: \"1.0.0\"", "tag: \"1.0.1\"");
    wait_for(
        LIMIT,
        "athens reconciled at the chart edit, the queue drained",
        || {
            let (rev, at) = attempted(&env)?;
            (rev != second && at["athens"] == rev && drained_at(&env, &rev)).then_some(())
        },
    )
    .await;
    let after = env.releases("athens");
    assert!(
        after
            .iter()
            .all(|(name, (rev, _))| before.get(name).is_some_and(|(r, _)| rev > r)),
        "every athens release upgraded with the new chart: {before:?} → {after:?}"
    );
    let (_, at) = attempted(&env).unwrap();
    assert_eq!(at["brussels"], first, "brussels has nothing new: {at:?}");
    daemon.stop().await;
}

/// An API outage is one warning per watch, and one line when it ends, not
/// a line per retry; kube's own report of each failed connection stays out
/// of the log (smo's says what to do).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_outage_logs_one_warning_and_one_line_when_it_ends() {
    let Some(env) = env(QUIET).await else { return };
    let smo = crate::daemon::spawn_smo(&env, &["run"], "run.log");
    let log = || crate::daemon::log_of(&env, "run.log");
    // Converged: the Deployments watch (a kind in the recorded manifests)
    // is running.
    let until = |what: &str, f: &dyn Fn(&str) -> Option<String>| {
        let t0 = std::time::Instant::now();
        loop {
            let text = log();
            if let Some(v) = f(&text) {
                return v;
            }
            assert!(
                t0.elapsed() < LIMIT,
                "timed out waiting for {what}; log:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    until("demo2 converged", &|t| {
        t.contains("converged key=demo2/gpu-offloading-graph")
            .then(String::new)
    });
    env.fake.fail_next(
        // 500: kube's client retries 429, 503 and 504 by itself.
        fake_karmada::Fault::status(500)
            .method("GET")
            .path_prefix("/apis/apps/v1/deployments")
            .times(3),
    );
    env.fake.drop_connections();
    // The three refused watch requests, then one that works.
    until("the Deployments watch re-established", &|_| {
        let statuses: Vec<u16> = env
            .fake
            .requests()
            .iter()
            .filter(|r| r.path == "/apis/apps/v1/deployments" && r.query.contains("watch=true"))
            .map(|r| r.status)
            .collect();
        statuses
            .windows(4)
            .any(|w| w == [500, 500, 500, 200])
            .then(String::new)
    });
    // A watch says it is back with its next event.
    tamper(&env);
    let resumed = until("the Deployments watch resumed", &|t| {
        t.lines()
            .find(|l| l.contains("watch{kind=Deployment}") && l.contains("watch resumed"))
            .map(str::to_owned)
    });
    wait_for(LIMIT, "the tampered image corrected", || {
        (image(&env) != Some(Value::from("evil:latest"))).then_some(())
    })
    .await;
    let text = log();
    let warnings = text
        .lines()
        .filter(|l| l.contains("watch{kind=Deployment}") && l.contains("watch interrupted"))
        .count();
    assert_eq!(warnings, 1, "one warning for the outage:\n{text}");
    let attempts: u64 = resumed
        .split("failed_attempts=")
        .nth(1)
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no failed_attempts in {resumed:?}"));
    assert_eq!(attempts, 3, "the three refused watches: {resumed}");
    assert!(!text.contains("kube_client"), "kube's own errors:\n{text}");
    drop(smo);
}
