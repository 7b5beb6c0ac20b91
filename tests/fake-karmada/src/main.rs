//! `fake-karmada --listen 127.0.0.1:0 --write-kubeconfig PATH [--inventory FILE] [--simulate-members [MILLIS]]`
//!
//! Prints the bound address on stdout (one line, `http://127.0.0.1:PORT`),
//! then serves until killed.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use fake_karmada::{FakeKarmada, Inventory, Options};

const USAGE: &str = "usage: fake-karmada [--listen ADDR] [--write-kubeconfig PATH] [--inventory FILE] [--simulate-members [DELAY_MS]]";

/// Default member simulation delay: long enough that a client can observe
/// the not-yet-ready state, short enough for interactive use.
const DEFAULT_MEMBER_DELAY: Duration = Duration::from_millis(500);

fn parse_args() -> Result<Options, String> {
    let mut opts = Options::default();
    let mut args = std::env::args().skip(1).peekable();
    while let Some(a) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--listen" => {
                let v = value("--listen")?;
                opts.listen = v.parse().map_err(|e| format!("--listen {v}: {e}"))?;
            }
            "--write-kubeconfig" => {
                opts.kubeconfig_path = Some(PathBuf::from(value("--write-kubeconfig")?))
            }
            "--inventory" => {
                let p = PathBuf::from(value("--inventory")?);
                let inv = Inventory::load(&p).map_err(|e| e.to_string())?;
                opts.clusters.extend(inv.clusters);
            }
            "--simulate-members" => {
                let delay = match args.peek() {
                    Some(v) if !v.starts_with("--") => {
                        let v = args.next().unwrap_or_default();
                        Duration::from_millis(
                            v.parse()
                                .map_err(|e| format!("--simulate-members {v}: {e}"))?,
                        )
                    }
                    _ => DEFAULT_MEMBER_DELAY,
                };
                opts.simulate_members = Some(delay);
            }
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(opts)
}

// The fake serves from its own runtime; this one only waits for Ctrl-C.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let fake = match FakeKarmada::start(opts).await {
        Ok(f) => f,
        Err(e) => {
            eprintln!("fake-karmada: {e}");
            return ExitCode::from(2);
        }
    };
    println!("{}", fake.url());
    eprintln!(
        "fake-karmada: serving {} (kubeconfig {})",
        fake.url(),
        fake.kubeconfig_path().display()
    );
    let _ = tokio::signal::ctrl_c().await;
    fake.shutdown().await;
    ExitCode::SUCCESS
}
