//! The peer comparison: the same command workload on the Python library `eventsourcing` 9.x with
//! its SQLite persistence (`bench/peer/peer_bench.py`, installed into a venv by
//! `bench/peer/install.sh` unless `--peer-python` names an interpreter), and on ours in process
//! ([`super::commands`]), sequentially and from 8 concurrent workers, with the same number of flows.
//! No python3 / pip / network: the comparison is reported as SKIPPED, never as a failure.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{json, Value};
use tokio::process::Command;

use super::commands;
use super::report::{thousands, Figure};
use super::Plan;

const WHAT: &str = "command workload vs Python eventsourcing (SQLite)";
const TARGET: &str = ">= 10x the peer's flows/s";
const THREADS: usize = 8;
/// A second, wider concurrency, reported beside the target's (the peer does not scale with it).
const WIDE: usize = 64;

/// `bench/peer` of the source tree this binary was built from.
fn peer_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/peer")
}

/// The peer's python: the given one, or the venv `install.sh` makes (and prints).
async fn python(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(given) = given {
        return Ok(given.to_path_buf());
    }
    let script = peer_dir().join("install.sh");
    let out = Command::new("bash")
        .arg(&script)
        .output()
        .await
        .with_context(|| format!("running {}", script.display()))?;
    anyhow::ensure!(
        out.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    let path = printed.lines().last().unwrap_or_default().trim();
    anyhow::ensure!(!path.is_empty(), "install.sh printed no python path");
    Ok(PathBuf::from(path))
}

/// The peer's JSON report for `flows` flows.
async fn peer(python: &Path, flows: usize, threads: usize) -> anyhow::Result<Value> {
    let script = peer_dir().join("peer_bench.py");
    let out = Command::new(python)
        .arg(&script)
        .args([
            "--flows",
            &flows.to_string(),
            "--threads",
            &threads.to_string(),
        ])
        .output()
        .await
        .with_context(|| format!("running {}", python.display()))?;
    anyhow::ensure!(
        out.status.success(),
        "peer_bench.py failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    serde_json::from_slice(&out.stdout).context("peer_bench.py did not print JSON")
}

fn flows_per_sec(report: &Value, mode: &str) -> anyhow::Result<f64> {
    report[mode]["flows_per_sec"]
        .as_f64()
        .with_context(|| format!("no {mode}.flows_per_sec in the peer's report"))
}

pub async fn run(plan: &Plan) -> anyhow::Result<Figure> {
    let flows = plan.peer_flows;
    let peer_report = match python(plan.peer_python.as_deref()).await {
        Ok(python) => match peer(&python, flows, THREADS).await {
            Ok(report) => peer(&python, flows, WIDE)
                .await
                .map(|wide| (report, wide["concurrent"].clone())),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    let (peer_report, peer_wide) = match peer_report {
        Ok(reports) => reports,
        Err(e) => {
            eprintln!("  peer SKIPPED: {e:#}");
            return Ok(Figure::skipped("peer", WHAT, TARGET, &format!("{e:#}")));
        }
    };
    let dir = plan.fresh_dir("peer")?;
    let ours_seq = commands::run(&dir, flows, 1).await?;
    let ours_conc = commands::run(&dir, flows, THREADS).await?;
    let ours_wide = commands::run(&dir, flows, WIDE).await?;
    let peer_wide_rate = peer_wide["flows_per_sec"].as_f64().unwrap_or(f64::NAN);
    let (peer_seq, peer_conc) = (
        flows_per_sec(&peer_report, "sequential")?,
        flows_per_sec(&peer_report, "concurrent")?,
    );
    let (ratio_seq, ratio_conc) = (ours_seq / peer_seq, ours_conc / peer_conc);
    let ratio_wide = ours_wide / peer_wide_rate;
    let text = format!(
        "{ratio_conc:.1}x with {THREADS} workers ({} vs {} flows/s); {ratio_seq:.1}x sequential ({} vs {}); \
         {ratio_wide:.1}x with {WIDE} ({} vs {})",
        thousands(ours_conc),
        thousands(peer_conc),
        thousands(ours_seq),
        thousands(peer_seq),
        thousands(ours_wide),
        thousands(peer_wide_rate)
    );
    Ok(Figure::new("peer", WHAT, ratio_conc, "x")
        .figure(text)
        .target(TARGET, ratio_conc >= 10.0 && ratio_seq >= 10.0)
        .details(json!({
            "flows": flows,
            "ours": {"sequential_flows_per_sec": ours_seq, "concurrent_flows_per_sec": ours_conc, "concurrency": THREADS,
                     "wide_flows_per_sec": ours_wide, "wide_concurrency": WIDE},
            "peer": peer_report,
            "peer_wide": peer_wide,
            "ratio_wide": ratio_wide,
            "ratio_sequential": ratio_seq,
            "ratio_concurrent": ratio_conc,
        })))
}
