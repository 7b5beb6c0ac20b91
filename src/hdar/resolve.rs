//! Which artifact a reference means: the narrow [`Registry`] interface the
//! HDAR code needs from an OCI registry, and the pure selection on top of
//! it (a tag resolves to its current digest, a digest is pinned, a semver
//! range picks its highest matching tag).
//!
//! The selection is tested here with an in-memory registry; the real
//! client is [`super::oci::OciRegistry`].

use super::reference::{Digest, GraphRef, Repository, Selector, SemverRange};
use std::future::Future;

/// A manifest and the blob of its content layer, as the registry sent
/// them (unverified: [`super::cache`] checks both digests).
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The manifest's bytes, exactly as served (their sha256 is the digest).
    pub manifest: Vec<u8>,
    /// The layer the artifact's files are in.
    pub layer: Layer,
}

/// One layer blob with the digest and media type its manifest declares.
#[derive(Debug, Clone)]
pub struct Layer {
    pub media_type: String,
    pub digest: String,
    pub bytes: Vec<u8>,
}

/// What a registry failure means for the caller.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry {registry} cannot be reached: {reason}")]
    Unreachable { registry: String, reason: String },
    #[error(
        "registry {registry} refused the credentials for {repository}: {reason}; check the auth file's entry for {registry}"
    )]
    Unauthorized {
        registry: String,
        repository: String,
        reason: String,
    },
    #[error("{what} not found in {repository}")]
    NotFound { repository: String, what: String },
    #[error("{what} from {repository} has digest {actual}, expected {expected}")]
    DigestMismatch {
        repository: String,
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{what} from {repository} is larger than {limit} bytes")]
    TooLarge {
        repository: String,
        what: String,
        limit: u64,
    },
    #[error("manifest of {repository}@{digest} is not usable: {reason}")]
    Manifest {
        repository: String,
        digest: String,
        reason: String,
    },
    #[error("registry {registry} answered with an error: {reason}")]
    Protocol { registry: String, reason: String },
    #[error("cannot read the registry auth file {file}: {reason}")]
    AuthFile { file: String, reason: String },
}

impl RegistryError {
    /// Whether trying again later may succeed without anyone changing
    /// anything (network, server errors); the rest waits for a change.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            RegistryError::Unreachable { .. } | RegistryError::Protocol { .. }
        )
    }

    /// A short stable label (metrics, status reasons).
    pub fn kind(&self) -> &'static str {
        match self {
            RegistryError::Unreachable { .. } => "unreachable",
            RegistryError::Unauthorized { .. } => "unauthorized",
            RegistryError::NotFound { .. } => "not_found",
            RegistryError::DigestMismatch { .. } => "digest_mismatch",
            RegistryError::TooLarge { .. } => "too_large",
            RegistryError::Manifest { .. } => "manifest",
            RegistryError::Protocol { .. } => "protocol",
            RegistryError::AuthFile { .. } => "auth_file",
        }
    }
}

/// The registry operations HDAR needs. Implementations do no caching and
/// no verification: both happen above them, once.
pub trait Registry: Send + Sync {
    /// Every tag of the repository.
    fn list_tags(
        &self,
        repo: &Repository,
    ) -> impl Future<Output = Result<Vec<String>, RegistryError>> + Send;

    /// The digest of the manifest a tag points to now.
    fn resolve_digest(
        &self,
        repo: &Repository,
        tag: &str,
    ) -> impl Future<Output = Result<Digest, RegistryError>> + Send;

    /// The manifest with this digest and its content layer.
    fn pull(
        &self,
        repo: &Repository,
        digest: &Digest,
    ) -> impl Future<Output = Result<Pulled, RegistryError>> + Send;
}

/// The outcome of resolution: the digest to use and the tag that led to
/// it (none for a pinned digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub digest: Digest,
    pub tag: Option<String>,
}

/// Errors of selection itself (the registry answered, nothing matched).
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("listing the tags of {repository} failed")]
    ListTags {
        repository: String,
        #[source]
        source: RegistryError,
    },
    #[error("resolving tag {tag} of {repository} failed")]
    ResolveTag {
        repository: String,
        tag: String,
        #[source]
        source: RegistryError,
    },
    #[error(
        "no tag of {repository} matches semver range `{range}` ({tags} tags, {versions} of them versions); push a matching version or widen the range"
    )]
    NoMatchingTag {
        repository: String,
        range: String,
        tags: usize,
        versions: usize,
    },
}

impl ResolveError {
    pub fn is_transient(&self) -> bool {
        match self {
            ResolveError::ListTags { source, .. } | ResolveError::ResolveTag { source, .. } => {
                source.is_transient()
            }
            ResolveError::NoMatchingTag { .. } => false,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            ResolveError::ListTags { source, .. } | ResolveError::ResolveTag { source, .. } => {
                source.kind()
            }
            ResolveError::NoMatchingTag { .. } => "no_matching_tag",
        }
    }
}

/// Resolves a reference to a digest: a pinned digest without any network
/// call, a tag by asking the registry, a range by listing tags first.
#[tracing::instrument(skip_all, fields(reference = %reference))]
pub async fn resolve<R: Registry>(
    registry: &R,
    reference: &GraphRef,
) -> Result<Resolved, ResolveError> {
    let repo = &reference.repository;
    let tag = match &reference.selector {
        Selector::Digest(d) => {
            return Ok(Resolved {
                digest: d.clone(),
                tag: None,
            });
        }
        Selector::Tag(t) => t.clone(),
        Selector::Semver(range) => {
            let tags = registry
                .list_tags(repo)
                .await
                .map_err(|source| ResolveError::ListTags {
                    repository: repo.to_string(),
                    source,
                })?;
            highest_matching(&tags, range).ok_or_else(|| ResolveError::NoMatchingTag {
                repository: repo.to_string(),
                range: range.to_string(),
                tags: tags.len(),
                versions: tags.iter().filter(|t| tag_version(t).is_some()).count(),
            })?
        }
    };
    let digest = registry
        .resolve_digest(repo, &tag)
        .await
        .map_err(|source| ResolveError::ResolveTag {
            repository: repo.to_string(),
            tag: tag.clone(),
            source,
        })?;
    tracing::debug!(tag = %tag, digest = %digest, "reference resolved");
    Ok(Resolved {
        digest,
        tag: Some(tag),
    })
}

/// The tag with the highest version inside `range`. Tags that are not
/// versions are ignored; of two tags naming the same version (`1.0.0` and
/// `v1.0.0`) the lexicographically smaller wins, so the choice never
/// depends on the registry's listing order.
pub fn highest_matching(tags: &[String], range: &SemverRange) -> Option<String> {
    tags.iter()
        .filter_map(|t| tag_version(t).map(|v| (v, t)))
        .filter(|(v, _)| range.matches(v))
        .max_by(|(va, ta), (vb, tb)| va.cmp(vb).then_with(|| tb.cmp(ta)))
        .map(|(_, t)| t.clone())
}

/// The version a tag names. Helm stores a chart version's `+` as `_` in
/// the tag (OCI tags cannot hold `+`); a leading `v` and a missing minor or
/// patch (`1.0` is 1.0.0) are accepted as helm and Flux accept them.
pub fn tag_version(tag: &str) -> Option<semver::Version> {
    let text = tag
        .strip_prefix(['v', 'V'])
        .unwrap_or(tag)
        .replace('_', "+");
    let core_end = text.find(['-', '+']).unwrap_or(text.len());
    let (core, rest) = text.split_at(core_end);
    let padded = match core.matches('.').count() {
        0 => format!("{core}.0.0{rest}"),
        1 => format!("{core}.0{rest}"),
        _ => text.clone(),
    };
    semver::Version::parse(&padded).ok()
}

#[cfg(test)]
pub(crate) mod testing {
    //! An in-memory registry for the tests of the layers above.
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Default)]
    pub struct MemoryRegistry {
        pub tags: Mutex<BTreeMap<String, Digest>>,
        pub artifacts: Mutex<BTreeMap<Digest, Pulled>>,
        pub pulls: AtomicUsize,
        pub down: std::sync::atomic::AtomicBool,
    }

    impl MemoryRegistry {
        /// Stores an artifact whose layer is `layer` and tags it.
        pub fn push(&self, tag: &str, layer: Vec<u8>) -> Digest {
            let layer_digest = Digest::of(&layer);
            let manifest = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.cncf.helm.config.v1+json",
                           "digest": Digest::of(b"{}").to_string(), "size": 2},
                "layers": [{"mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
                            "digest": layer_digest.to_string(), "size": layer.len()}]
            });
            let manifest = serde_json::to_vec(&manifest).unwrap();
            let digest = Digest::of(&manifest);
            self.artifacts.lock().unwrap().insert(
                digest.clone(),
                Pulled {
                    manifest,
                    layer: Layer {
                        media_type: "application/vnd.cncf.helm.chart.content.v1.tar+gzip".into(),
                        digest: layer_digest.to_string(),
                        bytes: layer,
                    },
                },
            );
            self.tags
                .lock()
                .unwrap()
                .insert(tag.to_owned(), digest.clone());
            digest
        }

        fn check_up(&self, repo: &Repository) -> Result<(), RegistryError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(RegistryError::Unreachable {
                    registry: repo.registry.clone(),
                    reason: "connection refused".into(),
                });
            }
            Ok(())
        }
    }

    impl Registry for MemoryRegistry {
        async fn list_tags(&self, repo: &Repository) -> Result<Vec<String>, RegistryError> {
            self.check_up(repo)?;
            Ok(self.tags.lock().unwrap().keys().cloned().collect())
        }

        async fn resolve_digest(
            &self,
            repo: &Repository,
            tag: &str,
        ) -> Result<Digest, RegistryError> {
            self.check_up(repo)?;
            self.tags
                .lock()
                .unwrap()
                .get(tag)
                .cloned()
                .ok_or_else(|| RegistryError::NotFound {
                    repository: repo.to_string(),
                    what: format!("tag {tag}"),
                })
        }

        async fn pull(&self, repo: &Repository, digest: &Digest) -> Result<Pulled, RegistryError> {
            self.check_up(repo)?;
            self.pulls.fetch_add(1, Ordering::SeqCst);
            self.artifacts
                .lock()
                .unwrap()
                .get(digest)
                .cloned()
                .ok_or_else(|| RegistryError::NotFound {
                    repository: repo.to_string(),
                    what: format!("manifest {digest}"),
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::MemoryRegistry;
    use super::*;
    use crate::hdar::reference::GraphRef;
    use serde_json::json;

    fn reference(selector: serde_json::Value) -> GraphRef {
        let mut spec = json!({"oci": "oci://127.0.0.1:5000/p/g"});
        spec.as_object_mut()
            .unwrap()
            .extend(selector.as_object().unwrap().clone());
        GraphRef::from_value(&json!({ "hdaGraphRef": spec })).unwrap()
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn semver_picks_the_highest_matching_tag() {
        let range = SemverRange::parse(">=1.0 <2").unwrap();
        let tags = strings(&[
            "latest",
            "0.9.0",
            "1.0.0",
            "1.10.0",
            "1.9.3",
            "2.0.0",
            "1.11.0-rc.1",
        ]);
        assert_eq!(highest_matching(&tags, &range).as_deref(), Some("1.10.0"));
        assert_eq!(
            highest_matching(&strings(&["latest", "2.0.0"]), &range),
            None
        );
    }

    #[test]
    fn helm_build_metadata_and_v_prefixes_are_versions() {
        assert_eq!(
            tag_version("1.0.0_build.2"),
            semver::Version::parse("1.0.0+build.2").ok()
        );
        assert_eq!(tag_version("v1.2.3"), semver::Version::parse("1.2.3").ok());
        assert_eq!(tag_version("latest"), None);
        assert_eq!(tag_version("1.0"), semver::Version::parse("1.0.0").ok());
        assert_eq!(tag_version("v2"), semver::Version::parse("2.0.0").ok());
        assert_eq!(
            tag_version("1.1-rc.1"),
            semver::Version::parse("1.1.0-rc.1").ok()
        );
        assert_eq!(tag_version("1..0"), None);
        let range = SemverRange::parse("^1").unwrap();
        // Same version twice: the choice does not depend on listing order.
        assert_eq!(
            highest_matching(&strings(&["v1.2.0", "1.2.0"]), &range).as_deref(),
            Some("1.2.0")
        );
        assert_eq!(
            highest_matching(&strings(&["1.2.0", "v1.2.0"]), &range).as_deref(),
            Some("1.2.0")
        );
    }

    #[tokio::test]
    async fn a_digest_is_pinned_a_tag_and_a_range_are_resolved() {
        let reg = MemoryRegistry::default();
        let d1 = reg.push("1.0.0", b"one".to_vec());
        let d2 = reg.push("1.2.0", b"two".to_vec());
        reg.push("2.0.0", b"three".to_vec());

        let r = resolve(&reg, &reference(json!({"tag": "1.0.0"})))
            .await
            .unwrap();
        assert_eq!((r.digest, r.tag.as_deref()), (d1.clone(), Some("1.0.0")));

        let r = resolve(&reg, &reference(json!({"semver": ">=1.0 <2"})))
            .await
            .unwrap();
        assert_eq!((r.digest, r.tag.as_deref()), (d2, Some("1.2.0")));

        // A pinned digest needs no registry at all.
        reg.down.store(true, std::sync::atomic::Ordering::SeqCst);
        let pinned = reference(json!({"digest": d1.to_string()}));
        assert_eq!(resolve(&reg, &pinned).await.unwrap().digest, d1);
        let err = resolve(&reg, &reference(json!({"tag": "1.0.0"})))
            .await
            .unwrap_err();
        assert!(err.is_transient(), "{err}");
        assert_eq!(err.kind(), "unreachable");
    }

    #[tokio::test]
    async fn a_range_without_a_match_is_a_terminal_error() {
        let reg = MemoryRegistry::default();
        reg.push("3.0.0", b"x".to_vec());
        let err = resolve(&reg, &reference(json!({"semver": "^1"})))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                ResolveError::NoMatchingTag {
                    tags: 1,
                    versions: 1,
                    ..
                }
            ),
            "{err}"
        );
        assert!(!err.is_transient());
    }

    #[tokio::test]
    async fn a_moved_tag_resolves_to_its_new_digest() {
        let reg = MemoryRegistry::default();
        let first = reg.push("stable", b"a".to_vec());
        let r = reference(json!({"tag": "stable"}));
        assert_eq!(resolve(&reg, &r).await.unwrap().digest, first);
        let second = reg.push("stable", b"b".to_vec());
        assert_eq!(resolve(&reg, &r).await.unwrap().digest, second);
    }
}
