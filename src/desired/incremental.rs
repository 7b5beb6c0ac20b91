//! Incremental loading: a descriptor file whose bytes did not change since
//! the previous snapshot keeps its validated value instead of being parsed,
//! schema-checked and semantically checked again. The daemon keeps one
//! [`LoadCache`] for its whole life; `smo validate` and `smo plan` load
//! fresh.
//!
//! A cached outcome is reused only when everything it was judged from is
//! the same: the file's bytes (SHA-256), the clusters described under
//! `clusters/` (pins are checked against them), and every local chart it
//! names still passing its check in this load (charts are files of their
//! own, checked once per load by the
//! [`ChartMemo`](crate::descriptor::semantic::ChartMemo)). The cross-file checks
//! (duplicate identities, release-name clashes) are not cached: they run on
//! every load over all the files' outcomes.
//!
//! Only valid, plain descriptors are cached: a file with errors, and an
//! `hdaGraphRef` (whose artifact may move under the same tag), are judged
//! again every time. The bytes judged are the bytes hashed, so an edit
//! racing the load can only cause a second judgement, never a stale reuse.

use super::loader::{Loaded, judge_descriptor};
use crate::descriptor::semantic::Context;
use crate::validate::Finding;
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::Mutex;

/// The outcomes of the descriptor files of the previous loads, by the path
/// shown (relative to the state root).
#[derive(Default)]
pub struct LoadCache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    files: HashMap<String, Cached>,
    /// Files met during the load in progress (the others are forgotten at
    /// its end).
    seen: HashSet<String>,
    last: LoadStats,
    /// Fingerprints of the findings the previous load reported.
    reported: HashSet<u64>,
}

struct Cached {
    digest: String,
    known: u64,
    loaded: Loaded,
}

/// What the last load did with its descriptor files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadStats {
    /// Read and judged (new, changed, invalid or references).
    pub judged: usize,
    /// Unchanged: their previous outcome was kept.
    pub reused: usize,
}

impl std::fmt::Debug for LoadCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadCache")
            .field("last", &self.stats())
            .finish_non_exhaustive()
    }
}

impl LoadCache {
    /// What the last complete load did.
    pub fn stats(&self) -> LoadStats {
        self.lock().last
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every update replaces whole entries: a panic while the lock was
        // held leaves nothing half-written.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn begin(&self) {
        let mut inner = self.lock();
        inner.seen.clear();
        inner.last = LoadStats::default();
    }

    /// Forgets the files this load did not meet (removed from the tree).
    pub(super) fn end(&self) {
        let mut inner = self.lock();
        let seen = std::mem::take(&mut inner.seen);
        inner.files.retain(|k, _| seen.contains(k));
    }

    /// The findings of a load that the previous load did not have: what a
    /// log should say once, not again on every snapshot.
    pub fn new_findings<'a>(&self, findings: &'a [Finding]) -> Vec<&'a Finding> {
        let now: Vec<u64> = findings.iter().map(fingerprint).collect();
        let mut inner = self.lock();
        let fresh = findings
            .iter()
            .zip(&now)
            .filter(|(_, h)| !inner.reported.contains(h))
            .map(|(f, _)| f)
            .collect();
        inner.reported = now.into_iter().collect();
        fresh
    }

    /// The outcome of one descriptor file: the cached one when nothing it
    /// was judged from changed, otherwise a fresh judgement (cached when
    /// valid). `None`: the file cannot be read as text, the caller loads it
    /// the ordinary way (which reports why).
    pub(super) fn descriptor(
        &self,
        path: &Path,
        ctx: &Context<'_>,
        artifacts: Option<&dyn super::Artifacts>,
    ) -> Option<Loaded> {
        let bytes = std::fs::read(path).ok()?;
        let text = std::str::from_utf8(&bytes).ok()?;
        let digest = crate::digest::sha256_hex(&bytes);
        let known = known_hash(ctx.known_clusters);
        let shown = ctx.file.to_owned();
        let mut inner = self.lock();
        inner.seen.insert(shown.clone());
        if let Some(c) = inner.files.get(&shown)
            && c.digest == digest
            && c.known == known
            && charts_still_pass(&c.loaded, ctx)
        {
            let loaded = c.loaded.clone();
            inner.last.reused += 1;
            return Some(loaded);
        }
        inner.last.judged += 1;
        drop(inner);
        let loaded = judge_descriptor(
            crate::validate::parse_document(text, ctx.file),
            ctx,
            artifacts,
        );
        if loaded.cacheable() {
            let mut inner = self.lock();
            inner.files.insert(
                shown,
                Cached {
                    digest,
                    known,
                    loaded: loaded.clone(),
                },
            );
        } else {
            self.lock().files.remove(&shown);
        }
        Some(loaded)
    }
}

fn fingerprint(f: &Finding) -> u64 {
    let mut h = DefaultHasher::new();
    f.hash(&mut h);
    h.finish()
}

fn known_hash(known: Option<&BTreeSet<String>>) -> u64 {
    let mut h = DefaultHasher::new();
    known.hash(&mut h);
    h.finish()
}

/// Every local chart the cached descriptor names still passes its check in
/// this load (a valid descriptor's charts all passed when it was judged).
fn charts_still_pass(loaded: &Loaded, ctx: &Context<'_>) -> bool {
    let (Some(dir), Some(root), Some(memo)) = (ctx.dir, ctx.root, ctx.charts) else {
        return false;
    };
    loaded.local_charts().all(|rel| memo.passes(root, dir, rel))
}
