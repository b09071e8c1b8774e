//! `stayledger bench`: the performance suite B1-B8 of QUALITY.md on the embedded stores, with the
//! peer comparison against the Python `eventsourcing` library.

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// A short run of every benchmark (CI runs this so the suite cannot rot).
    #[arg(long)]
    pub quick: bool,
}

/// Run the suite.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("the benchmark suite is being written (quick = {})", args.quick)
}
