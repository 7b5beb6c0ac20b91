//! `smo completions SHELL` and `smo man --out DIR`: the shell completion
//! scripts and man pages the Debian package ships, generated from the
//! command definition ([`super::app::command`]) so they cannot drift from
//! `--help`. Operators who install the binary by hand use the same two
//! commands.

use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Directory for smo.1 and one smo-SUBCOMMAND.1 per subcommand
    /// (created when missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Writes the completion script to `out`; returns the exit code.
pub fn completions(args: &CompletionsArgs, out: &mut dyn Write) -> anyhow::Result<i32> {
    let mut cmd = super::app::command();
    clap_complete::generate(args.shell, &mut cmd, "smo", out);
    Ok(0)
}

/// Writes the man pages into `--out` and lists them on `out`; returns the
/// exit code (2 when the directory cannot be written).
pub fn man(args: &ManArgs, out: &mut dyn Write) -> anyhow::Result<i32> {
    if let Err(e) = write_pages(&args.out) {
        eprintln!(
            "smo man: cannot write man pages into {}: {e}",
            args.out.display()
        );
        return Ok(2);
    }
    let mut pages: Vec<String> = std::fs::read_dir(&args.out)?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("smo") && n.ends_with(".1"))
        .collect();
    pages.sort();
    for p in pages {
        writeln!(out, "{}", args.out.join(p).display())?;
    }
    Ok(0)
}

fn write_pages(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    clap_mangen::generate_to(super::app::command(), dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subcommands() -> Vec<String> {
        super::super::app::command()
            .get_subcommands()
            .map(|c| c.get_name().to_owned())
            .collect()
    }

    #[test]
    fn completions_name_every_subcommand_in_every_packaged_shell() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut buf = Vec::new();
            assert_eq!(
                completions(&CompletionsArgs { shell }, &mut buf).unwrap(),
                0
            );
            let text = String::from_utf8(buf).unwrap();
            for sub in subcommands() {
                assert!(text.contains(&sub), "{shell:?} completion lacks `{sub}`");
            }
        }
    }

    #[test]
    fn man_writes_one_page_per_subcommand() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("man1");
        let mut listing = Vec::new();
        assert_eq!(man(&ManArgs { out: out.clone() }, &mut listing).unwrap(), 0);
        let top = std::fs::read_to_string(out.join("smo.1")).unwrap();
        assert!(top.contains(".TH smo 1"), "{top}");
        for sub in subcommands() {
            let page = std::fs::read_to_string(out.join(format!("smo-{sub}.1")))
                .unwrap_or_else(|e| panic!("no page for `{sub}`: {e}"));
            assert!(page.contains(&format!("smo\\-{sub}")), "{sub}: {page}");
            assert!(top.contains(&format!("smo\\-{sub}")), "smo.1 lacks `{sub}`");
        }
        // Nested subcommands (`smo bench placement`) get pages too, and the
        // listing names exactly the pages written.
        let cmd = super::super::app::command();
        for sub in cmd.get_subcommands() {
            for nested in sub.get_subcommands() {
                let page = out.join(format!("smo-{}-{}.1", sub.get_name(), nested.get_name()));
                assert!(page.is_file(), "no page {}", page.display());
            }
        }
        let listing = String::from_utf8(listing).unwrap();
        let written = std::fs::read_dir(&out).unwrap().count();
        assert_eq!(listing.lines().count(), written, "{listing}");
    }
}
