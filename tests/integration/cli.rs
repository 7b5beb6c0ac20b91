//! The `smo` binary as an operator (or a pre-commit hook) runs it.

use crate::support::{fixtures, repo};
use std::process::{Command, Output};

fn smo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smo"))
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn validate_state_example_exits_zero() {
    let o = smo(&["validate", "state-example"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert_eq!(
        stdout(&o).trim(),
        "3 valid graph(s), 0 invalid; 0 error(s), 0 warning(s)"
    );
}

#[test]
fn validate_reports_every_mistake_in_editor_format_and_exits_one() {
    let f = fixtures("invalid").join("three-mistakes.yaml");
    let o = smo(&["validate", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    let shown = f.display().to_string();
    assert!(lines[0].starts_with(&format!("{shown}:9:")), "{}", lines[0]);
    assert!(lines[0].contains(": error: /hdaGraph/services/0/id: "));
    assert!(lines[1].starts_with(&format!("{shown}:15:")));
    assert!(lines[1].contains("must be one of light, small, medium, large"));
    assert!(lines[2].starts_with(&format!("{shown}:22:")));
    assert!(lines[2].contains("dependency `databse` is not a service of this graph"));
    assert_eq!(
        lines[3],
        "0 valid graph(s), 1 invalid; 3 error(s), 0 warning(s)"
    );
}

#[test]
fn validate_json_output_has_findings_and_graphs() {
    let bad = fixtures("invalid").join("typo-in-service-key.yaml");
    let o = smo(&[
        "validate",
        "--format",
        "json",
        "state-example",
        bad.to_str().unwrap(),
    ]);
    // Only a warning: exit 0.
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let findings = v["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1);
    let f = &findings[0];
    assert_eq!(f["severity"], "warning");
    assert_eq!(f["line"], 10);
    assert_eq!(f["column"], 11);
    assert_eq!(
        f["pointer"],
        "/hdaGraph/services/0/deployment/intent/conectionPoints"
    );
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `connectionPoints`?")
    );
    let mut graphs: Vec<(String, String, u64)> = v["graphs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["project"].as_str().unwrap().into(),
                g["id"].as_str().unwrap().into(),
                g["services"].as_u64().unwrap(),
            )
        })
        .collect();
    graphs.sort();
    assert_eq!(graphs[0], ("".into(), "typo".into(), 1));
    assert_eq!(
        graphs[1],
        ("athens".into(), "smart-building-graph".into(), 2)
    );
    assert_eq!(
        graphs[2],
        ("brussels".into(), "image-detection-graph".into(), 3)
    );
}

#[test]
fn validate_missing_path_exits_two() {
    let o = smo(&["validate", "no/such/dir.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("does not exist"));
}

#[test]
fn unknown_subcommands_and_flags_exit_two() {
    assert_eq!(smo(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(smo(&["validate", "--format", "xml"]).status.code(), Some(2));
    assert_eq!(smo(&["--help"]).status.code(), Some(0));
}
