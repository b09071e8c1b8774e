//! `stayledger-bench`: the performance suite B1-B8 of docs/requirements.md on the embedded stores, with the
//! peer comparison against the Python `eventsourcing` library, over the public APIs of the other
//! crates. One command runs it all (a release build of both binaries; B7 and B8 restart the real
//! `stayledger` binary, found beside this one or given with `--stayledger-bin`):
//!
//! ```text
//! cargo build --release -p stayledger -p stayledger-bench && target/release/stayledger-bench [--quick]
//! ```
//!
//! Every HTTP benchmark starts its own `serve` (in process, 127.0.0.1 port 0, its own data dir) and
//! loads it with this crate's own Rust load generator (tokio + hyper, one keep-alive HTTP/1.1
//! connection per client, over real loopback TCP). Generator and server share the machine's cores.
//! B5, B7 and B8 share one large log (1,000,000 events), made once per run; B7 is also taken under
//! load (`memory`: the real binary on a fresh dir, 16 clients posting, then 30 s idle). Figures are printed
//! beside their targets and, with `--json FILE`, written for docs/benchmarks.md and `bench/plot.py`.

pub mod appends;
mod b1;
mod b10;
mod b12;
mod b2;
mod b3;
mod b5;
mod b6;
mod b9;
mod client;
mod commands;
mod dataset;
mod lag;
mod load;
mod memory;
mod peer;
mod platform;
pub mod rebuild_alone;
mod report;
mod restart;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use report::{Figure, RunReport, SweepPoint};

const IDS: [&str; 10] = [
    "B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B12", "peer",
];
/// Run only when `--only` names them (not in the whole suite nor in CI's `--quick`): B3p (B3's
/// `pay_first` flows alone, in a process of their own: B3 runs them after its other two modes), B9
/// (webhooks under B3) and B10 (1,000 live streams under B3).
const ON_REQUEST: [&str; 3] = ["B3p", "B9", "B10"];
const LOAD_GENERATOR: &str =
    "stayledger-bench's own Rust load generator: tokio + hyper, one HTTP/1.1 \
    keep-alive connection per client over loopback TCP, closed loop, in the same process as serve \
    (both share the machine's cores)";

/// Flags of `stayledger-bench`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "stayledger-bench",
    version,
    about = "The benchmark suite B1-B8 and the peer comparison (release build)"
)]
pub struct BenchArgs {
    /// A short run of every benchmark (CI runs this so the suite cannot rot).
    #[arg(long)]
    pub quick: bool,
    /// Run only these benchmarks (e.g. `B2,B6`; `peer` for the peer comparison; `B3p` for B3's
    /// `pay_first` flows alone).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Write every figure as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Python with `eventsourcing` installed (default: `bench/peer/install.sh` makes a venv).
    #[arg(long)]
    pub peer_python: Option<PathBuf>,
    /// Concurrency levels of the B2 and B6 sweeps (default 1,8,32,64,128; `--quick`: the targets').
    #[arg(long, value_delimiter = ',')]
    pub concurrency: Vec<usize>,
    /// Measured seconds of each load run (default 10; `--quick`: 2).
    #[arg(long)]
    pub seconds: Option<f64>,
    /// Events in the shared log of B5, B7 and B8 (default 1,000,000; `--quick`: 20,000).
    #[arg(long)]
    pub events: Option<u64>,
    /// Whole flows of B3, B9 and B10 (default 20,000; `--quick`: 500).
    #[arg(long)]
    pub flows: Option<usize>,
    /// B3: offer the flows at this many a second (an open loop: flow `n` is sent `n / pace` seconds
    /// after the first, its latency counted from then) instead of as fast as they are answered.
    #[arg(long)]
    pub pace: Option<f64>,
    /// B3 `pay_first`: each admin reads its desks once every this many milliseconds and never sends
    /// an approval twice, as a desk's screen refreshing would (default: back to back while requests
    /// turn up, so the admins' reads and repeated approvals are part of the load).
    #[arg(long)]
    pub desk_interval_ms: Option<u64>,
    /// Seconds B9 and B10 wait after the flows for the deliveries and frames still due (default 30).
    #[arg(long)]
    pub drain: Option<f64>,
    /// Where the data dirs go (default: a temporary directory, removed at the end).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// The `stayledger` binary B7 and B8 restart (default: the one beside this executable).
    #[arg(long, env = "STAYLEDGER_BIN")]
    pub stayledger_bin: Option<PathBuf>,
}

/// The sizes and durations of one run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub quick: bool,
    pub work: PathBuf,
    pub warmup: Duration,
    pub duration: Duration,
    pub b1_duration: Duration,
    pub levels: Vec<usize>,
    pub b3_flows: usize,
    /// B3's offered rate (`--pace`); `None`: as fast as answered.
    pub b3_pace: Option<f64>,
    /// B3 `pay_first`: how often an admin reads its desks (`--desk-interval-ms`).
    pub b3_desk_interval: Option<Duration>,
    /// B9, B10: how long the deliveries and frames may take to arrive after the flows.
    pub drain: Duration,
    pub events: u64,
    pub b6_reservations: usize,
    pub restarts: usize,
    pub peer_flows: usize,
    pub peer_python: Option<PathBuf>,
    pub stayledger_bin: Option<PathBuf>,
}

impl Plan {
    fn new(args: &BenchArgs, work: PathBuf) -> Self {
        let quick = args.quick;
        let seconds = args.seconds.unwrap_or(if quick { 2.0 } else { 10.0 });
        let levels = match (&args.concurrency, quick) {
            (given, _) if !given.is_empty() => given.clone(),
            (_, true) => Vec::new(),
            (_, false) => vec![1, 8, 32, 64, 128],
        };
        Self {
            quick,
            work,
            warmup: Duration::from_secs_f64((seconds / 5.0).clamp(0.5, 2.0)),
            duration: Duration::from_secs_f64(seconds.max(0.1)),
            b1_duration: Duration::from_secs(if quick { 1 } else { 10 }),
            levels,
            b3_flows: args.flows.unwrap_or(if quick { 500 } else { 20_000 }),
            b3_pace: args.pace,
            b3_desk_interval: args.desk_interval_ms.map(Duration::from_millis),
            drain: Duration::from_secs_f64(args.drain.unwrap_or(30.0).max(0.0)),
            events: args
                .events
                .unwrap_or(if quick { 20_000 } else { 1_000_000 }),
            b6_reservations: if quick { 640 } else { 10_000 },
            restarts: if quick { 2 } else { 5 },
            peer_flows: if quick { 200 } else { 2_000 },
            peer_python: args.peer_python.clone(),
            stayledger_bin: args.stayledger_bin.clone(),
        }
    }

    /// A new, empty directory `name` under the work dir, on a settled disk: what earlier runs left
    /// dirty in the page cache is written back first (`sync`), so the kernel's background writeback
    /// of one run does not slow the fsyncs of the next one (a run in the middle of a full suite
    /// starts as a run on its own does).
    pub fn fresh_dir(&self, name: &str) -> anyhow::Result<PathBuf> {
        let dir = self.work.join(name);
        if dir.exists() {
            remove_dir(&dir)?;
        }
        settle_disk();
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(dir)
    }
}

/// Remove a run's data dir. A store's last file can still be closing (and SQLite removes its
/// `-wal` and `-shm` files as the last connection closes) while the listing is taken, which
/// fails the removal with "Directory not empty": it is tried again for up to 2 s.
pub(crate) fn remove_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    let mut tries = 0;
    loop {
        match std::fs::remove_dir_all(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(_) if tries < 20 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(e).with_context(|| format!("removing {}", dir.display())),
        }
    }
}

/// [`remove_dir`] from async code: its retries wait on a blocking thread, not on a runtime worker.
pub(crate) async fn remove_dir_async(dir: &std::path::Path) -> anyhow::Result<()> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || remove_dir(&dir)).await?
}

/// Write back everything dirty (`sync`, coreutils). A failure only makes the next run noisier.
fn settle_disk() {
    match std::process::Command::new("sync").status() {
        Ok(status) if status.success() => {}
        Ok(status) => {
            eprintln!("bench: sync exited with {status}; the next run may share the disk")
        }
        Err(error) => {
            eprintln!("bench: cannot run sync ({error}); the next run may share the disk")
        }
    }
}

/// Which benchmarks to run (`--only`, case-insensitive).
fn selection(only: &[String]) -> anyhow::Result<BTreeSet<&'static str>> {
    if only.is_empty() {
        return Ok(IDS.into_iter().collect());
    }
    only.iter()
        .map(|asked| {
            IDS.into_iter()
                .chain(ON_REQUEST)
                .find(|id| id.eq_ignore_ascii_case(asked.trim()))
                .with_context(|| {
                    format!(
                        "unknown benchmark {asked:?} (known: {}, {})",
                        IDS.join(", "),
                        ON_REQUEST.join(", ")
                    )
                })
        })
        .collect()
}

/// Run the suite.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let wanted = selection(&args.only)?;
    let temp = tempfile::Builder::new()
        .prefix("stayledger-bench-")
        .tempdir()
        .context("creating a work dir")?;
    let work = args
        .work_dir
        .clone()
        .unwrap_or_else(|| temp.path().to_path_buf());
    let plan = Plan::new(&args, work);
    if cfg!(debug_assertions) {
        eprintln!("WARNING: a debug build; figures mean nothing (use --release)");
    }
    eprintln!(
        "stayledger-bench{}: {}",
        if plan.quick { " --quick" } else { "" },
        LOAD_GENERATOR
    );
    eprintln!("work dir {}", plan.work.display());
    let started_at = chrono::Utc::now().to_rfc3339();
    let (figures, sweeps, failures) = run_selected(&plan, &wanted).await;
    println!("\n{}", report::table(&figures));
    let report = RunReport {
        quick: plan.quick,
        started_at,
        machine: report::machine(),
        load_generator: LOAD_GENERATOR.to_string(),
        figures,
        sweeps,
    };
    if let Some(path) = &args.json {
        report.write_json(path)?;
        eprintln!("figures written to {}", path.display());
    }
    anyhow::ensure!(failures == 0, "{failures} benchmark(s) failed to run");
    Ok(())
}

/// Run what `wanted` names, in an order that shares work; a benchmark that fails to run is a
/// `FAILED` row, and the others still run.
async fn run_selected(
    plan: &Plan,
    wanted: &BTreeSet<&str>,
) -> (Vec<Figure>, Vec<SweepPoint>, usize) {
    let mut out = Outcome::default();
    let has = |id: &str| wanted.contains(id);
    if has("B1") {
        out.one("B1", b1::run(plan).await);
    }
    if has("B2") || has("B4") {
        out.many("B2", b2::run(plan, has("B2"), has("B4")).await);
    }
    if has("B6") {
        out.many("B6", b6::run(plan).await);
    }
    if has("B7") {
        out.one("B7", memory::run(plan).await);
    }
    if has("B3") {
        out.one(
            "B3",
            b3::run_mode(plan, b3::Approval::Admin, plan.b3_flows).await,
        );
        if !plan.quick {
            let flows = plan.b3_flows;
            out.one("B3", b3::run_mode(plan, b3::Approval::Instant, flows).await);
            out.one(
                "B3",
                b3::run_mode(plan, b3::Approval::PayFirst, flows).await,
            );
        }
    }
    if has("B3p") && !has("B3") {
        let flows = plan.b3_flows;
        out.one(
            "B3",
            b3::run_mode(plan, b3::Approval::PayFirst, flows).await,
        );
    }
    if has("B12") {
        out.one("B12", b12::run(plan).await);
    }
    if has("B9") {
        out.one("B9", b9::run(plan).await);
    }
    if has("B10") {
        out.one("B10", b10::run(plan).await);
    }
    if has("B5") || has("B7") || has("B8") {
        eprintln!("seeding a log of {} events", plan.events);
        let seeded = match plan.fresh_dir("large") {
            Ok(dir) => dataset::seed(&dir, plan.events).await,
            Err(e) => Err(e),
        };
        match seeded {
            Ok(data) => {
                // The rebuild also readies the dir for the restarts, so it runs either way.
                let rebuilt = b5::run(&data).await;
                let ready = rebuilt.is_ok();
                if has("B5") {
                    out.one("B5", rebuilt);
                }
                if ready && (has("B7") || has("B8")) {
                    let stayledger = plan.stayledger_bin.as_deref();
                    let restarts =
                        restart::run(stayledger, &data, plan.restarts, has("B7"), has("B8")).await;
                    out.many("B7/B8", restarts.map(|f| (f, Vec::new())));
                }
            }
            Err(e) => out.failed("B5/B7/B8", &e),
        }
    }
    if has("peer") {
        out.one("peer", peer::run(plan).await);
    }
    (out.figures, out.sweeps, out.failures)
}

#[derive(Default)]
struct Outcome {
    figures: Vec<Figure>,
    sweeps: Vec<SweepPoint>,
    failures: usize,
}

impl Outcome {
    fn one(&mut self, id: &str, result: anyhow::Result<Figure>) {
        self.many(id, result.map(|f| (vec![f], Vec::new())));
    }

    fn many(&mut self, id: &str, result: anyhow::Result<(Vec<Figure>, Vec<SweepPoint>)>) {
        match result {
            Ok((figures, sweeps)) => {
                for f in &figures {
                    eprintln!("{}: {} (target {})", f.id, f.figure, f.target);
                }
                self.figures.extend(figures);
                self.sweeps.extend(sweeps);
            }
            Err(e) => self.failed(id, &e),
        }
    }

    fn failed(&mut self, id: &str, error: &anyhow::Error) {
        eprintln!("{id} FAILED: {error:#}");
        self.failures += 1;
        let mut figure = Figure::new(id, "(did not run)", 0.0, "");
        figure.figure = format!("FAILED: {error:#}");
        figure.met = Some(false);
        self.figures.push(figure);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_is_case_insensitive_and_checked() {
        let picked = selection(&["b2".into(), " B6".into(), "PEER".into()]).ok();
        assert_eq!(picked, Some(["B2", "B6", "peer"].into_iter().collect()));
        assert_eq!(selection(&[]).map(|s| s.len()).ok(), Some(IDS.len()));
        let on_request = selection(&["b3P".into(), "b9".into(), "B10".into()]).ok();
        assert_eq!(on_request, Some(["B3p", "B9", "B10"].into_iter().collect()));
        assert!(selection(&[]).is_ok_and(|all| ON_REQUEST.iter().all(|id| !all.contains(id))));
        assert!(selection(&["B13".into()]).is_err());
    }

    #[test]
    fn quick_plan_is_small() {
        let args = BenchArgs {
            quick: true,
            only: Vec::new(),
            json: None,
            peer_python: None,
            concurrency: Vec::new(),
            seconds: None,
            events: None,
            flows: None,
            pace: None,
            desk_interval_ms: None,
            drain: None,
            work_dir: None,
            stayledger_bin: None,
        };
        let plan = Plan::new(&args, PathBuf::from("/tmp/x"));
        assert!(
            plan.levels.is_empty(),
            "quick runs only the targets' concurrency"
        );
        assert_eq!(plan.events, 20_000);
        assert!(plan.duration <= Duration::from_secs(2));
        assert_eq!(plan.b3_pace, None, "B3 runs closed loop unless paced");
        assert_eq!(
            plan.b3_desk_interval, None,
            "desks are read back to back unless asked"
        );
    }

    #[test]
    fn a_desk_interval_is_read_in_milliseconds() {
        let args =
            BenchArgs::try_parse_from(["bench", "--only", "B3p", "--desk-interval-ms", "100"]);
        let plan = Plan::new(&args.expect("parsed"), PathBuf::from("/tmp/x"));
        assert_eq!(plan.b3_desk_interval, Some(Duration::from_millis(100)));
    }
}
