//! Desired-state sources against the real file system and real Git
//! repositories (file:// and git:// served by `git daemon` on loopback).

use smo::source::dir;
use smo::source::git::{GitAuth, GitRef};
use smo::source::git::{GitEvent, GitSource};
use smo::source::{Snapshot, SourceError};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn commit_file(repo: &Path, rel: &str, text: &str) -> String {
    let p = repo.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-qm", rel]);
    git(repo, &["rev-parse", "HEAD"])
}

fn origin() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("origin");
    fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    (dir, repo)
}

fn source(url: String, reference: GitRef, work: &Path) -> GitSource {
    GitSource {
        url,
        reference,
        path: None,
        auth: GitAuth::None,
        dir: work.to_owned(),
        leases: smo::source::Leases::default(),
    }
}

fn url(repo: &Path) -> String {
    format!("file://{}", repo.display())
}

#[test]
fn directory_revision_follows_content_not_metadata() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.yaml"), "x: 1\n").unwrap();
    let first = dir::snapshot(dir.path()).unwrap();
    assert!(first.revision.starts_with("sha256:"));
    assert_eq!(dir::snapshot(dir.path()).unwrap(), first);
    fs::write(dir.path().join(".a.yaml.swp"), "junk").unwrap();
    fs::create_dir_all(dir.path().join(".git")).unwrap();
    fs::write(dir.path().join(".git/HEAD"), "junk").unwrap();
    assert_eq!(
        dir::snapshot(dir.path()).unwrap().revision,
        first.revision,
        "hidden files do not count"
    );
    fs::write(dir.path().join("a.yaml"), "x: 2\n").unwrap();
    assert_ne!(dir::snapshot(dir.path()).unwrap().revision, first.revision);
}

async fn next(rx: &mut mpsc::Receiver<Snapshot>) -> Snapshot {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a snapshot within 10 s")
        .expect("open channel")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_watch_sees_rename_saves_new_folders_and_deletions_once_each() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    fs::create_dir_all(root.join("projects/p")).unwrap();
    fs::write(root.join("projects/p/g.yaml"), "v: 1\n").unwrap();
    let (tx, mut rx) = mpsc::channel(8);
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(dir::watch(
        root.clone(),
        Duration::from_millis(150),
        tx,
        stopped,
    ));
    let initial = next(&mut rx).await;

    // An editor's atomic save: write a temporary file, rename it over.
    fs::write(root.join("projects/p/.g.yaml.tmp"), "v: 2\n").unwrap();
    fs::rename(
        root.join("projects/p/.g.yaml.tmp"),
        root.join("projects/p/g.yaml"),
    )
    .unwrap();
    let saved = next(&mut rx).await;
    assert_ne!(saved.revision, initial.revision);

    // A folder created after the watch started is watched too.
    fs::create_dir_all(root.join("projects/q/charts/c")).unwrap();
    fs::write(root.join("projects/q/charts/c/Chart.yaml"), "name: c\n").unwrap();
    let added = next(&mut rx).await;
    assert_ne!(added.revision, saved.revision);
    fs::write(root.join("projects/q/charts/c/values.yaml"), "a: 1\n").unwrap();
    let nested = next(&mut rx).await;
    assert_ne!(nested.revision, added.revision);

    fs::remove_file(root.join("projects/p/g.yaml")).unwrap();
    let deleted = next(&mut rx).await;
    assert_ne!(deleted.revision, nested.revision);

    // Touching a file without changing it yields no snapshot.
    let f = fs::File::options()
        .append(true)
        .open(root.join("projects/q/charts/c/values.yaml"))
        .unwrap();
    f.set_modified(std::time::SystemTime::now()).unwrap();
    drop(f);
    assert!(
        tokio::time::timeout(Duration::from_millis(800), rx.recv())
            .await
            .is_err(),
        "no-op change must not produce a snapshot"
    );

    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
}

#[test]
fn git_follows_a_branch_through_commits_and_force_pushes() {
    let (_tmp, repo) = origin();
    let first = commit_file(&repo, "projects/p/g.yaml", "v: 1\n");
    let work = tempfile::tempdir().unwrap();
    let src = source(url(&repo), GitRef::Branch("main".into()), work.path());

    let s1 = src.sync().unwrap();
    assert_eq!(s1.revision, first);
    assert_eq!(
        fs::read_to_string(s1.root.join("projects/p/g.yaml")).unwrap(),
        "v: 1\n"
    );

    let second = commit_file(&repo, "projects/p/g.yaml", "v: 2\n");
    let s2 = src.sync().unwrap();
    assert_eq!(s2.revision, second);
    assert_eq!(
        fs::read_to_string(s2.root.join("projects/p/g.yaml")).unwrap(),
        "v: 2\n"
    );
    // The previous snapshot's files are untouched: a reader may still use them.
    assert_eq!(
        fs::read_to_string(s1.root.join("projects/p/g.yaml")).unwrap(),
        "v: 1\n"
    );

    // Force-push back to the first commit.
    git(&repo, &["reset", "-q", "--hard", &first]);
    let s3 = src.sync().unwrap();
    assert_eq!(s3.revision, first);
    assert_eq!(
        fs::read_to_string(s3.root.join("projects/p/g.yaml")).unwrap(),
        "v: 1\n"
    );
}

#[test]
fn git_follows_tags_commits_and_sub_paths() {
    let (_tmp, repo) = origin();
    let tagged = commit_file(&repo, "state/projects/p/g.yaml", "v: 1\n");
    git(&repo, &["tag", "-a", "v1", "-m", "release"]);
    let later = commit_file(&repo, "state/projects/p/g.yaml", "v: 2\n");
    let work = tempfile::tempdir().unwrap();

    let mut src = source(url(&repo), GitRef::Tag("v1".into()), work.path());
    src.path = Some("state".into());
    let s = src.sync().unwrap();
    assert_eq!(s.revision, tagged, "annotated tags resolve to their commit");
    assert!(s.root.ends_with("state"));
    assert_eq!(
        fs::read_to_string(s.root.join("projects/p/g.yaml")).unwrap(),
        "v: 1\n"
    );

    let src = source(
        url(&repo),
        GitRef::Commit(tagged[..12].to_owned()),
        work.path(),
    );
    assert_eq!(src.sync().unwrap().revision, tagged);
    let src = source(url(&repo), GitRef::Branch("main".into()), work.path());
    assert_eq!(src.sync().unwrap().revision, later);
}

/// The paths that changed between two snapshots, by their file indexes.
fn changed_between(a: &Snapshot, b: &Snapshot) -> Vec<String> {
    let (a, b) = (a.files.as_deref().unwrap(), b.files.as_deref().unwrap());
    smo::source::index::changed(a, b)
        .into_iter()
        .map(str::to_owned)
        .collect()
}

#[test]
fn snapshots_index_their_files_so_a_change_is_named_not_guessed() {
    // Git: from the commit's tree, relative to the sub-path.
    let (_tmp, repo) = origin();
    commit_file(&repo, "state/projects/p/g.yaml", "v: 1\n");
    commit_file(&repo, "state/projects/p/charts/c/values.yaml", "a: 1\n");
    commit_file(&repo, "elsewhere.txt", "x\n");
    let work = tempfile::tempdir().unwrap();
    let mut src = source(url(&repo), GitRef::Branch("main".into()), work.path());
    src.path = Some("state".into());
    let s1 = src.sync().unwrap();
    let files: Vec<&String> = s1.files.as_deref().unwrap().keys().collect();
    assert_eq!(
        files,
        ["projects/p/charts/c/values.yaml", "projects/p/g.yaml"]
    );
    commit_file(&repo, "state/projects/p/charts/c/values.yaml", "a: 2\n");
    commit_file(&repo, "elsewhere.txt", "y\n");
    let s2 = src.sync().unwrap();
    assert_eq!(
        changed_between(&s1, &s2),
        ["projects/p/charts/c/values.yaml"]
    );

    // A directory: from the content, hidden files left out as the
    // revision leaves them out.
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("projects/p")).unwrap();
    fs::write(dir.path().join("projects/p/g.yaml"), "v: 1\n").unwrap();
    fs::write(dir.path().join("smo.yaml"), "{}\n").unwrap();
    let d1 = dir::snapshot(dir.path()).unwrap();
    fs::write(dir.path().join("projects/p/g.yaml"), "v: 2\n").unwrap();
    fs::write(dir.path().join("projects/p/new.yaml"), "v: 1\n").unwrap();
    fs::write(dir.path().join("projects/p/.g.yaml.swp"), "junk").unwrap();
    fs::remove_file(dir.path().join("smo.yaml")).unwrap();
    let d2 = dir::snapshot(dir.path()).unwrap();
    assert_eq!(
        changed_between(&d1, &d2),
        ["projects/p/g.yaml", "projects/p/new.yaml", "smo.yaml"]
    );
}

#[test]
fn a_new_commit_links_what_it_shares_with_the_last_and_checks_out_the_rest() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let (_tmp, repo) = origin();
    commit_file(&repo, "same.yaml", "same\n");
    commit_file(&repo, "changed.yaml", "v: 1\n");
    commit_file(&repo, "gone.yaml", "bye\n");
    commit_file(&repo, "deep/er/keep.txt", "keep\n");
    let work = tempfile::tempdir().unwrap();
    let src = source(url(&repo), GitRef::Branch("main".into()), work.path());
    let s1 = src.sync().unwrap();

    fs::write(repo.join("changed.yaml"), "v: 2\n").unwrap();
    fs::remove_file(repo.join("gone.yaml")).unwrap();
    fs::write(repo.join("deep/new.sh"), "#!/bin/sh\n").unwrap();
    fs::set_permissions(repo.join("deep/new.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-qm", "second"]);
    let s2 = src.sync().unwrap();

    let read = |s: &Snapshot, p: &str| fs::read_to_string(s.root.join(p)).ok();
    let inode = |s: &Snapshot, p: &str| fs::metadata(s.root.join(p)).unwrap().ino();
    assert_eq!(read(&s2, "changed.yaml").as_deref(), Some("v: 2\n"));
    assert_eq!(
        read(&s1, "changed.yaml").as_deref(),
        Some("v: 1\n"),
        "the old checkout is untouched"
    );
    assert_eq!(read(&s2, "gone.yaml"), None);
    assert_eq!(read(&s1, "gone.yaml").as_deref(), Some("bye\n"));
    assert_eq!(read(&s2, "deep/er/keep.txt").as_deref(), Some("keep\n"));
    let mode = fs::metadata(s2.root.join("deep/new.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111, "executable as committed: {mode:o}");
    assert_eq!(
        inode(&s1, "same.yaml"),
        inode(&s2, "same.yaml"),
        "shared, not copied"
    );
    assert_eq!(
        inode(&s1, "deep/er/keep.txt"),
        inode(&s2, "deep/er/keep.txt")
    );
    assert_ne!(inode(&s1, "changed.yaml"), inode(&s2, "changed.yaml"));
}

#[test]
fn git_errors_name_what_is_missing() {
    let (_tmp, repo) = origin();
    commit_file(&repo, "a.yaml", "a: 1\n");
    let work = tempfile::tempdir().unwrap();
    let err = source(url(&repo), GitRef::Branch("nope".into()), work.path())
        .sync()
        .unwrap_err();
    assert!(
        matches!(err, SourceError::RefNotFound { what: "branch", .. }),
        "{err}"
    );
    let mut src = source(url(&repo), GitRef::Branch("main".into()), work.path());
    src.path = Some("state".into());
    assert!(matches!(
        src.sync().unwrap_err(),
        SourceError::MissingPath { .. }
    ));
    let err = source(
        "file:///nonexistent/repo".into(),
        GitRef::Branch("main".into()),
        work.path(),
    )
    .sync()
    .unwrap_err();
    assert!(
        matches!(
            err,
            SourceError::Git {
                operation: "fetch",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("check source.git.url"));
}

async fn recv(rx: &mut mpsc::Receiver<GitEvent>) -> GitEvent {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("an event")
        .expect("open")
}

/// `git daemon` on a free loopback port, killed on drop.
pub struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `git-daemon` itself: `git daemon` would run it as a child process
/// that outlives a kill of `git`.
fn spawn_daemon(base: &Path, port: u16) -> Daemon {
    let exec_path = git(base, &["--exec-path"]);
    let child = Command::new(Path::new(&exec_path).join("git-daemon"))
        .args(["--reuseaddr", "--export-all", "--listen=127.0.0.1"])
        .arg(format!("--port={port}"))
        .arg(format!("--base-path={}", base.display()))
        .arg(base)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("git-daemon starts");
    Daemon(child)
}

/// A git daemon on a given port (for a remote that comes up late).
pub fn git_daemon_on(base: &Path, port: u16) -> Daemon {
    let daemon = spawn_daemon(base, port);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return daemon;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("git daemon did not listen on port {port}");
}

/// The example state committed on `main` in `<served>/origin`, served by
/// a git daemon.
pub struct Served {
    pub daemon: Daemon,
    pub port: u16,
    /// The daemon configuration's `source:` block following it.
    pub source: String,
    /// The commit.
    pub first: String,
    pub origin: PathBuf,
}

pub fn served_example(served: &Path) -> Served {
    let origin = served.join("origin");
    fake_karmada::testing::copy_dir(&crate::support::repo().join("state-example"), &origin);
    git(&origin, &["init", "-q"]);
    git(&origin, &["add", "-A"]);
    git(&origin, &["commit", "-qm", "example state"]);
    let first = git(&origin, &["rev-parse", "HEAD"]);
    let (daemon, port) = git_daemon(served);
    let source = format!(
        "source:\n  git:\n    url: git://127.0.0.1:{port}/origin\n    ref: {{branch: main}}\n    interval: 1s\n"
    );
    Served {
        daemon,
        port,
        source,
        first,
        origin,
    }
}

pub fn git_daemon(base: &Path) -> (Daemon, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let daemon = spawn_daemon(base, port);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (daemon, port);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("git daemon did not listen on {port}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_daemon_polling_reports_new_commits_and_outages_and_keeps_going() {
    let (tmp, repo) = origin();
    let first = commit_file(&repo, "projects/p/g.yaml", "v: 1\n");
    let (daemon, port) = git_daemon(tmp.path());
    let work = tempfile::tempdir().unwrap();
    let src = source(
        format!("git://127.0.0.1:{port}/origin"),
        GitRef::Branch("main".into()),
        work.path(),
    );

    let (tx, mut rx) = mpsc::channel(8);
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(src.poll(Duration::from_millis(200), tx, stopped));
    assert!(matches!(recv(&mut rx).await, GitEvent::Snapshot(s) if s.revision == first));

    let second = commit_file(&repo, "projects/p/g.yaml", "v: 2\n");
    assert!(matches!(recv(&mut rx).await, GitEvent::Snapshot(s) if s.revision == second));

    drop(daemon);
    assert!(matches!(recv(&mut rx).await, GitEvent::Failed(m) if m.contains("fetch")));

    // Back online at the same address with nothing new: polling resumes by
    // itself, and says so with the revision it had (the daemon clears its
    // "source unreachable" note on it).
    let daemon = spawn_daemon(tmp.path(), port);
    loop {
        match recv(&mut rx).await {
            GitEvent::Failed(_) => continue,
            GitEvent::Snapshot(s) => {
                assert_eq!(s.revision, second);
                break;
            }
        }
    }

    drop(daemon);
    assert!(matches!(recv(&mut rx).await, GitEvent::Failed(m) if m.contains("fetch")));
    let third = commit_file(&repo, "projects/p/g.yaml", "v: 3\n");
    let _daemon = spawn_daemon(tmp.path(), port);
    loop {
        match recv(&mut rx).await {
            GitEvent::Failed(_) => continue,
            GitEvent::Snapshot(s) => {
                assert_eq!(s.revision, third);
                break;
            }
        }
    }
    stop.send(true).unwrap();
    task.await.unwrap();
}

/// After the daemon's own first sync, the poller does not report that
/// revision again: the first thing it reports is the next commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_after_a_sync_reports_only_what_is_new() {
    let (_o, repo) = origin();
    let first = commit_file(&repo, "projects/p/g.yaml", "v: 1\n");
    let work = tempfile::tempdir().unwrap();
    let src = source(url(&repo), GitRef::Branch("main".into()), work.path());
    assert_eq!(src.sync().unwrap().revision, first);
    let (tx, mut rx) = mpsc::channel(8);
    let (stop, stopped) = watch::channel(false);
    let task =
        tokio::spawn(src.poll_after(Some(first.clone()), Duration::from_millis(100), tx, stopped));
    // Polls see `first` before the commit lands: each one touches its
    // checkout; two touches mean the first poll's decision was made.
    let checkout = work.path().join("checkouts").join(&first);
    let mtime = || std::fs::metadata(&checkout).unwrap().modified().unwrap();
    for _ in 0..2 {
        let before = mtime();
        let t0 = std::time::Instant::now();
        while mtime() == before {
            assert!(t0.elapsed() < Duration::from_secs(60), "no poll in 60 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let second = commit_file(&repo, "projects/p/g.yaml", "v: 2\n");
    assert!(matches!(recv(&mut rx).await, GitEvent::Snapshot(s) if s.revision == second));
    stop.send(true).unwrap();
    task.await.unwrap();
}

/// Regression: quick successive commits pruned the checkout that the
/// snapshot handed out earlier still pointed to (only the current one and
/// the most recent others were kept). A held snapshot's root stays; once
/// it is dropped, its checkout is pruned like any other.
#[test]
fn a_held_snapshot_keeps_its_checkout_through_later_commits() {
    let (_o, repo) = origin();
    let work = tempfile::tempdir().unwrap();
    commit_file(&repo, "projects/p/a.yaml", "a: 1\n");
    let src = source(url(&repo), GitRef::Branch("main".into()), work.path());
    let held = src.sync().unwrap();
    for n in 2..=4 {
        commit_file(&repo, "projects/p/a.yaml", &format!("a: {n}\n"));
        let later = src.sync().unwrap();
        assert_ne!(later.revision, held.revision);
        assert!(
            held.root.join("projects/p/a.yaml").is_file(),
            "the held root was pruned after commit {n}"
        );
    }
    let gone = held.root.clone();
    drop(held);
    commit_file(&repo, "projects/p/a.yaml", "a: 5\n");
    let _latest = src.sync().unwrap();
    assert!(!gone.exists(), "an old checkout nobody holds is pruned");
}
