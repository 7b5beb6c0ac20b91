//! Two management hosts (issue 20): two `smo run` processes of the real
//! binary, each with its own state directory, endpoint and helm wrapper,
//! elect a leader on a Lease of one fake Karmada. Only the leader calls
//! helm; an alert acknowledged by the standby is acted on by whichever
//! instance leads; a killed leader's standby takes over and applies an
//! edit made during the outage; a leader stopped past its lease is fenced
//! when it resumes and stands by.

use crate::daemon::{Env, Smo, env, wait_for};
use crate::webhook::wait_healthy;
use smo::ha::{Role, View};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod facts;
mod figures;

/// Short lease times, so that a takeover takes seconds.
const LEASE: Duration = Duration::from_secs(4);
const RETRY: Duration = Duration::from_secs(1);
/// The example's event-triggered service (brussels).
const VO: &str = "image-compression-vo";

fn ha_block(identity: &str) -> String {
    format!("{}intervals:\n  resync: 5s\n", ha_only(identity))
}

fn ha_only(identity: &str) -> String {
    format!(
        "ha:\n  enabled: true\n  identity: {identity}\n  namespace: smo-system\n  leaseDuration: 4s\n  renewDeadline: 3s\n  retryPeriod: 1s\n"
    )
}

/// One instance: its configuration, state directory and helm call log.
struct Host {
    config: PathBuf,
    var: PathBuf,
    calls: PathBuf,
    http: std::net::SocketAddr,
}

/// A helm that logs each call (time and arguments) before running the
/// real one: the proof of who called helm.
fn wrapper(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let helm = fake_karmada::testing::tool("SMO_HELM").expect("helm");
    let calls = dir.join(format!("helm-calls-{name}.log"));
    let script = dir.join(format!("helm-{name}"));
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s %s\\n' \"$(date +%s.%N)\" \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
            calls.display(),
            helm.display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    (script, calls)
}

/// Host `a` is the environment's own configuration with its helm replaced
/// by a wrapper; host `b` a copy with another identity, state directory
/// and endpoint.
fn hosts(env: &Env) -> (Host, Host) {
    let dir = env.data.path();
    let text = std::fs::read_to_string(&env.config).unwrap();
    let helm_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("binary:"))
        .unwrap()
        .to_owned();
    let make = |name: &str, text: &str, http: std::net::SocketAddr| {
        let (script, calls) = wrapper(dir, name);
        let var = dir.join(format!("var-{name}"));
        let text = text
            .replace(&helm_line, &format!("  binary: {}", script.display()))
            .replace(
                &format!("stateDir: {}", dir.join("var").display()),
                &format!("stateDir: {}", var.display()),
            )
            .replace("identity: host-a", &format!("identity: host-{name}"))
            .replace(&env.http.to_string(), &http.to_string());
        let config = dir.join(format!("config-{name}.yaml"));
        std::fs::write(&config, text).unwrap();
        Host {
            config,
            var,
            calls,
            http,
        }
    };
    let a = make("a", &text, env.http);
    let b_http = std::net::SocketAddr::from(([127, 0, 0, 1], crate::daemon::free_port()));
    let b = make("b", &text, b_http);
    (a, b)
}

impl Host {
    fn spawn(&self) -> Smo {
        let log = std::fs::File::create(self.var.with_extension("log")).unwrap();
        Smo(Command::new(env!("CARGO_BIN_EXE_smo"))
            .args(["run", "--config"])
            .arg(&self.config)
            .env("SMO_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("smo starts"))
    }

    fn view(&self) -> Option<View> {
        smo::daemon::role::read_view(&self.var)
    }

    fn role(&self) -> Option<Role> {
        self.view().map(|v| v.role)
    }

    /// Each helm call: when (Unix seconds) and its arguments.
    fn calls(&self) -> Vec<(f64, String)> {
        std::fs::read_to_string(&self.calls)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (t, args) = l.split_once(' ')?;
                Some((t.parse().ok()?, args.to_owned()))
            })
            .collect()
    }

    fn writes(&self) -> usize {
        self.calls()
            .iter()
            .filter(|(_, a)| a.starts_with("upgrade") || a.starts_with("uninstall"))
            .count()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.var.with_extension("log")).unwrap_or_default()
    }
}

fn signal(smo: &Smo, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(smo.0.id().to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig}");
}

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

async fn ready_body(addr: std::net::SocketAddr) -> (u16, String) {
    let a = crate::webhook::exchange(addr, crate::webhook::raw("GET", "/readyz", &[], b""))
        .await
        .expect("readyz answers");
    (a.status, a.body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_acts_a_killed_leader_is_replaced_and_a_paused_one_is_fenced() {
    let Some(env) = env(&ha_block("host-a")).await else {
        return;
    };
    let (a, b) = hosts(&env);
    let deployed = |env: &Env| {
        let r = env.releases("demo2");
        (r.len() == 2 && r.values().all(|(_, st)| st == "deployed")).then_some(())
    };

    // a comes first and leads; the example converges.
    let mut smo_a = a.spawn();
    wait_for(Duration::from_secs(60), "a leads", || {
        (a.role() == Some(Role::Leader)).then_some(())
    })
    .await;
    wait_for(Duration::from_secs(180), "the example deployed", || {
        deployed(&env)
    })
    .await;

    // b stands by behind a: ready-standby, and no helm call at all.
    let smo_b = b.spawn();
    wait_healthy(b.http).await;
    wait_for(Duration::from_secs(30), "b stands by behind a", || {
        b.view()
            .filter(|v| v.role == Role::Standby && v.leader.as_deref() == Some("host-a"))
    })
    .await;
    // b had its chance: its endpoint answered from a loaded world, and a
    // resync (5 s) passed on both sides.
    let (status, body) = ready_body(b.http).await;
    assert_eq!((status, body.as_str()), (200, "ready-standby\n"));
    let metrics = crate::webhook::get(b.http, "/metrics").await.body;
    assert!(metrics.contains("\nsmo_leader 0\n"), "{metrics}");
    let metrics = crate::webhook::get(a.http, "/metrics").await.body;
    assert!(metrics.contains("\nsmo_leader 1\n"), "{metrics}");
    assert!(
        metrics.contains("smo_leader_transitions_total{to=\"leader\"} 1\n"),
        "{metrics}"
    );
    // smo status on b's host: the role, the holder and the expiry.
    let out = Command::new(env!("CARGO_BIN_EXE_smo"))
        .args(["status", "--format", "json", "--config"])
        .arg(&b.config)
        .output()
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["ha"]["role"], "standby", "{status}");
    assert_eq!(status["ha"]["leader"], "host-a");
    assert!(status["ha"]["leaseExpires"].is_string());
    let out = Command::new(env!("CARGO_BIN_EXE_smo"))
        .args(["status", "--config"])
        .arg(&a.config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("role leader (host-a, lease smo-system/smo-leader until ")),
        "{text}"
    );
    let before = a.writes();
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(b.calls().is_empty(), "b called helm: {:?}", b.calls());
    assert_eq!(a.writes(), before, "a converged: no write at a resync");

    // a pauses; an alert for the VO reaches b, which shares it on Karmada
    // before it answers 200; then a dies (its lease still running).
    signal(&smo_a, "STOP");
    let shared = crate::webhook::exchange(b.http, crate::webhook::vo_alert_request(&env))
        .await
        .expect("b answers");
    assert_eq!(shared.status, 200, "{}", shared.body);
    assert!(
        !env.releases("brussels").contains_key(VO),
        "the VO waits for its trigger"
    );
    // SIGKILL a; an edit lands during the outage; b takes over, applies
    // it and deploys the VO the alert it acknowledged triggered.
    signal(&smo_a, "KILL");
    let killed = now_secs();
    let _ = smo_a.0.wait();
    env.edit(
        "projects/demo2/gpu-offloading-graph.yaml",
        "  id: gpu-offloading-graph\n",
        "  id: gpu-offloading-graph\n  suspend: true\n",
    );
    wait_for(Duration::from_secs(60), "b leads", || {
        (b.role() == Some(Role::Leader)).then_some(())
    })
    .await;
    wait_for(Duration::from_secs(120), "b applied the edit", || {
        env.releases("demo2").is_empty().then_some(())
    })
    .await;
    wait_for(
        Duration::from_secs(120),
        "b deployed the triggered VO",
        || {
            env.releases("brussels")
                .get(VO)
                .filter(|(_, st)| st == "deployed")
                .map(|_| ())
        },
    )
    .await;
    // What b found live with the desired inputs (their label says so) it
    // took as it is: no upgrade of athens, nor of brussels' other services.
    let athens = env.releases("athens");
    assert!(
        !athens.is_empty()
            && athens
                .values()
                .all(|(rev, st)| *rev == 1 && st == "deployed"),
        "b upgraded releases whose inputs had not changed: {athens:?}\n{}",
        b.log()
    );
    assert_eq!(env.releases("brussels")["image-detection"].0, 1);
    let first = b.calls().first().map(|(t, _)| *t).expect("b called helm");
    let failover = first - killed;
    println!("ha: kill -> first helm call of the new leader: {failover:.2} s");
    let bound = LEASE + RETRY.mul_f64(2.0 * 2.2) + Duration::from_secs(2);
    assert!(
        failover < bound.as_secs_f64(),
        "takeover in {failover:.2} s, bound {bound:?}"
    );
    assert!(b.writes() > 0);

    // a again, now standing by behind b.
    smo_a = a.spawn();
    wait_for(Duration::from_secs(60), "a stands by behind b", || {
        a.view()
            .filter(|v| v.role == Role::Standby && v.leader.as_deref() == Some("host-b"))
    })
    .await;

    // SIGSTOP b past its lease: a takes over and applies an edit made
    // meanwhile; b, resumed, writes nothing and stands by.
    signal(&smo_b, "STOP");
    let stopped = Instant::now();
    env.edit(
        "projects/demo2/gpu-offloading-graph.yaml",
        "  suspend: true\n",
        "  suspend: false\n",
    );
    wait_for(Duration::from_secs(60), "a leads", || {
        (a.role() == Some(Role::Leader)).then_some(())
    })
    .await;
    wait_for(Duration::from_secs(180), "a deployed demo2 again", || {
        deployed(&env)
    })
    .await;
    assert!(stopped.elapsed() > LEASE, "b stayed stopped past its lease");
    let b_writes = b.writes();
    signal(&smo_b, "CONT");
    wait_for(Duration::from_secs(30), "b steps down", || {
        b.view()
            .filter(|v| v.role == Role::Standby && v.leader.as_deref() == Some("host-a"))
    })
    .await;
    // b saw the edit too (its world is warm) and had a resync: no helm
    // write started since it resumed. (A helm process already running when
    // b was paused is not b's to stop: it finishes, and b may read the
    // release's status after it.)
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        b.writes(),
        b_writes,
        "the fenced leader wrote after it resumed:\n{}",
        b.log()
    );
    assert!(
        b.log().contains("lost the leader Lease"),
        "b says it stepped down:\n{}",
        b.log()
    );

    // A graceful stop releases the Lease: b takes over at its next round.
    signal(&smo_a, "TERM");
    let _ = smo_a.0.wait();
    let t = Instant::now();
    wait_for(Duration::from_secs(30), "b leads after a's release", || {
        (b.role() == Some(Role::Leader)).then_some(())
    })
    .await;
    assert!(
        t.elapsed() < LEASE,
        "a released lease is taken before it would expire: {:?}",
        t.elapsed()
    );
    drop(smo_b);
}

/// A Karmada outage: the leader cannot renew and stops acting within its
/// renew deadline, the standby cannot take the Lease, so nobody acts; when
/// Karmada is back, one instance leads (never two) and applies what changed
/// meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_karmada_outage_stops_both_and_one_resumes() {
    let Some(mut env) = env(&ha_block("host-a")).await else {
        return;
    };
    let (a, b) = hosts(&env);
    let smo_a = a.spawn();
    wait_for(Duration::from_secs(60), "a leads", || {
        (a.role() == Some(Role::Leader)).then_some(())
    })
    .await;
    wait_for(Duration::from_secs(180), "the example deployed", || {
        (env.releases("demo2").len() == 2).then_some(())
    })
    .await;
    let smo_b = b.spawn();
    wait_for(Duration::from_secs(30), "b stands by behind a", || {
        b.view()
            .filter(|v| v.role == Role::Standby && v.leader.as_deref() == Some("host-a"))
    })
    .await;

    env.fake.outage().await;
    wait_for(Duration::from_secs(30), "a stands down", || {
        (a.role() == Some(Role::Standby)).then_some(())
    })
    .await;
    assert!(a.log().contains("lost the leader Lease"), "{}", a.log());
    env.edit(
        "projects/demo2/gpu-offloading-graph.yaml",
        "  id: gpu-offloading-graph\n",
        "  id: gpu-offloading-graph\n  suspend: true\n",
    );
    // Both tried the Lease and failed (their chance to act), past the time
    // a standby would have taken over an idle Lease.
    let t = Instant::now();
    wait_for(
        Duration::from_secs(30),
        "both tried the Lease in vain",
        || {
            let tried = |h: &Host| h.log().contains("could not read or take the leader Lease");
            (tried(&a) && tried(&b) && t.elapsed() > LEASE + RETRY).then_some(())
        },
    )
    .await;
    assert_eq!(
        (a.role(), b.role()),
        (Some(Role::Standby), Some(Role::Standby))
    );
    assert_eq!(
        env.releases("demo2").len(),
        2,
        "nothing acted during the outage"
    );

    env.fake.recover().await.unwrap();
    // One leads again and applies the edit; never both.
    let t = Instant::now();
    loop {
        let roles = (a.role(), b.role());
        assert_ne!(
            roles,
            (Some(Role::Leader), Some(Role::Leader)),
            "two leaders"
        );
        if env.releases("demo2").is_empty() && roles.0 != roles.1 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "no leader applied the edit after the outage: a {:?}, b {:?}",
            roles.0,
            roles.1
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop((smo_a, smo_b));
}
