//! B2: `POST /reservations` over HTTP, concurrent clients, each with its own customer JWT (checked
//! by the server on every request), requests spread over a few lodgings, far-future stays; the
//! saga and the projector run as in production and take their share of the CPU.
//! B4 comes from the same runs: the lag from each 202 to the views reflecting its position.

use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use hyper::header::HeaderValue;
use hyper::StatusCode;
use serde_json::json;

use super::client::{position_of, Call};
use super::lag::{LagProbe, LagReport};
use super::load::{self, Answer, LoadOptions, LoadReport, Workload};
use super::platform::{stay_bodies, BenchServe};
use super::report::{thousands, Figure, SweepPoint};
use super::Plan;

/// Concurrency the targets are set at.
pub const TARGET_CLIENTS: usize = 64;
const LODGINGS: usize = 16;

/// The B2 workload: each client posts stays (spread over the lodgings) with its customer's token.
pub struct PostReservations {
    pub bodies: Vec<Bytes>,
    pub customers: Vec<HeaderValue>,
    pub lag: Option<LagProbe>,
}

impl Workload for PostReservations {
    fn call(&self, client: usize, seq: u64) -> Call {
        let n = (client as u64 * 7_919 + seq) as usize % self.bodies.len();
        let auth = &self.customers[client % self.customers.len()];
        Call::post("/reservations", auth, self.bodies[n].clone())
    }

    fn check(&self, answer: &Answer<'_>) -> Result<(), String> {
        if answer.status != StatusCode::ACCEPTED {
            return Err(format!(
                "{} {}",
                answer.status,
                String::from_utf8_lossy(answer.body)
            ));
        }
        if let (Some(lag), true) = (&self.lag, answer.measured) {
            let position = position_of(answer.body).ok_or("202 without a position")?;
            lag.sample(position, answer.sent, answer.answered);
        }
        Ok(())
    }
}

/// One load run at `clients`.
struct Run {
    report: LoadReport,
    lag: Option<LagReport>,
    /// How far the saga and the projector were behind the log when the load stopped, and the
    /// event log writer's rates during the run (appends, events, fsynced transactions per second).
    backlog: serde_json::Value,
}

/// One B2 run at `clients` on a fresh `serve` (or, `alone`, on the command routes alone: the
/// ceiling of the request path when nothing else wants the CPU).
async fn run_at(plan: &Plan, clients: usize, alone: bool) -> anyhow::Result<Run> {
    let name = if alone { "b2-alone" } else { "b2" };
    let dir = plan.fresh_dir(&format!("{name}-c{clients}"))?;
    let serve = if alone {
        BenchServe::commands_alone(&dir).await?
    } else {
        BenchServe::start(&dir).await?
    };
    let lodgings = serve.register_lodgings("b2", LODGINGS, "manual").await?;
    let customers = (0..clients.max(1))
        .map(|c| serve.customer(c))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let platform = serve.platform().ok().cloned();
    let (probe, tracker) = match &platform {
        Some(platform) => {
            let (probe, tracker) = LagProbe::start(platform.projector.clone());
            (Some(probe), Some(tracker))
        }
        None => (None, None),
    };
    let workload = Arc::new(PostReservations {
        bodies: stay_bodies(&lodgings, 4_096),
        customers,
        lag: probe,
    });
    let options = LoadOptions {
        clients,
        warmup: plan.warmup,
        duration: plan.duration,
    };
    let before = serve.writer_counters().await.ok();
    let report = load::run(serve.addr(), workload, options).await?;
    let writer = match (before, serve.writer_counters().await.ok()) {
        (Some(before), Some(after)) => before.rates_until(&after),
        _ => serde_json::Value::Null,
    };
    let backlog = match &platform {
        Some(platform) => {
            let head = platform.log.head_position().await?;
            json!({
                "log_head": head,
                "saga_behind": head.saturating_sub(platform.saga.checkpoint()),
                "views_behind": head.saturating_sub(platform.projector.applied_position()),
                "writer": writer,
            })
        }
        None => json!({ "writer": writer }),
    };
    let lag = match tracker {
        Some(tracker) => Some(tracker.await?),
        None => None,
    };
    serve.stop().await?;
    // Nothing reads it again; its dirty pages need not reach the disk under the next run.
    crate::remove_dir_async(&dir).await?;
    Ok(Run {
        report,
        lag,
        backlog,
    })
}

/// Run B2 (and B4) at every concurrency of the plan; figures come from [`TARGET_CLIENTS`]. Then,
/// for the diagnosis, the command routes alone at [`TARGET_CLIENTS`].
pub async fn run(
    plan: &Plan,
    want_b2: bool,
    want_b4: bool,
) -> anyhow::Result<(Vec<Figure>, Vec<SweepPoint>)> {
    let mut figures = Vec::new();
    let mut sweep = Vec::new();
    let mut levels = plan.levels.clone();
    if !levels.contains(&TARGET_CLIENTS) {
        levels.push(TARGET_CLIENTS);
    }
    let mut runs = Vec::new();
    for clients in levels {
        let run = run_at(plan, clients, false).await?;
        let (report, backlog) = (&run.report, &run.backlog);
        let lag = run.lag.clone().context("no lag probe on serve")?;
        eprintln!(
            "  B2 c={clients}: {} req/s, p99 {:.2} ms, errors {}; B4 lag p99 {:.2} ms; backlog {backlog}",
            thousands(report.per_sec),
            report.latency.p99_ms,
            report.errors,
            lag.from_answer.p99_ms
        );
        sweep.push(SweepPoint {
            id: "B2".into(),
            concurrency: clients,
            per_sec: report.per_sec,
            p50_ms: report.latency.p50_ms,
            p99_ms: report.latency.p99_ms,
            errors: report.errors,
        });
        runs.push(
            json!({"clients": clients, "load": report, "lag": lag, "backlog_at_end": backlog}),
        );
        if clients != TARGET_CLIENTS {
            continue;
        }
        if want_b2 {
            figures.push(b2_figure(report, backlog));
        }
        if want_b4 {
            figures.push(b4_figure(&lag, report.per_sec));
        }
    }
    if want_b2 {
        let alone = run_at(plan, TARGET_CLIENTS, true).await?;
        eprintln!(
            "  B2 command routes alone (no saga, projector): {} req/s, p99 {:.2} ms, errors {}; {}",
            thousands(alone.report.per_sec),
            alone.report.latency.p99_ms,
            alone.report.errors,
            alone.backlog
        );
        if let Some(b2) = figures.iter_mut().find(|f| f.id == "B2") {
            b2.details["command_routes_alone"] =
                json!({"load": alone.report, "writer": alone.backlog["writer"]});
        }
    }
    if let Some(first) = figures.first_mut() {
        first.details["runs"] = json!(runs);
    }
    Ok((figures, sweep))
}

fn b2_figure(report: &LoadReport, backlog: &serde_json::Value) -> Figure {
    Figure::load(
        "B2",
        "POST /reservations, 64 clients, JWT",
        report,
        ">= 10,000 req/s, p99 <= 25 ms",
        10_000.0,
        25.0,
    )
    .details(json!({"load": report, "backlog_at_end": backlog}))
}

fn b4_figure(lag: &LagReport, per_sec: f64) -> Figure {
    let p99 = lag.from_answer.p99_ms;
    let met = p99 <= 50.0 && lag.never_reflected == 0 && lag.from_answer.count > 0;
    let figure = format!(
        "p99 {p99:.1} ms (p50 {:.1} ms, {} samples at {} req/s)",
        lag.from_answer.p50_ms,
        lag.from_answer.count,
        thousands(per_sec)
    );
    Figure::new("B4", "projection lag under B2 load", p99, "ms")
        .figure(figure)
        .target("p99 <= 50 ms", met)
        .details(json!({"lag": lag}))
}
