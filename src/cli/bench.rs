//! `smo bench placement|fleet|scaling`: generate a deterministic random
//! feasible instance, solve it, print one result line.

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};

use crate::bench::{self, ModelKind};
use crate::placement::{PlacementOptions, StrategyKind};

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: BenchCommand,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// One graph of N services on M clusters.
    Placement(PlacementBench),
    /// G graphs placed as a fleet on shared clusters.
    Fleet(FleetBench),
    /// The scaling model for N services on one cluster.
    Scaling(ScalingBench),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StrategyArg {
    Milp,
    FirstFit,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModelArg {
    /// The full model (edges, latency, energy, cost, balance).
    Full,
    /// The original SMO's model: CPU and GPU capacity plus movement.
    Smo,
}

#[derive(Debug, Args)]
pub struct PlacementBench {
    #[arg(long)]
    pub services: usize,
    #[arg(long)]
    pub clusters: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, value_enum, default_value = "milp")]
    pub strategy: StrategyArg,
    #[arg(long, value_enum, default_value = "full")]
    pub model: ModelArg,
    /// MILP time limit in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub time_limit: f64,
    /// Relative MIP gap.
    #[arg(long, default_value_t = 0.01)]
    pub gap: f64,
    /// Also write the instance's exact MILP (free MPS) to FILE, and the
    /// answer as its columns' values to FILE with extension `.start`, for
    /// an independent solver (benches/placement-reference.py).
    #[arg(long, value_name = "FILE")]
    pub export_mps: Option<std::path::PathBuf>,
    /// Print the instance's fingerprint (for the reference table) and exit.
    #[arg(long, hide = true)]
    pub fingerprint: bool,
}

#[derive(Debug, Args)]
pub struct FleetBench {
    #[arg(long)]
    pub graphs: usize,
    #[arg(long)]
    pub services: usize,
    #[arg(long)]
    pub clusters: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct ScalingBench {
    #[arg(long)]
    pub services: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Override the CPU capacity (default: 1.5× what the rates need).
    #[arg(long)]
    pub capacity: Option<f64>,
}

pub fn run(args: BenchArgs) -> Result<()> {
    let line = match args.command {
        BenchCommand::Placement(b) => {
            let strategy = match b.strategy {
                StrategyArg::Milp => StrategyKind::Milp,
                StrategyArg::FirstFit => StrategyKind::FirstFit,
            };
            let model = match b.model {
                ModelArg::Full => ModelKind::Full,
                ModelArg::Smo => ModelKind::Smo,
            };
            let opts = PlacementOptions {
                time_limit_s: b.time_limit,
                mip_gap: b.gap,
                ..PlacementOptions::default()
            };
            if b.fingerprint || b.export_mps.is_some() {
                let (p, o) = bench::placement_case(b.services, b.clusters, b.seed, model, opts);
                if b.fingerprint {
                    println!("{}", bench::reference::fingerprint(&p, &o));
                    return Ok(());
                }
                if let Some(path) = &b.export_mps {
                    let mps = crate::placement::export_mps(&p, &o)?;
                    std::fs::write(path, mps)
                        .with_context(|| format!("writing {}", path.display()))?;
                }
            }
            let (line, outcome) =
                bench::run_placement(b.services, b.clusters, b.seed, strategy, model, opts)?;
            if let Some(path) = &b.export_mps {
                // The answer, as a start for the reference solver.
                let (p, o) = bench::placement_case(b.services, b.clusters, b.seed, model, opts);
                let start = crate::placement::export_start(&p, &o, &outcome)?;
                let file = path.with_extension("start");
                std::fs::write(&file, start)
                    .with_context(|| format!("writing {}", file.display()))?;
            }
            line
        }
        BenchCommand::Fleet(b) => bench::run_fleet(b.graphs, b.services, b.clusters, b.seed)?,
        BenchCommand::Scaling(b) => bench::run_scaling(b.services, b.seed, b.capacity)?,
    };
    println!("{line}");
    Ok(())
}
