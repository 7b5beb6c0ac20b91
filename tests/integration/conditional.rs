//! Conditional deployment and autoscaling end to end: the daemon against
//! the fake Karmada with the real helm, and the REAL Prometheus and
//! Alertmanager on loopback ports (Debian's packages, see
//! `.ci/install-tools.sh`).
//!
//! The chain under test: smo writes an alert rule → Prometheus reloads and
//! fires it → Alertmanager posts to smo's webhook → the trigger is committed
//! → the service is installed and its rule removed. And: a rising request
//! counter → Prometheus' rate → smo's scaling model → the Deployment's
//! replicas in the fake.

use crate::daemon::{Env, env_with, free_port, wait_for};
use crate::prom::{AlertmanagerServer, Exporter, PromServer, promtool_check_rules};
use fake_karmada::testing::tool;
use smo::daemon::RunOptions;
use smo::store::{ServicePhase, ServiceRecord, StatusSnapshot};
use std::path::{Path, PathBuf};
use std::time::Duration;

const GRAPH: &str = "projects/brussels/image-detection-graph.yaml";
const VO: &str = "image-compression-vo";
/// The rule group file smo writes for the brussels graph.
const RULES_FILE: &str = "smo-brussels.image-detection-graph.yml";

/// Prometheus, Alertmanager (posting to the daemon's future endpoint), an
/// exporter, and a daemon configuration using all three.
pub(crate) struct Stack {
    pub(crate) env: Env,
    /// The daemon's endpoint (the stack's own `http:` block).
    pub(crate) http: std::net::SocketAddr,
    _prom: PromServer,
    // Kept alive for the test's duration; dropped (killed) at its end.
    _alertmanager: AlertmanagerServer,
    pub(crate) exporter: Exporter,
    rules: tempfile::TempDir,
    _token: tempfile::TempDir,
}

async fn stack(exporter_services: &[&str], extra: &str) -> Option<Stack> {
    stack_with(exporter_services, extra, None).await
}

/// [`stack`] with another `source:` block (the state directory when
/// `None`).
pub(crate) async fn stack_with(
    exporter_services: &[&str],
    extra: &str,
    source: Option<&str>,
) -> Option<Stack> {
    let promtool = tool("SMO_PROMTOOL")?;
    let port = free_port();
    let token = tempfile::tempdir().unwrap();
    let token_file = token.path().join("webhook-token");
    std::fs::write(&token_file, "alertmanager-to-smo\n").unwrap();
    let alertmanager = AlertmanagerServer::start(
        &format!("http://127.0.0.1:{port}/alerts"),
        Some(&token_file),
    )?;
    let exporter = Exporter::start(exporter_services);
    let rules = tempfile::tempdir().unwrap();
    let prom = PromServer::start(
        rules.path(),
        Some(&alertmanager.url),
        std::slice::from_ref(&exporter.addr),
    )?;
    prom.wait_ready(Duration::from_secs(30));
    alertmanager.wait_ready(Duration::from_secs(30));
    let config = format!(
        "http:\n  listen: 127.0.0.1:{port}\n  tokenFile: {token}\nprometheus:\n  url: {url}\n  rulesDir: {rules}\n  promtool: {promtool}\n{extra}",
        token = token_file.display(),
        url = prom.url,
        rules = rules.path().display(),
        promtool = promtool.display(),
    );
    let env = env_with(&config, true, source).await?;
    Some(Stack {
        env,
        http: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        _prom: prom,
        _alertmanager: alertmanager,
        exporter,
        rules,
        _token: token,
    })
}

impl Stack {
    fn rules_file(&self) -> PathBuf {
        self.rules.path().join(RULES_FILE)
    }
}

fn service<'a>(snap: &'a StatusSnapshot, id: &str) -> Option<&'a ServiceRecord> {
    snap.services.iter().find(|s| s.service == id)
}

fn events_of(snap: &StatusSnapshot, service: &str, kind: &str) -> usize {
    snap.events
        .iter()
        .filter(|e| e.service.as_deref() == Some(service) && e.kind == kind)
        .count()
}

/// In the example state at `root`: noise-reduction serves 5 req/s per
/// replica (1..3 replicas), rates over a 5 s window, scale-downs wait 4 s.
pub(crate) fn scale_fast(root: &Path) {
    edit(
        &root.join(GRAPH),
        "            alpha: 0.533\n            beta: -0.416\n",
        "            alpha: 5\n            beta: 0\n",
    );
    let settings = root.join("smo.yaml");
    edit(
        &settings,
        "stabilizationWindow: 5m",
        "stabilizationWindow: 4s",
    );
    edit(&settings, "rateWindow: 1m", "rateWindow: 5s");
    // The model weighs CPU against replica churn; with the default weights
    // (0.4/0.4) a cluster this large never sheds an idle replica, which
    // is the original SMO's behaviour. Make CPU count.
    edit(&settings, "changeWeight: 0.4", "changeWeight: 0.01");
}

pub(crate) fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from:?} not in {}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

/// The VO's event fires at once: `vector(1)` with no grace period.
fn fire_at_once(env: &Env) {
    let p = env.descriptor(GRAPH);
    edit(
        &p,
        r#"promQuery: sum(rate(flask_http_request_total{service="noise-reduction"}[1m])) > 5"#,
        "promQuery: vector(1)",
    );
    edit(&p, "gracePeriod: 1m", "gracePeriod: 0s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firing_alert_deploys_the_waiting_service_and_its_rule_is_removed() {
    let Some(s) = stack(&[], "").await else {
        return;
    };
    fire_at_once(&s.env);
    let daemon = s.env.start(RunOptions::default());

    // The rule appears, valid for Prometheus' own checker.
    let file = s.rules_file();
    let text = wait_for(Duration::from_secs(60), "the rules file", || {
        std::fs::read_to_string(&file).ok()
    })
    .await;
    assert!(
        text.contains("vector(1)") && text.contains("smo_service"),
        "{text}"
    );
    match promtool_check_rules(&file) {
        Some(Ok(())) => {}
        Some(Err(e)) => panic!("promtool refused smo's rules: {e}\n{text}"),
        None => return,
    }

    // Prometheus fires, Alertmanager posts, smo installs the VO.
    let installed = wait_for(
        Duration::from_secs(90),
        "the VO installed by its trigger",
        || {
            s.env
                .releases("brussels")
                .get(VO)
                .filter(|(_, status)| status != "pending-install")
                .cloned()
        },
    )
    .await;
    assert_eq!(installed, (1, "deployed".to_owned()));

    // Its rule is gone (the file had only this rule), and the status says
    // by which alert and when.
    wait_for(Duration::from_secs(30), "the rules file removed", || {
        (!file.exists()).then_some(())
    })
    .await;
    let snap = wait_for(Duration::from_secs(30), "the Triggered status", || {
        let snap = s.env.snapshot()?;
        let vo = service(&snap, VO)?;
        (vo.phase == ServicePhase::Deployed && vo.trigger.fired_at.is_some()).then_some(snap)
    })
    .await;
    let vo = service(&snap, VO).unwrap();
    assert_eq!(vo.trigger.alert.as_deref(), Some("noise-reduction-busy"));
    assert!(!vo.trigger.armed && vo.trigger.pending.is_empty(), "{vo:?}");
    assert_eq!(events_of(&snap, VO, "Triggered"), 1, "{:#?}", snap.events);
    assert!(
        snap.events.iter().any(|e| e.kind == "RulesUpdated"),
        "{:#?}",
        snap.events
    );
    daemon.stop().await;

    // What was committed before the 200: one fired event.
    let fired = s.env.store().triggers().unwrap();
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].event, "noise-reduction-busy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_waits_for_every_event_and_a_restart_between_firings_keeps_the_first() {
    let Some(s) = stack(&["gate"], "").await else {
        return;
    };
    fire_at_once(&s.env);
    let p = s.env.descriptor(GRAPH);
    edit(&p, "condition: ANY", "condition: ALL");
    edit(
        &p,
        "                  description: Noise reduction receives more than 5 requests/s; compress images at the edge.\n",
        "                  description: Noise reduction receives more than 5 requests/s; compress images at the edge.\n              - id: gate-open\n                condition:\n                  promQuery: sum(rate(flask_http_request_total{service=\"gate\"}[5s])) > 1\n                  gracePeriod: 0s\n",
    );

    // The first event fires; the second is awaited.
    let daemon = s.env.start(RunOptions::default());
    let snap = wait_for(
        Duration::from_secs(90),
        "the first of two events fired",
        || {
            let snap = s.env.snapshot()?;
            let vo = service(&snap, VO)?;
            (vo.trigger.pending == ["gate-open"]).then_some(snap)
        },
    )
    .await;
    let vo = service(&snap, VO).unwrap();
    assert_eq!(vo.phase, ServicePhase::WaitingForTrigger, "{vo:?}");
    assert!(vo.trigger.fired_at.is_none(), "ALL is not met yet: {vo:?}");
    assert!(!s.env.releases("brussels").contains_key(VO));
    let waiting = snap
        .graphs
        .iter()
        .flat_map(|g| &g.conditions)
        .find(|c| c.status && format!("{:?}", c.kind) == "WaitingForTrigger")
        .map(|c| c.message.clone());
    assert_eq!(
        waiting.as_deref(),
        Some("image-compression-vo (waiting for gate-open)")
    );

    // Restart: the fired event was committed, Alertmanager will not send
    // it again (it already delivered it), and it still counts.
    daemon.stop().await;
    let fired = s.env.store().triggers().unwrap();
    assert_eq!(
        fired.iter().map(|f| f.event.as_str()).collect::<Vec<_>>(),
        ["noise-reduction-busy"]
    );
    let daemon = s.env.start(RunOptions::default());
    wait_for(
        Duration::from_secs(30),
        "the restarted daemon's status",
        || {
            let snap = s.env.snapshot()?;
            let vo = service(&snap, VO)?;
            (snap.generated_at > 0 && vo.trigger.pending == ["gate-open"]).then_some(())
        },
    )
    .await;
    assert!(!s.env.releases("brussels").contains_key(VO));

    // The second event fires: now the VO deploys.
    s.exporter.set_rate("gate", 10.0);
    // Waits past `pending-install`: helm writes its release record first.
    wait_for(
        Duration::from_secs(90),
        "the VO deployed after both events",
        || {
            s.env
                .releases("brussels")
                .get(VO)
                .filter(|(_, status)| status == "deployed")
                .cloned()
        },
    )
    .await;
    let snap = wait_for(
        Duration::from_secs(30),
        "Triggered by the second event",
        || {
            let snap = s.env.snapshot()?;
            let vo = service(&snap, VO)?;
            (vo.phase == ServicePhase::Deployed && vo.trigger.fired_at.is_some()).then_some(snap)
        },
    )
    .await;
    assert_eq!(
        service(&snap, VO).unwrap().trigger.alert.as_deref(),
        Some("gate-open")
    );
    daemon.stop().await;
}

/// The Deployment's replicas in the fake (the chart leaves them unset: 1).
fn replicas(env: &Env, name: &str) -> Option<u64> {
    env.object("apps/v1", "Deployment", "brussels", name)
        .map(|d| d["spec"]["replicas"].as_u64().unwrap_or(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_follow_the_request_rate_and_an_unservable_rate_asks_for_replacement() {
    let Some(s) = stack(&["noise-reduction"], "intervals:\n  scaling: 1s\n").await else {
        return;
    };
    scale_fast(s.env.state.path());
    let daemon = s.env.start(RunOptions::default());
    wait_for(Duration::from_secs(60), "noise-reduction deployed", || {
        replicas(&s.env, "noise-reduction")
    })
    .await;

    // 12 req/s needs ⌈12/5⌉ = 3 replicas.
    s.exporter.set_rate("noise-reduction", 12.0);
    wait_for(Duration::from_secs(60), "3 replicas at 12 req/s", || {
        (replicas(&s.env, "noise-reduction") == Some(3)).then_some(())
    })
    .await;
    let snap = wait_for(
        Duration::from_secs(30),
        "the decision in the status",
        || {
            let snap = s.env.snapshot()?;
            snap.scales
                .iter()
                .any(|r| r.service == "noise-reduction" && r.replicas == 3)
                .then_some(snap)
        },
    )
    .await;
    let rate = snap
        .scales
        .iter()
        .find(|r| r.service == "noise-reduction")
        .and_then(|r| r.rate)
        .unwrap();
    assert!((8.0..=16.0).contains(&rate), "rate {rate}");
    // image-detection's query finds no series: rate 0 (minimum replicas),
    // reported as no data rather than as a measured zero.
    let quiet = snap
        .scales
        .iter()
        .find(|r| r.service == "image-detection")
        .expect("image-detection is scaled too");
    assert_eq!((quiet.replicas, quiet.rate), (1, None), "{quiet:?}");
    assert!(
        quiet.note.as_deref().is_some_and(|n| n.contains("no data")),
        "{quiet:?}"
    );

    // 100 req/s needs 20 replicas, maxReplicas is 3: the maximum, and a
    // re-placement request.
    s.exporter.set_rate("noise-reduction", 100.0);
    let snap = wait_for(Duration::from_secs(60), "a re-placement request", || {
        let snap = s.env.snapshot()?;
        snap.events
            .iter()
            .any(|e| e.kind == "ReplacementRequested")
            .then_some(snap)
    })
    .await;
    let event = snap
        .events
        .iter()
        .find(|e| e.kind == "ReplacementRequested")
        .unwrap();
    assert!(
        event.message.contains("noise-reduction") && event.message.contains("maxReplicas is 3"),
        "{event:?}"
    );
    assert_eq!(replicas(&s.env, "noise-reduction"), Some(3));

    // 2 req/s needs 1 replica (after the stabilisation window).
    s.exporter.set_rate("noise-reduction", 2.0);
    for _ in 0..600 {
        if replicas(&s.env, "noise-reduction") == Some(1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let snap = s.env.snapshot().unwrap();
    assert_eq!(
        replicas(&s.env, "noise-reduction"),
        Some(1),
        "not scaled down: {:#?} {:#?}",
        snap.scales,
        &snap.events[..snap.events.len().min(8)]
    );

    // Prometheus gone: the replicas stay, and the status says why.
    drop(s._prom);
    let snap = wait_for(Duration::from_secs(60), "the unreachable note", || {
        let snap = s.env.snapshot()?;
        snap.scales
            .iter()
            .any(|r| {
                r.service == "noise-reduction"
                    && r.note
                        .as_deref()
                        .is_some_and(|n| n.contains("Prometheus unreachable"))
            })
            .then_some(snap)
    })
    .await;
    let kept = snap
        .scales
        .iter()
        .find(|r| r.service == "noise-reduction")
        .unwrap();
    assert_eq!((kept.replicas, kept.rate), (1, None), "{kept:?}");
    assert_eq!(replicas(&s.env, "noise-reduction"), Some(1));
    let report = daemon.stop().await;
    assert!(report.failed.is_empty(), "{report:?}");
}
