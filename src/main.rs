//! The `smo` binary: the operator's CLI and the daemon. The command line
//! is defined in [`smo::cli::app`].

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match smo::cli::app::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match smo::cli::app::run(cli) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(2)),
        Err(e) => {
            eprintln!("smo: {e:#}");
            ExitCode::from(2)
        }
    }
}
