//! A Git repository followed by polling (`git2`, no shell).
//!
//! The repository is fetched into a bare clone under the state directory;
//! each revision is checked out into its own directory
//! (`checkouts/<sha>`), written under a temporary name and renamed into
//! place, so a snapshot's files never change under a reader. Force-pushes
//! are followed (forced refspecs; the checkout is by commit). Credentials
//! are read from their files at each fetch and never logged.

use super::{Snapshot, SourceError};
use git2::{Cred, FetchOptions, RemoteCallbacks, Repository, build::CheckoutBuilder};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How many unleased checkouts to keep besides the current one: a
/// reconcile that started before the switch may still read the previous
/// revision after the daemon let go of its snapshot. Leased checkouts (a
/// snapshot handed out and still held) are kept whatever their number.
const KEEP_CHECKOUTS: usize = 2;

/// Where our fetched refs live, apart from any ref a user might create.
const FETCH_REF: &str = "refs/smo/target";
/// The commit fetched last: what the next fetch says it has.
const LAST_REF: &str = "refs/smo/last";

/// What to follow: a branch, a tag or one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitRef {
    Branch(String),
    Tag(String),
    Commit(String),
}

/// How to authenticate to the remote. Credentials are read from their
/// files at each fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitAuth {
    None,
    Token {
        file: PathBuf,
        /// `None`: `git`.
        username: Option<String>,
    },
    /// Host keys are checked by libgit2 against the service user's
    /// `~/.ssh/known_hosts`.
    SshKey {
        file: PathBuf,
    },
}

#[derive(Debug, Clone)]
pub struct GitSource {
    pub url: String,
    pub reference: GitRef,
    /// Sub-directory of the repository that holds the state root.
    pub path: Option<PathBuf>,
    pub auth: GitAuth,
    /// Private working area (under the daemon's state directory).
    pub dir: PathBuf,
    /// The checkouts that handed-out snapshots still hold: never pruned.
    pub leases: super::Leases,
}

/// What the polling loop reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitEvent {
    Snapshot(Snapshot),
    /// The remote could not be read; the last snapshot stays in force.
    Failed(String),
}

impl GitSource {
    fn git_err(&self, operation: &'static str) -> impl Fn(git2::Error) -> SourceError + '_ {
        move |source| SourceError::Git {
            operation,
            url: self.url.clone(),
            source,
        }
    }

    fn repository(&self) -> Result<Repository, SourceError> {
        let path = self.dir.join("repo.git");
        match Repository::open_bare(&path) {
            Ok(r) => Ok(r),
            Err(_) => {
                std::fs::create_dir_all(&self.dir).map_err(|source| SourceError::Checkout {
                    path: self.dir.clone(),
                    source,
                })?;
                Repository::init_bare(&path).map_err(self.git_err("init"))
            }
        }
    }

    fn callbacks(&self) -> Result<RemoteCallbacks<'static>, SourceError> {
        let mut cb = RemoteCallbacks::new();
        match &self.auth {
            GitAuth::None => {}
            GitAuth::Token { file, username } => {
                let token = std::fs::read_to_string(file)
                    .map_err(|source| SourceError::Credential {
                        path: file.clone(),
                        source,
                    })?
                    .trim()
                    .to_owned();
                let user = username.clone().unwrap_or_else(|| "git".to_owned());
                cb.credentials(move |_, _, _| Cred::userpass_plaintext(&user, &token));
            }
            GitAuth::SshKey { file } => {
                let key = file.clone();
                cb.credentials(move |_, user, _| {
                    Cred::ssh_key(user.unwrap_or("git"), None, &key, None)
                });
            }
        }
        Ok(cb)
    }

    /// Fetches and checks out the configured ref; returns its snapshot.
    /// Blocking: call it from `spawn_blocking`.
    pub fn sync(&self) -> Result<Snapshot, SourceError> {
        let repo = self.repository()?;
        let refspecs: Vec<String> = match &self.reference {
            GitRef::Branch(b) => vec![format!("+refs/heads/{b}:{FETCH_REF}")],
            GitRef::Tag(t) => vec![format!("+refs/tags/{t}:{FETCH_REF}")],
            // A bare commit id cannot be fetched by every server; fetch the
            // branches and tags that may contain it.
            GitRef::Commit(_) => vec![
                "+refs/heads/*:refs/smo/heads/*".into(),
                "+refs/tags/*:refs/smo/tags/*".into(),
            ],
        };
        if let Ok(mut r) = repo.find_reference(FETCH_REF) {
            // A ref deleted upstream must not leave a stale target behind.
            r.delete().map_err(self.git_err("ref cleanup"))?;
        }
        let started = std::time::Instant::now();
        let mut options = FetchOptions::new();
        options.remote_callbacks(self.callbacks()?);
        let mut remote = repo
            .remote_anonymous(&self.url)
            .map_err(self.git_err("remote"))?;
        remote
            .fetch(&refspecs, Some(&mut options), None)
            .map_err(self.git_err("fetch"))?;

        let commit = match &self.reference {
            GitRef::Commit(c) => repo
                .revparse_single(c)
                .and_then(|o| o.peel_to_commit())
                .map_err(|_| SourceError::RefNotFound {
                    what: "commit",
                    name: c.clone(),
                    url: self.url.clone(),
                })?,
            other => {
                let (what, name) = match other {
                    GitRef::Tag(t) => ("tag", t),
                    GitRef::Branch(b) | GitRef::Commit(b) => ("branch", b),
                };
                repo.find_reference(FETCH_REF)
                    .and_then(|r| r.peel_to_commit())
                    .map_err(|_| SourceError::RefNotFound {
                        what,
                        name: name.clone(),
                        url: self.url.clone(),
                    })?
            }
        };
        let previous = repo
            .find_reference(LAST_REF)
            .and_then(|r| r.peel_to_commit())
            .ok()
            .filter(|c| c.id() != commit.id());
        // What was fetched last stays referenced, so that the next fetch
        // tells the server what it has and receives only what is new (the
        // fetch ref itself is deleted before each fetch, see above).
        repo.reference(LAST_REF, commit.id(), true, "smo: last fetched")
            .map_err(self.git_err("ref update"))?;
        let fetched = started.elapsed();
        let sha = commit.id().to_string();
        let checkouts = self.dir.join("checkouts");
        let target = checkouts.join(&sha);
        if target.is_dir() {
            // Handed out again (a force-push back): it is the most recent
            // now, whatever its age.
            touch(&target);
        } else {
            let tmp = checkouts.join(format!(".tmp-{sha}"));
            let io = |path: &Path| {
                let path = path.to_owned();
                move |source| SourceError::Checkout { path, source }
            };
            if tmp.exists() {
                std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
            }
            std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
            let reused = match &previous {
                Some(p) if checkouts.join(p.id().to_string()).is_dir() => {
                    let dir = checkouts.join(p.id().to_string());
                    super::checkout::reuse(&repo, &commit, p, &dir, &tmp).unwrap_or_else(|e| {
                        tracing::debug!(error = %e, "incremental checkout failed; checking everything out");
                        false
                    })
                }
                _ => false,
            };
            if !reused {
                std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
                std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
                let mut co = CheckoutBuilder::new();
                co.target_dir(&tmp).force().recreate_missing(true);
                repo.checkout_tree(commit.as_object(), Some(&mut co))
                    .map_err(self.git_err("checkout"))?;
            }
            std::fs::rename(&tmp, &target).map_err(io(&target))?;
        }
        prune_checkouts(&checkouts, &sha, &self.leases);
        let root = match &self.path {
            Some(p) => target.join(p),
            None => target,
        };
        if !root.is_dir() {
            return Err(SourceError::MissingPath {
                path: self.path.clone().unwrap_or_default(),
                revision: sha,
            });
        }
        let commit_info = crate::provenance::Commit {
            author: signature(&commit.author()),
            committer: signature(&commit.committer()),
            date: commit.time().seconds(),
            subject: String::from_utf8_lossy(commit.summary_bytes().unwrap_or_default())
                .into_owned(),
        };
        tracing::debug!(
            revision = %sha,
            fetch_ms = u64::try_from(fetched.as_millis()).unwrap_or(u64::MAX),
            total_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "git sync"
        );
        let files = match index_of(&repo, &commit, self.path.as_deref()) {
            Ok(index) => Some(std::sync::Arc::new(index)),
            Err(e) => {
                tracing::warn!(revision = %sha, error = %e, "cannot list the commit's files; every graph is checked");
                None
            }
        };
        Ok(Snapshot {
            lease: self.leases.lease(&sha),
            revision: sha,
            root,
            commit: Some(commit_info),
            files,
        })
    }

    /// Polls every `interval` (at once at start) and reports snapshots of
    /// new revisions and failures. Ends on shutdown or when the receiver is
    /// gone.
    pub async fn poll(
        self,
        interval: Duration,
        tx: mpsc::Sender<GitEvent>,
        shutdown: watch::Receiver<bool>,
    ) {
        self.poll_after(None, interval, tx, shutdown).await;
    }

    /// [`GitSource::poll`] after a snapshot of revision `last` was taken:
    /// the first fetch waits an interval, and `last` is not reported again
    /// unless a failure came between (its snapshot then says the source is
    /// back). One outage is one warning; its retries are debug lines.
    pub async fn poll_after(
        self,
        mut last: Option<String>,
        interval: Duration,
        tx: mpsc::Sender<GitEvent>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        if last.is_some() {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.changed() => return,
            }
        }
        let mut failures: u64 = 0;
        loop {
            let me = self.clone();
            tracing::debug!(url = %self.url, "git fetch started");
            let event = match tokio::task::spawn_blocking(move || me.sync()).await {
                Ok(Ok(snap)) => {
                    let recovered = failures > 0;
                    if recovered {
                        tracing::info!(url = %self.url, failed_attempts = failures, "git source reachable again");
                        failures = 0;
                    }
                    if !recovered && last.as_deref() == Some(snap.revision.as_str()) {
                        None
                    } else {
                        last = Some(snap.revision.clone());
                        Some(GitEvent::Snapshot(snap))
                    }
                }
                Ok(Err(error)) => {
                    if failures == 0 {
                        tracing::warn!(error = %error, url = %self.url, "git source unreachable; keeping the last snapshot");
                    } else {
                        tracing::debug!(error = %error, attempt = failures + 1, "git source still unreachable");
                    }
                    failures += 1;
                    Some(GitEvent::Failed(error.to_string()))
                }
                Err(error) => Some(GitEvent::Failed(format!("git sync task failed: {error}"))),
            };
            if let Some(e) = event
                && tx.send(e).await.is_err()
            {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// Sets a checkout's modification time to now (it orders pruning).
fn touch(path: &Path) {
    let done = std::fs::File::open(path).and_then(|f| f.set_modified(std::time::SystemTime::now()));
    if let Err(error) = done {
        tracing::debug!(error = %error, path = %path.display(), "could not touch a checkout");
    }
}

/// Removes old checkouts, keeping the current one, every leased one and the
/// most recent others. Failures only cost disk space, so they are logged,
/// not raised.
fn prune_checkouts(dir: &Path, current: &str, leases: &super::Leases) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut old: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name != current && !name.starts_with('.') && !leases.in_use(&name)
        })
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    old.sort();
    let excess = old.len().saturating_sub(KEEP_CHECKOUTS);
    for (_, path) in old.into_iter().take(excess) {
        if let Err(error) = std::fs::remove_dir_all(&path) {
            tracing::warn!(error = %error, path = %path.display(), "could not remove an old checkout");
        }
    }
}
/// A signature as Git shows it, `Name <email>` (lossy for names that are
/// not UTF-8).
/// The files of the commit under `path`, each with its blob id: read from
/// the tree, not the checkout, so it costs no file reads.
fn index_of(
    repo: &Repository,
    commit: &git2::Commit<'_>,
    path: Option<&Path>,
) -> Result<super::index::FileIndex, git2::Error> {
    let mut tree = commit.tree()?;
    if let Some(p) = path.filter(|p| !p.as_os_str().is_empty()) {
        tree = tree.get_path(p)?.to_object(repo)?.peel_to_tree()?;
    }
    let mut index = super::index::FileIndex::new();
    tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
        if entry.kind() == Some(git2::ObjectType::Blob)
            && let Ok(name) = entry.name()
        {
            index.insert(format!("{dir}{name}"), entry.id().to_string());
        }
        git2::TreeWalkResult::Ok
    })?;
    Ok(index)
}

fn signature(s: &git2::Signature<'_>) -> String {
    let name = String::from_utf8_lossy(s.name_bytes());
    let email = String::from_utf8_lossy(s.email_bytes());
    format!("{name} <{email}>")
}
