//! "The first descriptor inside" an unpacked artifact, as the original SMO
//! finds it.
//!
//! The original pulls with `hdarctl pull <ref> --untar --destination <tmp>`
//! and walks the result with Python's `os.walk` (top-down: a directory's
//! files before its subdirectories), loading the first file whose name
//! ends in `.yaml` or `.yml`; its caller then requires a top-level
//! `hdaGraph` key. Two deliberate differences:
//! - `os.walk` lists in file-system order, which is not reproducible;
//!   here names are sorted (bytewise), so the same artifact always yields
//!   the same file;
//! - files that are not descriptors (no top-level `hdaGraph` key, or not
//!   YAML at all, like a chart's templates) are passed over instead of
//!   ending the search. A chart-format artifact (what `helm push`
//!   requires) has `Chart.yaml` before `hdag/hdag.yaml` in walk order; the
//!   original would have loaded `Chart.yaml` and failed on the missing
//!   `hdaGraph` key. Wherever the original succeeded, this picks the same
//!   file.

use std::path::{Path, PathBuf};

/// The descriptor of an artifact and the directory it is confined to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The descriptor file.
    pub descriptor: PathBuf,
    /// The artifact root: local chart paths in the descriptor resolve
    /// relative to the descriptor's directory and must stay inside this.
    pub root: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum DescriptorError {
    #[error(
        "no YAML file with a top-level `hdaGraph` key in the artifact ({yaml_files} YAML files looked at{skipped}); package the HDAG descriptor into it"
    )]
    NotFound { yaml_files: usize, skipped: String },
    #[error("reading {path} failed")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The first descriptor under `root`, in the original's walk order.
pub fn find(root: &Path) -> Result<Found, DescriptorError> {
    let mut yaml_files = 0usize;
    let mut unreadable: Vec<String> = Vec::new();
    let descriptor = walk(root, &mut |path| {
        yaml_files += 1;
        let text = std::fs::read_to_string(path).map_err(|source| DescriptorError::Io {
            path: path.to_owned(),
            source,
        })?;
        match crate::validate::yaml::parse_documents(&text) {
            Ok(docs) => Ok(docs.first().is_some_and(|d| {
                d.value
                    .as_object()
                    .is_some_and(|m| m.contains_key("hdaGraph"))
            })),
            Err(e) => {
                let shown = path.strip_prefix(root).unwrap_or(path).display();
                unreadable.push(format!("{shown} line {}: {e}", e.pos.line));
                Ok(false)
            }
        }
    })?;
    match descriptor {
        Some(descriptor) => Ok(Found {
            descriptor,
            root: root.to_owned(),
        }),
        None => Err(DescriptorError::NotFound {
            yaml_files,
            skipped: if unreadable.is_empty() {
                String::new()
            } else {
                format!("; not YAML: {}", unreadable.join("; "))
            },
        }),
    }
}

/// Pre-order walk: the files of `dir` (sorted) before its subdirectories
/// (sorted); the first `.yaml`/`.yml` file `is_descriptor` accepts.
fn walk(
    dir: &Path,
    is_descriptor: &mut impl FnMut(&Path) -> Result<bool, DescriptorError>,
) -> Result<Option<PathBuf>, DescriptorError> {
    let io = |source| DescriptorError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        // The unpacker creates no links; `file_type` does not follow one
        // anyway, so a link could never lead the walk outside.
        let kind = entry.file_type().map_err(io)?;
        if kind.is_dir() {
            dirs.push(entry.path());
        } else if kind.is_file() {
            files.push(entry.path());
        }
    }
    files.sort();
    dirs.sort();
    for file in files {
        let yaml = file.extension().is_some_and(|e| e == "yaml" || e == "yml");
        if yaml && is_descriptor(&file)? {
            return Ok(Some(file));
        }
    }
    for sub in dirs {
        if let Some(found) = walk(&sub, is_descriptor)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        dir
    }

    fn found(files: &[(&str, &str)]) -> String {
        let dir = tree(files);
        let f = find(dir.path()).unwrap();
        assert_eq!(f.root, dir.path());
        f.descriptor
            .strip_prefix(dir.path())
            .unwrap()
            .display()
            .to_string()
    }

    const HDAG: &str = "hdaGraph:\n  id: g\n";

    #[test]
    fn a_chart_format_artifact_yields_its_hdag_not_chart_yaml() {
        assert_eq!(
            found(&[
                ("g/Chart.yaml", "apiVersion: v2\nname: g\nversion: 1.0.0\n"),
                ("g/values.yaml", "{}\n"),
                ("g/hdag/hdag.yaml", HDAG),
                (
                    "g/templates/x.yaml",
                    "{{- if .Values.x }}\nkind: {{ .Values.k }}\n"
                ),
            ]),
            "g/hdag/hdag.yaml"
        );
    }

    #[test]
    fn files_of_a_directory_come_before_its_subdirectories() {
        assert_eq!(
            found(&[("a/deep.yaml", HDAG), ("top.yml", HDAG)]),
            "top.yml"
        );
        assert_eq!(found(&[("b.yaml", HDAG), ("a.yml", HDAG)]), "a.yml");
        assert_eq!(found(&[("b/x.yaml", HDAG), ("a/y.yaml", HDAG)]), "a/y.yaml");
        assert_eq!(
            found(&[("hdag.json", HDAG), ("z/hdag.yaml", HDAG)]),
            "z/hdag.yaml"
        );
    }

    #[test]
    fn no_descriptor_names_what_was_looked_at() {
        let dir = tree(&[("Chart.yaml", "name: g\n"), ("bad.yaml", "a: [\n")]);
        let err = find(dir.path()).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, DescriptorError::NotFound { yaml_files: 2, .. }),
            "{text}"
        );
        assert!(text.contains("bad.yaml line"), "{text}");
    }
}
