//! `state-example/` is documentation that must stay true: every file in it
//! validates, and its numbers are the ones the README promises.

use crate::support::repo;
use smo::desired::loader::{load_files, load_root};
use smo::spec::{config, inventory};

#[test]
fn every_file_of_the_example_validates() {
    let root = repo().join("state-example");
    let state = load_root(&root).unwrap();
    assert!(state.findings.is_empty(), "{:#?}", state.findings);
    assert!(state.settings_valid);
    let mut graphs: Vec<(&str, &str, usize)> = state
        .valid_graphs()
        .map(|g| {
            (
                g.project.as_str(),
                g.id(),
                g.descriptor.hda_graph.services.len(),
            )
        })
        .collect();
    graphs.sort();
    assert_eq!(
        graphs,
        vec![
            ("athens", "smart-building-graph", 2),
            ("brussels", "image-detection-graph", 3),
            ("demo2", "gpu-offloading-graph", 2)
        ]
    );
    assert_eq!(state.clusters.len(), 3);
    // Files outside the layout are validated when named explicitly.
    let extra = load_files(&[
        root.join("inventory.yaml"),
        root.join("config.yaml"),
        root.join("smo.yaml"),
    ])
    .unwrap();
    assert!(extra.findings.is_empty(), "{:#?}", extra.findings);
}

#[test]
fn example_settings_spell_out_the_defaults() {
    let state = load_root(&repo().join("state-example")).unwrap();
    assert_eq!(state.settings, smo::spec::settings::Settings::default());
}

#[test]
fn example_inventory_matches_the_cluster_files() {
    let root = repo().join("state-example");
    let inv = inventory::load(&root.join("inventory.yaml")).unwrap();
    let state = load_root(&root).unwrap();
    let mut names: Vec<&str> = inv.clusters.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        state
            .clusters
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
    let gpu: Vec<&str> = inv
        .clusters
        .iter()
        .filter(|c| c.gpu.allocatable > 0.0)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(gpu, vec!["lyon-gpu"]);
    assert_eq!(inv.clusters[0].cpu.free(), 3.5);
}

#[test]
fn example_config_loads_with_resolved_values() {
    let cfg = config::load(&repo().join("state-example/config.yaml")).unwrap();
    assert_eq!(cfg.http.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(cfg.resync_interval.as_secs(), 300);
    assert!(matches!(cfg.source, config::Source::Git { interval, .. } if interval.as_secs() == 30));
    assert!(matches!(cfg.prometheus.rules, config::RuleSink::Dir(_)));
    assert_eq!(cfg.hdar.interval.as_secs(), 30);
    assert!(
        cfg.hdar
            .auth_file
            .as_deref()
            .is_some_and(|f| f.ends_with("hdar-auth.json"))
    );
    // Without an `hdar` block, references follow the source's interval
    // (1 minute for a directory).
    let dir = config::parse(
        "source:\n  dir: /srv/state\n",
        "config.yaml",
        std::path::Path::new("/etc/smo"),
    )
    .unwrap();
    assert_eq!(dir.hdar.interval.as_secs(), 60);
    assert_eq!(dir.hdar.auth_file, None);
    let bad = config::parse(
        "source:\n  dir: /srv/state\nhdar:\n  interval: soon\n",
        "config.yaml",
        std::path::Path::new("/etc/smo"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        bad.contains("/hdar/interval") || bad.contains("hdar"),
        "{bad}"
    );
}

#[test]
fn config_errors_name_the_field_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, "source:\n  dir: /srv/state\nhelm:\n  timeout: forever\nhttp:\n  listen: nowhere\nlog:\n  format: xml\n").unwrap();
    let err = config::load(&path).unwrap_err();
    let config::ConfigError::Invalid { findings, .. } = err;
    let at: Vec<(usize, &str)> = findings
        .iter()
        .map(|f| (f.line, f.pointer.as_str()))
        .collect();
    assert_eq!(
        at,
        vec![
            (4, "/helm/timeout"),
            (6, "/http/listen"),
            (8, "/log/format")
        ]
    );
}

#[test]
fn config_needs_exactly_one_source() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, "source:\n  dir: /a\n  git: {url: file:///b}\n").unwrap();
    let config::ConfigError::Invalid { findings, .. } = config::load(&path).unwrap_err();
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].pointer, "/source");
    assert!(
        findings[0]
            .message
            .contains("exactly one of `dir` or `git`")
    );
}

#[test]
fn config_nfvcl_block_is_optional_and_has_a_default_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, "source:\n  dir: /srv/state\n").unwrap();
    assert_eq!(config::load(&path).unwrap().nfvcl, None);
    std::fs::write(
        &path,
        "source:\n  dir: /srv/state\nnfvcl:\n  url: http://nfvcl.example:5002/\n",
    )
    .unwrap();
    let nfvcl = config::load(&path).unwrap().nfvcl.unwrap();
    assert_eq!(nfvcl.url, "http://nfvcl.example:5002");
    assert_eq!(nfvcl.timeout.as_secs(), 30);
    std::fs::write(
        &path,
        "source:\n  dir: /srv/state\nnfvcl:\n  url: http://n\n  timeout: soon\n",
    )
    .unwrap();
    let config::ConfigError::Invalid { findings, .. } = config::load(&path).unwrap_err();
    let at: Vec<(usize, &str)> = findings
        .iter()
        .map(|f| (f.line, f.pointer.as_str()))
        .collect();
    assert_eq!(at, vec![(5, "/nfvcl/timeout")]);
}
