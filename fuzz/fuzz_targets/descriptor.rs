//! An HDAG descriptor through the path `smo validate FILE` takes: the YAML
//! reader, the schema, the typed model, the semantic checks and intent
//! translation (without the checks that need the disk).
#![no_main]

use libfuzzer_sys::fuzz_target;
use smo::desired::loader::load_descriptor_text;
use smo::validate::Finding;

const SHOWN: &str = "projects/p/x.yaml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let state = load_descriptor_text(text, SHOWN);

    // Deterministic: a reconcile compares loads of the same file.
    assert_eq!(state, load_descriptor_text(text, SHOWN));

    smo_fuzz::check_findings(&state.findings, text, SHOWN);
    smo_fuzz::check_sorted(&state.findings);

    // One file, one entry; valid exactly when nothing is an error.
    assert_eq!(state.graphs.len(), 1);
    let entry = &state.graphs[0];
    assert_eq!(entry.file, SHOWN);
    let errors = state.findings.iter().any(Finding::is_error);
    assert_eq!(
        entry.graph.is_some(),
        !errors,
        "a graph is valid iff it has no error: {:?}",
        state.findings
    );
    if entry.graph.is_none() && entry.id.is_none() {
        // Nothing to hold: there must be a reason.
        assert!(errors);
    }

    let Some(graph) = &entry.graph else { return };
    let services = &graph.descriptor.hda_graph.services;
    assert_eq!(entry.id.as_deref(), Some(graph.id()));
    assert!(!services.is_empty(), "a valid graph has services");
    assert_eq!(graph.resources.len(), services.len());
    for r in &graph.resources {
        for v in [r.cpu_cores, r.memory_bytes, r.storage_bytes] {
            assert!(v.is_finite() && v >= 0.0, "resources {r:?}");
        }
    }
    let ids: std::collections::BTreeSet<&str> = services.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids.len(), services.len(), "service ids are unique");
    for s in services {
        for d in s.dependencies() {
            assert!(ids.contains(d.as_str()), "dependency `{d}` of `{}` resolves", s.id);
        }
    }
    // What a valid graph becomes is serialisable (status, `smo plan --format json`).
    serde_json::to_string(graph).expect("a valid graph serialises");
});

