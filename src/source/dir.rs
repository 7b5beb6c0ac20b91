//! A directory on the management host, watched with `notify`.
//!
//! Events are debounced (an editor's save is a burst: write a temporary
//! file, rename it over the original, change its mode), then the content is
//! hashed; only a changed hash yields a snapshot. Recursive inotify watches
//! cover sub-directories created later. Hidden entries (`.git`, editor swap
//! files) do not count towards the revision, except the presence of the
//! prune marker ([`super::ALLOW_PRUNE_MARKER`]), which changes what a
//! snapshot may do.

use super::{Snapshot, SourceError};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Hashes every visible file below `root` (paths and contents, sorted).
pub fn snapshot(root: &Path) -> Result<Snapshot, SourceError> {
    let err = |source| SourceError::ReadDir {
        path: root.to_owned(),
        source,
    };
    let mut files = Vec::new();
    collect(root, root, &mut files).map_err(err)?;
    files.sort();
    let mut hash = Sha256::new();
    let mut index = super::index::FileIndex::new();
    for rel in files {
        let bytes = std::fs::read(root.join(&rel)).map_err(err)?;
        hash.update(rel.as_bytes());
        hash.update([0]);
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(&bytes);
        index.insert(rel, crate::digest::sha256_hex(&bytes));
    }
    // Its presence, not its content, is what counts. Visible paths never
    // start with '.', so this entry cannot be confused with a file's; a
    // root without the marker keeps the revision it always had.
    if root.join(super::ALLOW_PRUNE_MARKER).exists() {
        hash.update(super::ALLOW_PRUNE_MARKER.as_bytes());
        hash.update([0]);
    }
    let digest = hash.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Ok(Snapshot {
        revision: format!("sha256:{hex}"),
        root: root.to_owned(),
        commit: None,
        files: Some(std::sync::Arc::new(index)),
        lease: super::Lease::default(),
    })
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect(root, &path, out)?;
        } else if path.is_file() {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

/// Whether a watch event can mean the tree's content changed. notify's
/// inotify backend also reports every open and close-without-write: the
/// snapshot's own reads, the loader's and helm's would each wake the watch
/// again, re-hashing the whole tree every debounce for as long as the
/// daemon runs.
fn changes_content(kind: &notify::EventKind) -> bool {
    !matches!(
        kind,
        notify::EventKind::Access(
            notify::event::AccessKind::Open(_)
                | notify::event::AccessKind::Read
                | notify::event::AccessKind::Close(
                    notify::event::AccessMode::Read
                        | notify::event::AccessMode::Execute
                        | notify::event::AccessMode::Any
                )
        )
    )
}

/// Watches `root` and sends a snapshot whenever its content changes (and
/// once at start). Returns when `shutdown` flips to true or the receiver is
/// gone. Errors while hashing are logged and retried on the next event.
pub async fn watch(
    root: PathBuf,
    debounce: Duration,
    tx: mpsc::Sender<Snapshot>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), SourceError> {
    let (event_tx, mut events) = mpsc::unbounded_channel::<()>();
    let mut watcher: RecommendedWatcher =
        notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if res.is_ok_and(|e| changes_content(&e.kind)) {
                // A closed channel means the watch loop ended; nothing to do.
                let _ = event_tx.send(());
            }
        })
        .map_err(|source| SourceError::Watch {
            path: root.clone(),
            source,
        })?;
    watcher
        .watch(&root, RecursiveMode::Recursive)
        .map_err(|source| SourceError::Watch {
            path: root.clone(),
            source,
        })?;

    let mut last: Option<String> = None;
    // The first pass takes the initial snapshot; each later pass starts
    // with the event that woke the loop.
    loop {
        // Quiet period: every new event restarts it.
        loop {
            tokio::select! {
                _ = tokio::time::sleep(debounce) => break,
                ev = events.recv() => if ev.is_none() { return Ok(()) },
                _ = shutdown.changed() => return Ok(()),
            }
        }
        let root2 = root.clone();
        match tokio::task::spawn_blocking(move || snapshot(&root2)).await {
            Ok(Ok(snap)) => {
                if last.as_deref() != Some(snap.revision.as_str()) {
                    last = Some(snap.revision.clone());
                    if tx.send(snap).await.is_err() {
                        return Ok(());
                    }
                }
            }
            Ok(Err(error)) => {
                tracing::warn!(error = %error, "directory source unreadable; keeping the last snapshot");
            }
            Err(error) => tracing::error!(error = %error, "directory snapshot task failed"),
        }
        tokio::select! {
            ev = events.recv() => if ev.is_none() { return Ok(()) },
            _ = shutdown.changed() => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: reading the tree (the snapshot itself, the loader,
    /// helm) woke the watch, which snapshotted again, forever.
    #[test]
    fn only_events_that_can_change_content_wake_the_watch() {
        use notify::EventKind;
        use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RemoveKind};
        for quiet in [
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            EventKind::Access(AccessKind::Read),
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
        ] {
            assert!(!changes_content(&quiet), "{quiet:?}");
        }
        for change in [
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            EventKind::Create(CreateKind::File),
            EventKind::Modify(ModifyKind::Any),
            EventKind::Remove(RemoveKind::File),
            EventKind::Any,
            EventKind::Other,
        ] {
            assert!(changes_content(&change), "{change:?}");
        }
    }

    /// Regression: the marker is hidden, so adding it (to let a large
    /// removal through) was not a change and the held removal stayed held.
    #[test]
    fn the_prune_marker_changes_the_revision() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("projects/p")).unwrap();
        std::fs::write(dir.path().join("projects/p/g.yaml"), "hdaGraph: {}\n").unwrap();
        let without = snapshot(dir.path()).unwrap().revision;
        let marker = dir.path().join(crate::source::ALLOW_PRUNE_MARKER);
        std::fs::write(&marker, "").unwrap();
        let with = snapshot(dir.path()).unwrap().revision;
        assert_ne!(with, without);
        std::fs::remove_file(&marker).unwrap();
        assert_eq!(snapshot(dir.path()).unwrap().revision, without);
        // Other hidden files still do not count.
        std::fs::write(dir.path().join(".swp"), "x").unwrap();
        assert_eq!(snapshot(dir.path()).unwrap().revision, without);
    }
}
