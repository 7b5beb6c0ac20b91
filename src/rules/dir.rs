//! The rules-directory sink: one file per graph in `prometheus.rulesDir`,
//! which Prometheus loads through a `rule_files` glob.
//!
//! A file is written only when its content changes, atomically (a private
//! temporary file in the same directory, renamed over the old one), after
//! validation — [`super::validate`], then `promtool check rules` when a
//! promtool binary is configured. The caller reloads Prometheus; when the
//! reload is refused, [`DirSink::restore`] puts the previous content back so
//! that one bad query never unloads the rules of every other graph.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Prefix and suffix of the files smo owns in the directory (other files
/// there are the operator's and are never touched).
const PREFIX: &str = "smo-";
const SUFFIX: &str = ".yml";

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
        let path = self.file(project, graph);
        let previous = std::fs::read_to_string(&path).ok();
        if group.rules.is_empty() {
            return match previous {
                None => Ok(Change::Unchanged),
                Some(previous) => {
                    remove(&path)?;
                    Ok(Change::Removed { previous })
                }
            };
        }
        super::validate(group)?;
        let text = super::render_file(group);
        if previous.as_deref() == Some(text.as_str()) {
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
            check(promtool, tmp.path(), &format!("{project}/{graph}"))?;
        }
        tmp.persist(&path).map_err(|e| DirError::Write {
            path: path.clone(),
            source: e.error,
        })?;
        Ok(Change::Written { previous })
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

    /// Removes the graph's file (the graph left the desired state).
    pub fn remove(&self, project: &str, graph: &str) -> Result<bool, DirError> {
        let path = self.file(project, graph);
        if path.exists() {
            remove(&path)?;
            Ok(true)
        } else {
            Ok(false)
        }
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
