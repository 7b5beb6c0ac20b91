//! Sources of desired state. A snapshot is a revision and a directory that
//! holds the state root at that revision; the directory never changes while
//! the snapshot is in use (Git checks every revision out into its own
//! directory; a watched directory is read in place and identified by a hash
//! of its content).
//!
//! A source that cannot be read keeps the last good snapshot: the caller
//! owns it, and the source only reports the failure.

mod checkout;
pub mod dir;
pub mod git;
pub mod index;

/// The file in the state root that lets a snapshot remove more graphs
/// than `prune.maxDeletePercent` (or all of them). Hidden, yet its presence
/// is part of a directory's revision: adding or removing it is a change.
pub const ALLOW_PRUNE_MARKER: &str = ".smo-allow-prune";

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The state root at one revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// A commit SHA, or `sha256:<hex>` of a directory's content.
    pub revision: String,
    /// The state root (what `desired::loader::load_root` reads).
    pub root: PathBuf,
    /// The commit, for a Git source.
    pub commit: Option<crate::provenance::Commit>,
    /// Every file of the root with its digest; `None` when it could not be
    /// read (then every graph is assumed affected by a change).
    pub files: Option<Arc<index::FileIndex>>,
    /// Keeps `root` on disk while this snapshot (or a clone) is alive: the
    /// Git source never prunes a leased checkout. Whoever reads `root` keeps
    /// the snapshot for as long as it does.
    pub lease: Lease,
}

/// Revisions in use, each with the number of live [`Lease`]s on it.
#[derive(Debug, Clone, Default)]
pub struct Leases(Arc<Mutex<HashMap<String, usize>>>);

impl Leases {
    /// A lease on `revision`, released when its last clone is dropped.
    pub fn lease(&self, revision: &str) -> Lease {
        *self.counts().entry(revision.to_owned()).or_default() += 1;
        Lease(Some(Arc::new(Held {
            revision: revision.to_owned(),
            leases: self.clone(),
        })))
    }

    pub fn in_use(&self, revision: &str) -> bool {
        self.counts().contains_key(revision)
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// See [`Snapshot::lease`]; `Lease::default()` holds nothing (a watched
/// directory is read in place and needs no lease). Leases never make two
/// snapshots differ.
#[derive(Debug, Clone, Default)]
// The field is never read: holding it is the point (its drop releases the
// checkout).
pub struct Lease(#[allow(dead_code)] Option<Arc<Held>>);

impl PartialEq for Lease {
    fn eq(&self, _: &Lease) -> bool {
        true
    }
}
impl Eq for Lease {}

#[derive(Debug)]
struct Held {
    revision: String,
    leases: Leases,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut counts = self.leases.counts();
        if let Some(n) = counts.get_mut(&self.revision) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.revision);
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read the state directory {path}: {source}")]
    ReadDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot watch {path}: {source}")]
    Watch {
        path: PathBuf,
        #[source]
        source: notify::Error,
    },
    #[error("git {operation} of {url} failed: {source}; {}", git_hint(.source))]
    Git {
        operation: &'static str,
        url: String,
        #[source]
        source: git2::Error,
    },
    #[error("{what} `{name}` not found in {url}")]
    RefNotFound {
        what: &'static str,
        name: String,
        url: String,
    },
    #[error("cannot read the credential file {path}: {source}")]
    Credential {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot prepare the checkout directory {path}: {source}")]
    Checkout {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the state root `{path}` does not exist at revision {revision}; check source.git.path")]
    MissingPath { path: PathBuf, revision: String },
}

/// What an operator can do about a failed Git operation.
fn git_hint(error: &git2::Error) -> &'static str {
    if error.code() == git2::ErrorCode::Owner {
        // A file:// remote owned by another user: libgit2 refuses it as git
        // does ("dubious ownership"); under systemd smo's user is dynamic.
        "the repository belongs to another user: mark it safe for smo's user \
         (`git config --system --add safe.directory PATH`, which smo reads from \
         /etc/gitconfig) and let that user read it, or serve it over \
         https://, ssh:// or git://"
    } else {
        "check source.git.url, the ref and the credentials"
    }
}

#[cfg(test)]
mod hint_tests {
    use super::*;

    #[test]
    fn a_remote_owned_by_someone_else_gets_an_actionable_hint() {
        let owner = git2::Error::new(
            git2::ErrorCode::Owner,
            git2::ErrorClass::Config,
            "repository path '/srv/state.git' is not owned by current user",
        );
        let e = SourceError::Git {
            operation: "fetch",
            url: "file:///srv/state.git".into(),
            source: owner,
        };
        let text = e.to_string();
        assert!(text.contains("safe.directory"), "{text}");
        assert!(!text.contains("credentials"), "{text}");
        let other = SourceError::Git {
            operation: "fetch",
            url: "https://git.example/x.git".into(),
            source: git2::Error::from_str("unexpected http status code: 404"),
        };
        assert!(
            other
                .to_string()
                .ends_with("check source.git.url, the ref and the credentials")
        );
    }
}
