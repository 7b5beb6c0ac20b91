//! The loader's [`Artifacts`] over [`Hdar`]: a synchronous fetch (the
//! loader runs on a blocking thread) driven on the daemon's or the CLI's
//! runtime.

use super::{GraphRef, Hdar, Registry};
use crate::desired::{Artifacts, Origin};
use std::path::Path;
use std::sync::Arc;
use tokio::runtime::Handle;

/// Fetches through `hdar` on `handle`'s runtime. Must be called from
/// outside that runtime's async context (a blocking thread, or a thread
/// that is not a runtime worker).
pub struct Pulling<R: Registry> {
    hdar: Arc<Hdar<R>>,
    handle: Handle,
}

impl<R: Registry> Pulling<R> {
    pub fn new(hdar: Arc<Hdar<R>>, handle: Handle) -> Pulling<R> {
        Pulling { hdar, handle }
    }
}

impl<R: Registry> Artifacts for Pulling<R> {
    fn fetch(&self, reference: &GraphRef) -> Result<Origin, String> {
        let fetched = self
            .handle
            .block_on(self.hdar.fetch(reference))
            .map_err(|e| {
                tracing::warn!(reference = %reference, kind = e.kind(), error = %super::oci::error_chain(&e), "HDAR artifact not fetched");
                super::oci::error_chain(&e)
            })?;
        Ok(Origin {
            reference: reference.to_string(),
            repository: reference.repository.oci_url(),
            digest: fetched.digest.as_str().to_owned(),
            tag: fetched.tag,
            descriptor: relative(&fetched.descriptor, &fetched.dir),
            root: fetched.dir,
        })
    }
}

/// `path` inside `root`, `/`-separated (the file name when it is not).
fn relative(path: &Path, root: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::relative;
    use std::path::Path;

    #[test]
    fn descriptor_paths_are_shown_relative_to_the_artifact() {
        assert_eq!(
            relative(
                Path::new("/c/sha256-x/g/hdag/hdag.yaml"),
                Path::new("/c/sha256-x")
            ),
            "g/hdag/hdag.yaml"
        );
    }
}
