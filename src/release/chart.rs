//! Where a service's chart comes from: an OCI reference or a chart
//! directory inside the state root (relative to the descriptor's file).
//!
//! A local chart's content is part of the release inputs (editing a
//! template must upgrade the release), so it is digested here: every file
//! under the chart directory, in path order, with its relative path.

use crate::descriptor::model::Service;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// A chart helm can install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartRef {
    /// `oci://host/path/chart` (without a tag) or a local directory.
    pub chart: String,
    /// `--version`: `artifact.version`, else the reference's tag.
    pub version: Option<String>,
    /// Digest of a local chart's files.
    pub digest: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("chart `{chart}` of service `{service}` cannot be read: {source}")]
    Read {
        service: String,
        chart: String,
        #[source]
        source: std::io::Error,
    },
}

/// Resolves the chart of `service`, declared in `file` (relative to
/// `root`). Validation already checked that local charts exist inside the
/// root; this re-reads them (the directory may be a new revision).
pub fn resolve(root: &Path, file: &str, service: &Service) -> Result<ChartRef, ChartError> {
    let image = service.artifact.oci_image.as_str();
    let pinned = service.artifact.version.clone();
    if let Some(rest) = image.strip_prefix("oci://") {
        // A tag on the last path segment is the chart version: helm wants
        // it as --version (older helm rejects tags in the reference).
        let (reference, tag) = match rest.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r, Some(t.to_owned())),
            _ => (rest, None),
        };
        return Ok(ChartRef {
            chart: format!("oci://{reference}"),
            version: pinned.or(tag),
            digest: None,
        });
    }
    let dir = root
        .join(file)
        .parent()
        .map_or_else(|| root.to_path_buf(), Path::to_path_buf)
        .join(image);
    let read_err = |source| ChartError::Read {
        service: service.id.to_string(),
        chart: image.to_owned(),
        source,
    };
    let dir = dir.canonicalize().map_err(read_err)?;
    let digest = digest_dir(&dir).map_err(read_err)?;
    Ok(ChartRef {
        chart: dir.display().to_string(),
        version: pinned,
        digest: Some(digest),
    })
}

/// SHA-256 over every regular file below `dir` (relative path and content),
/// in sorted path order; symlinks are followed as helm follows them.
pub fn digest_dir(dir: &Path) -> std::io::Result<String> {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut h = Sha256::new();
    for f in files {
        let rel = f.strip_prefix(dir).unwrap_or(&f).to_string_lossy();
        let bytes = std::fs::read(&f)?;
        h.update((rel.len() as u64).to_le_bytes());
        h.update(rel.as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    Ok(super::values::hex(&h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_changes_with_content_and_names_not_with_time() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("templates")).unwrap();
        std::fs::write(d.path().join("Chart.yaml"), "name: a\n").unwrap();
        std::fs::write(d.path().join("templates/x.yaml"), "kind: X\n").unwrap();
        let a = digest_dir(d.path()).unwrap();
        assert_eq!(a, digest_dir(d.path()).unwrap());
        std::fs::write(d.path().join("templates/x.yaml"), "kind: Y\n").unwrap();
        let b = digest_dir(d.path()).unwrap();
        assert_ne!(a, b);
        std::fs::rename(
            d.path().join("templates/x.yaml"),
            d.path().join("templates/z.yaml"),
        )
        .unwrap();
        assert_ne!(b, digest_dir(d.path()).unwrap());
    }
}
