//! B5: rebuild all views from about 1,000,000 events (`cargo run --release -p projector --example b5 [EVENTS]`).
//! Prints the report as JSON.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let events = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("cannot create a temporary directory: {e}");
            return ExitCode::FAILURE;
        }
    };
    match projector::bench::b5(dir.path(), events).await {
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
