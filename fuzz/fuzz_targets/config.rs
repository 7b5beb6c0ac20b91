//! The two configuration files: the daemon's host configuration
//! (`/etc/smo/config.yaml`, `smo::spec::config`) and a state root's
//! settings (`smo.yaml`, `smo::spec::settings`). Each input is read as
//! both; they share the YAML reader, units and durations.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smo::desired::loader::load_settings_text;
use smo::spec::config::{self, ConfigError, GitAuth, RuleSink, Source};
use smo::validate::Finding;
use std::path::Path;

const CONFIG: &str = "/etc/smo/config.yaml";
const SETTINGS: &str = "smo.yaml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    host_config(text);
    settings(text);
});

fn host_config(text: &str) {
    let base = Path::new("/etc/smo");
    match config::parse(text, CONFIG, base) {
        Err(e @ ConfigError::Invalid { .. }) => {
            let ConfigError::Invalid { path, findings } = &e;
            assert_eq!(path, CONFIG);
            assert!(findings.iter().any(Finding::is_error), "refused without an error");
            smo_fuzz::check_findings(findings, text, CONFIG);
            let _ = e.to_string();
        }
        Ok(c) => {
            // Relative paths resolve against the file's directory.
            let mut paths = vec![&c.state_dir];
            match &c.source {
                Source::Dir { path, debounce } => {
                    paths.push(path);
                    assert!(!debounce.is_zero());
                }
                Source::Git { interval, auth, .. } => {
                    assert!(!interval.is_zero());
                    match auth {
                        GitAuth::Token { file, .. } | GitAuth::SshKey { file } => paths.push(file),
                        GitAuth::None => {}
                    }
                }
            }
            if let RuleSink::Dir(d) = &c.prometheus.rules {
                paths.push(d);
            }
            paths.extend(c.karmada.kubeconfig.iter());
            paths.extend(c.grafana.token_file.iter());
            paths.extend(c.grafana.dashboards_dir.iter());
            paths.extend(c.http.token_file.iter());
            for p in paths {
                assert!(p.is_absolute(), "{} is not resolved", p.display());
            }
            for d in [
                c.helm.timeout,
                c.prometheus.query_timeout,
                c.resync_interval,
                c.scaling_interval,
            ]
            .into_iter()
            .chain(c.nfvcl.as_ref().map(|n| n.timeout))
            {
                assert!(!d.is_zero(), "a zero duration was accepted");
            }
            serde_json::to_string(&c).expect("configuration serialises");
        }
    }
}

fn settings(text: &str) {
    let (settings, findings) = load_settings_text(text, SETTINGS);
    smo_fuzz::check_findings(&findings, text, SETTINGS);
    let errors = findings.iter().any(Finding::is_error);
    assert_eq!(settings.is_some(), !errors, "valid iff no error: {findings:?}");
    let Some(s) = settings else { return };
    let i = &s.intents;
    for (what, v) in i.cpu.iter().chain(&i.ram).chain(&i.storage).map(|v| ("intent", *v)) {
        assert!(v.is_finite() && v >= 0.0, "{what} = {v}");
    }
    let w = &s.placement.weights;
    for v in [w.movement, w.traffic, w.energy, w.cost, w.balance] {
        assert!(v.is_finite() && v >= 0.0, "weight {v}");
    }
    assert!((0.0..=1.0).contains(&s.placement.mip_gap));
    assert!(s.placement.low_latency_ms.is_finite() && s.placement.low_latency_ms >= 10.0);
    let sc = &s.scaling;
    assert!(1 <= sc.min_replicas && sc.min_replicas <= sc.max_replicas, "{sc:?}");
    assert!(!sc.query.is_empty());
    for v in [sc.cpu_weight, sc.change_weight] {
        assert!(v.is_finite() && v >= 0.0);
    }
    assert!((0.0..=100.0).contains(&s.prune_max_delete_percent));
    serde_json::to_string(&s).expect("settings serialise");
}
