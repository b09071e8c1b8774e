//! B3: whole flows, end to end over HTTP: a customer requests a stay (`POST /reservations`), the
//! lodging's admin approves it (`POST /management/requests/{id}/approve`; or, with `instant`
//! lodgings, the lodging grants on request), the saga charges the sandbox gateway over real HTTP,
//! and the flow counts as done when `GET /reservations/{id}` shows `confirmed`.
//!
//! `submitters` clients start flows as fast as they are answered; `checkers` follow behind, reading
//! each flow's document until it is confirmed. flows/s = confirmed flows / (first request -> last
//! confirmation seen): the sustained rate of the whole pipeline, backlog drained.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use http_edge::Role;
use hyper::header::HeaderValue;
use hyper::StatusCode;
use serde_json::json;
use tokio::sync::{mpsc, Mutex};

use super::client::{id_of, Call, Connection};
use super::load::{micros, Percentiles};
use super::platform::{stay_bodies, BenchServe};
use super::report::{thousands, Figure};
use super::Plan;

const SUBMITTERS: usize = 64;
const CHECKERS: usize = 4;
const LODGINGS: usize = 64;
const POLL: Duration = Duration::from_millis(5);

/// How the approval happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approval {
    /// The admin approves over HTTP after the request's 202.
    Admin,
    /// `instant` lodgings grant on request (no admin step).
    Instant,
}

impl Approval {
    fn mode(self) -> &'static str {
        match self {
            Self::Admin => "manual",
            Self::Instant => "instant",
        }
    }
}

/// A submitted flow: its document path and when its request was sent.
type Started = (String, Instant);

#[derive(Default)]
pub(crate) struct Outcome {
    pub(crate) confirmed: usize,
    pub(crate) failed: usize,
    pub(crate) timed_out: usize,
    pub(crate) latencies: Vec<u32>,
    last_confirmed: Option<Instant>,
    first_failure: Option<String>,
}

/// Start one flow: request, then (admin mode) approve. Returns the document path.
async fn start_flow(
    connection: &mut Connection,
    customer: &HeaderValue,
    admin: Option<&HeaderValue>,
    body: bytes::Bytes,
) -> anyhow::Result<String> {
    let (status, answer) = connection
        .send(&Call::post("/reservations", customer, body))
        .await?;
    let id = id_of(&answer).filter(|_| status == StatusCode::ACCEPTED);
    let id = id.with_context(|| format!("request: {status}"))?;
    if let Some(admin) = admin {
        let path = format!("/management/requests/{id}/approve");
        let (status, answer) = connection
            .send(&Call::post(path, admin, bytes::Bytes::from_static(b"{}")))
            .await?;
        anyhow::ensure!(
            status == StatusCode::ACCEPTED,
            "approve: {status} {}",
            String::from_utf8_lossy(&answer)
        );
    }
    Ok(format!("/reservations/{id}"))
}

/// Follow flows until each is confirmed (or failed, or the deadline passes).
async fn check(
    serve_addr: std::net::SocketAddr,
    auditor: HeaderValue,
    flows: Arc<Mutex<mpsc::UnboundedReceiver<Started>>>,
    deadline: Instant,
) -> anyhow::Result<Outcome> {
    #[derive(serde::Deserialize)]
    struct Doc {
        status: String,
    }
    let mut connection = Connection::open(serve_addr).await?;
    let mut outcome = Outcome::default();
    loop {
        let next = flows.lock().await.recv().await;
        let Some((path, started)) = next else {
            return Ok(outcome);
        };
        let call = Call::get(path, &auditor);
        loop {
            let (status, body) = connection.send(&call).await?;
            let doc = serde_json::from_slice::<Doc>(&body).ok();
            match doc.as_ref().map(|d| d.status.as_str()) {
                Some("confirmed") if status == StatusCode::OK => {
                    let now = Instant::now();
                    outcome.confirmed += 1;
                    outcome.latencies.push(micros(now - started));
                    outcome.last_confirmed = Some(now);
                    break;
                }
                Some(s @ ("rejected" | "expired" | "payment_failed" | "cancelled")) => {
                    outcome.failed += 1;
                    outcome.first_failure.get_or_insert_with(|| s.to_string());
                    break;
                }
                _ if Instant::now() > deadline => {
                    outcome.timed_out += 1;
                    break;
                }
                _ => tokio::time::sleep(POLL).await,
            }
        }
    }
}

/// Where the flows run: how many lodgings, and how many requests each already holds pending.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub approval: Approval,
    pub lodgings: usize,
    pub backlog: usize,
}

/// Run `flows` whole flows on a fresh `serve` over B3's 64 lodgings.
pub async fn run_mode(plan: &Plan, approval: Approval, flows: usize) -> anyhow::Result<Figure> {
    let shape = Shape {
        approval,
        lodgings: LODGINGS,
        backlog: 0,
    };
    let (outcome, seconds, submitted_in, extra) = run_shape(plan, shape, flows).await?;
    Ok(figure(
        approval,
        flows,
        &outcome,
        seconds,
        submitted_in,
        extra,
    ))
}

/// Post `count` requests spread over `lodgings` and leave them pending; wait until the saga and the
/// views have handled them.
async fn seed_backlog(serve: &BenchServe, lodgings: &[String], count: usize) -> anyhow::Result<()> {
    if count == 0 {
        return Ok(());
    }
    let bodies = Arc::new(stay_bodies(lodgings, count));
    let next = Arc::new(AtomicUsize::new(0));
    let mut posters = Vec::new();
    for s in 0..SUBMITTERS {
        let customer = serve.customer(1_000 + s)?;
        let (addr, next, bodies) = (serve.addr(), Arc::clone(&next), Arc::clone(&bodies));
        posters.push(tokio::spawn(async move {
            let mut connection = Connection::open(addr).await?;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(n) else {
                    return Ok::<_, anyhow::Error>(());
                };
                let call = Call::post("/reservations", &customer, body.clone());
                let (status, answer) = connection.send(&call).await?;
                anyhow::ensure!(
                    status == StatusCode::ACCEPTED,
                    "backlog request: {status} {}",
                    String::from_utf8_lossy(&answer)
                );
            }
        }));
    }
    for poster in posters {
        poster.await??;
    }
    serve
        .settle(Duration::from_secs(120 + count as u64 / 100))
        .await?;
    Ok(())
}

/// Run `flows` whole flows of `shape` on a fresh `serve`: what was seen, the seconds from the first
/// request to the last confirmation, the seconds submitting took, and the platform's figures.
pub(crate) async fn run_shape(
    plan: &Plan,
    shape: Shape,
    flows: usize,
) -> anyhow::Result<(Outcome, f64, f64, serde_json::Value)> {
    let approval = shape.approval;
    let name = format!(
        "b3-{}-{}-{}",
        approval.mode(),
        shape.lodgings,
        shape.backlog
    );
    let dir = plan.fresh_dir(&name)?;
    let serve = BenchServe::start(&dir).await?;
    let lodgings = serve
        .register_lodgings("b3", shape.lodgings, approval.mode())
        .await?;
    let seeding = Instant::now();
    seed_backlog(&serve, &lodgings, shape.backlog).await?;
    let seed_seconds = seeding.elapsed().as_secs_f64();
    let bodies = Arc::new(stay_bodies(&lodgings, flows.max(1)));
    let admins = lodgings
        .iter()
        .map(|l| serve.token(Role::Admin, &format!("admin-{l}"), &[l]))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let admins = Arc::new(admins);
    let auditor = serve.token(Role::Auditor, "bench-auditor", &[])?;
    let (sender, receiver) = mpsc::unbounded_channel::<Started>();
    let receiver = Arc::new(Mutex::new(receiver));
    let next = Arc::new(AtomicUsize::new(0));
    let before = serve.writer_counters().await?;
    let deadline = Instant::now() + Duration::from_secs(60 + flows as u64 / 100);
    let started = Instant::now();
    let checkers: Vec<_> = (0..CHECKERS)
        .map(|_| {
            let receiver = Arc::clone(&receiver);
            tokio::spawn(check(serve.addr(), auditor.clone(), receiver, deadline))
        })
        .collect();
    let mut submitters = Vec::new();
    for s in 0..SUBMITTERS {
        let customer = serve.customer(s)?;
        let (addr, next, bodies) = (serve.addr(), Arc::clone(&next), Arc::clone(&bodies));
        let (admins, sender) = (Arc::clone(&admins), sender.clone());
        submitters.push(tokio::spawn(async move {
            let mut connection = Connection::open(addr).await?;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= flows {
                    return Ok::<_, anyhow::Error>(());
                }
                let admin = (approval == Approval::Admin).then(|| &admins[n % admins.len()]);
                let sent = Instant::now();
                let path = start_flow(&mut connection, &customer, admin, bodies[n].clone()).await?;
                // The checkers only stop once every sender is gone.
                let _ = sender.send((path, sent));
            }
        }));
    }
    drop(sender);
    for submitter in submitters {
        submitter.await??;
    }
    let submitted_in = started.elapsed().as_secs_f64();
    let mut outcome = Outcome::default();
    for checker in checkers {
        let part = checker.await??;
        outcome.confirmed += part.confirmed;
        outcome.failed += part.failed;
        outcome.timed_out += part.timed_out;
        outcome.latencies.extend(part.latencies);
        outcome.last_confirmed = outcome.last_confirmed.max(part.last_confirmed);
        outcome.first_failure = outcome.first_failure.or(part.first_failure);
    }
    let writer = before.rates_until(&serve.writer_counters().await?);
    let platform = serve.platform()?;
    let saga = platform.saga.snapshot();
    let head = platform.log.head_position().await?;
    serve.stop().await?;
    let seconds = outcome
        .last_confirmed
        .map_or(f64::INFINITY, |t| (t - started).as_secs_f64());
    let extra = json!({"saga": saga, "log_head": head, "writer": writer,
                       "lodgings": shape.lodgings, "backlog": shape.backlog,
                       "backlog_seconds": seed_seconds,
                       "events_per_flow": head as f64 / flows.max(1) as f64});
    Ok((outcome, seconds, submitted_in, extra))
}

fn figure(
    approval: Approval,
    flows: usize,
    outcome: &Outcome,
    seconds: f64,
    submitted_in: f64,
    extra: serde_json::Value,
) -> Figure {
    let per_sec = outcome.confirmed as f64 / seconds;
    let latency = Percentiles::of(outcome.latencies.clone());
    let complete = outcome.confirmed == flows;
    let mut text = format!(
        "{} flows/s (flow p50 {:.0} ms, p99 {:.0} ms)",
        thousands(per_sec),
        latency.p50_ms,
        latency.p99_ms
    );
    if !complete {
        text.push_str(&format!(
            "; only {} of {flows} confirmed ({} failed, {} timed out)",
            outcome.confirmed, outcome.failed, outcome.timed_out
        ));
    }
    let what = match approval {
        Approval::Admin => "request -> admin approve -> pay -> confirmed visible",
        Approval::Instant => "request -> instant approve -> pay -> confirmed visible",
    };
    Figure::new("B3", what, per_sec, "flows/s")
        .figure(text)
        .target(">= 1,500 flows/s", complete && per_sec >= 1_500.0)
        .details(json!({
            "approval": approval.mode(), "flows": flows, "confirmed": outcome.confirmed,
            "failed": outcome.failed, "timed_out": outcome.timed_out, "first_failure": outcome.first_failure,
            "seconds": seconds, "submitted_in_seconds": submitted_in,
            "submit_rate": flows as f64 / submitted_in, "flow_latency": latency,
            "submitters": SUBMITTERS, "checkers": CHECKERS, "platform": extra,
        }))
}
