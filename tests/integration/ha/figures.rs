//! The failover figures (a benchmark, ignored by default).

use super::*;

/// Figures, not a check run by CI (`cargo test --test integration
/// ha::figures::failover_figures -- --ignored --nocapture`): with the default
/// timings (15 s / 10 s / 2 s), the steady-state API load of an idle pair
/// and the failover time from SIGKILL of the leader to the new leader's
/// first helm call, over `SMO_HA_RUNS` (10) kills.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: minutes of failovers"]
async fn failover_figures() {
    let defaults = "ha:\n  enabled: true\n  identity: host-a\n  namespace: smo-system\n";
    let Some(env) = env(defaults).await else {
        return;
    };
    let runs: usize = std::env::var("SMO_HA_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let (a, b) = hosts(&env);
    let mut hosts = [(a, None::<Smo>), (b, None)];
    hosts[0].1 = Some(hosts[0].0.spawn());
    wait_for(Duration::from_secs(60), "a leads", || {
        (hosts[0].0.role() == Some(Role::Leader)).then_some(())
    })
    .await;
    wait_for(Duration::from_secs(180), "the example deployed", || {
        (env.releases("demo2").len() == 2).then_some(())
    })
    .await;
    hosts[1].1 = Some(hosts[1].0.spawn());
    wait_for(Duration::from_secs(60), "b stands by", || {
        (hosts[1].0.role() == Some(Role::Standby)).then_some(())
    })
    .await;

    // Idle: a minute of requests, by kind.
    env.fake.clear_requests();
    tokio::time::sleep(Duration::from_secs(60)).await;
    let requests = env.fake.requests();
    let leases = requests
        .iter()
        .filter(|r| r.path.contains("/leases"))
        .count();
    let shared = requests
        .iter()
        .filter(|r| r.path.contains("/configmaps"))
        .count();
    println!(
        "ha figures: idle pair, requests per minute: {} (Lease {leases}, shared alerts {shared}, other {})",
        requests.len(),
        requests.len() - leases - shared
    );
    assert!(leases > 0, "the Lease was renewed");

    let mut times = Vec::new();
    let mut leader = 0;
    for run in 0..runs {
        let standby = 1 - leader;
        let calls_before = hosts[standby].0.calls().len();
        let smo = hosts[leader].1.take().expect("the leader runs");
        signal(&smo, "KILL");
        let killed = now_secs();
        drop(smo);
        // Something to do for the new leader: demo2 suspended, or resumed.
        let (from, to) = if run % 2 == 0 {
            (
                "  id: gpu-offloading-graph\n",
                "  id: gpu-offloading-graph\n  suspend: true\n",
            )
        } else {
            ("  suspend: true\n", "")
        };
        env.edit("projects/demo2/gpu-offloading-graph.yaml", from, to);
        let first = wait_for(
            Duration::from_secs(120),
            "the new leader's first helm write",
            || {
                hosts[standby].0.calls()[calls_before..]
                    .iter()
                    .find(|(_, a)| a.starts_with("upgrade") || a.starts_with("uninstall"))
                    .map(|(t, _)| *t)
            },
        )
        .await;
        times.push(first - killed);
        println!("ha figures: run {run}: {:.2} s", first - killed);
        // The killed host comes back as the standby.
        hosts[leader].1 = Some(hosts[leader].0.spawn());
        let back = leader;
        wait_for(
            Duration::from_secs(120),
            "the restarted host stands by",
            || {
                (hosts[back].0.role() == Some(Role::Standby)
                    && hosts[standby].0.role() == Some(Role::Leader))
                .then_some(())
            },
        )
        .await;
        // The new leader applied the edit before the next kill.
        wait_for(
            Duration::from_secs(120),
            "the new leader applied the edit",
            || (env.releases("demo2").is_empty() == (run % 2 == 0)).then_some(()),
        )
        .await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        leader = standby;
    }
    times.sort_by(f64::total_cmp);
    let pick = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    println!(
        "ha figures: failover (kill -> first helm call) over {} runs: p50 {:.2} s, p95 {:.2} s, max {:.2} s",
        times.len(),
        pick(0.5),
        pick(0.95),
        times.last().unwrap()
    );
}
