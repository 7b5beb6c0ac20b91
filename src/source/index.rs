//! What a snapshot holds, file by file: each path (relative to the state
//! root, `/`-separated) with a digest of its content. Comparing the index
//! of a new snapshot with the previous one tells which files changed, so
//! that only the graphs those files can affect are reconciled again.

use std::collections::{BTreeMap, BTreeSet};

/// Path → content digest (SHA-256 for a directory, the blob id for Git).
/// Digests are only compared with digests of the same source.
pub type FileIndex = BTreeMap<String, String>;

/// The paths added, removed or changed from `before` to `after`.
pub fn changed<'a>(before: &'a FileIndex, after: &'a FileIndex) -> BTreeSet<&'a str> {
    let mut out: BTreeSet<&str> = after
        .iter()
        .filter(|(path, digest)| before.get(*path) != Some(*digest))
        .map(|(path, _)| path.as_str())
        .collect();
    out.extend(
        before
            .keys()
            .filter(|path| !after.contains_key(*path))
            .map(String::as_str),
    );
    out
}

/// What a set of changed paths can affect, by the layout of a state root.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Touched {
    /// A file outside `projects/` (settings, clusters, anything unknown):
    /// every graph may be affected.
    pub everything: bool,
    /// Projects with a changed file other than a descriptor (a local
    /// chart, a values file): any graph of theirs may be affected.
    pub projects: BTreeSet<String>,
}

impl Touched {
    /// Descriptor files (`projects/<project>/<file>.yaml|yml|json`) are not
    /// counted: what they declare is compared graph by graph.
    pub fn of<'a>(paths: impl IntoIterator<Item = &'a str>) -> Touched {
        let mut t = Touched::default();
        for path in paths {
            let parts: Vec<&str> = path.split('/').collect();
            match parts.as_slice() {
                ["projects", _, file] if is_descriptor_name(file) => {}
                ["projects", project, _, ..] => {
                    t.projects.insert((*project).to_owned());
                }
                _ => t.everything = true,
            }
        }
        t
    }

    /// Everything is touched: what is not known is assumed changed.
    pub fn all() -> Touched {
        Touched {
            everything: true,
            projects: BTreeSet::new(),
        }
    }

    pub fn includes(&self, project: &str) -> bool {
        self.everything || self.projects.contains(project)
    }
}

fn is_descriptor_name(file: &str) -> bool {
    [".yaml", ".yml", ".json"]
        .iter()
        .any(|ext| file.len() > ext.len() && file.ends_with(ext))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(files: &[(&str, &str)]) -> FileIndex {
        files
            .iter()
            .map(|(p, d)| ((*p).to_owned(), (*d).to_owned()))
            .collect()
    }

    #[test]
    fn changed_lists_edits_additions_and_removals() {
        let before = index(&[("a", "1"), ("b", "1"), ("c", "1")]);
        let after = index(&[("a", "1"), ("b", "2"), ("d", "1")]);
        let got: Vec<&str> = changed(&before, &after).into_iter().collect();
        assert_eq!(got, ["b", "c", "d"]);
        assert!(changed(&before, &before).is_empty());
    }

    #[test]
    fn descriptors_charts_and_global_files_are_told_apart() {
        let t = Touched::of(["projects/p1/web.yaml", "projects/p2/g.json"]);
        assert_eq!(t, Touched::default(), "descriptors are compared by graph");
        let t = Touched::of(["projects/p1/charts/web/values.yaml"]);
        assert!(!t.everything);
        assert!(t.includes("p1") && !t.includes("p2"));
        let t = Touched::of(["projects/p1/README.md"]);
        assert!(t.includes("p1") && !t.includes("p2"));
        for global in [
            "smo.yaml",
            "clusters/edge.yaml",
            "notes.txt",
            "projects/x.yaml",
        ] {
            assert!(Touched::of([global]).everything, "{global}");
        }
    }
}
