//! Checking a commit out into a directory of its own. When the previous
//! commit's checkout is at hand, the files both commits share are
//! hard-linked from it and only the paths that differ are checked out: a
//! one-file commit to a large repository writes one file, not the tree.
//! Checkouts are never written to once made, so two of them can share a
//! file.

use git2::build::CheckoutBuilder;
use git2::{Commit, Repository, TreeWalkMode, TreeWalkResult};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Fills the empty directory `tmp` with `commit`'s files, reusing
/// `previous`'s checkout in `previous_dir`. `Ok(false)`: it could not (a
/// link failed, or `.gitattributes` changed, which may change how unchanged
/// files are written); the caller empties `tmp` and checks everything out.
pub(super) fn reuse(
    repo: &Repository,
    commit: &Commit<'_>,
    previous: &Commit<'_>,
    previous_dir: &Path,
    tmp: &Path,
) -> Result<bool, git2::Error> {
    let (old, new) = (previous.tree()?, commit.tree()?);
    let diff = repo.diff_tree_to_tree(Some(&old), Some(&new), None)?;
    let changed: Vec<PathBuf> = diff
        .deltas()
        .filter_map(|d| d.new_file().path().or_else(|| d.old_file().path()))
        .map(Path::to_owned)
        .collect();
    if changed
        .iter()
        .any(|p| p.file_name().is_some_and(|n| n == ".gitattributes"))
    {
        return Ok(false);
    }
    let skip: HashSet<&Path> = changed.iter().map(PathBuf::as_path).collect();
    let mut linked = true;
    let walked = new.walk(TreeWalkMode::PreOrder, |dir, entry| {
        if entry.kind() != Some(git2::ObjectType::Blob) {
            return TreeWalkResult::Ok;
        }
        let Ok(name) = entry.name() else {
            linked = false;
            return TreeWalkResult::Abort;
        };
        let rel = PathBuf::from(format!("{dir}{name}"));
        if skip.contains(rel.as_path()) {
            return TreeWalkResult::Ok;
        }
        let to = tmp.join(&rel);
        let made = to
            .parent()
            .is_none_or(|p| std::fs::create_dir_all(p).is_ok())
            && std::fs::hard_link(previous_dir.join(&rel), &to).is_ok();
        if made {
            TreeWalkResult::Ok
        } else {
            linked = false;
            TreeWalkResult::Abort
        }
    });
    if !linked {
        return Ok(false);
    }
    walked?;
    if !changed.is_empty() {
        let mut co = CheckoutBuilder::new();
        co.target_dir(tmp)
            .force()
            .recreate_missing(true)
            .disable_pathspec_match(true);
        for p in &changed {
            co.path(p);
        }
        repo.checkout_tree(commit.as_object(), Some(&mut co))?;
    }
    Ok(true)
}
