//! HDAGs from the HDAR, the NEPHELE artifact registry (an OCI registry).
//!
//! A descriptor file may be a reference (`hdaGraphRef`, [`reference`])
//! instead of a graph. [`Hdar::fetch`] resolves it to a manifest digest
//! ([`resolve`]: a tag or the highest version in a semver range, or a
//! pinned digest), pulls that artifact unless it is already cached
//! ([`cache`], [`oci`]), verifies both digests, unpacks its layer safely
//! ([`unpack`]) and finds the descriptor inside as the original SMO does
//! ([`descriptor`]). [`Hdar::gc`] removes cached digests no graph uses.
//!
//! Module map: [`reference`] (the file and its validation), [`resolve`]
//! (the `Registry` interface and version selection), [`oci`] (the
//! registry adapter), [`auth`] (Docker `config.json` credentials),
//! [`manifest`] (which layer holds the files), [`unpack`], [`cache`],
//! [`descriptor`].

pub mod artifacts;
pub mod auth;
pub mod cache;
pub mod descriptor;
pub mod manifest;
pub mod oci;
pub mod reference;
pub mod resolve;
pub mod unpack;

pub use artifacts::Pulling;
pub use cache::{Cache, CacheError, GcReport};
pub use descriptor::DescriptorError;
pub use oci::{OciConfig, OciRegistry};
pub use reference::{Digest, GraphRef, ReferenceError, Repository, Selector, SemverRange};
pub use resolve::{Registry, RegistryError, ResolveError};
pub use unpack::{Limits, UnpackError};

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use tokio::sync::RwLock;

/// A fetched artifact, ready for the loader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The manifest digest: what the graph's status records.
    pub digest: Digest,
    /// The tag the reference resolved through (none for a pinned digest).
    pub tag: Option<String>,
    /// The artifact root (the unpacked layer). Local chart paths in the
    /// descriptor resolve relative to the descriptor and must stay in here.
    pub dir: PathBuf,
    /// The descriptor file inside `dir`.
    pub descriptor: PathBuf,
    /// Whether this fetch downloaded it (false: it was in the cache).
    pub pulled: bool,
}

/// Why a reference could not be fetched. The graph is then held at its
/// last good digest, with this as the reason.
#[derive(Debug, thiserror::Error)]
pub enum HdarError {
    #[error("resolving {reference} failed")]
    Resolve {
        reference: String,
        #[source]
        source: ResolveError,
    },
    #[error("fetching {reference} failed")]
    Fetch {
        reference: String,
        #[source]
        source: CacheError,
    },
    #[error("artifact {reference} ({digest}) holds no HDAG descriptor")]
    Descriptor {
        reference: String,
        digest: Digest,
        #[source]
        source: DescriptorError,
    },
    #[error("garbage collection of the artifact cache failed")]
    Gc(#[source] CacheError),
}

impl HdarError {
    /// Whether retrying later (with backoff) may help without a change of
    /// the reference or the registry's content.
    pub fn is_transient(&self) -> bool {
        match self {
            HdarError::Resolve { source, .. } => source.is_transient(),
            HdarError::Fetch { source, .. } | HdarError::Gc(source) => source.is_transient(),
            HdarError::Descriptor { .. } => false,
        }
    }

    /// A short stable label (metrics, status reasons).
    pub fn kind(&self) -> &'static str {
        match self {
            HdarError::Resolve { source, .. } => source.kind(),
            HdarError::Fetch { source, .. } | HdarError::Gc(source) => source.kind(),
            HdarError::Descriptor { .. } => "no_descriptor",
        }
    }
}

/// Resolution, pull, cache and descriptor lookup behind one call.
pub struct Hdar<R: Registry> {
    registry: R,
    cache: Cache,
    /// Fetches share it, garbage collection takes it alone, so a
    /// collection never removes an entry (or staging directory) a fetch
    /// is writing or about to hand out.
    lock: RwLock<()>,
}

impl<R: Registry> Hdar<R> {
    /// Artifacts are cached under `<state_dir>/hdar/`.
    pub fn new(registry: R, state_dir: &Path, limits: Limits) -> Hdar<R> {
        Hdar {
            registry,
            cache: Cache::new(state_dir, limits),
            lock: RwLock::new(()),
        }
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Resolves, pulls (unless cached), verifies and unpacks the artifact a
    /// reference names, and finds its descriptor.
    #[tracing::instrument(skip_all, fields(reference = %reference))]
    pub async fn fetch(&self, reference: &GraphRef) -> Result<Fetched, HdarError> {
        let shown = reference.to_string();
        let _shared = self.lock.read().await;
        let resolved = resolve::resolve(&self.registry, reference)
            .await
            .map_err(|source| HdarError::Resolve {
                reference: shown.clone(),
                source,
            })?;
        let cached = self
            .cache
            .get_or_pull(&self.registry, &reference.repository, &resolved.digest)
            .await
            .map_err(|source| HdarError::Fetch {
                reference: shown.clone(),
                source,
            })?;
        let content = cached.content.clone();
        let found = tokio::task::spawn_blocking(move || descriptor::find(&content))
            .await
            .map_err(|e| HdarError::Fetch {
                reference: shown.clone(),
                source: CacheError::Task(e.to_string()),
            })?
            .map_err(|source| HdarError::Descriptor {
                reference: shown.clone(),
                digest: resolved.digest.clone(),
                source,
            })?;
        tracing::info!(
            digest = %resolved.digest,
            tag = resolved.tag.as_deref().unwrap_or(""),
            pulled = cached.pulled,
            "artifact ready"
        );
        Ok(Fetched {
            digest: resolved.digest,
            tag: resolved.tag,
            dir: found.root,
            descriptor: found.descriptor,
            pulled: cached.pulled,
        })
    }

    /// Removes every cached artifact whose digest is not in `keep` (the
    /// digests the current graphs use, last good ones included).
    #[tracing::instrument(skip_all, fields(keep = keep.len()))]
    pub async fn gc(&self, keep: &BTreeSet<Digest>) -> Result<GcReport, HdarError> {
        let _exclusive = self.lock.write().await;
        let cache = self.cache.clone();
        let keep = keep.clone();
        tokio::task::spawn_blocking(move || cache.gc(&keep))
            .await
            .map_err(|e| HdarError::Gc(CacheError::Task(e.to_string())))?
            .map_err(HdarError::Gc)
    }
}

#[cfg(test)]
mod tests {
    use super::resolve::testing::MemoryRegistry;
    use super::unpack::testing::{Entry, tar_gz};
    use super::*;
    use serde_json::json;

    fn reference(selector: serde_json::Value) -> GraphRef {
        let mut spec = json!({"oci": "oci://127.0.0.1:5000/p/g"});
        spec.as_object_mut()
            .unwrap()
            .extend(selector.as_object().unwrap().clone());
        GraphRef::from_value(&json!({ "hdaGraphRef": spec })).unwrap()
    }

    fn chart(version: &str) -> Vec<u8> {
        let chart_yaml = format!("apiVersion: v2\nname: g\nversion: {version}\n");
        let hdag = format!("hdaGraph:\n  id: g\n  version: \"{version}\"\n");
        tar_gz(&[
            Entry::File("g/Chart.yaml", chart_yaml.as_bytes()),
            Entry::File("g/hdag/hdag.yaml", hdag.as_bytes()),
        ])
    }

    #[tokio::test]
    async fn fetch_finds_the_descriptor_and_follows_a_new_version_in_range() {
        let state = tempfile::tempdir().unwrap();
        let reg = MemoryRegistry::default();
        let d1 = reg.push("1.0.0", chart("1.0.0"));
        let hdar = Hdar::new(reg, state.path(), Limits::default());
        let r = reference(json!({"semver": ">=1.0 <2"}));

        let f = hdar.fetch(&r).await.unwrap();
        assert_eq!(
            (&f.digest, f.tag.as_deref(), f.pulled),
            (&d1, Some("1.0.0"), true)
        );
        assert_eq!(f.descriptor, f.dir.join("g/hdag/hdag.yaml"));

        let again = hdar.fetch(&r).await.unwrap();
        assert!(!again.pulled, "an unchanged digest is not downloaded again");

        let d2 = hdar.registry.push("1.1.0", chart("1.1.0"));
        let f2 = hdar.fetch(&r).await.unwrap();
        assert_eq!((&f2.digest, f2.tag.as_deref()), (&d2, Some("1.1.0")));
        let text = std::fs::read_to_string(&f2.descriptor).unwrap();
        assert!(text.contains("1.1.0"), "{text}");

        let report = hdar.gc(&BTreeSet::from([d2.clone()])).await.unwrap();
        assert_eq!(report.removed, vec![d1]);
        assert!(f2.descriptor.is_file());
    }

    #[tokio::test]
    async fn an_artifact_without_a_descriptor_is_a_terminal_error() {
        let state = tempfile::tempdir().unwrap();
        let reg = MemoryRegistry::default();
        reg.push(
            "1.0.0",
            tar_gz(&[Entry::File("g/Chart.yaml", b"name: g\n")]),
        );
        let hdar = Hdar::new(reg, state.path(), Limits::default());
        let err = hdar
            .fetch(&reference(json!({"tag": "1.0.0"})))
            .await
            .unwrap_err();
        assert!(matches!(err, HdarError::Descriptor { .. }), "{err}");
        assert_eq!(err.kind(), "no_descriptor");
        assert!(!err.is_transient());
    }

    #[tokio::test]
    async fn an_unreachable_registry_is_transient_and_a_cached_pin_still_works() {
        let state = tempfile::tempdir().unwrap();
        let reg = MemoryRegistry::default();
        let d = reg.push("1.0.0", chart("1.0.0"));
        let hdar = Hdar::new(reg, state.path(), Limits::default());
        let pinned = reference(json!({"digest": d.to_string()}));
        hdar.fetch(&pinned).await.unwrap();
        hdar.registry
            .down
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let err = hdar
            .fetch(&reference(json!({"tag": "1.0.0"})))
            .await
            .unwrap_err();
        assert!(err.is_transient(), "{err}");
        assert_eq!(err.kind(), "unreachable");
        // A pinned digest that is cached needs no registry.
        assert!(!hdar.fetch(&pinned).await.unwrap().pulled);
    }
}
