//! Safe extraction of an artifact's gzipped tar layer into a directory.
//!
//! The archive comes from a registry, so it is treated as hostile. An
//! archive with any entry that breaks a rule is refused whole (never
//! extracted around), with an error naming the entry:
//! - paths are relative and stay inside: no absolute path, no `..`, no
//!   Windows prefix; `./` components are dropped;
//! - only regular files and directories: symbolic links, hard links,
//!   devices and FIFOs are refused. Neither helm (whose chart loader reads
//!   file contents into memory and never materialises a link) nor
//!   `hdarctl pull --untar` produces anything an HDAG needs from a link,
//!   so refusing them all is simpler and safer than judging where each
//!   one points;
//! - no entry twice (a later entry would silently replace an earlier one);
//! - size limits ([`Limits`]), counted on the decompressed bytes actually
//!   read, not on what headers claim.
//!
//! Files are written with mode 0644 and directories with 0755, whatever
//! the archive says (no set-uid bits, no unreadable files); times are not
//! kept. Extraction goes into a directory the caller makes fresh; the
//! cache renames it into place only when everything succeeded.

use flate2::read::GzDecoder;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

/// Bounds on what one artifact may expand to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of the compressed layer, held in memory while it is verified.
    /// The largest public charts are a few MiB compressed; 20 MiB leaves
    /// room for an HDAG that carries several of them.
    pub max_archive_bytes: u64,
    /// Decompressed bytes of all files. Helm's chart loader allows
    /// 100 MiB (`MaxDecompressedChartSize`); an HDAG artifact is a
    /// descriptor and perhaps a few charts, so the same bound is generous.
    pub max_total_bytes: u64,
    /// Bytes of one file: helm's `MaxDecompressedFileSize`, 5 MiB.
    pub max_file_bytes: u64,
    /// Entries (files and directories). Real charts have tens; this only
    /// stops an archive of millions of empty files.
    pub max_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_archive_bytes: 20 * 1024 * 1024,
            max_total_bytes: 100 * 1024 * 1024,
            max_file_bytes: 5 * 1024 * 1024,
            max_entries: 10_000,
        }
    }
}

/// Why an archive was refused or could not be written.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("entry `{entry}` has an absolute path")]
    AbsolutePath { entry: String },
    #[error("entry `{entry}` climbs out of the artifact with `..`")]
    ParentDir { entry: String },
    #[error("entry `{entry}` is a {kind}; artifacts may hold only files and directories")]
    Link { entry: String, kind: &'static str },
    #[error("entry `{entry}` is a {kind}; artifacts may hold only files and directories")]
    Special { entry: String, kind: &'static str },
    #[error("entry `{entry}` appears twice")]
    Duplicate { entry: String },
    #[error("entry `{entry}` is larger than {limit} bytes")]
    FileTooLarge { entry: String, limit: u64 },
    #[error("the artifact expands to more than {limit} bytes")]
    TotalTooLarge { limit: u64 },
    #[error("the artifact has more than {limit} entries")]
    TooManyEntries { limit: usize },
    #[error("entry `{entry}` has an empty or unreadable path")]
    BadPath { entry: String },
    #[error("the layer is not a valid gzipped tar archive")]
    Format(#[source] std::io::Error),
    #[error("writing {path} failed")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl UnpackError {
    /// A short stable label (metrics, status reasons).
    pub fn kind(&self) -> &'static str {
        match self {
            UnpackError::AbsolutePath { .. }
            | UnpackError::ParentDir { .. }
            | UnpackError::BadPath { .. } => "unsafe_path",
            UnpackError::Link { .. } | UnpackError::Special { .. } => "unsafe_entry",
            UnpackError::Duplicate { .. } => "duplicate_entry",
            UnpackError::FileTooLarge { .. }
            | UnpackError::TotalTooLarge { .. }
            | UnpackError::TooManyEntries { .. } => "too_large",
            UnpackError::Format(_) => "format",
            UnpackError::Write { .. } => "io",
        }
    }
}

/// What was extracted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Unpacked {
    pub files: usize,
    pub bytes: u64,
}

/// Extracts `tar_gz` into `dest` (an existing, empty directory).
pub fn unpack(tar_gz: &[u8], dest: &Path, limits: &Limits) -> Result<Unpacked, UnpackError> {
    let mut archive = tar::Archive::new(GzDecoder::new(tar_gz));
    let mut seen = BTreeSet::new();
    let mut out = Unpacked::default();
    let mut entries_read = 0usize;
    for entry in archive.entries().map_err(UnpackError::Format)? {
        let mut entry = entry.map_err(UnpackError::Format)?;
        entries_read += 1;
        if entries_read > limits.max_entries {
            return Err(UnpackError::TooManyEntries {
                limit: limits.max_entries,
            });
        }
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        let is_dir = match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => false,
            tar::EntryType::Directory => true,
            // Metadata for the entries around them (the `tar` crate applies
            // per-entry ones itself); a global header carries no file.
            tar::EntryType::XGlobalHeader => continue,
            tar::EntryType::Symlink => {
                return Err(UnpackError::Link {
                    entry: raw,
                    kind: "symbolic link",
                });
            }
            tar::EntryType::Link => {
                return Err(UnpackError::Link {
                    entry: raw,
                    kind: "hard link",
                });
            }
            other => {
                return Err(UnpackError::Special {
                    entry: raw,
                    kind: special_name(other),
                });
            }
        };
        let relative = safe_relative(&raw)?;
        if relative.as_os_str().is_empty() {
            // `./` itself: the destination, which exists.
            continue;
        }
        if !seen.insert(relative.clone()) {
            return Err(UnpackError::Duplicate { entry: raw });
        }
        let target = dest.join(&relative);
        if is_dir {
            create_dir(&target)?;
            continue;
        }
        if let Some(parent) = target.parent() {
            create_dir(parent)?;
        }
        let budget = limits
            .max_file_bytes
            .min(limits.max_total_bytes - out.bytes);
        let written = copy_bounded(&mut entry, &target, budget)?;
        if written > budget {
            let _ = std::fs::remove_file(&target);
            return Err(if written > limits.max_file_bytes {
                UnpackError::FileTooLarge {
                    entry: raw,
                    limit: limits.max_file_bytes,
                }
            } else {
                UnpackError::TotalTooLarge {
                    limit: limits.max_total_bytes,
                }
            });
        }
        out.bytes += written;
        out.files += 1;
    }
    Ok(out)
}

/// The entry path as a relative path that cannot leave the destination.
fn safe_relative(raw: &str) -> Result<PathBuf, UnpackError> {
    if raw.is_empty() || raw.contains('\0') {
        return Err(UnpackError::BadPath {
            entry: raw.to_owned(),
        });
    }
    if raw.starts_with('/') || raw.starts_with('\\') {
        return Err(UnpackError::AbsolutePath {
            entry: raw.to_owned(),
        });
    }
    let mut out = PathBuf::new();
    for component in Path::new(raw).components() {
        match component {
            Component::Normal(part) => {
                // A backslash is a separator to Windows tools; refuse it
                // rather than create a file name that means a path there.
                if part.to_string_lossy().contains('\\') {
                    return Err(UnpackError::BadPath {
                        entry: raw.to_owned(),
                    });
                }
                out.push(part);
            }
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(UnpackError::ParentDir {
                    entry: raw.to_owned(),
                });
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(UnpackError::AbsolutePath {
                    entry: raw.to_owned(),
                });
            }
        }
    }
    Ok(out)
}

fn create_dir(path: &Path) -> Result<(), UnpackError> {
    std::fs::create_dir_all(path).map_err(|source| UnpackError::Write {
        path: path.to_owned(),
        source,
    })
}

/// Copies at most `budget + 1` bytes (one more tells "too large" apart
/// from "exactly at the limit") and returns how many were read.
fn copy_bounded(reader: &mut impl Read, target: &Path, budget: u64) -> Result<u64, UnpackError> {
    let write_err = |source| UnpackError::Write {
        path: target.to_owned(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(target)
        .map_err(write_err)?;
    let mut limited = reader.take(budget.saturating_add(1));
    let mut buf = [0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = limited.read(&mut buf).map_err(UnpackError::Format)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > budget {
            return Ok(total);
        }
        file.write_all(&buf[..n]).map_err(write_err)?;
    }
    file.sync_all().map_err(write_err)?;
    Ok(total)
}

fn special_name(kind: tar::EntryType) -> &'static str {
    match kind {
        tar::EntryType::Char => "character device",
        tar::EntryType::Block => "block device",
        tar::EntryType::Fifo => "FIFO",
        _ => "special entry",
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Builds archives, malicious ones included, for tests.
    use flate2::Compression;
    use flate2::write::GzEncoder;

    /// One archive entry.
    pub enum Entry<'a> {
        File(&'a str, &'a [u8]),
        Dir(&'a str),
        Symlink(&'a str, &'a str),
        Hardlink(&'a str, &'a str),
        Fifo(&'a str),
    }

    /// A gzipped tar of `entries`. Names are written raw into the header
    /// (the `tar` crate's safe setters refuse `..` and absolute paths,
    /// which is exactly what these tests need to produce).
    pub fn tar_gz(entries: &[Entry<'_>]) -> Vec<u8> {
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        for entry in entries {
            let mut header = tar::Header::new_gnu();
            let mut link = "";
            let (name, data): (&str, &[u8]) = match *entry {
                Entry::File(name, data) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    (name, data)
                }
                Entry::Dir(name) => {
                    header.set_entry_type(tar::EntryType::Directory);
                    (name, &[])
                }
                Entry::Symlink(name, target) => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    link = target;
                    (name, &[])
                }
                Entry::Hardlink(name, target) => {
                    header.set_entry_type(tar::EntryType::Link);
                    link = target;
                    (name, &[])
                }
                Entry::Fifo(name) => {
                    header.set_entry_type(tar::EntryType::Fifo);
                    (name, &[])
                }
            };
            let old = header.as_old_mut();
            old.name.fill(0);
            old.name[..name.len()].copy_from_slice(name.as_bytes());
            old.linkname.fill(0);
            old.linkname[..link.len()].copy_from_slice(link.as_bytes());
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append(&header, data).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{Entry, tar_gz};
    use super::*;

    fn run(entries: &[Entry<'_>]) -> (tempfile::TempDir, Result<Unpacked, UnpackError>) {
        let dir = tempfile::tempdir().unwrap();
        let r = unpack(&tar_gz(entries), dir.path(), &Limits::default());
        (dir, r)
    }

    #[test]
    fn files_and_directories_are_extracted() {
        let (dir, r) = run(&[
            Entry::Dir("g/"),
            Entry::File("g/Chart.yaml", b"name: g\n"),
            Entry::File("./g/hdag/hdag.yaml", b"hdaGraph: {}\n"),
        ]);
        assert_eq!(
            r.unwrap(),
            Unpacked {
                files: 2,
                bytes: 21
            }
        );
        let text = std::fs::read_to_string(dir.path().join("g/hdag/hdag.yaml")).unwrap();
        assert_eq!(text, "hdaGraph: {}\n");
    }

    #[test]
    fn an_absolute_path_is_refused() {
        let (_d, r) = run(&[Entry::File("/etc/evil", b"x")]);
        assert!(matches!(r, Err(UnpackError::AbsolutePath { .. })), "{r:?}");
    }

    #[test]
    fn a_parent_dir_component_is_refused() {
        for name in ["../evil", "a/../../evil", "a/.."] {
            let (d, r) = run(&[Entry::File(name, b"x")]);
            assert!(
                matches!(r, Err(UnpackError::ParentDir { .. })),
                "{name}: {r:?}"
            );
            assert!(!d.path().parent().unwrap().join("evil").exists());
        }
    }

    #[test]
    fn links_are_refused_whatever_they_point_to() {
        let (_d, r) = run(&[Entry::Symlink("escape", "/etc/passwd")]);
        assert!(
            matches!(
                r,
                Err(UnpackError::Link {
                    kind: "symbolic link",
                    ..
                })
            ),
            "{r:?}"
        );
        // The classic two-step escape: a link to outside, then a file through it.
        let (_d, r) = run(&[Entry::Symlink("d", ".."), Entry::File("d/evil", b"x")]);
        assert!(matches!(r, Err(UnpackError::Link { .. })), "{r:?}");
        let (_d, r) = run(&[Entry::File("a", b"x"), Entry::Hardlink("b", "a")]);
        assert!(
            matches!(
                r,
                Err(UnpackError::Link {
                    kind: "hard link",
                    ..
                })
            ),
            "{r:?}"
        );
    }

    #[test]
    fn devices_and_fifos_are_refused() {
        let (_d, r) = run(&[Entry::Fifo("pipe")]);
        assert!(
            matches!(r, Err(UnpackError::Special { kind: "FIFO", .. })),
            "{r:?}"
        );
    }

    #[test]
    fn a_duplicate_entry_is_refused() {
        let (_d, r) = run(&[Entry::File("a", b"1"), Entry::File("./a", b"2")]);
        assert!(matches!(r, Err(UnpackError::Duplicate { .. })), "{r:?}");
    }

    #[test]
    fn size_and_count_limits_hold_on_bytes_actually_read() {
        let dir = tempfile::tempdir().unwrap();
        let small = Limits {
            max_archive_bytes: 1024,
            max_total_bytes: 10,
            max_file_bytes: 6,
            max_entries: 3,
        };
        let r = unpack(&tar_gz(&[Entry::File("a", b"1234567")]), dir.path(), &small);
        assert!(
            matches!(r, Err(UnpackError::FileTooLarge { limit: 6, .. })),
            "{r:?}"
        );
        assert!(
            !dir.path().join("a").exists(),
            "a refused file is not left behind"
        );

        let dir = tempfile::tempdir().unwrap();
        let r = unpack(
            &tar_gz(&[Entry::File("a", b"123456"), Entry::File("b", b"12345")]),
            dir.path(),
            &small,
        );
        assert!(
            matches!(r, Err(UnpackError::TotalTooLarge { limit: 10 })),
            "{r:?}"
        );

        let dir = tempfile::tempdir().unwrap();
        let r = unpack(
            &tar_gz(&[
                Entry::Dir("a"),
                Entry::Dir("b"),
                Entry::Dir("c"),
                Entry::Dir("d"),
            ]),
            dir.path(),
            &small,
        );
        assert!(
            matches!(r, Err(UnpackError::TooManyEntries { limit: 3 })),
            "{r:?}"
        );

        // Exactly at the limits is fine.
        let dir = tempfile::tempdir().unwrap();
        let r = unpack(
            &tar_gz(&[Entry::File("a", b"123456"), Entry::File("b", b"1234")]),
            dir.path(),
            &small,
        );
        assert_eq!(r.unwrap().bytes, 10);
    }

    #[test]
    fn garbage_is_a_format_error() {
        let dir = tempfile::tempdir().unwrap();
        let r = unpack(b"not gzip at all", dir.path(), &Limits::default());
        assert!(matches!(r, Err(UnpackError::Format(_))), "{r:?}");
    }
}
