//! Between snapshots, descriptor files whose bytes did not change are not
//! parsed, translated, schema-checked or deserialised again: their
//! [`Content`] is kept, keyed by the path shown (relative to the state
//! root, so a Git checkout per revision shares entries) and the SHA-256 of
//! the bytes. Everything that depends on more than the file — semantic
//! checks (charts on disk, known clusters), cross-file checks, HDAR
//! fetches — runs at every load. A cache is an optimisation, never a
//! source of truth: the bytes are read and hashed every time, and a read
//! error is never cached.

use super::loader::Content;
use crate::locks::MutexExt;
use crate::validate::findings::{Finding, Pos, Severity};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Parsed descriptor contents by file; see the module documentation.
#[derive(Debug, Default)]
pub struct ParseCache {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<String, (String, Arc<Content>)>,
    /// Files looked up since the last sweep.
    seen: HashSet<String>,
    /// Contents computed (cache misses) since creation.
    parsed: u64,
}

impl ParseCache {
    pub fn new() -> ParseCache {
        ParseCache::default()
    }

    /// The content of the descriptor at `path`, shown as `shown`.
    pub(super) fn content(&self, path: &Path, shown: &str) -> Arc<Content> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                return Arc::new(Content::Broken(vec![Finding::new(
                    shown,
                    Pos { line: 1, column: 1 },
                    "",
                    Severity::Error,
                    format!("cannot read file: {e}"),
                )]));
            }
        };
        let hash = crate::digest::sha256_hex(&bytes);
        {
            let mut inner = self.inner.lock_or_recover();
            inner.seen.insert(shown.to_owned());
            if let Some((h, content)) = inner.entries.get(shown)
                && *h == hash
            {
                return Arc::clone(content);
            }
        }
        let content = Arc::new(Content::of(
            crate::validate::parse_bytes(bytes, shown),
            shown,
        ));
        let mut inner = self.inner.lock_or_recover();
        inner.parsed += 1;
        inner
            .entries
            .insert(shown.to_owned(), (hash, Arc::clone(&content)));
        content
    }

    /// Drops the entries of files not looked up since the previous sweep
    /// (files gone from the tree): memory follows the tree's size.
    pub(super) fn sweep(&self) {
        let mut inner = self.inner.lock_or_recover();
        let seen = std::mem::take(&mut inner.seen);
        inner.entries.retain(|k, _| seen.contains(k));
    }

    /// How many file contents were computed rather than re-used.
    pub fn parsed(&self) -> u64 {
        self.inner.lock_or_recover().parsed
    }

    /// How many files are held.
    pub fn len(&self) -> usize {
        self.inner.lock_or_recover().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::ParseCache;
    use crate::desired::loader::load_root_cached;
    use crate::desired::{DesiredState, GraphEntry};
    use std::path::Path;

    fn descriptor(id: &str, service: &str, chart: &str) -> String {
        format!(
            "hdaGraph:\n  imVersion: 0.4.0\n  id: {id}\n  services:\n    - id: {service}\n      deployment: {{trigger: {{auto: {{}}}}, intent: {{compute: {{cpu: light, ram: light}}}}}}\n      artifact: {{ociImage: \"{chart}\", ociConfig: {{type: App, implementer: HELM}}}}\n"
        )
    }

    fn tree(root: &Path, graphs: usize) {
        let p = root.join("projects/p");
        std::fs::create_dir_all(&p).unwrap();
        for i in 0..graphs {
            std::fs::write(
                p.join(format!("g{i}.yaml")),
                descriptor(&format!("g{i}"), &format!("s{i}"), "oci://r/c/s"),
            )
            .unwrap();
        }
    }

    fn load(root: &Path, cache: &ParseCache) -> DesiredState {
        load_root_cached(root, None, Some(cache)).unwrap()
    }

    fn entry<'a>(s: &'a DesiredState, file: &str) -> &'a GraphEntry {
        s.graphs.iter().find(|e| e.file == file).unwrap()
    }

    fn errors_of(s: &DesiredState, file: &str) -> Vec<String> {
        s.findings
            .iter()
            .filter(|f| f.file == file && f.is_error())
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn editing_one_of_200_files_parses_one_and_loads_what_a_fresh_load_does() {
        let dir = tempfile::tempdir().unwrap();
        tree(dir.path(), 200);
        let cache = ParseCache::new();
        let first = load(dir.path(), &cache);
        assert_eq!(cache.parsed(), 200);
        assert_eq!(
            first.graphs.iter().filter(|e| e.graph.is_some()).count(),
            200
        );

        assert_eq!(load(dir.path(), &cache), first, "an unchanged tree");
        assert_eq!(cache.parsed(), 200, "nothing parsed again");

        std::fs::write(
            dir.path().join("projects/p/g7.yaml"),
            descriptor("g7", "s7", "oci://r/c/other"),
        )
        .unwrap();
        let edited = load(dir.path(), &cache);
        assert_eq!(cache.parsed(), 201, "one file parsed again");
        let fresh = crate::desired::loader::load_root(dir.path()).unwrap();
        assert_eq!(edited, fresh, "the cache changes nothing but the work");
        let g7 = entry(&edited, "projects/p/g7.yaml").graph.as_ref().unwrap();
        assert_eq!(
            g7.descriptor.hda_graph.services[0]
                .artifact
                .oci_image
                .to_string(),
            "oci://r/c/other"
        );

        // Another checkout of the same content (a Git revision) shares it.
        let other = tempfile::tempdir().unwrap();
        tree(other.path(), 200);
        std::fs::write(
            other.path().join("projects/p/g7.yaml"),
            descriptor("g7", "s7", "oci://r/c/other"),
        )
        .unwrap();
        load(other.path(), &cache);
        assert_eq!(cache.parsed(), 201);
    }

    #[test]
    fn cross_file_checks_removals_and_broken_files_still_hold() {
        let dir = tempfile::tempdir().unwrap();
        tree(dir.path(), 3);
        let cache = ParseCache::new();
        load(dir.path(), &cache);

        // An edit that duplicates g0's identity: both files are in error,
        // although g0.yaml itself did not change.
        std::fs::write(
            dir.path().join("projects/p/g1.yaml"),
            descriptor("g0", "s1", "oci://r/c/s"),
        )
        .unwrap();
        let dup = load(dir.path(), &cache);
        for f in ["projects/p/g0.yaml", "projects/p/g1.yaml"] {
            assert!(entry(&dup, f).graph.is_none(), "{f}");
            assert!(!errors_of(&dup, f).is_empty(), "{f}");
        }

        // A file that is gone: its graph is gone, and so is its entry.
        std::fs::remove_file(dir.path().join("projects/p/g2.yaml")).unwrap();
        let removed = load(dir.path(), &cache);
        assert!(
            removed
                .graphs
                .iter()
                .all(|e| e.file != "projects/p/g2.yaml")
        );
        assert_eq!(cache.len(), 2);

        // A half-saved file: no graph id, its error reported.
        std::fs::write(dir.path().join("projects/p/g0.yaml"), "hdaGraph:\n  id: [").unwrap();
        let broken = load(dir.path(), &cache);
        let e = entry(&broken, "projects/p/g0.yaml");
        assert!(e.id.is_none() && e.graph.is_none());
        assert!(!errors_of(&broken, "projects/p/g0.yaml").is_empty());
    }

    #[test]
    fn a_chart_that_changes_under_an_unchanged_descriptor_is_judged_again() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("projects/p");
        std::fs::create_dir_all(p.join("charts/web")).unwrap();
        std::fs::write(
            p.join("charts/web/Chart.yaml"),
            "apiVersion: v2\nname: web\nversion: 0.1.0\n",
        )
        .unwrap();
        std::fs::write(p.join("g.yaml"), descriptor("g", "web", "charts/web")).unwrap();
        let cache = ParseCache::new();
        let ok = load(dir.path(), &cache);
        assert!(
            entry(&ok, "projects/p/g.yaml").graph.is_some(),
            "{:?}",
            ok.findings
        );

        std::fs::remove_dir_all(p.join("charts/web")).unwrap();
        let gone = load(dir.path(), &cache);
        assert_eq!(cache.parsed(), 1, "the descriptor was not parsed again");
        assert!(entry(&gone, "projects/p/g.yaml").graph.is_none());
        assert!(
            errors_of(&gone, "projects/p/g.yaml")
                .iter()
                .any(|e| e.contains("ociImage")),
            "{:?}",
            gone.findings
        );
    }
}
