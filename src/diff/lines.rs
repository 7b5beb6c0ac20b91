//! A unified line diff (`diff -u` shape, 3 lines of context). Pure.
//!
//! Longest common subsequence over the lines between the common prefix and
//! suffix. The table is quadratic in that middle part, so past
//! [`MAX_CELLS`] the middle is shown as replaced whole: correct, only less
//! precise, and bounded in memory whatever the manifests.

use std::fmt::Write;

/// Lines of context around each change.
const CONTEXT: usize = 3;

/// Largest LCS table (old × new middle lines) computed: 4 M cells of 4
/// bytes, 16 MiB, reached by two manifests of 2,000 differing lines each.
const MAX_CELLS: usize = 4_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Same,
    Delete,
    Insert,
}

/// The edit script from `old` to `new`: one op per line of either.
fn script(old: &[&str], new: &[&str]) -> Vec<Op> {
    let prefix = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    let suffix = old[prefix..]
        .iter()
        .rev()
        .zip(new[prefix..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let (a, b) = (
        &old[prefix..old.len() - suffix],
        &new[prefix..new.len() - suffix],
    );
    let mut ops = vec![Op::Same; prefix];
    if a.len().saturating_mul(b.len()) > MAX_CELLS {
        ops.extend(std::iter::repeat_n(Op::Delete, a.len()));
        ops.extend(std::iter::repeat_n(Op::Insert, b.len()));
    } else {
        // lcs[i][j]: LCS length of a[i..] and b[j..].
        let w = b.len() + 1;
        let mut lcs = vec![0u32; (a.len() + 1) * w];
        for i in (0..a.len()).rev() {
            for j in (0..b.len()).rev() {
                lcs[i * w + j] = if a[i] == b[j] {
                    lcs[(i + 1) * w + j + 1] + 1
                } else {
                    lcs[(i + 1) * w + j].max(lcs[i * w + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < a.len() || j < b.len() {
            if i < a.len() && j < b.len() && a[i] == b[j] {
                ops.push(Op::Same);
                i += 1;
                j += 1;
            } else if j < b.len() && (i == a.len() || lcs[i * w + j + 1] >= lcs[(i + 1) * w + j]) {
                ops.push(Op::Insert);
                j += 1;
            } else {
                ops.push(Op::Delete);
                i += 1;
            }
        }
        // Deletions before insertions within a run of changes, as diff -u.
        let mut k = prefix;
        while k < ops.len() {
            if ops[k] == Op::Same {
                k += 1;
                continue;
            }
            let end = ops[k..]
                .iter()
                .position(|o| *o == Op::Same)
                .map_or(ops.len(), |p| k + p);
            ops[k..end].sort_by_key(|o| *o != Op::Delete);
            k = end;
        }
    }
    ops.extend(std::iter::repeat_n(Op::Same, suffix));
    ops
}

/// `old` → `new` as a unified diff with the given file labels; `None` when
/// they are the same. Every line of the diff ends with a newline.
pub fn unified(old: &str, new: &str, old_label: &str, new_label: &str) -> Option<String> {
    if old == new {
        return None;
    }
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let ops = script(&a, &b);
    // Positions (old line, new line) before each op.
    let mut at = Vec::with_capacity(ops.len() + 1);
    let (mut i, mut j) = (0usize, 0usize);
    for op in &ops {
        at.push((i, j));
        match op {
            Op::Same => {
                i += 1;
                j += 1;
            }
            Op::Delete => i += 1,
            Op::Insert => j += 1,
        }
    }
    at.push((i, j));
    // Hunks: ranges of ops around changes, merged when their context meets.
    let changed: Vec<usize> = (0..ops.len()).filter(|&k| ops[k] != Op::Same).collect();
    if changed.is_empty() {
        // Only line endings differ (a final newline): say so.
        return Some(format!(
            "--- {old_label}\n+++ {new_label}\n@@ line endings differ @@\n"
        ));
    }
    let mut hunks: Vec<(usize, usize)> = Vec::new();
    for &k in &changed {
        let start = k.saturating_sub(CONTEXT);
        let end = (k + 1 + CONTEXT).min(ops.len());
        match hunks.last_mut() {
            Some(last) if start <= last.1 => last.1 = end,
            _ => hunks.push((start, end)),
        }
    }
    let mut out = format!("--- {old_label}\n+++ {new_label}\n");
    for (start, end) in hunks {
        let (oi, nj) = at[start];
        let old_len = ops[start..end].iter().filter(|o| **o != Op::Insert).count();
        let new_len = ops[start..end].iter().filter(|o| **o != Op::Delete).count();
        // diff -u numbers an empty range by the line before it.
        let first = |pos: usize, len: usize| if len == 0 { pos } else { pos + 1 };
        let _ = writeln!(
            out,
            "@@ -{},{old_len} +{},{new_len} @@",
            first(oi, old_len),
            first(nj, new_len)
        );
        for (k, op) in ops.iter().enumerate().take(end).skip(start) {
            let (i, j) = at[k];
            let _ = match op {
                Op::Same => writeln!(out, " {}", a[i]),
                Op::Delete => writeln!(out, "-{}", a[i]),
                Op::Insert => writeln!(out, "+{}", b[j]),
            };
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(n: std::ops::Range<usize>) -> String {
        n.map(|i| format!("[{i}]\n")).collect()
    }

    #[test]
    fn equal_texts_have_no_diff() {
        assert_eq!(unified("a\nb\n", "a\nb\n", "x", "y"), None);
    }

    #[test]
    fn a_changed_line_is_shown_with_three_lines_of_context() {
        let old = lines(0..10);
        let new = old.replace("[5]\n", "five\n");
        let d = unified(&old, &new, "live", "desired").unwrap();
        assert_eq!(
            d,
            "--- live\n+++ desired\n@@ -3,7 +3,7 @@\n [2]\n [3]\n [4]\n-[5]\n+five\n [6]\n [7]\n [8]\n"
        );
    }

    #[test]
    fn distant_changes_make_separate_hunks_and_near_ones_merge() {
        let old = lines(0..30);
        let new = old.replace("[2]\n", "two\n").replace("[25]\n", "");
        let d = unified(&old, &new, "a", "b").unwrap();
        assert_eq!(d.matches("@@ -").count(), 2, "{d}");
        assert!(d.contains("@@ -1,6 +1,6 @@"), "{d}");
        assert!(
            d.contains("@@ -23,7 +23,6 @@\n [22]\n [23]\n [24]\n-[25]\n [26]"),
            "{d}"
        );
        let near = old.replace("[2]\n", "two\n").replace("[6]\n", "six\n");
        assert_eq!(
            unified(&old, &near, "a", "b")
                .unwrap()
                .matches("@@ -")
                .count(),
            1
        );
    }

    #[test]
    fn additions_to_and_removals_from_nothing() {
        assert_eq!(
            unified("", "a\nb\n", "live", "desired").unwrap(),
            "--- live\n+++ desired\n@@ -0,0 +1,2 @@\n+a\n+b\n"
        );
        assert_eq!(
            unified("a\n", "", "live", "desired").unwrap(),
            "--- live\n+++ desired\n@@ -1,1 +0,0 @@\n-a\n"
        );
    }

    #[test]
    fn a_replaced_run_lists_deletions_first() {
        let d = unified("a\nb\nc\nd\n", "a\nx\ny\nd\n", "o", "n").unwrap();
        assert!(d.ends_with(" a\n-b\n-c\n+x\n+y\n d\n"), "{d}");
    }

    #[test]
    fn applying_the_script_gives_the_new_text() {
        // Property over small random texts: the new side of the diff,
        // read back from the script, is the new text.
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        for _ in 0..200 {
            let a: Vec<String> = (0..next() % 12)
                .map(|_| format!("{}", next() % 4))
                .collect();
            let b: Vec<String> = (0..next() % 12)
                .map(|_| format!("{}", next() % 4))
                .collect();
            let (ar, br): (Vec<&str>, Vec<&str>) = (
                a.iter().map(String::as_str).collect(),
                b.iter().map(String::as_str).collect(),
            );
            let ops = script(&ar, &br);
            let (mut i, mut j, mut rebuilt, mut old) = (0, 0, Vec::new(), Vec::new());
            for op in ops {
                match op {
                    Op::Same => {
                        assert_eq!(ar[i], br[j]);
                        rebuilt.push(br[j]);
                        old.push(ar[i]);
                        i += 1;
                        j += 1;
                    }
                    Op::Delete => {
                        old.push(ar[i]);
                        i += 1;
                    }
                    Op::Insert => {
                        rebuilt.push(br[j]);
                        j += 1;
                    }
                }
            }
            assert_eq!(rebuilt, br);
            assert_eq!(old, ar);
        }
    }
}
