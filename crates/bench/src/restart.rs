//! B7 and B8 on the shared large data dir, with the REAL binary: spawn
//! `stayledger serve --data-dir <dir> --addr 127.0.0.1:0` (the binary `--stayledger-bin` names, else
//! the `stayledger` beside this bench's executable, see [`stayledger_binary`]), read the address it
//! prints, time the first
//! 200 of `/healthz` (taking requests) and of `/readyz` (stores answer, projector caught up), then
//! read its resident memory from `/proc/<pid>/status`. Repeated a few times; the page cache is warm
//! (the log was just written and rebuilt from), as on a restart of a running machine.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use hyper::StatusCode;
use serde::Serialize;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::client::{Call, Connection};
use super::dataset::Dataset;
use super::report::{thousands, Figure};

const LISTENING: &str = "stayledger listening on http://";
const START_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Serialize)]
struct Restart {
    listening_ms: f64,
    healthz_ms: f64,
    readyz_ms: f64,
    rss_at_ready_mib: f64,
    rss_mib: f64,
    peak_rss_mib: f64,
}

/// `VmRSS` and `VmHWM` of `pid`, in MiB.
pub fn memory(pid: u32) -> anyhow::Result<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map(|kib| kib / 1024.0)
            .with_context(|| format!("no {name} in /proc/{pid}/status"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// The address the child prints once it listens.
pub async fn listening_addr(child: &mut Child) -> anyhow::Result<std::net::SocketAddr> {
    let stdout = child.stdout.take().context("no stdout of serve")?;
    let mut lines = BufReader::new(stdout).lines();
    let found = async {
        while let Some(line) = lines.next_line().await? {
            if let Some(addr) = line.trim().strip_prefix(LISTENING) {
                return addr.parse().context("parsing the printed address");
            }
        }
        anyhow::bail!("serve exited before printing its address")
    };
    tokio::time::timeout(START_TIMEOUT, found)
        .await
        .context("serve did not print its address in time")?
}

/// Poll `path` until it answers 200.
async fn until_ok(addr: std::net::SocketAddr, path: &str, deadline: Instant) -> anyhow::Result<()> {
    let call = Call {
        method: hyper::Method::GET,
        path: path.to_string(),
        auth: None,
        body: None,
    };
    let mut connection = None;
    loop {
        anyhow::ensure!(Instant::now() < deadline, "{path} not 200 in time");
        if connection.is_none() {
            connection = Connection::open(addr).await.ok();
        }
        if let Some(open) = connection.as_mut() {
            match open.send(&call).await {
                Ok((StatusCode::OK, _)) => return Ok(()),
                Ok(_) => {}
                Err(_) => connection = None,
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Ask the child to stop (SIGTERM, by its pid), kill it if it does not within 15 s.
pub async fn stop(mut child: Child) -> anyhow::Result<()> {
    if let Some(pid) = child.id() {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
    }
    if tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .is_err()
    {
        child.kill().await.context("killing serve")?;
    }
    Ok(())
}

/// The `stayledger` binary to restart: `given` (`--stayledger-bin`, `STAYLEDGER_BIN`), else the one
/// beside this executable, where `cargo build --release -p stayledger -p stayledger-bench` puts both.
pub fn stayledger_binary(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = given {
        anyhow::ensure!(
            path.is_file(),
            "--stayledger-bin {} is not a file",
            path.display()
        );
        return Ok(path.to_path_buf());
    }
    let bench = std::env::current_exe().context("locating the bench executable")?;
    let beside = bench.with_file_name(format!("stayledger{}", std::env::consts::EXE_SUFFIX));
    anyhow::ensure!(
        beside.is_file(),
        "no stayledger binary at {}: build it with `cargo build --release -p stayledger`, or pass \
         --stayledger-bin PATH",
        beside.display()
    );
    Ok(beside)
}

/// `serve --data-dir DIR --addr 127.0.0.1:0` from `exe`, its stderr into `log`; returns the child
/// and its pid (its stdout still to be read for the address).
pub fn spawn_serve(exe: &Path, dir: &Path, log: &Path) -> anyhow::Result<(Child, u32)> {
    let stderr =
        std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let child = Command::new(exe)
        .arg("serve")
        .arg("--data-dir")
        .arg(dir)
        .args(["--addr", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .context("spawning serve")?;
    let pid = child.id().context("serve has no pid")?;
    Ok((child, pid))
}

async fn restart_once(exe: &Path, dir: &Path, log: &Path) -> anyhow::Result<Restart> {
    let started = Instant::now();
    let (mut child, pid) = spawn_serve(exe, dir, log)?;
    let ms = |since: Instant| since.elapsed().as_secs_f64() * 1000.0;
    let measured = async {
        let addr = listening_addr(&mut child).await?;
        let listening_ms = ms(started);
        let deadline = started + START_TIMEOUT;
        until_ok(addr, "/healthz", deadline).await?;
        let healthz_ms = ms(started);
        until_ok(addr, "/readyz", deadline).await?;
        let readyz_ms = ms(started);
        let (rss_at_ready_mib, _) = memory(pid)?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (rss_mib, peak_rss_mib) = memory(pid)?;
        Ok::<_, anyhow::Error>(Restart {
            listening_ms,
            healthz_ms,
            readyz_ms,
            rss_at_ready_mib,
            rss_mib,
            peak_rss_mib,
        })
    }
    .await;
    stop(child).await?;
    measured
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

pub async fn run(
    stayledger: Option<&Path>,
    dataset: &Dataset,
    restarts: usize,
    want_b7: bool,
    want_b8: bool,
) -> anyhow::Result<Vec<Figure>> {
    let exe = stayledger_binary(stayledger)?;
    eprintln!("  restarting {}", exe.display());
    let mut runs = Vec::new();
    for n in 0..restarts.max(1) {
        let log = dataset.dir.join(format!("serve-restart-{n}.log"));
        let run = restart_once(&exe, &dataset.dir, &log).await?;
        eprintln!("  restart {n}: {run:?}");
        runs.push(run);
    }
    let events = thousands(dataset.events as f64);
    let mut figures = Vec::new();
    if want_b7 {
        let rss = runs.iter().map(|r| r.rss_mib).fold(0.0, f64::max);
        let peak = runs.iter().map(|r| r.peak_rss_mib).fold(0.0, f64::max);
        figures.push(
            Figure::new(
                "B7",
                &format!("serve resident memory, {events} events"),
                rss,
                "MiB",
            )
            .figure(format!("{rss:.1} MiB (peak {peak:.1} MiB)"))
            .target("<= 150 MiB", rss <= 150.0 && peak <= 150.0)
            .details(json!({"restarts": runs})),
        );
    }
    if want_b8 {
        let health = median(runs.iter().map(|r| r.healthz_ms).collect());
        let ready = median(runs.iter().map(|r| r.readyz_ms).collect());
        figures.push(
            Figure::new(
                "B8",
                &format!("serve ready after restart, {events} events"),
                health / 1000.0,
                "s",
            )
            .figure(format!(
                "{:.3} s to /healthz 200, {:.3} s to /readyz 200 (median of {})",
                health / 1000.0,
                ready / 1000.0,
                runs.len()
            ))
            .target("<= 2 s", health <= 2_000.0 && ready <= 2_000.0)
            .details(
                json!({"restarts": runs, "healthz_ms_median": health, "readyz_ms_median": ready}),
            ),
        );
    }
    Ok(figures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stayledger_binary_is_the_given_one_or_the_one_beside_the_bench() {
        let dir = tempfile::tempdir().expect("dir");
        let given = dir.path().join("stayledger");
        assert!(stayledger_binary(Some(&given)).is_err(), "not there yet");
        std::fs::write(&given, b"").expect("write");
        assert_eq!(stayledger_binary(Some(&given)).ok(), Some(given));
        // A test executable lives in target/*/deps, where no `stayledger` is built.
        let beside = std::env::current_exe()
            .expect("exe")
            .with_file_name("stayledger");
        if !beside.exists() {
            let error = stayledger_binary(None)
                .expect_err("none beside")
                .to_string();
            assert!(
                error.contains("cargo build --release -p stayledger"),
                "{error}"
            );
        }
    }
}
