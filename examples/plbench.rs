use clap::Parser;
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: smo::cli::bench::BenchArgs,
}
fn main() -> anyhow::Result<()> {
    smo::cli::bench::run(Cli::parse().args)
}
