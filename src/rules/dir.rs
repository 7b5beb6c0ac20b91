//! The rules-directory sink: one file per graph in `prometheus.rulesDir`,
//! which Prometheus loads through a `rule_files` glob.
//!
//! A file is written only when its content changes, atomically (a private
//! temporary file in the same directory, renamed over the old one), after
//! validation — [`super::validate`], then `promtool check rules` when a
//! promtool binary is configured. The caller reloads Prometheus; when the
//! reload is refused, [`DirSink::restore`] puts the previous content back so
//! that one bad query never unloads the rules of every other graph.
//!
//! File names: `smo-PROJECT.GRAPH.yml`. Projects and graph ids are DNS-1123
//! labels (no dot), so the dot separates them unambiguously; the former
//! `smo-PROJECT-GRAPH.yml` gave `(a-b, c)` and `(a, b-c)` the same file.
//! A file under that legacy name is the graph's own (smo wrote it, nothing
//! else writes `smo-*` files): it is removed when the graph's file is
//! written or removed, and its content counts as the previous one.
//!
//! A reload that may not have happened is remembered in a marker file,
//! [`RELOAD_PENDING`], written (and synced) before a rules file changes and
//! removed only once Prometheus acknowledged a reload; while it exists every
//! sync reloads, even when its own file is unchanged — also after a restart.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Prefix and suffix of the files smo owns in the directory (other files
/// there are the operator's and are never touched).
const PREFIX: &str = "smo-";
const SUFFIX: &str = ".yml";
/// Present while a reload of Prometheus is owed (hidden and without the
/// `.yml` suffix, so no `rule_files` glob loads it).
pub const RELOAD_PENDING: &str = ".smo-reload-pending";

#[derive(Debug, thiserror::Error)]
pub enum DirError {
    #[error("cannot write the rules file {}: {source}; check prometheus.rulesDir and its permissions", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot remove the rules file {}: {source}", path.display())]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Invalid(#[from] super::InvalidRule),
    #[error("promtool refused the rules of {graph}: {output}")]
    Promtool { graph: String, output: String },
    #[error("cannot run promtool {}: {source}; check prometheus.promtool", binary.display())]
    PromtoolRun {
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What a sync changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Unchanged,
    /// Written; the previous content (if any) for [`DirSink::restore`].
    Written {
        previous: Option<String>,
    },
    Removed {
        previous: String,
    },
}

#[derive(Debug, Clone)]
pub struct DirSink {
    pub dir: PathBuf,
    pub promtool: Option<PathBuf>,
}

impl DirSink {
    /// The file of one graph.
    pub fn file(&self, project: &str, graph: &str) -> PathBuf {
        self.dir.join(format!(
            "{PREFIX}{}{SUFFIX}",
            super::graph_part(project, graph)
        ))
    }

    /// The graph's file under the former, ambiguous name.
    pub fn legacy_file(&self, project: &str, graph: &str) -> PathBuf {
        self.dir.join(format!("{PREFIX}{project}-{graph}{SUFFIX}"))
    }

    /// Makes the graph's file hold `group` (or removes it when the group
    /// has no rules). Blocking: call from `spawn_blocking`.
    pub fn sync(
        &self,
        project: &str,
        graph: &str,
        group: &super::Group,
    ) -> Result<Change, DirError> {
        self.sync_marking(project, graph, group, false)
    }

    /// [`Self::sync`]; with `mark_reload`, [`RELOAD_PENDING`] is written
    /// before anything in the directory changes.
    pub fn sync_marking(
        &self,
        project: &str,
        graph: &str,
        group: &super::Group,
        mark_reload: bool,
    ) -> Result<Change, DirError> {
        let path = self.file(project, graph);
        let legacy = self.legacy_file(project, graph);
        let current = std::fs::read_to_string(&path).ok();
        let legacy_text = std::fs::read_to_string(&legacy).ok();
        // What Prometheus holds for this graph: its file, else the legacy one.
        let previous = current.clone().or_else(|| legacy_text.clone());
        if group.rules.is_empty() {
            return match previous {
                None => Ok(Change::Unchanged),
                Some(previous) => {
                    if mark_reload {
                        self.mark_reload_pending()?;
                    }
                    remove(&path)?;
                    remove(&legacy)?;
                    Ok(Change::Removed { previous })
                }
            };
        }
        super::validate(group)?;
        let text = super::render_file(group);
        if current.as_deref() == Some(text.as_str()) && legacy_text.is_none() {
            return Ok(Change::Unchanged);
        }
        std::fs::create_dir_all(&self.dir).map_err(|source| DirError::Write {
            path: self.dir.clone(),
            source,
        })?;
        let tmp = write_temp(&self.dir, &text).map_err(|source| DirError::Write {
            path: path.clone(),
            source,
        })?;
        if let Some(promtool) = &self.promtool {
            check(
                promtool,
                tmp.path(),
                &crate::keys::GraphKey::new(project, graph).to_string(),
            )?;
        }
        if mark_reload {
            self.mark_reload_pending()?;
        }
        tmp.persist(&path).map_err(|e| DirError::Write {
            path: path.clone(),
            source: e.error,
        })?;
        if legacy_text.is_some() {
            remove(&legacy)?;
        }
        Ok(Change::Written { previous })
    }

    /// Records that Prometheus must reload (synced to disk, so that a crash
    /// right after the change still leaves the reload owed).
    pub fn mark_reload_pending(&self) -> Result<(), DirError> {
        let path = self.dir.join(RELOAD_PENDING);
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(&self.dir)?;
            let f = std::fs::File::create(&path)?;
            f.sync_all()?;
            // The directory entry too.
            std::fs::File::open(&self.dir)?.sync_all()
        };
        write().map_err(|source| DirError::Write { path, source })
    }

    /// A reload is owed (a change was written and no reload acknowledged).
    pub fn reload_pending(&self) -> bool {
        self.dir.join(RELOAD_PENDING).exists()
    }

    /// Prometheus acknowledged a reload: nothing is owed any more.
    pub fn clear_reload_pending(&self) -> Result<(), DirError> {
        remove(&self.dir.join(RELOAD_PENDING))
    }

    /// Undoes a [`Change`] (Prometheus refused the new file).
    pub fn restore(&self, project: &str, graph: &str, change: &Change) -> Result<(), DirError> {
        let path = self.file(project, graph);
        match change {
            Change::Unchanged => Ok(()),
            Change::Written { previous: None } => remove(&path),
            Change::Written {
                previous: Some(text),
            }
            | Change::Removed { previous: text } => {
                let tmp = write_temp(&self.dir, text).map_err(|source| DirError::Write {
                    path: path.clone(),
                    source,
                })?;
                tmp.persist(&path).map_err(|e| DirError::Write {
                    path,
                    source: e.error,
                })?;
                Ok(())
            }
        }
    }

    /// Removes the graph's file, under its current and its legacy name
    /// (the graph left the desired state); with `mark_reload`,
    /// [`RELOAD_PENDING`] is written first when there is something to remove.
    pub fn remove(&self, project: &str, graph: &str, mark_reload: bool) -> Result<bool, DirError> {
        let paths = [self.file(project, graph), self.legacy_file(project, graph)];
        if !paths.iter().any(|p| p.exists()) {
            return Ok(false);
        }
        if mark_reload {
            self.mark_reload_pending()?;
        }
        for p in &paths {
            remove(p)?;
        }
        Ok(true)
    }
}

fn remove(path: &Path) -> Result<(), DirError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(DirError::Remove {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// A temporary file in `dir` (same filesystem, so the rename is atomic),
/// world-readable: Prometheus usually runs as another user.
fn write_temp(dir: &Path, text: &str) -> std::io::Result<tempfile::NamedTempFile> {
    let mut tmp = tempfile::Builder::new()
        .prefix(".smo-rules-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    Ok(tmp)
}

/// `promtool check rules FILE`, bounded in time (it is a local parse).
fn check(promtool: &Path, file: &Path, graph: &str) -> Result<(), DirError> {
    let mut child = std::process::Command::new(promtool)
        .arg("check")
        .arg("rules")
        .arg(file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|source| DirError::PromtoolRun {
            binary: promtool.to_path_buf(),
            source,
        })?;
    // A parse of one small file; 30 s means something is badly wrong.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(None) | Err(_) => {
                let _ = child.kill();
                break;
            }
        }
    }
    let out = child
        .wait_with_output()
        .map_err(|source| DirError::PromtoolRun {
            binary: promtool.to_path_buf(),
            source,
        })?;
    if out.status.success() {
        return Ok(());
    }
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The temporary file's name means nothing to the operator.
    let text = text.replace(&file.display().to_string(), "<rules>");
    Err(DirError::Promtool {
        graph: graph.to_owned(),
        output: text.split_whitespace().collect::<Vec<_>>().join(" "),
    })
}

#[cfg(test)]
mod tests {
    use super::super::{Group, Rule};
    use super::*;
    use std::collections::BTreeMap;

    fn group(expr: &str) -> Group {
        Group {
            name: "smo/p/g".into(),
            rules: vec![Rule {
                alert: "ev".into(),
                expr: expr.into(),
                for_: "0s".into(),
                labels: BTreeMap::new(),
                annotations: BTreeMap::new(),
            }],
        }
    }

    #[test]
    fn write_once_then_unchanged_then_removed_and_restored() {
        let dir = tempfile::tempdir().unwrap();
        let sink = DirSink {
            dir: dir.path().join("rules"),
            promtool: None,
        };
        let first = sink.sync("p", "g", &group("vector(1)")).unwrap();
        assert_eq!(first, Change::Written { previous: None });
        let text = std::fs::read_to_string(sink.file("p", "g")).unwrap();
        assert!(text.contains("vector(1)"));
        assert_eq!(
            sink.sync("p", "g", &group("vector(1)")).unwrap(),
            Change::Unchanged
        );

        let second = sink.sync("p", "g", &group("vector(2)")).unwrap();
        sink.restore("p", "g", &second).unwrap();
        assert_eq!(std::fs::read_to_string(sink.file("p", "g")).unwrap(), text);

        let empty = Group {
            name: "smo/p/g".into(),
            rules: Vec::new(),
        };
        let removed = sink.sync("p", "g", &empty).unwrap();
        assert!(matches!(removed, Change::Removed { .. }));
        assert!(!sink.file("p", "g").exists());
        // No temporary files are left behind.
        assert_eq!(std::fs::read_dir(&sink.dir).unwrap().count(), 0);
    }

    /// Regression: `(a-b, c)` and `(a, b-c)` shared `smo-a-b-c.yml`, so one
    /// graph's rules overwrote (or removed) the other's.
    #[test]
    fn graphs_whose_names_join_alike_get_their_own_files() {
        let dir = tempfile::tempdir().unwrap();
        let sink = DirSink {
            dir: dir.path().to_path_buf(),
            promtool: None,
        };
        assert_ne!(sink.file("a-b", "c"), sink.file("a", "b-c"));
        sink.sync("a-b", "c", &group("vector(1)")).unwrap();
        sink.sync("a", "b-c", &group("vector(2)")).unwrap();
        let read = |p: &str, g: &str| std::fs::read_to_string(sink.file(p, g)).unwrap();
        assert!(read("a-b", "c").contains("vector(1)"));
        assert!(read("a", "b-c").contains("vector(2)"));
    }

    #[test]
    fn the_legacy_file_of_the_graph_is_replaced_by_the_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let sink = DirSink {
            dir: dir.path().to_path_buf(),
            promtool: None,
        };
        let legacy = sink.legacy_file("p", "g");
        let old = render_file_of("vector(1)");
        std::fs::write(&legacy, &old).unwrap();
        // Same rules: still rewritten under the new name, the legacy removed.
        let change = sink.sync("p", "g", &group("vector(1)")).unwrap();
        assert_eq!(
            change,
            Change::Written {
                previous: Some(old.clone())
            }
        );
        assert!(!legacy.exists());
        assert_eq!(std::fs::read_to_string(sink.file("p", "g")).unwrap(), old);
        assert_eq!(
            sink.sync("p", "g", &group("vector(1)")).unwrap(),
            Change::Unchanged
        );
        // Removal takes a legacy file along too.
        std::fs::write(&legacy, &old).unwrap();
        assert!(sink.remove("p", "g", false).unwrap());
        assert!(!legacy.exists() && !sink.file("p", "g").exists());
    }

    #[test]
    fn the_reload_marker_is_written_before_the_change_and_kept_until_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let sink = DirSink {
            dir: dir.path().to_path_buf(),
            promtool: None,
        };
        assert!(!sink.reload_pending());
        sink.sync_marking("p", "g", &group("vector(1)"), true)
            .unwrap();
        assert!(sink.reload_pending());
        // Unchanged content leaves the owed reload owed.
        assert_eq!(
            sink.sync_marking("p", "g", &group("vector(1)"), true)
                .unwrap(),
            Change::Unchanged
        );
        assert!(sink.reload_pending());
        sink.clear_reload_pending().unwrap();
        assert!(!sink.reload_pending());
        assert!(sink.remove("p", "g", true).unwrap());
        assert!(sink.reload_pending());
    }

    fn render_file_of(expr: &str) -> String {
        super::super::render_file(&group(expr))
    }

    #[test]
    fn an_invalid_rule_is_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let sink = DirSink {
            dir: dir.path().to_path_buf(),
            promtool: None,
        };
        assert!(matches!(
            sink.sync("p", "g", &group("sum(")),
            Err(DirError::Invalid(_))
        ));
        assert!(!sink.file("p", "g").exists());
    }
}
