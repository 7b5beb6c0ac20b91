//! The `smo` binary: the operator's CLI and (later) the daemon.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "smo",
    version,
    about = "Synergetic Meta-Orchestrator: keeps HDAGs on Karmada as their repository describes them"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a state root or individual descriptor, cluster, settings,
    /// inventory or configuration files.
    Validate(smo::cli::validate::ValidateArgs),
    /// Place every valid graph of a state root on an offline inventory and
    /// explain each choice.
    Plan(smo::cli::plan::PlanArgs),
    /// Place every valid graph on an offline inventory and render each
    /// service's chart with the values smo would install (`helm template`).
    Render(smo::cli::render::RenderArgs),
    /// What a desired state would change on the live Karmada (or, with
    /// `--offline`, against the store): per service install, upgrade,
    /// uninstall or none, with the values and manifest diffs.
    Diff(smo::cli::diff::DiffArgs),
    /// The daemon: keep Karmada as the desired state describes it.
    Run(smo::cli::run::RunArgs),
    /// Show graphs, services, clusters, revision, conditions and errors.
    Status(smo::cli::status::StatusArgs),
    /// Learn a service's `alpha` and `beta` from its history in
    /// Prometheus (prints the lines to paste; never writes the descriptor).
    Profile(smo::cli::profile::ProfileArgs),
    /// Measure the placement and scaling engines on generated instances.
    Bench(smo::cli::bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Validate(args) => smo::cli::validate::run(&args, &mut std::io::stdout().lock()),
        Command::Plan(args) => smo::cli::plan::run(&args, &mut std::io::stdout().lock()),
        Command::Render(args) => smo::cli::render::run(&args, &mut std::io::stdout().lock()),
        Command::Diff(args) => smo::cli::diff::run(&args, &mut std::io::stdout().lock()),
        Command::Run(args) => smo::cli::run::run(&args),
        Command::Status(args) => smo::cli::status::run(&args, &mut std::io::stdout().lock()),
        Command::Profile(args) => smo::cli::profile::run(&args, &mut std::io::stdout().lock()),
        Command::Bench(args) => smo::cli::bench::run(args).map(|()| 0),
    };
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(2)),
        Err(e) => {
            eprintln!("smo: {e:#}");
            ExitCode::from(2)
        }
    }
}
