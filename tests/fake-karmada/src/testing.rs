//! Helpers shared by the test suites that drive the fake with real tools.

use std::io::Write;
use std::path::PathBuf;

/// Path of an external tool named by an environment variable
/// (`SMO_HELM`, `SMO_HELM3`, `SMO_REGISTRY`). In CI (`CI=true`) a missing
/// tool fails the test; elsewhere the test is skipped with a loud message.
pub fn tool(var: &str) -> Option<PathBuf> {
    let found = std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|p| p.is_file());
    if found.is_some() {
        return found;
    }
    let hint = format!(
        "{var} is not set or does not name a file; `source .ci/install-tools.sh` installs helm and the registry and exports it"
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{hint} (CI=true: tests needing it must not be skipped)");
    }
    // Written past the test harness's output capture, so it shows.
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!!!!! SKIPPING TEST: {hint} !!!!!!!!\n"
    );
    None
}

/// Copies a directory tree (test fixtures such as a state root).
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("create {}: {e}", to.display()));
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display()))
    {
        let entry = entry.expect("directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target)
                .unwrap_or_else(|e| panic!("copy {}: {e}", entry.path().display()));
        }
    }
}

/// Whether a request path is helm's release storage: the Secrets of one
/// namespace, which every helm command reads. smo's own client lists
/// Secrets across namespaces (`/api/v1/secrets`, the sweep by ownership),
/// so that listing is not counted as a helm call.
pub fn is_helm_storage(path: &str) -> bool {
    path.contains("/namespaces/") && path.contains("/secrets")
}
