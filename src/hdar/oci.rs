//! The [`Registry`] adapter over `oci-client` (the ORAS project's OCI
//! distribution client): the only code here that speaks to a registry.
//!
//! Plain HTTP is used only for registries listed in
//! `helm.insecureRegistries` (the same list helm gets `--plain-http` for);
//! every other registry is HTTPS with the system's trust store (OpenSSL
//! through native-tls, the TLS stack smo already links). Credentials come
//! from a Docker `config.json` ([`AuthSource`]), read at every call.
//! Nothing is verified or cached here; [`super::cache`] does both.

use super::auth::{AuthSource, Credentials};
use super::manifest::{MANIFEST_TYPES, MAX_MANIFEST_BYTES, content_layer};
use super::reference::{Digest, Repository};
use super::resolve::{Layer, Pulled, Registry, RegistryError};
use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{DigestError, OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use std::time::Duration;

/// How to reach registries.
#[derive(Debug, Clone)]
pub struct OciConfig {
    /// `host[:port]` entries spoken to over plain HTTP
    /// (`helm.insecureRegistries`).
    pub insecure_registries: Vec<String>,
    pub auth: AuthSource,
    /// Largest layer pulled (see [`super::unpack::Limits`]); a larger
    /// declared size is refused before anything is downloaded.
    pub max_layer_bytes: u64,
    /// Connecting: 10 s by default, long enough for a slow TLS handshake
    /// and short enough that an unreachable registry is reported within
    /// one source interval.
    pub connect_timeout: Duration,
    /// Silence between two reads of one response: 30 s by default.
    pub read_timeout: Duration,
}

impl Default for OciConfig {
    fn default() -> Self {
        OciConfig {
            insecure_registries: Vec::new(),
            auth: AuthSource::default(),
            max_layer_bytes: super::unpack::Limits::default().max_archive_bytes,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
        }
    }
}

/// Tags asked for per page; pages are followed with `last`.
const TAG_PAGE: usize = 1000;
/// Pages followed at most: 100 000 tags, far beyond any HDAR repository,
/// and a bound for a registry that ignores `last`.
const MAX_TAG_PAGES: usize = 100;

/// A registry client. The HTTP client (and its TLS context) is built at
/// the first call, so a daemon whose state has no `hdaGraphRef` never
/// pays for it.
pub struct OciRegistry {
    client: std::sync::OnceLock<Result<Client, String>>,
    config: OciConfig,
}

impl std::fmt::Debug for OciRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OciRegistry")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl OciRegistry {
    pub fn new(config: OciConfig) -> Result<OciRegistry, RegistryError> {
        Ok(OciRegistry {
            client: std::sync::OnceLock::new(),
            config,
        })
    }

    fn client(&self) -> Result<&Client, RegistryError> {
        self.client
            .get_or_init(|| {
                Client::try_from(ClientConfig {
                    protocol: ClientProtocol::HttpsExcept(self.config.insecure_registries.clone()),
                    connect_timeout: Some(self.config.connect_timeout),
                    read_timeout: Some(self.config.read_timeout),
                    user_agent: concat!("smo/", env!("CARGO_PKG_VERSION")),
                    ..ClientConfig::default()
                })
                .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|reason| RegistryError::Protocol {
                registry: "(client setup)".into(),
                reason: reason.clone(),
            })
    }

    fn auth(&self, repo: &Repository) -> Result<RegistryAuth, RegistryError> {
        let creds =
            self.config
                .auth
                .credentials(&repo.registry)
                .map_err(|e| RegistryError::AuthFile {
                    file: self
                        .config
                        .auth
                        .file
                        .as_deref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                    reason: error_chain(&e),
                })?;
        Ok(match creds {
            Credentials::Anonymous => RegistryAuth::Anonymous,
            Credentials::Basic { username, password } => RegistryAuth::Basic(username, password),
            Credentials::Bearer(token) => RegistryAuth::Bearer(token),
        })
    }
}

fn tag_ref(repo: &Repository, tag: &str) -> Reference {
    Reference::with_tag(repo.registry.clone(), repo.path.clone(), tag.to_owned())
}

fn digest_ref(repo: &Repository, digest: &Digest) -> Reference {
    Reference::with_digest(repo.registry.clone(), repo.path.clone(), digest.to_string())
}

impl Registry for OciRegistry {
    #[tracing::instrument(skip_all, fields(repository = %repo))]
    async fn list_tags(&self, repo: &Repository) -> Result<Vec<String>, RegistryError> {
        let auth = self.auth(repo)?;
        let reference = tag_ref(repo, "latest");
        let mut tags: Vec<String> = Vec::new();
        let mut last: Option<String> = None;
        for _ in 0..MAX_TAG_PAGES {
            let page = self
                .client()?
                .list_tags(&reference, &auth, Some(TAG_PAGE), last.as_deref())
                .await
                .map_err(|e| classify(e, repo, "tag list"))?;
            let full = page.tags.len() >= TAG_PAGE;
            let next = page.tags.last().cloned();
            tags.extend(page.tags);
            if !full || next.is_none() || next == last {
                break;
            }
            last = next;
        }
        tags.sort();
        tags.dedup();
        Ok(tags)
    }

    #[tracing::instrument(skip_all, fields(repository = %repo, tag = %tag))]
    async fn resolve_digest(&self, repo: &Repository, tag: &str) -> Result<Digest, RegistryError> {
        let auth = self.auth(repo)?;
        let digest = self
            .client()?
            .fetch_manifest_digest(&tag_ref(repo, tag), &auth)
            .await
            .map_err(|e| classify(e, repo, &format!("tag {tag}")))?;
        Digest::parse(&digest).map_err(|_| RegistryError::Protocol {
            registry: repo.registry.clone(),
            reason: format!("tag {tag} resolved to `{digest}`, not a sha256 digest"),
        })
    }

    #[tracing::instrument(skip_all, fields(repository = %repo, digest = %digest))]
    async fn pull(&self, repo: &Repository, digest: &Digest) -> Result<Pulled, RegistryError> {
        let auth = self.auth(repo)?;
        let reference = digest_ref(repo, digest);
        let (manifest, _) = self
            .client()?
            .pull_manifest_raw(&reference, &auth, &MANIFEST_TYPES)
            .await
            .map_err(|e| classify(e, repo, &format!("manifest {digest}")))?;
        if manifest.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(RegistryError::TooLarge {
                repository: repo.to_string(),
                what: format!("manifest {digest}"),
                limit: MAX_MANIFEST_BYTES,
            });
        }
        let layer = content_layer(&manifest).map_err(|e| RegistryError::Manifest {
            repository: repo.to_string(),
            digest: digest.to_string(),
            reason: e.to_string(),
        })?;
        let limit = self.config.max_layer_bytes;
        let too_large = || RegistryError::TooLarge {
            repository: repo.to_string(),
            what: format!("layer {}", layer.digest),
            limit,
        };
        if layer.size > limit {
            return Err(too_large());
        }
        let what = format!("layer {}", layer.digest);
        let mut stream = self
            .client()?
            .pull_blob_stream(&reference, layer.digest.as_str())
            .await
            .map_err(|e| classify(e, repo, &what))?;
        let mut bytes = Vec::with_capacity(usize::try_from(layer.size).unwrap_or(0));
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| classify_stream(e, repo, &what))?;
            if (bytes.len() + chunk.len()) as u64 > limit {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        tracing::debug!(bytes = bytes.len(), media_type = %layer.media_type, "layer pulled");
        Ok(Pulled {
            manifest,
            layer: Layer {
                media_type: layer.media_type,
                digest: layer.digest,
                bytes,
            },
        })
    }
}

/// What an `oci-client` error means for the caller.
fn classify(err: OciDistributionError, repo: &Repository, what: &str) -> RegistryError {
    let registry = repo.registry.clone();
    let not_found = || RegistryError::NotFound {
        repository: repo.to_string(),
        what: what.to_owned(),
    };
    let unauthorized = |reason: String| RegistryError::Unauthorized {
        registry: repo.registry.clone(),
        repository: repo.to_string(),
        reason,
    };
    match err {
        OciDistributionError::RequestError(e) => {
            let status = e.status().map(|s| s.as_u16());
            if e.is_connect() || e.is_timeout() {
                RegistryError::Unreachable {
                    registry,
                    reason: error_chain(&e),
                }
            } else if matches!(status, Some(401 | 403)) {
                unauthorized(error_chain(&e))
            } else if status == Some(404) {
                not_found()
            } else {
                RegistryError::Protocol {
                    registry,
                    reason: error_chain(&e),
                }
            }
        }
        OciDistributionError::AuthenticationFailure(reason) => unauthorized(reason),
        OciDistributionError::UnauthorizedError { url } => unauthorized(format!("401 from {url}")),
        OciDistributionError::ImageManifestNotFoundError(_) => not_found(),
        OciDistributionError::ServerError { code: 404, .. } => not_found(),
        OciDistributionError::ServerError {
            code: 401 | 403,
            message,
            ..
        } => unauthorized(message),
        OciDistributionError::RegistryError { envelope, url } => {
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
            if codes.iter().any(|c| {
                matches!(
                    c,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::BlobUnknown
                        | OciErrorCode::NotFound
                )
            }) {
                not_found()
            } else if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
            {
                unauthorized(format!("{envelope} ({url})"))
            } else {
                RegistryError::Protocol {
                    registry,
                    reason: format!("{envelope} ({url})"),
                }
            }
        }
        OciDistributionError::DigestError(DigestError::VerificationError { expected, actual }) => {
            RegistryError::DigestMismatch {
                repository: repo.to_string(),
                what: what.to_owned(),
                expected,
                actual,
            }
        }
        other => RegistryError::Protocol {
            registry,
            reason: error_chain(&other),
        },
    }
}

/// A failure while reading a blob: `oci-client` verifies the digest as the
/// stream ends and reports a mismatch as an I/O error wrapping it.
fn classify_stream(err: std::io::Error, repo: &Repository, what: &str) -> RegistryError {
    if let Some(DigestError::VerificationError { expected, actual }) = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<DigestError>())
    {
        return RegistryError::DigestMismatch {
            repository: repo.to_string(),
            what: what.to_owned(),
            expected: expected.clone(),
            actual: actual.clone(),
        };
    }
    let reason = error_chain(&err);
    if err.kind() == std::io::ErrorKind::TimedOut
        || err
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<reqwest::Error>())
            .is_some_and(|e| e.is_timeout() || e.is_connect() || e.is_body())
    {
        return RegistryError::Unreachable {
            registry: repo.registry.clone(),
            reason,
        };
    }
    RegistryError::Protocol {
        registry: repo.registry.clone(),
        reason,
    }
}

/// An error and its causes on one line.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}
