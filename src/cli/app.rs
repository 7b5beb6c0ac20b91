//! The command line itself: subcommands, their help, and dispatch.
//!
//! It lives in the library, not in `main.rs`, so that `smo completions`,
//! `smo man` and the tests can walk the whole command tree
//! ([`command`]) — a packaging step or a test that needs every subcommand
//! asks this one definition instead of keeping a list of its own.

use clap::{CommandFactory, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "smo",
    version,
    about = "Synergetic Meta-Orchestrator: keeps HDAGs on Karmada as their repository describes them"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a state root or individual descriptor, cluster, settings,
    /// inventory or configuration files.
    Validate(super::validate::ValidateArgs),
    /// Place every valid graph of a state root on an offline inventory and
    /// explain each choice.
    Plan(super::plan::PlanArgs),
    /// Place every valid graph on an offline inventory and render each
    /// service's chart with the values smo would install (`helm template`).
    Render(super::render::RenderArgs),
    /// What a desired state would change on the live Karmada (or, with
    /// `--offline`, against the store): per service install, upgrade,
    /// uninstall or none, with the values and manifest diffs.
    Diff(super::diff::DiffArgs),
    /// The daemon: keep Karmada as the desired state describes it.
    Run(super::run::RunArgs),
    /// Show graphs, services, clusters, revision, conditions and errors.
    Status(super::status::StatusArgs),
    /// The journal, newest first: what smo did, when, at which revision
    /// and (for a Git source) whose commit caused it.
    History(super::history::HistoryArgs),
    /// Learn a service's `alpha` and `beta` from its history in
    /// Prometheus (prints the lines to paste; never writes the descriptor).
    Profile(super::profile::ProfileArgs),
    /// Measure the placement and scaling engines on generated instances.
    Bench(super::bench::BenchArgs),
    /// Print the shell completion script for bash, zsh, fish, elvish or
    /// powershell.
    Completions(super::docs::CompletionsArgs),
    /// Write a man page for smo and each of its subcommands into a
    /// directory.
    Man(super::docs::ManArgs),
}

/// The whole command tree, as `--help`, completions and man pages see it.
#[must_use]
pub fn command() -> clap::Command {
    Cli::command()
}

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    // stdout is locked per command, never around the daemon, whose threads
    // may print.
    let stdout = std::io::stdout;
    match cli.command {
        Command::Validate(args) => super::validate::run(&args, &mut stdout().lock()),
        Command::Plan(args) => super::plan::run(&args, &mut stdout().lock()),
        Command::Render(args) => super::render::run(&args, &mut stdout().lock()),
        Command::Diff(args) => super::diff::run(&args, &mut stdout().lock()),
        Command::Run(args) => super::run::run(&args),
        Command::Status(args) => super::status::run(&args, &mut stdout().lock()),
        Command::History(args) => super::history::run(&args, &mut stdout().lock()),
        Command::Profile(args) => super::profile::run(&args, &mut stdout().lock()),
        Command::Bench(args) => super::bench::run(args).map(|()| 0),
        Command::Completions(args) => super::docs::completions(&args, &mut stdout().lock()),
        Command::Man(args) => super::docs::man(&args, &mut stdout().lock()),
    }
}
