//! Test helper: a one-service graph `shop/web` (service `api`, cpu
//! `small`) loaded through the real loader, with a `scaling` block given
//! as YAML lines indented for `deployment.intent.scaling`.

use crate::desired::Graph;
use crate::validate::Finding;

/// The graph, or the findings when the descriptor is invalid.
pub(crate) fn graph_with_scaling(scaling: &str) -> Result<Graph, Vec<Finding>> {
    let block = if scaling.is_empty() {
        String::new()
    } else {
        let lines: String = scaling
            .lines()
            .map(|l| format!("            {l}\n"))
            .collect();
        format!("          scaling:\n{lines}")
    };
    let text = format!(
        "hdaGraph:\n  imVersion: 0.4.0\n  id: web\n  services:\n    - id: api\n      deployment:\n        trigger:\n          auto:\n            dependencies: []\n        intent:\n          compute: {{cpu: small}}\n{block}      artifact:\n        ociImage: oci://127.0.0.1:5000/charts/api\n"
    );
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("projects/shop/web.yaml");
    std::fs::create_dir_all(file.parent().expect("a parent")).expect("mkdir");
    std::fs::write(&file, text).expect("write the descriptor");
    let state = crate::desired::loader::load_root_with(dir.path(), None).expect("loads");
    let found = state.valid_graphs().next().cloned();
    found.ok_or(state.findings)
}
