//! Where a service's chart comes from: an OCI reference or a chart
//! directory inside the state root (relative to the descriptor's file).
//!
//! A local chart's content is part of the release inputs (editing a
//! template must upgrade the release), so it is digested here: every file
//! under the chart directory, in path order, with its relative path.
//!
//! The chart is checked again right before helm runs (the tree may have
//! changed since validation): every symlink must stay inside the chart, no
//! cycle, at most [`MAX_CHART_BYTES`] ([`crate::descriptor::chart_files`]).
//! A chart that breaks this is a [`ChartError::Unsafe`], never handed to
//! helm.

use crate::descriptor::chart_files::{self, ChartFile, ChartFilesError};
use crate::descriptor::model::Service;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

pub use crate::descriptor::chart_files::MAX_CHART_BYTES;

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
    #[error("chart `{chart}` of service `{service}` is refused: {source}")]
    Unsafe {
        service: String,
        chart: String,
        #[source]
        source: ChartFilesError,
    },
}

/// Resolves the chart of `service`, declared in `file` (relative to
/// `root`). Validation already checked that local charts exist inside the
/// root and that helm would read nothing outside them; this re-reads and
/// re-checks them (the directory may be a new revision, or edited since).
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
    let unsafe_err = |source| ChartError::Unsafe {
        service: service.id.to_string(),
        chart: image.to_owned(),
        source,
    };
    let dir = dir.canonicalize().map_err(|source| ChartError::Read {
        service: service.id.to_string(),
        chart: image.to_owned(),
        source,
    })?;
    let root = root.canonicalize().map_err(|source| ChartError::Read {
        service: service.id.to_string(),
        chart: image.to_owned(),
        source,
    })?;
    if !dir.starts_with(&root) {
        return Err(unsafe_err(ChartFilesError::LinkEscapes {
            link: image.into(),
            target: dir.clone(),
            outside_root: true,
        }));
    }
    let files = chart_files::files(&root, &dir).map_err(unsafe_err)?;
    let digest = digest(&files).map_err(unsafe_err)?;
    Ok(ChartRef {
        chart: dir.display().to_string(),
        version: pinned,
        digest: Some(digest),
    })
}

/// The clusters a chart's own `values.yaml` names in `clustersAffinity`
/// (under `voChartOverwrite` for WOT implementers), for a local chart
/// inside the state root; `None` for a chart in a registry or without
/// such a list. What static placement leaves to the chart, made visible.
pub fn default_clusters(root: &Path, file: &str, service: &Service) -> Option<Vec<String>> {
    let chart = resolve(root, file, service).ok()?;
    chart.digest.as_ref()?;
    let text = std::fs::read_to_string(Path::new(&chart.chart).join("values.yaml")).ok()?;
    let doc = crate::validate::parse_document(&text, "values.yaml").ok()??;
    let scope = match service.artifact.oci_config.implementer {
        crate::descriptor::model::Implementer::Wot => doc.value.get("voChartOverwrite")?,
        crate::descriptor::model::Implementer::Helm => &doc.value,
    };
    let clusters: Vec<String> = scope
        .get("clustersAffinity")?
        .as_array()?
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    (!clusters.is_empty()).then_some(clusters)
}

/// SHA-256 over every file of a chart (relative path and content), in
/// path order. A file that grew since it was listed is refused: nothing
/// past the checked size is read.
fn digest(files: &[ChartFile]) -> Result<String, ChartFilesError> {
    let mut h = Sha256::new();
    let mut bytes = Vec::new();
    for f in files {
        let rel = f.rel.to_string_lossy();
        bytes.clear();
        std::fs::File::open(&f.path)
            .and_then(|file| file.take(f.len.saturating_add(1)).read_to_end(&mut bytes))
            .map_err(|source| ChartFilesError::Read {
                path: f.rel.clone(),
                source,
            })?;
        if bytes.len() as u64 > f.len {
            return Err(ChartFilesError::Changed {
                path: f.rel.clone(),
            });
        }
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

    fn digest_dir(dir: &Path) -> String {
        digest(&chart_files::files(dir, dir).unwrap()).unwrap()
    }

    #[test]
    fn digest_changes_with_content_and_names_not_with_time() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("templates")).unwrap();
        std::fs::write(d.path().join("Chart.yaml"), "name: a\n").unwrap();
        std::fs::write(d.path().join("templates/x.yaml"), "kind: X\n").unwrap();
        let a = digest_dir(d.path());
        assert_eq!(a, digest_dir(d.path()));
        std::fs::write(d.path().join("templates/x.yaml"), "kind: Y\n").unwrap();
        let b = digest_dir(d.path());
        assert_ne!(a, b);
        std::fs::rename(
            d.path().join("templates/x.yaml"),
            d.path().join("templates/z.yaml"),
        )
        .unwrap();
        assert_ne!(b, digest_dir(d.path()));
    }

    /// A state root with `projects/p/g.yaml` and the chart `charts/a` next
    /// to it; the host's secret sits outside the root, beside it.
    #[cfg(unix)]
    struct Layout {
        _host: tempfile::TempDir,
        root: std::path::PathBuf,
        chart: std::path::PathBuf,
    }

    #[cfg(unix)]
    fn layout() -> Layout {
        let host = tempfile::tempdir().unwrap();
        std::fs::write(host.path().join("secret.txt"), "hunter2\n").unwrap();
        let root = host.path().join("state");
        let chart = root.join("projects/p/charts/a");
        std::fs::create_dir_all(chart.join("templates")).unwrap();
        std::fs::create_dir_all(chart.join("files")).unwrap();
        std::fs::write(
            chart.join("Chart.yaml"),
            "apiVersion: v2\nname: a\nversion: 0.1.0\n",
        )
        .unwrap();
        std::fs::write(chart.join("templates/cm.yaml"), "kind: ConfigMap\n").unwrap();
        Layout {
            _host: host,
            root,
            chart,
        }
    }

    #[cfg(unix)]
    fn resolve_a(l: &Layout) -> Result<ChartRef, ChartError> {
        let service: Service = serde_json::from_value(serde_json::json!({
            "id": "a",
            "deployment": {},
            "artifact": {"ociImage": "charts/a"},
        }))
        .unwrap();
        resolve(&l.root, "projects/p/g.yaml", &service)
    }

    #[cfg(unix)]
    #[test]
    fn a_template_linked_to_a_file_outside_the_state_root_is_refused() {
        let l = layout();
        std::os::unix::fs::symlink(
            l.root.parent().unwrap().join("secret.txt"),
            l.chart.join("templates/x.yaml"),
        )
        .unwrap();
        let err = resolve_a(&l).unwrap_err();
        assert!(
            matches!(&err, ChartError::Unsafe { source: ChartFilesError::LinkEscapes { link, outside_root: true, .. }, .. }
                if link == Path::new("templates/x.yaml")),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("service `a`") && text.contains("templates/x.yaml"),
            "{text}"
        );
        assert!(text.contains("outside the state root"), "{text}");
    }

    #[cfg(unix)]
    #[test]
    fn a_credentials_file_linked_for_files_get_is_refused() {
        let l = layout();
        std::fs::write(
            l.chart.join("templates/creds.yaml"),
            "data: {{ .Files.Get \"files/creds\" | b64enc }}\n",
        )
        .unwrap();
        // files/creds -> projects/p/charts/a/files/../../../../../secret.txt
        std::os::unix::fs::symlink("../../../../../../secret.txt", l.chart.join("files/creds"))
            .unwrap();
        assert!(l.chart.join("files/creds").is_file(), "the link resolves");
        let err = resolve_a(&l).unwrap_err();
        assert!(
            matches!(&err, ChartError::Unsafe { source: ChartFilesError::LinkEscapes { link, target, .. }, .. }
                if link == Path::new("files/creds") && target == Path::new("../../../../../../secret.txt")),
            "{err:?}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_link_that_stays_inside_the_chart_is_fine_and_digested() {
        let l = layout();
        std::fs::write(l.chart.join("files/config.txt"), "a=1\n").unwrap();
        std::os::unix::fs::symlink("../files/config.txt", l.chart.join("templates/config.txt"))
            .unwrap();
        let first = resolve_a(&l).unwrap();
        assert_eq!(
            first.chart,
            l.chart.canonicalize().unwrap().display().to_string()
        );
        // The linked content is part of the digest.
        std::fs::write(l.chart.join("files/config.txt"), "a=2\n").unwrap();
        assert_ne!(resolve_a(&l).unwrap().digest, first.digest);
    }

    #[cfg(unix)]
    #[test]
    fn a_cycle_or_an_oversized_chart_is_refused_before_helm() {
        let l = layout();
        std::os::unix::fs::symlink("..", l.chart.join("templates/loop")).unwrap();
        let err = resolve_a(&l).unwrap_err();
        assert!(
            matches!(
                err,
                ChartError::Unsafe {
                    source: ChartFilesError::Cycle { .. },
                    ..
                }
            ),
            "{err:?}"
        );
        std::fs::remove_file(l.chart.join("templates/loop")).unwrap();
        std::fs::File::create(l.chart.join("files/big.bin"))
            .unwrap()
            .set_len(MAX_CHART_BYTES)
            .unwrap();
        let err = resolve_a(&l).unwrap_err();
        assert!(
            matches!(
                err,
                ChartError::Unsafe {
                    source: ChartFilesError::TooLarge,
                    ..
                }
            ),
            "{err:?}"
        );
    }
}
