//! `stayledger-bench`: parse the flags and run the suite (see the library's docs).

use clap::Parser;
use stayledger_bench::BenchArgs;

/// The allocator of the `stayledger` binary, so the in-process `serve` of B2-B6 runs as it does
/// there (mimalloc: glibc's malloc took 12-35% of the profiles, docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    // The in-process `serve` of B2-B6 with SQLite's allocations in one glibc arena, as `stayledger`.
    stayledger::malloc_arena::run_with_one_arena();
    // And without transparent huge pages, as `stayledger` runs.
    stayledger::huge_pages::turn_off();
    let args = BenchArgs::parse();
    init_tracing();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(stayledger_bench::run(args))
}

/// Log lines of the in-process `serve` on stderr, as `stayledger` writes them (`RUST_LOG`, default
/// `info`; `RUST_LOG=warn` keeps them out of the output).
fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
