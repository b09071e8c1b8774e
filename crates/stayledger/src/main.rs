//! The `stayledger` binary: parse the command line and hand over to the library.

use clap::Parser;
use stayledger::cli::{Cli, Command};

/// mimalloc instead of glibc's malloc: the event and JSON handling allocate many small objects, and
/// glibc's `free`/`malloc_consolidate` took 12-35% of the profiles (docs/benchmarks.md). Its v2 line
/// (the `v2` feature in the root Cargo.toml): v3 waits 1 s (10 s in its arenas) before it gives freed
/// pages back, v2 10 ms, which kept `serve` 17-28 MiB smaller under load at the same speed (issue 18).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    // First of all: SQLite's allocations in one glibc arena (this may run the program again).
    stayledger::malloc_arena::run_with_one_arena();
    // No transparent huge pages (mimalloc's arenas would keep 2 MiB pages resident).
    stayledger::huge_pages::turn_off();
    let cli = Cli::parse();
    init_tracing(cli.log_json);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => stayledger::serve::serve(args).await,
            Command::Token(args) => {
                stayledger::stdout::line(&stayledger::token::mint(&args)?).map_err(Into::into)
            }
            Command::PaymentSandbox(args) => stayledger::serve::payment_sandbox(args).await,
            Command::CommandApi(args) => stayledger::services::command_api(args).await,
            Command::QueryApi(args) => stayledger::services::query_api(args).await,
            Command::Projector(args) => stayledger::services::projector(args).await,
            Command::Notifier(args) => stayledger::services::notifier(args).await,
            Command::Saga(args) => stayledger::services::saga(args).await,
            Command::History(args) => stayledger::audit::history(args).await,
            Command::Replay(args) => stayledger::audit::replay(args).await,
            Command::Verify(args) => stayledger::audit::verify(args).await,
            Command::Export(args) => stayledger::audit::export(args).await,
            Command::Import(args) => stayledger::audit::import(args).await,
        }
    });
    match outcome {
        // The reader of our output went away (`stayledger export | head`): not our failure.
        Err(error) if stayledger::stdout::is_broken_pipe(&error) => Ok(()),
        other => other,
    }
}

fn init_tracing(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
