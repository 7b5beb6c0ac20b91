//! A `clusters/<name>.yaml` cluster metadata file, as a state root's
//! loader reads it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smo::desired::loader::load_cluster_text;
use smo::validate::Finding;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The loader requires the file to be named after the cluster; take the
    // name the document declares (when it can be a file name) so that the
    // checks after that one run too.
    let declared = smo::validate::yaml::parse_documents(text)
        .ok()
        .and_then(|docs| {
            docs.first()?
                .value
                .pointer("/cluster/name")?
                .as_str()
                .map(str::to_owned)
        })
        .filter(|n| !n.is_empty() && !n.contains(['/', '\0']) && n.len() < 200);
    let stem = declared.as_deref().unwrap_or("edge");
    let shown = format!("clusters/{stem}.yaml");

    let (meta, findings) = load_cluster_text(text, stem, &shown);
    smo_fuzz::check_findings(&findings, text, &shown);
    let errors = findings.iter().any(Finding::is_error);
    assert_eq!(meta.is_some(), !errors, "loaded iff no error: {findings:?}");

    let Some(meta) = meta else { return };
    assert_eq!(meta.name, stem, "a cluster is named after its file");
    // Capacities feed the placement model: finite and not negative.
    for (what, v) in [("reserve cpu", meta.reserve_cpu), ("reserve memory", meta.reserve_memory)] {
        assert!(v.is_finite() && v >= 0.0, "{what} = {v}");
    }
    for v in meta.carbon_intensity.iter().chain(&meta.cost_per_cpu_hour) {
        assert!(v.is_finite() && *v >= 0.0, "{v}");
    }
    for (to, ms) in &meta.latency_ms {
        assert!(ms.is_finite() && *ms >= 0.0, "latency to {to} = {ms}");
    }
    if let Some(p) = &meta.provision {
        assert!(p.vim.password_file.starts_with('/'));
    }
    serde_json::to_string(&meta).expect("cluster metadata serialises");
});
