//! Pulled artifacts, verified and unpacked, kept by manifest digest under
//! `<stateDir>/hdar/sha256-<hex>/`:
//!
//! ```text
//! sha256-<hex>/manifest.json   the manifest exactly as pulled
//! sha256-<hex>/content/…       the unpacked layer (the artifact root)
//! sha256-<hex>/complete.json   written last: what was verified
//! ```
//!
//! Invariants: a directory is used only when its marker names its digest,
//! so a half-written one never is; an artifact is built in a `.tmp-*`
//! directory beside the others and renamed into place once the marker is
//! on disk, so a crash leaves either nothing or a complete entry. The
//! chain of trust is the digest the reference resolved to: sha256 of the
//! manifest bytes must equal it, the content layer must be the one that
//! manifest declares, and sha256 of the layer bytes must equal that.
//! A restart finds complete entries and pulls nothing again.

use super::manifest::{ContentLayer, ManifestError, content_layer};
use super::reference::{Digest, Repository};
use super::resolve::{Pulled, Registry, RegistryError};
use super::unpack::{Limits, UnpackError, unpack};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

const MARKER: &str = "complete.json";
const MANIFEST: &str = "manifest.json";
const CONTENT: &str = "content";
const DIR_PREFIX: &str = "sha256-";
const STAGING_PREFIX: &str = ".tmp-";

/// The cache directory and the limits artifacts must respect.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
    limits: Limits,
}

/// A complete cache entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedArtifact {
    pub digest: Digest,
    /// The artifact root: the unpacked layer.
    pub content: PathBuf,
    /// Whether this call pulled it (false: found in the cache).
    pub pulled: bool,
}

/// What the marker records.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Marker {
    digest: String,
    layer_digest: String,
    layer_media_type: String,
    repository: String,
    files: usize,
    bytes: u64,
}

/// What garbage collection removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    pub removed: Vec<Digest>,
    pub kept: usize,
    /// Leftovers of interrupted pulls.
    pub staging_removed: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("pulling {repository}@{digest} failed")]
    Pull {
        repository: String,
        digest: Digest,
        /// Boxed: the registry's error is the largest, and rare.
        #[source]
        source: Box<RegistryError>,
    },
    #[error(
        "{what} of {repository} has digest {actual}, expected {expected}; the registry's copy is corrupt or was replaced"
    )]
    DigestMismatch {
        repository: String,
        what: &'static str,
        expected: String,
        actual: String,
    },
    #[error("manifest {digest} of {repository} is not usable")]
    Manifest {
        repository: String,
        digest: Digest,
        #[source]
        source: ManifestError,
    },
    #[error("the layer of {repository}@{digest} is {size} bytes, more than the {limit} allowed")]
    LayerTooLarge {
        repository: String,
        digest: Digest,
        size: u64,
        limit: u64,
    },
    #[error("artifact {repository}@{digest} was refused")]
    Unpack {
        repository: String,
        digest: Digest,
        #[source]
        source: UnpackError,
    },
    #[error("cache I/O on {path} failed")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("a cache task stopped: {0}")]
    Task(String),
}

impl CacheError {
    pub fn is_transient(&self) -> bool {
        match self {
            CacheError::Pull { source, .. } => source.is_transient(),
            // A corrupt copy may be repaired by re-pushing; a full disk
            // may be freed: both are worth another try later.
            CacheError::DigestMismatch { .. } | CacheError::Io { .. } | CacheError::Task(_) => true,
            CacheError::Manifest { .. }
            | CacheError::LayerTooLarge { .. }
            | CacheError::Unpack { .. } => false,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            CacheError::Pull { source, .. } => source.kind(),
            CacheError::DigestMismatch { .. } => "digest_mismatch",
            CacheError::Manifest { .. } => "manifest",
            CacheError::LayerTooLarge { .. } => "too_large",
            CacheError::Unpack { source, .. } => source.kind(),
            CacheError::Io { .. } | CacheError::Task(_) => "io",
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_owned(),
        source,
    }
}

impl Cache {
    /// The cache of a daemon whose state lives in `state_dir`.
    pub fn new(state_dir: &Path, limits: Limits) -> Cache {
        Cache {
            root: state_dir.join("hdar"),
            limits,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn entry_dir(&self, digest: &Digest) -> PathBuf {
        self.root.join(format!("{DIR_PREFIX}{}", digest.hex()))
    }

    /// The complete entry for `digest`, if there is one. A directory
    /// without a valid marker is removed (it can only be a leftover).
    pub fn lookup(&self, digest: &Digest) -> Result<Option<CachedArtifact>, CacheError> {
        let dir = self.entry_dir(digest);
        if !dir.exists() {
            return Ok(None);
        }
        let marker = std::fs::read(dir.join(MARKER))
            .ok()
            .and_then(|b| serde_json::from_slice::<Marker>(&b).ok());
        match marker {
            Some(m) if m.digest == digest.as_str() && dir.join(CONTENT).is_dir() => {
                Ok(Some(CachedArtifact {
                    digest: digest.clone(),
                    content: dir.join(CONTENT),
                    pulled: false,
                }))
            }
            _ => {
                tracing::warn!(dir = %dir.display(), "incomplete cache entry removed");
                std::fs::remove_dir_all(&dir).map_err(io(&dir))?;
                Ok(None)
            }
        }
    }

    /// Verifies a pulled artifact, unpacks it and installs it atomically.
    pub fn install(
        &self,
        repo: &Repository,
        digest: &Digest,
        pulled: &Pulled,
    ) -> Result<CachedArtifact, CacheError> {
        let layer = self.verify(repo, digest, pulled)?;
        std::fs::create_dir_all(&self.root).map_err(io(&self.root))?;
        let staging = tempfile::Builder::new()
            .prefix(STAGING_PREFIX)
            .tempdir_in(&self.root)
            .map_err(io(&self.root))?;
        let content = staging.path().join(CONTENT);
        std::fs::create_dir(&content).map_err(io(&content))?;
        let unpacked = unpack(&pulled.layer.bytes, &content, &self.limits).map_err(|source| {
            CacheError::Unpack {
                repository: repo.to_string(),
                digest: digest.clone(),
                source,
            }
        })?;
        write_synced(&staging.path().join(MANIFEST), &pulled.manifest)?;
        let marker = Marker {
            digest: digest.to_string(),
            layer_digest: layer.digest,
            layer_media_type: layer.media_type,
            repository: repo.to_string(),
            files: unpacked.files,
            bytes: unpacked.bytes,
        };
        let marker = serde_json::to_vec_pretty(&marker).unwrap_or_default();
        write_synced(&staging.path().join(MARKER), &marker)?;

        let dir = self.entry_dir(digest);
        // A leftover without a marker would block the rename.
        if self.lookup(digest)?.is_some() {
            return Ok(CachedArtifact {
                digest: digest.clone(),
                content: dir.join(CONTENT),
                pulled: true,
            });
        }
        let staged = staging.keep();
        if let Err(e) = std::fs::rename(&staged, &dir) {
            let _ = std::fs::remove_dir_all(&staged);
            // Another pull of the same digest may have won the race.
            if self.lookup(digest)?.is_none() {
                return Err(io(&dir)(e));
            }
        }
        sync_dir(&self.root);
        tracing::info!(digest = %digest, files = unpacked.files, bytes = unpacked.bytes, "artifact cached");
        Ok(CachedArtifact {
            digest: digest.clone(),
            content: dir.join(CONTENT),
            pulled: true,
        })
    }

    /// The chain of trust, from the resolved digest to the layer bytes.
    fn verify(
        &self,
        repo: &Repository,
        digest: &Digest,
        pulled: &Pulled,
    ) -> Result<ContentLayer, CacheError> {
        let mismatch = |what, expected: &str, actual: Digest| CacheError::DigestMismatch {
            repository: repo.to_string(),
            what,
            expected: expected.to_owned(),
            actual: actual.to_string(),
        };
        let actual = Digest::of(&pulled.manifest);
        if &actual != digest {
            return Err(mismatch("manifest", digest.as_str(), actual));
        }
        let layer = content_layer(&pulled.manifest).map_err(|source| CacheError::Manifest {
            repository: repo.to_string(),
            digest: digest.clone(),
            source,
        })?;
        if pulled.layer.digest != layer.digest {
            return Err(mismatch(
                "content layer (not the one the manifest names)",
                &layer.digest,
                Digest::of(&pulled.layer.bytes),
            ));
        }
        let actual = Digest::of(&pulled.layer.bytes);
        if actual.as_str() != layer.digest {
            return Err(mismatch("content layer", &layer.digest, actual));
        }
        let size = pulled.layer.bytes.len() as u64;
        if size > self.limits.max_archive_bytes {
            return Err(CacheError::LayerTooLarge {
                repository: repo.to_string(),
                digest: digest.clone(),
                size,
                limit: self.limits.max_archive_bytes,
            });
        }
        Ok(layer)
    }

    /// Removes every entry whose digest is not in `keep`, and the leftovers
    /// of interrupted pulls. Other files are left alone. Must not run while
    /// a pull is installing (the facade's lock sees to that).
    pub fn gc(&self, keep: &BTreeSet<Digest>) -> Result<GcReport, CacheError> {
        let mut report = GcReport::default();
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(report),
            Err(e) => return Err(io(&self.root)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io(&self.root))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.starts_with(STAGING_PREFIX) {
                std::fs::remove_dir_all(&path).map_err(io(&path))?;
                report.staging_removed += 1;
                continue;
            }
            let Some(digest) = name
                .strip_prefix(DIR_PREFIX)
                .and_then(|hex| Digest::parse(&format!("sha256:{hex}")).ok())
            else {
                continue;
            };
            if keep.contains(&digest) {
                report.kept += 1;
            } else {
                std::fs::remove_dir_all(&path).map_err(io(&path))?;
                tracing::info!(digest = %digest, "unused artifact removed from the cache");
                report.removed.push(digest);
            }
        }
        report.removed.sort();
        Ok(report)
    }

    /// The cached artifact, or pulls, verifies and caches it. The blocking
    /// file work runs off the async workers.
    pub async fn get_or_pull<R: Registry>(
        &self,
        registry: &R,
        repo: &Repository,
        digest: &Digest,
    ) -> Result<CachedArtifact, CacheError> {
        let this = self.clone();
        let d = digest.clone();
        if let Some(hit) = blocking(move || this.lookup(&d)).await? {
            tracing::debug!(digest = %digest, "artifact found in the cache");
            return Ok(hit);
        }
        let pulled = registry
            .pull(repo, digest)
            .await
            .map_err(|source| CacheError::Pull {
                repository: repo.to_string(),
                digest: digest.clone(),
                source: Box::new(source),
            })?;
        let this = self.clone();
        let (repo, digest) = (repo.clone(), digest.clone());
        blocking(move || this.install(&repo, &digest, &pulled)).await
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, CacheError> + Send + 'static,
) -> Result<T, CacheError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| CacheError::Task(e.to_string()))?
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), CacheError> {
    let mut f = std::fs::File::create(path).map_err(io(path))?;
    f.write_all(bytes).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

/// Makes the rename durable; best effort (some filesystems refuse to
/// sync a directory, and the entry is complete either way).
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hdar::resolve::testing::MemoryRegistry;
    use crate::hdar::unpack::testing::{Entry, tar_gz};
    use std::sync::atomic::Ordering;

    fn repo() -> Repository {
        Repository::parse("oci://127.0.0.1:5000/p/g").unwrap()
    }

    fn artifact() -> Vec<u8> {
        tar_gz(&[Entry::File("g/hdag/hdag.yaml", b"hdaGraph: {id: g}\n")])
    }

    #[tokio::test]
    async fn a_pulled_artifact_is_reused_after_a_restart() {
        let state = tempfile::tempdir().unwrap();
        let reg = MemoryRegistry::default();
        let digest = reg.push("1.0.0", artifact());
        let cache = Cache::new(state.path(), Limits::default());
        let first = cache.get_or_pull(&reg, &repo(), &digest).await.unwrap();
        assert!(first.pulled);
        assert!(first.content.join("g/hdag/hdag.yaml").is_file());
        // A new Cache over the same directory: what a restart builds.
        let again = Cache::new(state.path(), Limits::default());
        let second = again.get_or_pull(&reg, &repo(), &digest).await.unwrap();
        assert!(!second.pulled);
        assert_eq!(second.content, first.content);
        assert_eq!(reg.pulls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_entry_without_its_marker_is_pulled_again() {
        let state = tempfile::tempdir().unwrap();
        let reg = MemoryRegistry::default();
        let digest = reg.push("1.0.0", artifact());
        let cache = Cache::new(state.path(), Limits::default());
        let hit = cache.get_or_pull(&reg, &repo(), &digest).await.unwrap();
        std::fs::remove_file(hit.content.parent().unwrap().join(MARKER)).unwrap();
        let again = cache.get_or_pull(&reg, &repo(), &digest).await.unwrap();
        assert!(again.pulled);
        assert_eq!(reg.pulls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_tampered_manifest_or_layer_is_a_digest_mismatch() {
        let state = tempfile::tempdir().unwrap();
        let reg = MemoryRegistry::default();
        let digest = reg.push("1.0.0", artifact());
        let cache = Cache::new(state.path(), Limits::default());

        // The layer's bytes changed behind the registry's back.
        reg.artifacts
            .lock()
            .unwrap()
            .get_mut(&digest)
            .unwrap()
            .layer
            .bytes[0] ^= 1;
        let err = cache.get_or_pull(&reg, &repo(), &digest).await.unwrap_err();
        assert!(
            matches!(
                &err,
                CacheError::DigestMismatch {
                    what: "content layer",
                    ..
                }
            ),
            "{err}"
        );
        reg.artifacts
            .lock()
            .unwrap()
            .get_mut(&digest)
            .unwrap()
            .layer
            .bytes[0] ^= 1;

        // The manifest served for a digest is not the one with that digest.
        reg.artifacts
            .lock()
            .unwrap()
            .get_mut(&digest)
            .unwrap()
            .manifest
            .push(b' ');
        let err = cache.get_or_pull(&reg, &repo(), &digest).await.unwrap_err();
        assert!(
            matches!(
                &err,
                CacheError::DigestMismatch {
                    what: "manifest",
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(err.kind(), "digest_mismatch");
        assert!(cache.lookup(&digest).unwrap().is_none(), "nothing cached");
    }

    #[tokio::test]
    async fn a_refused_archive_leaves_nothing_behind() {
        let state = tempfile::tempdir().unwrap();
        let reg = MemoryRegistry::default();
        let digest = reg.push("1.0.0", tar_gz(&[Entry::File("../evil", b"x")]));
        let cache = Cache::new(state.path(), Limits::default());
        let err = cache.get_or_pull(&reg, &repo(), &digest).await.unwrap_err();
        assert!(
            matches!(
                &err,
                CacheError::Unpack {
                    source: UnpackError::ParentDir { .. },
                    ..
                }
            ),
            "{err}"
        );
        let left: Vec<_> = std::fs::read_dir(cache.root()).unwrap().collect();
        assert!(left.is_empty(), "staging removed: {left:?}");
    }

    #[tokio::test]
    async fn gc_removes_unused_digests_and_staging_leftovers_only() {
        let state = tempfile::tempdir().unwrap();
        let reg = MemoryRegistry::default();
        let a = reg.push("1.0.0", artifact());
        let b = reg.push("2.0.0", tar_gz(&[Entry::File("x.yaml", b"hdaGraph: {}\n")]));
        let cache = Cache::new(state.path(), Limits::default());
        cache.get_or_pull(&reg, &repo(), &a).await.unwrap();
        cache.get_or_pull(&reg, &repo(), &b).await.unwrap();
        std::fs::create_dir(cache.root().join(".tmp-crashed")).unwrap();
        std::fs::write(cache.root().join("README"), "not ours to remove").unwrap();

        let report = cache.gc(&BTreeSet::from([a.clone()])).unwrap();
        assert_eq!(report.removed, vec![b.clone()]);
        assert_eq!((report.kept, report.staging_removed), (1, 1));
        assert!(cache.lookup(&a).unwrap().is_some());
        assert!(cache.lookup(&b).unwrap().is_none());
        assert!(cache.root().join("README").exists());
        // Nothing to collect in a state dir that never pulled anything.
        let empty = tempfile::tempdir().unwrap();
        let none = Cache::new(empty.path(), Limits::default());
        assert_eq!(none.gc(&BTreeSet::new()).unwrap(), GcReport::default());
    }

    #[tokio::test]
    async fn an_oversized_layer_is_refused_before_unpacking() {
        let state = tempfile::tempdir().unwrap();
        let reg = MemoryRegistry::default();
        let digest = reg.push("1.0.0", artifact());
        let limits = Limits {
            max_archive_bytes: 10,
            ..Limits::default()
        };
        let cache = Cache::new(state.path(), limits);
        let err = cache.get_or_pull(&reg, &repo(), &digest).await.unwrap_err();
        assert!(
            matches!(err, CacheError::LayerTooLarge { limit: 10, .. }),
            "{err}"
        );
    }
}
