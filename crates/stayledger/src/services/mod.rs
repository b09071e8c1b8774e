//! Each service alone: `stayledger command-api | query-api | projector | saga`, configured by flags and
//! `STAYLEDGER_*` environment, over the embedded data dir or EventStoreDB + MongoDB by URL.

use clap::Args;

/// Flags of one service alone.
#[derive(Debug, Clone, Args)]
pub struct ServiceArgs {
    #[command(flatten)]
    pub store: crate::cli::StoreArgs,
}

pub async fn command_api(args: ServiceArgs) -> anyhow::Result<()> {
    anyhow::bail!(
        "command-api alone is being written ({})",
        args.store.data_dir.display()
    )
}

pub async fn query_api(args: ServiceArgs) -> anyhow::Result<()> {
    anyhow::bail!(
        "query-api alone is being written ({})",
        args.store.data_dir.display()
    )
}

pub async fn projector(args: ServiceArgs) -> anyhow::Result<()> {
    anyhow::bail!(
        "projector alone is being written ({})",
        args.store.data_dir.display()
    )
}

pub async fn saga(args: ServiceArgs) -> anyhow::Result<()> {
    anyhow::bail!(
        "saga alone is being written ({})",
        args.store.data_dir.display()
    )
}
