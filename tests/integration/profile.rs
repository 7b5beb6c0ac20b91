//! `smo profile` end to end: a real Prometheus whose TSDB is backfilled
//! (promtool) with a synthetic history of known capacity, read back by
//! the `smo` binary through the same queries an operator's would use.
//!
//! The history: 12 hours ending 3 hours ago (backfilled blocks stay clear
//! of the head block), one sample every 15 s. Service `api` (cpu `small`,
//! 1 core per replica) cycles through 1…6…1 replicas in 30-minute
//! segments: the first half of each is saturated (0.9 cores per replica,
//! rate `ALPHA·replicas + BETA` with ±5 % noise), the second half idle
//! (0.3 cores per replica, a third of that rate). Replicas change in the
//! middle of the idle half, so no rate window mixes two saturated levels.
//! Service `idle` never uses more than 0.2 cores per replica.

use crate::prom::PromServer;
use std::fmt::Write;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

const ALPHA: f64 = 25.0;
const BETA: f64 = 40.0;
const SCRAPE_S: i64 = 15;
const SEGMENT_S: i64 = 1800;
const SEGMENTS: i64 = 24;
/// Backfilled data ends this long before now.
const GAP_S: i64 = 3 * 3600;

/// Replicas of segment `k`: 1, 2, …, 6, 5, …, 2, 1, 2, …
fn replicas_of(k: i64) -> i64 {
    let phase = k % 10;
    if phase < 6 { phase + 1 } else { 11 - phase }
}

/// Deterministic noise in [-1, 1] (an LCG; no RNG dependency).
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }
}

/// Per scrape of service `api`: (time, requests/s, replicas, cores).
fn api_samples(start: i64) -> Vec<(i64, f64, i64, f64)> {
    let mut noise = Noise(7);
    (0..SEGMENTS * SEGMENT_S / SCRAPE_S)
        .map(|i| {
            let t = start + i * SCRAPE_S;
            let into = (t - start) % SEGMENT_S;
            let k = (t - start) / SEGMENT_S;
            // Replicas change at three quarters of a segment (mid idle).
            let r = if into >= 3 * SEGMENT_S / 4 {
                replicas_of(k + 1)
            } else {
                replicas_of(k)
            };
            let capacity = ALPHA * r as f64 + BETA;
            if into < SEGMENT_S / 2 {
                (t, capacity * (1.0 + 0.05 * noise.next()), r, 0.9 * r as f64)
            } else {
                (t, capacity / 3.0, r, 0.3 * r as f64)
            }
        })
        .collect()
}

/// The OpenMetrics text of both services' history (families grouped, as
/// the format requires; counters are integrals of their rates).
fn history(start: i64) -> String {
    let api = api_samples(start);
    let idle: Vec<(i64, f64, i64, f64)> = api.iter().map(|s| (s.0, 10.0, 2, 0.4)).collect();
    let services = [("api", &api), ("idle", &idle)];
    let mut o = String::from("# TYPE flask_http_request counter\n");
    for (name, samples) in services {
        let mut total = 0.0;
        for (t, rate, _, _) in samples.iter() {
            let _ = writeln!(
                o,
                "flask_http_request_total{{service=\"{name}\"}} {total} {t}"
            );
            total += rate * SCRAPE_S as f64;
        }
    }
    o.push_str("# TYPE kube_deployment_status_replicas gauge\n");
    for (name, samples) in services {
        for (t, _, r, _) in samples.iter() {
            let _ = writeln!(
                o,
                "kube_deployment_status_replicas{{namespace=\"shop\",deployment=\"{name}\"}} {r} {t}"
            );
        }
    }
    o.push_str("# TYPE container_cpu_usage_seconds counter\n");
    for (name, samples) in services {
        let mut total = 0.0;
        for (t, _, _, cores) in samples.iter() {
            let _ = writeln!(
                o,
                "container_cpu_usage_seconds_total{{namespace=\"shop\",pod=\"{name}-0\"}} {total} {t}"
            );
            total += cores * SCRAPE_S as f64;
        }
    }
    o.push_str("# EOF\n");
    o
}

fn descriptor() -> String {
    let service = |id: &str| {
        format!(
            "    - id: {id}\n      deployment:\n        trigger:\n          auto:\n            dependencies: []\n        intent:\n          compute: {{cpu: small}}\n      artifact:\n        ociImage: oci://127.0.0.1:5000/charts/{id}\n"
        )
    };
    format!(
        "hdaGraph:\n  imVersion: 0.4.0\n  id: web\n  services:\n{}{}",
        service("api"),
        service("idle")
    )
}

/// A state root with the graph `shop/web` and a configuration pointing
/// at it and at `prometheus`.
fn setup(dir: &Path, prometheus: &str) -> std::path::PathBuf {
    let graph = dir.join("state/projects/shop/web.yaml");
    std::fs::create_dir_all(graph.parent().unwrap()).unwrap();
    std::fs::write(&graph, descriptor()).unwrap();
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!("source:\n  dir: state\nstateDir: smo-state\nprometheus:\n  url: {prometheus}\n"),
    )
    .unwrap();
    config
}

fn smo_profile(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smo"))
        .arg("profile")
        .args(args)
        .arg("--config")
        .arg(config)
        .args(["--since", "16h"])
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn profile_learns_alpha_and_beta_from_a_backfilled_history() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let start = now - GAP_S - SEGMENTS * SEGMENT_S;
    let Some(prom) = PromServer::start_backfilled(&history(start)) else {
        return;
    };
    prom.wait_ready(Duration::from_secs(60));
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), &prom.url);

    let o = smo_profile(&config, &["shop/web/api", "--format", "json"]);
    let shown = format!(
        "{}{}\n{}",
        text(&o.stdout),
        text(&o.stderr),
        prom.log_tail()
    );
    assert_eq!(o.status.code(), Some(0), "{shown}");
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let alpha = report["fit"]["alpha"].as_f64().unwrap();
    let beta = report["fit"]["beta"].as_f64().unwrap();
    assert!(
        (alpha - ALPHA).abs() <= 0.1 * ALPHA,
        "alpha {alpha}: {shown}"
    );
    assert!((beta - BETA).abs() <= 0.1 * BETA, "beta {beta}: {shown}");
    assert_eq!(report["enoughData"], true);
    assert_eq!(
        report["replicaCounts"],
        serde_json::json!([1, 2, 3, 4, 5, 6])
    );
    // Half of every segment is idle: those samples are not fitted.
    let (saturated, samples) = (
        report["saturated"].as_u64().unwrap(),
        report["samples"].as_u64().unwrap(),
    );
    assert!(saturated >= 200 && saturated * 3 < samples * 2, "{shown}");
    assert!(
        report["queries"]["rate"]
            .as_str()
            .unwrap()
            .contains(r#"flask_http_request_total{service="api"}[60s]"#),
        "the scaler's default rate query: {shown}"
    );

    let o = smo_profile(&config, &["shop/web/api"]);
    let shown = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{shown}");
    assert!(
        shown.contains("suggested, to paste under deployment.intent.scaling:\n  alpha: "),
        "{shown}"
    );

    let o = smo_profile(&config, &["shop/web/api", "--format", "svg"]);
    let svg = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{svg}");
    assert!(
        svg.starts_with("<svg ") && svg.contains("<line class=\"fit\""),
        "{svg}"
    );

    // The idle service never saturates: exit 1 and what is missing.
    let o = smo_profile(&config, &["shop/web/idle"]);
    let shown = format!("{}{}", text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(1), "{shown}");
    assert!(shown.contains("not enough data:"), "{shown}");
    assert!(shown.contains("only 0 saturated sample(s) of "), "{shown}");
    assert!(!shown.contains("alpha:"), "{shown}");
}

#[test]
fn profile_of_an_unknown_service_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens there: the service is looked up before Prometheus.
    let config = setup(dir.path(), "http://127.0.0.1:9");
    let o = smo_profile(&config, &["shop/web/nope"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("graph shop/web has no service nope"),
        "{}",
        text(&o.stderr)
    );
    let o = smo_profile(&config, &["shop/web"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("PROJECT/GRAPH/SERVICE"),
        "{}",
        text(&o.stderr)
    );
}
