//! `smo run --config FILE [--once]`: the daemon.
//!
//! Logs go to stderr (journald collects them under systemd) as text or
//! JSON per `log.format`, at `log.level` (`SMO_LOG` overrides it). SIGTERM
//! and SIGINT stop it gracefully. Exit codes: 0 stopped cleanly (with
//! `--once`: everything converged), 1 `--once` and something did not
//! converge, 2 the configuration or a dependency failed at start.

use crate::daemon::{RunOptions, run as run_daemon};
use crate::spec::config::{self, LogFormat};
use std::path::PathBuf;
use tokio::sync::watch;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The host configuration (config.schema.json).
    #[arg(long, default_value = "/etc/smo/config.yaml")]
    pub config: PathBuf,
    /// Perform one full pass and exit: 0 when everything converged.
    #[arg(long)]
    pub once: bool,
    /// Reconcile workers.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
}

/// Sets up logging for the process; later calls are no-ops.
pub fn init_logging(format: LogFormat, level: &str) {
    let level = std::env::var("SMO_LOG").unwrap_or_else(|_| level.to_owned());
    let filter: tracing_subscriber::filter::LevelFilter = level
        .parse()
        .unwrap_or(tracing_subscriber::filter::LevelFilter::INFO);
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    // kube's client logs every failed connection (ERROR) and every dropped
    // watch connection (WARN) on top of what smo reports, once per outage
    // and with what to do about it: its lines are kept for debug logs.
    let mut targets = tracing_subscriber::filter::Targets::new().with_default(filter);
    if filter < tracing_subscriber::filter::LevelFilter::DEBUG {
        targets = targets.with_target("kube_client", tracing_subscriber::filter::LevelFilter::OFF);
    }
    let builder = tracing_subscriber::fmt()
        .with_max_level(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let _ = match format {
        LogFormat::Json => builder.json().finish().with(targets).try_init(),
        LogFormat::Text => builder.finish().with(targets).try_init(),
    };
}

pub fn run(args: &RunArgs) -> anyhow::Result<i32> {
    let config = match config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("smo run: {e}");
            return Ok(2);
        }
    };
    init_logging(config.log.format, &config.log.level);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let opts = RunOptions {
        once: args.once,
        workers: args.workers,
        notify: crate::daemon::notify::Notifier::from_env(),
        ..RunOptions::default()
    };
    rt.block_on(async move {
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("stopping: finishing running reconciles");
            let _ = tx.send(true);
        });
        match run_daemon(config, opts, rx).await {
            Ok(report) if args.once => {
                for f in &report.failed {
                    eprintln!("smo run --once: not converged: {f}");
                }
                Ok(i32::from(!report.converged))
            }
            Ok(_) => Ok(0),
            Err(e) => {
                eprintln!("smo run: {e}");
                Ok(2)
            }
        }
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => std::future::pending::<()>().await,
    }
}
