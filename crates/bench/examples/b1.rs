//! B1: durable appends from concurrent writers on distinct streams, against raw SQLite with the same
//! batching. `cargo run --release -p stayledger-bench --example b1 -- [--writers 64] [--seconds 5]
//! [--in-flight 1,8] [--events-per-append 1] [--dir PATH]`. Prints one JSON report per configuration.

use std::path::PathBuf;
use std::time::Duration;

use stayledger_bench::appends::{b1_with, B1Options};

struct Args {
    writers: usize,
    seconds: f64,
    in_flight: Vec<usize>,
    events_per_append: usize,
    dir: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        writers: 64,
        seconds: 5.0,
        in_flight: vec![1, 8],
        events_per_append: 1,
        dir: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--writers" => args.writers = value.parse().map_err(|e| bad(&e))?,
            "--seconds" => args.seconds = value.parse().map_err(|e| bad(&e))?,
            "--events-per-append" => args.events_per_append = value.parse().map_err(|e| bad(&e))?,
            "--in-flight" => {
                args.in_flight = value
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()
                    .map_err(|e| bad(&e))?;
            }
            "--dir" => args.dir = Some(PathBuf::from(value)),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args().map_err(anyhow::Error::msg)?;
    let temp = tempfile::tempdir()?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    for in_flight in &args.in_flight {
        let options = B1Options {
            writers: args.writers,
            duration: Duration::from_secs_f64(args.seconds),
            in_flight: *in_flight,
            events_per_append: args.events_per_append,
        };
        let report = b1_with(&dir, options).await?;
        eprintln!(
            "B1 writers={} in_flight={} events/append={}: {:.0} events/s; raw SQLite, same batching: \
             {:.0} events/s (ratio {:.2}; background checkpoints {:.0}, default {:.0}); \
             {:.1} events/transaction; append p50 {:.2} ms, p99 {:.2} ms; writer {:.1} us/event + commit {:.2} ms",
            options.writers,
            options.in_flight,
            options.events_per_append,
            report.events_per_sec,
            report.raw_events_per_sec,
            report.ratio,
            report.raw_background_checkpoint_events_per_sec,
            report.raw_default_events_per_sec,
            report.avg_events_per_transaction,
            report.append_p50_ms,
            report.append_p99_ms,
            report.write_us_per_event,
            report.commit_ms_avg,
        );
        println!("{}", serde_json::to_string(&report)?);
    }
    Ok(())
}
