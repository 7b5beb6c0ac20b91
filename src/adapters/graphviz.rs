//! The one place that runs Graphviz's `dot`: DOT text in on stdin, SVG out
//! on stdout. Explicit argument vector, no shell, a timeout; a missing
//! binary is its own error so the CLI can say how to get one.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// What went wrong running `dot`.
#[derive(Debug, thiserror::Error)]
pub enum GraphvizError {
    #[error("Graphviz `{binary}` not found")]
    NotFound { binary: PathBuf },
    #[error("cannot run `{binary}`")]
    Spawn {
        binary: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("`{binary} -Tsvg` did not finish within {timeout:?}")]
    Timeout { binary: PathBuf, timeout: Duration },
    #[error("`{binary} -Tsvg` failed ({status}): {stderr}")]
    Failed {
        binary: PathBuf,
        status: std::process::ExitStatus,
        stderr: String,
    },
}

impl GraphvizError {
    /// The binary is not installed (or not where it was said to be).
    pub fn is_missing(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }
}

/// Renders DOT text to SVG with `binary -Tsvg`.
pub async fn svg(binary: &Path, dot: &str, timeout: Duration) -> Result<String, GraphvizError> {
    let mut child = Command::new(binary)
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                GraphvizError::NotFound {
                    binary: binary.to_owned(),
                }
            } else {
                GraphvizError::Spawn {
                    binary: binary.to_owned(),
                    source,
                }
            }
        })?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = dot.as_bytes().to_vec();
    // Written concurrently with reading stdout: a large picture fills the
    // pipe both ways. A write error shows as dot's own failure.
    let writer = tokio::spawn(async move {
        let _ = stdin.write_all(&input).await;
    });
    let output = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| GraphvizError::Timeout {
            binary: binary.to_owned(),
            timeout,
        })?
        .map_err(|source| GraphvizError::Spawn {
            binary: binary.to_owned(),
            source,
        })?;
    let _ = writer.await;
    if !output.status.success() {
        return Err(GraphvizError::Failed {
            binary: binary.to_owned(),
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn a_missing_binary_is_reported_as_missing() {
        let err = rt()
            .block_on(svg(
                Path::new("/nonexistent/dot"),
                "digraph {}",
                Duration::from_secs(5),
            ))
            .unwrap_err();
        assert!(err.is_missing(), "{err:?}");
    }

    #[test]
    fn a_failing_binary_reports_its_status() {
        // `false` exists everywhere and fails: not "missing".
        let err = rt()
            .block_on(svg(
                Path::new("false"),
                "digraph {}",
                Duration::from_secs(5),
            ))
            .unwrap_err();
        assert!(matches!(err, GraphvizError::Failed { .. }), "{err:?}");
    }
}
