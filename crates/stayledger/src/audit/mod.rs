//! Auditor and operator tools: `history`, `replay`, `verify`, `export`, `import`.

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub store: crate::cli::StoreArgs,
}

pub async fn history(args: AuditArgs) -> anyhow::Result<()> {
    anyhow::bail!(
        "history is being written ({})",
        args.store.data_dir.display()
    )
}
