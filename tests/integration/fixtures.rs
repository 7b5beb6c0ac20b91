//! Descriptor fixtures on disk. Each invalid fixture lists the findings it
//! must produce as `# expect: SEVERITY LINE POINTER` lines; the findings
//! must be exactly those (no more, no fewer).

use crate::support::{expectations, findings_of, fixtures, yaml_files};
use smo::desired::loader::load_files;

#[test]
fn invalid_fixtures_report_exactly_their_expected_findings() {
    let files = yaml_files(&fixtures("invalid"));
    assert!(
        files.len() >= 30,
        "at least 30 invalid fixtures, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for file in files {
        let expected = expectations(&file);
        assert!(
            !expected.is_empty(),
            "{} has no expectations",
            file.display()
        );
        let (actual, state) = findings_of(&file);
        if actual != expected {
            failures.push(format!(
                "{}:\n  expected {expected:?}\n  actual   {actual:?}\n  messages {:#?}",
                file.display(),
                state
                    .findings
                    .iter()
                    .map(|f| &f.message)
                    .collect::<Vec<_>>()
            ));
        }
        if expected.iter().any(|e| e.severity == "error") {
            assert!(
                state.valid_graphs().next().is_none(),
                "{} must not yield a graph",
                file.display()
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_finding_has_a_message_that_says_what_to_do() {
    for file in yaml_files(&fixtures("invalid")) {
        let state = load_files(std::slice::from_ref(&file)).unwrap();
        for f in &state.findings {
            assert!(
                f.message.len() > 15,
                "{}: terse message {:?}",
                file.display(),
                f.message
            );
            assert!(f.line >= 1 && f.column >= 1);
        }
    }
}

#[test]
fn valid_fixtures_have_no_findings() {
    let files = yaml_files(&fixtures("valid"));
    assert!(files.len() >= 3);
    for file in files {
        let state = load_files(std::slice::from_ref(&file)).unwrap();
        assert!(
            state.findings.is_empty(),
            "{}: {:#?}",
            file.display(),
            state.findings
        );
        assert_eq!(state.valid_graphs().count(), 1, "{}", file.display());
    }
}

#[test]
fn nephele_spellings_are_read_as_booleans() {
    let state = load_files(&[fixtures("valid").join("nephele-style.yaml")]).unwrap();
    let g = state.valid_graphs().next().unwrap();
    let intent = &g.descriptor.hda_graph.hda_graph_intent;
    assert!(intent.use_static_placement.0);
    assert!(!intent.high_availability.enabled.0);
    let services = &g.descriptor.hda_graph.services;
    assert!(!services[0].deployment.intent.compute.gpu.on());
    assert!(services[1].deployment.intent.compute.gpu.on());
    assert_eq!(
        services[0].deployment.intent.network.latencies[0].target(),
        None
    );
    assert_eq!(
        services[0].named_clusters(),
        Some(vec!["brussels-edge".to_owned()])
    );
    assert_eq!(
        services[1].deployment.intent.co_location[0].id(),
        "camera-vo"
    );
}

#[test]
fn three_independent_mistakes_are_all_reported_with_their_lines() {
    let state = load_files(&[fixtures("invalid").join("three-mistakes.yaml")]).unwrap();
    let lines: Vec<usize> = state.findings.iter().map(|f| f.line).collect();
    assert_eq!(lines, vec![9, 15, 22]);
    assert!(
        state.findings[2]
            .message
            .contains("services of this graph: Frontend, backend"),
        "{}",
        state.findings[2].message
    );
}
