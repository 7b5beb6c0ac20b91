//! What ships around the binary for operators' tools: the pre-commit hook,
//! the configuration the Debian package installs, and the schemas' ids
//! that editors and modelines rely on.

use crate::support::{fixtures, repo};
use fake_karmada::testing::copy_dir;
use serde_json::Value;
use std::process::{Command, Output};

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(repo().join(path)).unwrap();
    smo::validate::parse_document(&text, path)
        .unwrap_or_else(|f| panic!("{path}: {f:?}"))
        .unwrap_or_else(|| panic!("{path} is empty"))
        .value
}

/// Runs the hook's `entry` as pre-commit would with `pass_filenames:
/// false`: in the repository's top directory, with no file arguments, the
/// hook's `smo` being the binary under test.
fn run_hook(hook: &Value, top: &std::path::Path) -> Output {
    let entry: Vec<&str> = hook["entry"].as_str().unwrap().split_whitespace().collect();
    assert_eq!(entry[0], "smo", "the hook runs smo from the PATH");
    Command::new(env!("CARGO_BIN_EXE_smo"))
        .args(&entry[1..])
        .current_dir(top)
        .output()
        .unwrap()
}

#[test]
fn pre_commit_hook_validates_the_whole_state_root_once_per_commit() {
    let hooks = yaml(".pre-commit-hooks.yaml");
    let hook = hooks
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["id"] == "smo-validate")
        .expect("a hook named smo-validate");
    assert_eq!(hook["language"], "system");
    assert_eq!(hook["pass_filenames"], false);
    assert!(hook["name"].is_string());

    let good = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("state-example"), good.path());
    let o = run_hook(hook, good.path());
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );

    // One broken descriptor fails the commit and is named.
    let bad = fixtures("invalid").join("three-mistakes.yaml");
    let target = good.path().join("projects/brussels/broken.yaml");
    std::fs::copy(&bad, &target).unwrap();
    let o = run_hook(hook, good.path());
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("projects/brussels/broken.yaml:9:"), "{out}");
}

#[test]
fn packaged_configuration_validates_cleanly() {
    let o = Command::new(env!("CARGO_BIN_EXE_smo"))
        .args(["validate", "packaging/config.yaml"])
        .current_dir(repo())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "0 valid graph(s), 0 invalid; 0 error(s), 0 warning(s)"
    );
    assert_eq!(o.status.code(), Some(0));
    let config = std::fs::read_to_string(repo().join("packaging/config.yaml")).unwrap();
    assert!(config.starts_with(
        "# yaml-language-server: $schema=file:///usr/share/smo/schemas/config.schema.json\n"
    ));
    // Paths of a host, not of a clone.
    assert!(config.contains("stateDir: /var/lib/smo\n"));
}

/// Modelines and editor settings name the files; the `$id`s are the
/// schemas' stable names (`urn:smo:schema:<file stem>`), never a host.
#[test]
fn every_schema_has_a_stable_id_after_its_file_name() {
    let mut seen = 0;
    for entry in std::fs::read_dir(repo().join("schemas")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let stem = name.strip_suffix(".schema.json").expect("NAME.schema.json");
        let schema: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(schema["$id"], format!("urn:smo:schema:{stem}"), "{name}");
        assert_eq!(
            schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{name}"
        );
        seen += 1;
    }
    assert_eq!(seen, smo::validate::schema::SchemaKind::ALL.len());
}
