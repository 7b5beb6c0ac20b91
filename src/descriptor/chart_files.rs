//! The files of a local chart (a chart directory inside the state root),
//! walked the way helm reads them, and refused when helm must not read them.
//!
//! helm loads a chart directory by following symlinks, and `.Files.Get`
//! hands any file of the chart to a template — and from there into the
//! release, its manifest and the cluster. So a chart in the repository
//! could carry `files/creds -> ../../../secret.txt` and publish a file of
//! the management host. The invariants enforced here:
//!
//! - every symlink below the chart resolves inside the chart directory
//!   (which validation already keeps inside the state root);
//! - the walk terminates: a directory reached again along its own path
//!   (a symlink cycle) is an error;
//! - the chart is at most [`MAX_CHART_BYTES`];
//! - only directories and regular files (a FIFO would block the reader).
//!
//! Both validation (`smo validate`, `smo plan`, the loader) and release
//! resolution right before helm runs call [`files`]: the tree can change
//! between the two. Filesystem reads only; no writes.

use std::path::{Path, PathBuf};

/// The largest local chart smo hands to helm, in bytes.
///
/// helm keeps the whole chart (every file) in the release record, a
/// Kubernetes Secret, and the API server refuses objects over about 1 MiB
/// (compressed), so a working chart is far smaller; helm's own limit for
/// chart archives (`MaxDecompressedChartSize`) is 100 MiB. 10 MiB keeps
/// ample room for real charts while bounding what smo reads and digests on
/// every reconcile, and a tree that grows without end (a symlink DAG)
/// stops early.
pub const MAX_CHART_BYTES: u64 = 10 * 1024 * 1024;

/// What each file or directory costs besides its content, as in a tar
/// archive (one 512-byte header per entry): many empty entries reached
/// through symlinks count too.
pub const ENTRY_BYTES: u64 = 512;

/// One regular file of a chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartFile {
    /// The path helm sees, relative to the chart directory.
    pub rel: PathBuf,
    /// The file on disk (symlinks resolved).
    pub path: PathBuf,
    pub len: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ChartFilesError {
    #[error("`{}` cannot be read: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "`{}` is a symlink to `{}`, which resolves outside the {}; helm would read that file into the release: replace the link with the file itself, or point it at a file inside the chart",
        link.display(),
        target.display(),
        if *outside_root { "state root" } else { "chart directory" }
    )]
    LinkEscapes {
        /// Relative to the chart directory.
        link: PathBuf,
        /// The link's own text.
        target: PathBuf,
        outside_root: bool,
    },
    #[error(
        "`{}` is a symlink to `{}`, which cannot be resolved (missing, or a loop of links); remove the link or add its target inside the chart",
        link.display(),
        target.display()
    )]
    Dangling { link: PathBuf, target: PathBuf },
    #[error(
        "`{}` is a symlink to a directory that contains it (a cycle); remove the link",
        link.display()
    )]
    Cycle { link: PathBuf },
    #[error(
        "the chart is larger than {} MiB (counting {ENTRY_BYTES} bytes per file or directory, as in an archive); keep large data out of charts",
        MAX_CHART_BYTES / (1024 * 1024)
    )]
    TooLarge,
    #[error("`{}` changed while it was read; the next reconcile reads it again", path.display())]
    Changed { path: PathBuf },
    #[error("`{}` is neither a regular file nor a directory; remove it from the chart", path.display())]
    NotRegular { path: PathBuf },
}

/// The regular files of the chart directory `chart`, sorted by their path
/// relative to it, after checking the invariants of this module. `root` is
/// the state root; it only makes the message of an escaping link precise.
pub fn files(root: &Path, chart: &Path) -> Result<Vec<ChartFile>, ChartFilesError> {
    let read = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ChartFilesError::Read { path, source }
    };
    let root = root.canonicalize().map_err(read(root))?;
    let chart = chart.canonicalize().map_err(read(chart))?;
    let mut budget = Budget(0);
    let mut out = Vec::new();
    // (path relative to the chart, the directory on disk, the directories
    // on disk along that path: a cycle revisits one of them).
    let mut stack = vec![(PathBuf::new(), chart.clone(), vec![chart.clone()])];
    while let Some((rel, dir, chain)) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(read(&dir))?;
        for entry in entries {
            let entry = entry.map_err(read(&dir))?;
            let rel = rel.join(entry.file_name());
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).map_err(read(&path))?;
            let (real, meta) = if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).map_err(read(&path))?;
                let Ok(real) = path.canonicalize() else {
                    return Err(ChartFilesError::Dangling { link: rel, target });
                };
                if !real.starts_with(&chart) {
                    return Err(ChartFilesError::LinkEscapes {
                        link: rel,
                        target,
                        outside_root: !real.starts_with(&root),
                    });
                }
                let meta = std::fs::metadata(&real).map_err(read(&real))?;
                (real, meta)
            } else {
                (path, meta)
            };
            budget.spend(ENTRY_BYTES)?;
            if meta.is_dir() {
                if chain.contains(&real) {
                    return Err(ChartFilesError::Cycle { link: rel });
                }
                let mut chain = chain.clone();
                chain.push(real.clone());
                stack.push((rel, real, chain));
            } else if meta.is_file() {
                budget.spend(meta.len())?;
                out.push(ChartFile {
                    rel,
                    path: real,
                    len: meta.len(),
                });
            } else {
                return Err(ChartFilesError::NotRegular { path: rel });
            }
        }
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

/// Bytes counted against [`MAX_CHART_BYTES`].
struct Budget(u64);

impl Budget {
    fn spend(&mut self, bytes: u64) -> Result<(), ChartFilesError> {
        self.0 = self.0.saturating_add(bytes);
        if self.0 > MAX_CHART_BYTES {
            Err(ChartFilesError::TooLarge)
        } else {
            Ok(())
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn chart() -> (tempfile::TempDir, PathBuf) {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("charts/a");
        std::fs::create_dir_all(dir.join("templates")).unwrap();
        std::fs::write(dir.join("Chart.yaml"), "name: a\n").unwrap();
        std::fs::write(dir.join("templates/x.yaml"), "kind: X\n").unwrap();
        (root, dir)
    }

    fn rels(files: &[ChartFile]) -> Vec<String> {
        files.iter().map(|f| f.rel.display().to_string()).collect()
    }

    #[test]
    fn files_are_listed_in_path_order_with_links_inside_the_chart() {
        let (root, dir) = chart();
        symlink("x.yaml", dir.join("templates/y.yaml")).unwrap();
        symlink("templates", dir.join("more")).unwrap();
        let files = files(root.path(), &dir).unwrap();
        assert_eq!(
            rels(&files),
            [
                "Chart.yaml",
                "more/x.yaml",
                "more/y.yaml",
                "templates/x.yaml",
                "templates/y.yaml"
            ]
        );
        assert!(files.iter().all(|f| f.len == 8), "{files:?}");
    }

    #[test]
    fn a_link_to_a_sibling_chart_leaves_the_chart_but_not_the_root() {
        let (root, dir) = chart();
        std::fs::create_dir_all(root.path().join("charts/b")).unwrap();
        std::fs::write(root.path().join("charts/b/secret.txt"), "s").unwrap();
        symlink("../../b/secret.txt", dir.join("templates/s.txt")).unwrap();
        let err = files(root.path(), &dir).unwrap_err();
        assert!(
            matches!(&err, ChartFilesError::LinkEscapes { link, outside_root: false, .. }
                if link == Path::new("templates/s.txt")),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("outside the chart directory"),
            "{err}"
        );
    }

    #[test]
    fn a_symlink_cycle_ends_with_an_error() {
        let (root, dir) = chart();
        symlink("..", dir.join("templates/up")).unwrap();
        let err = files(root.path(), &dir).unwrap_err();
        assert!(
            matches!(&err, ChartFilesError::Cycle { link } if link == Path::new("templates/up")),
            "{err:?}"
        );
    }

    #[test]
    fn a_cycle_through_two_links_ends_with_an_error() {
        let (root, dir) = chart();
        std::fs::create_dir_all(dir.join("a")).unwrap();
        std::fs::create_dir_all(dir.join("b")).unwrap();
        symlink("../b", dir.join("a/to-b")).unwrap();
        symlink("../a", dir.join("b/to-a")).unwrap();
        let err = files(root.path(), &dir).unwrap_err();
        assert!(matches!(err, ChartFilesError::Cycle { .. }), "{err:?}");
    }

    #[test]
    fn a_chart_over_the_limit_is_refused_and_one_at_it_is_not() {
        let (root, dir) = chart();
        let big = std::fs::File::create(dir.join("big.bin")).unwrap();
        // Sparse: the length counts, not the blocks.
        big.set_len(MAX_CHART_BYTES + 1).unwrap();
        let err = files(root.path(), &dir).unwrap_err();
        assert!(matches!(err, ChartFilesError::TooLarge), "{err:?}");
        assert!(err.to_string().contains("10 MiB"), "{err}");
        // Three entries (Chart.yaml, templates/, x.yaml, big.bin) of 512
        // bytes and 16 bytes of content leave this much.
        big.set_len(MAX_CHART_BYTES - 4 * ENTRY_BYTES - 16).unwrap();
        assert_eq!(files(root.path(), &dir).unwrap().len(), 3);
    }

    #[test]
    fn a_dangling_link_and_a_fifo_are_errors() {
        let (root, dir) = chart();
        symlink("nowhere.yaml", dir.join("templates/gone.yaml")).unwrap();
        let err = files(root.path(), &dir).unwrap_err();
        assert!(matches!(err, ChartFilesError::Dangling { .. }), "{err:?}");
        std::fs::remove_file(dir.join("templates/gone.yaml")).unwrap();
        let fifo = dir.join("templates/pipe");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            let err = files(root.path(), &dir).unwrap_err();
            assert!(matches!(err, ChartFilesError::NotRegular { .. }), "{err:?}");
        }
    }
}
