//! Flags of the auditor and operator tools (`history`, `verify`, `export`, `import`, `replay`).

use std::path::PathBuf;

use clap::Args;
use uuid::Uuid;

use super::StoreArgs;

#[derive(Debug, Clone, Args)]
pub struct HistoryArgs {
    /// The reservation whose timeline to print.
    pub reservation_id: Uuid,
    /// Print the recorded events as JSON Lines instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// Also check that the log still holds this anchor (a file `--print-anchor` wrote earlier, kept
    /// apart from the data dir): catches a rollback of the whole data dir.
    #[arg(long)]
    pub anchor: Option<PathBuf>,
    /// After a check that passed, print the log's signed head (an anchor to keep elsewhere) on stdout
    /// instead of the report.
    #[arg(long)]
    pub print_anchor: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// A JSON Lines export (from `stayledger export`); `-` reads standard input.
    #[arg(long, short)]
    pub input: PathBuf,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub store: StoreArgs,
}
