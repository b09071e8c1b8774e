//! B6: `GET /reservations/{id}` over HTTP with many connections, each client reading its own
//! customer's reservations with that customer's JWT (the access rule is checked on every read).
//! The reservations are made first over HTTP and the platform is let settle (saga and projector
//! idle), so the figure is the read path alone.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::header::HeaderValue;
use hyper::StatusCode;
use serde_json::json;

use super::client::{id_of, Call, Connection};
use super::load::{self, Answer, LoadOptions, LoadReport, Workload};
use super::platform::{stay_bodies, BenchServe};
use super::report::{thousands, Figure, SweepPoint};
use super::Plan;

pub const TARGET_CLIENTS: usize = 128;
/// Customers owning the reservations (client `k` reads customer `k % CUSTOMERS`'s).
const CUSTOMERS: usize = 64;

struct GetReservation {
    /// Per customer: its token and the paths of its reservations.
    customers: Vec<(HeaderValue, Vec<String>)>,
}

impl Workload for GetReservation {
    fn call(&self, client: usize, seq: u64) -> Call {
        let (auth, paths) = &self.customers[client % self.customers.len()];
        let n = (seq as usize).wrapping_mul(7_919).wrapping_add(client) % paths.len();
        Call::get(paths[n].as_str(), auth)
    }

    fn check(&self, answer: &Answer<'_>) -> Result<(), String> {
        if answer.status == StatusCode::OK {
            Ok(())
        } else {
            Err(format!(
                "{} {}",
                answer.status,
                String::from_utf8_lossy(answer.body)
            ))
        }
    }
}

/// Make `count` reservations over HTTP, spread over [`CUSTOMERS`] customers.
async fn seed(serve: &BenchServe, count: usize) -> anyhow::Result<GetReservation> {
    let lodgings = serve.register_lodgings("b6", 16, "manual").await?;
    let bodies = Arc::new(stay_bodies(&lodgings, 1_024));
    let per_customer = count.div_ceil(CUSTOMERS).max(1);
    let mut tasks = Vec::new();
    for c in 0..CUSTOMERS {
        let auth = serve.customer(c)?;
        let (addr, bodies) = (serve.addr(), Arc::clone(&bodies));
        tasks.push(tokio::spawn(async move {
            let mut connection = Connection::open(addr).await?;
            let mut paths = Vec::with_capacity(per_customer);
            for n in 0..per_customer {
                let body: Bytes = bodies[(c * 31 + n) % bodies.len()].clone();
                let (status, answer) = connection
                    .send(&Call::post("/reservations", &auth, body))
                    .await?;
                let id = id_of(&answer).filter(|_| status == StatusCode::ACCEPTED);
                let id = id.ok_or_else(|| anyhow::anyhow!("seeding B6: {status}"))?;
                paths.push(format!("/reservations/{id}"));
            }
            Ok::<_, anyhow::Error>((auth, paths))
        }));
    }
    let mut customers = Vec::with_capacity(CUSTOMERS);
    for task in tasks {
        customers.push(task.await??);
    }
    Ok(GetReservation { customers })
}

async fn run_at(plan: &Plan, clients: usize) -> anyhow::Result<(LoadReport, u64)> {
    let dir = plan.fresh_dir(&format!("b6-c{clients}"))?;
    let serve = BenchServe::start(&dir).await?;
    let workload = Arc::new(seed(&serve, plan.b6_reservations).await?);
    let head = serve.settle(Duration::from_secs(120)).await?;
    let options = LoadOptions {
        clients,
        warmup: plan.warmup,
        duration: plan.duration,
    };
    let report = load::run(serve.addr(), workload, options).await?;
    serve.stop().await?;
    Ok((report, head))
}

pub async fn run(plan: &Plan) -> anyhow::Result<(Vec<Figure>, Vec<SweepPoint>)> {
    let mut levels = plan.levels.clone();
    if !levels.contains(&TARGET_CLIENTS) {
        levels.push(TARGET_CLIENTS);
    }
    let (mut figures, mut sweep, mut runs) = (Vec::new(), Vec::new(), Vec::new());
    for clients in levels {
        let (report, head) = run_at(plan, clients).await?;
        eprintln!(
            "  B6 c={clients}: {} req/s, p99 {:.2} ms, errors {}",
            thousands(report.per_sec),
            report.latency.p99_ms,
            report.errors
        );
        sweep.push(SweepPoint {
            id: "B6".into(),
            concurrency: clients,
            per_sec: report.per_sec,
            p50_ms: report.latency.p50_ms,
            p99_ms: report.latency.p99_ms,
            errors: report.errors,
        });
        runs.push(json!({"clients": clients, "load": report, "log_head": head}));
        if clients == TARGET_CLIENTS {
            figures.push(figure(&report, plan.b6_reservations));
        }
    }
    if let Some(first) = figures.first_mut() {
        first.details["runs"] = json!(runs);
    }
    Ok((figures, sweep))
}

fn figure(report: &LoadReport, reservations: usize) -> Figure {
    Figure::load(
        "B6",
        "GET /reservations/{id}, 128 connections",
        report,
        ">= 20,000 req/s, p99 <= 10 ms",
        20_000.0,
        10.0,
    )
    .details(json!({"load": report, "reservations": reservations}))
}
