//! What a benchmark measured: figures beside their targets (docs/requirements.md), printed as a table and
//! written as JSON (`--json FILE`, read back by `bench/plot.py` and for docs/benchmarks.md).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;

use super::load::LoadReport;

/// One measured figure of one benchmark.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// `B1`..`B8` or `peer`.
    pub id: String,
    pub what: String,
    /// The headline number, in `unit`.
    pub value: f64,
    pub unit: String,
    /// The headline as printed, with its secondary numbers (e.g. `9,800 req/s, p99 21.3 ms`).
    pub figure: String,
    pub target: String,
    /// `None`: measured, but nothing to compare (or skipped).
    pub met: Option<bool>,
    /// Everything else the run measured (latency percentiles, raw counters, settings).
    pub details: Value,
}

impl Figure {
    pub fn new(id: &str, what: &str, value: f64, unit: &str) -> Self {
        Self {
            id: id.to_string(),
            what: what.to_string(),
            value,
            unit: unit.to_string(),
            figure: format!("{} {unit}", thousands(value)),
            target: String::new(),
            met: None,
            details: Value::Null,
        }
    }

    pub fn figure(mut self, figure: impl Into<String>) -> Self {
        self.figure = figure.into();
        self
    }

    pub fn target(mut self, target: &str, met: bool) -> Self {
        self.target = target.to_string();
        self.met = Some(met);
        self
    }

    /// The figure of a load run: `N req/s, p99 X ms` (and its errors), met when the rate is at least
    /// `min_per_sec`, the p99 at most `max_p99_ms`, and nothing failed.
    pub fn load(
        id: &str,
        what: &str,
        report: &LoadReport,
        target: &str,
        min_per_sec: f64,
        max_p99_ms: f64,
    ) -> Self {
        let met = report.per_sec >= min_per_sec
            && report.latency.p99_ms <= max_p99_ms
            && report.errors == 0;
        let mut figure = format!(
            "{} req/s, p99 {:.1} ms",
            thousands(report.per_sec),
            report.latency.p99_ms
        );
        if report.errors > 0 {
            let _ = write!(figure, " ({} errors)", report.errors);
        }
        Self::new(id, what, report.per_sec, "req/s")
            .figure(figure)
            .target(target, met)
    }

    pub fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// A benchmark that could not run here (e.g. no Python for the peer).
    pub fn skipped(id: &str, what: &str, target: &str, why: &str) -> Self {
        Self {
            figure: format!("SKIPPED: {why}"),
            target: target.to_string(),
            ..Self::new(id, what, 0.0, "")
        }
    }
}

/// Throughput and latency of a load run at one concurrency (for the B2/B6 plot).
#[derive(Debug, Clone, Serialize)]
pub struct SweepPoint {
    pub id: String,
    pub concurrency: usize,
    pub per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
}

/// The whole run, as written by `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub quick: bool,
    pub started_at: String,
    pub machine: Value,
    pub load_generator: String,
    pub figures: Vec<Figure>,
    pub sweeps: Vec<SweepPoint>,
}

impl RunReport {
    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self).context("encoding the report")?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
    }
}

/// `1234567.8` -> `1,234,568`; small numbers keep one or two decimals.
pub fn thousands(value: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    if value.abs() < 10.0 {
        return format!("{value:.2}");
    }
    if value.abs() < 100.0 {
        return format!("{value:.1}");
    }
    let rounded = value.round() as i64;
    let digits = rounded.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if rounded < 0 {
        out.insert(0, '-');
    }
    out
}

/// The table of every figure beside its target, as Markdown (readable on a terminal too).
pub fn table(figures: &[Figure]) -> String {
    let mut out = String::from("| id | what | figure | target | met |\n|---|---|---|---|---|\n");
    for f in figures {
        let met = match f.met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "-",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {met} |",
            f.id, f.what, f.figure, f.target
        );
    }
    out
}

/// A short description of this machine: CPU model and count, memory, kernel.
pub fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    serde_json::json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu_model": model,
        "memory_gib": mem_kib.map(|k| (k as f64 / 1_048_576.0 * 10.0).round() / 10.0),
        "kernel": kernel.trim(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(1_234_567.8), "1,234,568");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(12.34), "12.3");
        assert_eq!(thousands(1.234), "1.23");
        assert_eq!(thousands(-12_345.0), "-12,345");
    }

    #[test]
    fn table_marks_missed_targets() {
        let figures = vec![
            Figure::new("B2", "POST", 12_000.0, "req/s").target(">= 10,000 req/s", true),
            Figure::new("B6", "GET", 5.0, "req/s").target(">= 20,000 req/s", false),
            Figure::skipped("peer", "peer", ">= 10x", "no python3"),
        ];
        let text = table(&figures);
        assert!(text.contains("| B2 | POST | 12,000 req/s | >= 10,000 req/s | yes |"));
        assert!(text.contains("| NO |"));
        assert!(text.contains("SKIPPED: no python3"));
    }
}
