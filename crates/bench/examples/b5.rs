//! B5: rebuild all views from about 1,000,000 events.
//! `cargo run --release -p stayledger-bench --example b5 [EVENTS] [DIR]` (DIR is kept; default: a temporary
//! directory). Prints the report as JSON.

use std::path::PathBuf;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let events = args
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let temporary = tempfile::tempdir();
    let dir = match (args.next(), &temporary) {
        (Some(dir), _) => PathBuf::from(dir),
        (None, Ok(temporary)) => temporary.path().to_path_buf(),
        (None, Err(e)) => {
            eprintln!("cannot create a temporary directory: {e}");
            return ExitCode::FAILURE;
        }
    };
    match stayledger_bench::rebuild_alone::b5(&dir, events).await {
        Ok(report) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("B5 failed: {e}");
            ExitCode::FAILURE
        }
    }
}
