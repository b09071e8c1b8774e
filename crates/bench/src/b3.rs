//! B3: whole flows, end to end over HTTP: a customer requests a stay (`POST /reservations`), the
//! lodging's admin approves it (`POST /management/requests/{id}/approve`; or, with `instant`
//! lodgings, the lodging grants on request), the saga charges the sandbox gateway over real HTTP,
//! and the flow counts as done when `GET /reservations/{id}` shows `confirmed`. With `pay_first`
//! lodgings the saga charges first and only paid requests reach the desks: `APPROVERS` admins poll
//! their lodgings' ManagementLists (`status=pending`) and approve what they find, as a hotel would,
//! up to `APPROVALS_IN_FLIGHT` at once.
//!
//! `submitters` clients start flows as fast as they are answered; `checkers` follow behind, reading
//! each flow's document until it is confirmed. flows/s = confirmed flows / (first request -> last
//! confirmation seen): the rate of the whole pipeline under a backlog of every flow, drained.
//!
//! With `--pace R` the submitters offer flow `n` at `n / R` seconds instead (an open loop), and a
//! flow's latency counts from that moment, so a submitter held up is not hidden. The run kept up
//! with R when every flow was confirmed, the flows' p99 stayed under a second (no queue grew) and
//! they were confirmed at R (within 2%): the rate the platform sustains, as a service sees it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use http_edge::Role;
use hyper::header::HeaderValue;
use hyper::StatusCode;
use serde_json::json;
use tokio::sync::{mpsc, Mutex};

use super::client::{id_of, position_of, Call, Connection};
use super::load::{self, micros, Percentiles};
use super::platform::{stay_bodies, BenchServe};
use super::report::{thousands, Figure};
use super::Plan;

const SUBMITTERS: usize = 64;
const CHECKERS: usize = 4;
const LODGINGS: usize = 64;
const POLL: Duration = Duration::from_millis(5);
/// `pay_first`: admins polling their desks (each one a share of the lodgings).
const APPROVERS: usize = 8;
/// `pay_first`: approvals an admin sends at once from a page of its desk (one connection each), as a
/// console approving a selection does. One at a time, the eight admins were the end of the run:
/// the platform idled at three quarters of its CPU while they worked through the backlog.
const APPROVALS_IN_FLIGHT: usize = 4;

/// How the approval happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approval {
    /// The admin approves over HTTP after the request's 202.
    Admin,
    /// `instant` lodgings grant on request (no admin step).
    Instant,
    /// `pay_first` lodgings: charged first; the admin approves once the request reads `paid`.
    PayFirst,
}

impl Approval {
    fn mode(self) -> &'static str {
        match self {
            Self::Admin => "manual",
            Self::Instant => "instant",
            Self::PayFirst => "pay_first",
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
    /// Each confirmed flow's start (whole seconds after the run's) and latency (µs): where in the
    /// run the slow flows were (a stall shows as one second's p99).
    pub(crate) timeline: Vec<(u32, u32)>,
    /// The reservation id of every flow followed (confirmed or not).
    pub(crate) reservations: Vec<String>,
    first_confirmed: Option<Instant>,
    last_confirmed: Option<Instant>,
    first_failure: Option<String>,
}

/// A request on a desk's page.
#[derive(serde::Deserialize)]
struct Item {
    reservation_id: String,
}

/// `pay_first`: an admin of `desks` (lodging id, admin token) polls each desk's pending (paid)
/// requests and approves them, until `done`. Returns how many it approved. A desk is read with the
/// `position` of its last approval as `min_position` (the admin reads its own writes, as API.md
/// says a client does), so a request approved is never on its next page: the admin never approves
/// one twice. Without an `interval` it reads its desks again at once while requests turn up (5 ms
/// apart when none do); with one, it reads them once an interval, as a desk's screen refreshing
/// would, and skips what it approved already.
async fn approve_paid(
    serve_addr: std::net::SocketAddr,
    desks: Vec<(String, HeaderValue)>,
    interval: Option<Duration>,
    done: Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<usize> {
    #[derive(serde::Deserialize)]
    struct Page {
        items: Vec<Item>,
    }
    let mut connections = Vec::with_capacity(APPROVALS_IN_FLIGHT);
    for _ in 0..APPROVALS_IN_FLIGHT {
        connections.push(Connection::open(serve_addr).await?);
    }
    let mut approved = 0;
    let mut sent = std::collections::HashSet::new();
    // Per desk: the position of its last approval, which its next read waits for.
    let mut approved_to = vec![0; desks.len()];
    while !done.load(std::sync::atomic::Ordering::Relaxed) {
        let round = Instant::now();
        let mut found = 0;
        for ((lodging, admin), approved_to) in desks.iter().zip(&mut approved_to) {
            let call = Call::get(desk_path(lodging, *approved_to), admin);
            let (status, body) = send(&mut connections[0], serve_addr, &call).await?;
            anyhow::ensure!(status == StatusCode::OK, "desk: {status}");
            let mut page: Page = serde_json::from_slice(&body)?;
            if interval.is_some() {
                page.items = not_sent_yet(page.items, &mut sent);
            }
            found += page.items.len();
            // The page's requests dealt out to the connections, each sending its share in turn.
            let shares = connections.iter_mut().enumerate().map(|(n, connection)| {
                let share = page.items.iter().skip(n).step_by(APPROVALS_IN_FLIGHT);
                approve_each(connection, serve_addr, admin, share)
            });
            for share in futures::future::join_all(shares).await {
                let (count, position) = share?;
                approved += count;
                *approved_to = (*approved_to).max(position);
            }
        }
        match interval {
            Some(interval) => tokio::time::sleep_until((round + interval).into()).await,
            None if found == 0 => tokio::time::sleep(POLL).await,
            None => {}
        }
    }
    Ok(approved)
}

/// A desk's page of pending requests; after `approved_to` (a position, 0 for none), as of the views
/// that reflect it (`min_position`).
fn desk_path(lodging: &str, approved_to: u64) -> String {
    let path = format!("/management/requests?lodging_id={lodging}&status=pending&limit=100");
    if approved_to == 0 {
        path
    } else {
        format!("{path}&min_position={approved_to}")
    }
}

/// The `items` not in `sent`, now added to it.
fn not_sent_yet(items: Vec<Item>, sent: &mut std::collections::HashSet<String>) -> Vec<Item> {
    items
        .into_iter()
        .filter(|item| sent.insert(item.reservation_id.clone()))
        .collect()
}

/// Approve each of `items` on `connection`, one after the other. Returns how many it approved and
/// the last approval's log position (0 if none).
async fn approve_each(
    connection: &mut Connection,
    serve_addr: std::net::SocketAddr,
    admin: &HeaderValue,
    items: impl Iterator<Item = &Item>,
) -> anyhow::Result<(usize, u64)> {
    let mut approved = 0;
    let mut last = 0;
    for item in items {
        let path = format!("/management/requests/{}/approve", item.reservation_id);
        let call = Call::post(path, admin, bytes::Bytes::from_static(b"{}"));
        let (status, answer) = send(connection, serve_addr, &call).await?;
        // 409: decided already (e.g. the request's deadline passed first).
        if status == StatusCode::ACCEPTED {
            approved += 1;
            last = last.max(position_of(&answer).context("an approval without its position")?);
        }
    }
    Ok((approved, last))
}

/// Send `call`; on a connection the server closed, open a new one and send it once more (a
/// polling admin reconnects).
async fn send(
    connection: &mut Connection,
    serve_addr: std::net::SocketAddr,
    call: &Call,
) -> anyhow::Result<(StatusCode, bytes::Bytes)> {
    match connection.send(call).await {
        Ok(answer) => Ok(answer),
        Err(error) => {
            eprintln!("  B3 pay_first: a desk connection failed ({error}): reconnecting");
            *connection = Connection::open(serve_addr).await?;
            connection.send(call).await
        }
    }
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
    run_start: Instant,
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
        let id = path.trim_start_matches("/reservations/");
        outcome.reservations.push(id.to_string());
        let call = Call::get(path, &auditor);
        loop {
            let (status, body) = connection.send(&call).await?;
            let doc = serde_json::from_slice::<Doc>(&body).ok();
            match doc.as_ref().map(|d| d.status.as_str()) {
                Some("confirmed") if status == StatusCode::OK => {
                    let now = Instant::now();
                    outcome.confirmed += 1;
                    outcome.latencies.push(micros(now - started));
                    let second = started.saturating_duration_since(run_start).as_secs();
                    let second = u32::try_from(second).unwrap_or(u32::MAX);
                    outcome.timeline.push((second, micros(now - started)));
                    outcome.first_confirmed.get_or_insert(now);
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
    /// Offer flow `n` at `n / pace` seconds from the start (an open loop, `--pace`) instead of as
    /// soon as a submitter is free; its latency then counts from that moment.
    pub pace: Option<f64>,
    /// `pay_first`: each admin reads its desks once in every such interval and never sends an
    /// approval twice (`--desk-interval-ms`); `None`: back to back while requests turn up.
    pub desk_interval: Option<Duration>,
}

/// Run `flows` whole flows on a fresh `serve` over B3's 64 lodgings.
pub async fn run_mode(plan: &Plan, approval: Approval, flows: usize) -> anyhow::Result<Figure> {
    let shape = Shape {
        approval,
        lodgings: LODGINGS,
        backlog: 0,
        pace: plan.b3_pace,
        desk_interval: plan.b3_desk_interval,
    };
    Ok(figure(shape, flows, run_shape(plan, shape, flows).await?))
}

/// Post `count` requests spread over `lodgings` and leave them pending; wait until the saga and the
/// views have handled them.
async fn seed_backlog(serve: &BenchServe, lodgings: &[String], count: usize) -> anyhow::Result<()> {
    if count == 0 {
        return Ok(());
    }
    let bodies = Arc::new(stay_bodies(lodgings, count));
    let customers = (0..SUBMITTERS)
        .map(|s| serve.customer(1_000 + s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    load::share(
        serve.addr(),
        customers,
        count,
        move |mut connection, customer, n| {
            let call = Call::post("/reservations", &customer, bodies[n].clone());
            async move {
                let (status, answer) = connection.send(&call).await?;
                anyhow::ensure!(
                    status == StatusCode::ACCEPTED,
                    "backlog request: {status} {}",
                    String::from_utf8_lossy(&answer)
                );
                Ok((connection, customer))
            }
        },
    )
    .await?;
    serve
        .settle(Duration::from_secs(120 + count as u64 / 100))
        .await?;
    Ok(())
}

/// One run of [`run_shape`].
pub(crate) struct ShapeRun {
    pub outcome: Outcome,
    /// From the first request to the last confirmation seen.
    pub seconds: f64,
    /// How long submitting every flow took.
    pub submitted_in: f64,
    /// The platform's figures: saga, log head, writer rates, the backlog's seeding time.
    pub platform: serde_json::Value,
}

/// What B3's variants (B9, B10) change around the flows.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Extras {
    /// Flow `n` is requested by customer `n % customers` (`bench-customer-{c}`); 0: each
    /// submitter requests as its own customer, as B3 does.
    pub customers: usize,
    /// `serve` may call webhook targets on loopback (`ServeConfig::webhook_allow_private`).
    pub webhook_allow_private: bool,
}

/// A fresh `serve` ready for flows of a [`Shape`]: lodgings registered, backlog settled.
pub(crate) struct Stage {
    pub serve: BenchServe,
    pub lodgings: Vec<String>,
    shape: Shape,
    extras: Extras,
    seed_seconds: f64,
}

/// The token of lodging `lodging`'s admin (the one who approves B3's requests).
pub(crate) fn admin_token(serve: &BenchServe, lodging: &str) -> anyhow::Result<HeaderValue> {
    serve.token(Role::Admin, &format!("admin-{lodging}"), &[lodging])
}

/// Start a fresh `serve` for `shape` (a data dir of its own), register its lodgings and seed its
/// backlog.
pub(crate) async fn stage(plan: &Plan, shape: Shape, extras: Extras) -> anyhow::Result<Stage> {
    let name = format!(
        "b3-{}-{}-{}",
        shape.approval.mode(),
        shape.lodgings,
        shape.backlog
    );
    let dir = plan.fresh_dir(&name)?;
    let serve = BenchServe::start_with(&dir, |config| {
        config.webhook_allow_private = extras.webhook_allow_private;
    })
    .await?;
    let staged = async {
        let lodgings = serve
            .register_lodgings("b3", shape.lodgings, shape.approval.mode())
            .await?;
        let seeding = Instant::now();
        seed_backlog(&serve, &lodgings, shape.backlog).await?;
        Ok::<_, anyhow::Error>((lodgings, seeding.elapsed().as_secs_f64()))
    }
    .await;
    match staged {
        Ok((lodgings, seed_seconds)) => Ok(Stage {
            serve,
            lodgings,
            shape,
            extras,
            seed_seconds,
        }),
        Err(error) => {
            let _ = serve.stop().await;
            Err(error)
        }
    }
}

/// Run `flows` whole flows of `shape` on a fresh `serve`.
pub(crate) async fn run_shape(plan: &Plan, shape: Shape, flows: usize) -> anyhow::Result<ShapeRun> {
    let stage = stage(plan, shape, Extras::default()).await?;
    let run = run_flows(&stage, flows).await;
    stage.serve.stop().await?;
    run
}

/// Run `flows` whole flows on `stage` and follow each until confirmed; its `serve` keeps running.
pub(crate) async fn run_flows(stage: &Stage, flows: usize) -> anyhow::Result<ShapeRun> {
    let Stage {
        serve,
        lodgings,
        shape,
        extras,
        seed_seconds,
    } = stage;
    let approval = shape.approval;
    let pace = shape.pace.filter(|rate| *rate > 0.0);
    let bodies = Arc::new(stay_bodies(lodgings, flows.max(1)));
    let admins = lodgings
        .iter()
        .map(|l| admin_token(serve, l))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let admins = Arc::new(admins);
    let pool = (0..extras.customers)
        .map(|c| serve.customer(c))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let pool = Arc::new(pool);
    let auditor = serve.token(Role::Auditor, "bench-auditor", &[])?;
    let (sender, receiver) = mpsc::unbounded_channel::<Started>();
    let receiver = Arc::new(Mutex::new(receiver));
    let before = serve.writer_counters().await?;
    let deadline = Instant::now() + Duration::from_secs(60 + flows as u64 / 100);
    let started = Instant::now();
    let checkers: Vec<_> = (0..CHECKERS)
        .map(|_| {
            let receiver = Arc::clone(&receiver);
            tokio::spawn(check(
                serve.addr(),
                auditor.clone(),
                receiver,
                started,
                deadline,
            ))
        })
        .collect();
    let approvals_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let approvers: Vec<_> = if approval == Approval::PayFirst {
        (0..APPROVERS)
            .map(|a| {
                let desks = lodgings
                    .iter()
                    .zip(admins.iter())
                    .skip(a)
                    .step_by(APPROVERS)
                    .map(|(l, admin)| (l.clone(), admin.clone()))
                    .collect();
                tokio::spawn(approve_paid(
                    serve.addr(),
                    desks,
                    shape.desk_interval,
                    Arc::clone(&approvals_done),
                ))
            })
            .collect()
    } else {
        Vec::new()
    };
    // Each submitter holds a sender: the checkers stop once every submitter is done.
    let submitters = (0..SUBMITTERS)
        .map(|s| Ok((serve.customer(s)?, sender.clone())))
        .collect::<anyhow::Result<Vec<_>>>()?;
    drop(sender);
    load::share(
        serve.addr(),
        submitters,
        flows,
        move |mut connection, (customer, sender), n| {
            let admin = (approval == Approval::Admin).then(|| admins[n % admins.len()].clone());
            let requester = match pool.len() {
                0 => customer.clone(),
                size => pool[n % size].clone(),
            };
            let body = bodies[n].clone();
            let release = pace.map(|rate| started + Duration::from_secs_f64(n as f64 / rate));
            async move {
                if let Some(release) = release {
                    tokio::time::sleep_until(release.into()).await;
                }
                let sent = release.unwrap_or_else(Instant::now);
                let path = start_flow(&mut connection, &requester, admin.as_ref(), body).await?;
                let _ = sender.send((path, sent));
                Ok((connection, (customer, sender)))
            }
        },
    )
    .await?;
    let submitted_in = started.elapsed().as_secs_f64();
    let mut outcome = Outcome::default();
    for checker in checkers {
        let part = checker.await??;
        outcome.confirmed += part.confirmed;
        outcome.failed += part.failed;
        outcome.timed_out += part.timed_out;
        outcome.latencies.extend(part.latencies);
        outcome.timeline.extend(part.timeline);
        outcome.reservations.extend(part.reservations);
        outcome.last_confirmed = outcome.last_confirmed.max(part.last_confirmed);
        outcome.first_confirmed = match (outcome.first_confirmed, part.first_confirmed) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        outcome.first_failure = outcome.first_failure.or(part.first_failure);
    }
    approvals_done.store(true, std::sync::atomic::Ordering::Relaxed);
    for approver in approvers {
        approver.await??;
    }
    let writer = before.rates_until(&serve.writer_counters().await?);
    let platform = serve.platform()?;
    let saga = platform.saga.snapshot();
    let head = platform.log.head_position().await?;
    let seconds = outcome
        .last_confirmed
        .map_or(f64::INFINITY, |t| (t - started).as_secs_f64());
    let extra = json!({"saga": saga, "log_head": head, "writer": writer,
                       "lodgings": shape.lodgings, "backlog": shape.backlog,
                       "backlog_seconds": seed_seconds,
                       "events_per_flow": head as f64 / flows.max(1) as f64});
    Ok(ShapeRun {
        outcome,
        seconds,
        submitted_in,
        platform: extra,
    })
}

/// The flows' rate and, for a paced run, whether it kept up with its offer. Closed loop: confirmed
/// flows over first request -> last confirmation (backlog drained). Paced: confirmed flows over the
/// slots they were offered in (first -> last confirmation, plus one slot), the rate the pipeline
/// kept while the offer lasted; it kept up when every flow was confirmed, none waited behind a
/// growing queue (p99), and the flows were confirmed as fast as they were offered (within the
/// jitter of the first and the last flow's latency).
pub(crate) fn rate(
    pace: Option<f64>,
    outcome: &Outcome,
    latency: &Percentiles,
    seconds: f64,
    flows: usize,
) -> (f64, Option<bool>) {
    let Some(rate) = pace.filter(|rate| *rate > 0.0) else {
        return (outcome.confirmed as f64 / seconds, None);
    };
    let per_sec = match (outcome.first_confirmed, outcome.last_confirmed) {
        (Some(first), Some(last)) => {
            outcome.confirmed as f64 / ((last - first).as_secs_f64() + 1.0 / rate)
        }
        _ => 0.0,
    };
    let kept_up = outcome.confirmed == flows
        && latency.p99_ms <= KEPT_UP_P99_MS
        && per_sec >= KEPT_UP_SHARE * rate;
    (per_sec, Some(kept_up))
}

/// `offered R flows/s, kept up: ` (or `NOT kept up`) before a paced run's rate; nothing if closed.
pub(crate) fn pace_text(pace: Option<f64>, kept_up: Option<bool>) -> String {
    match (pace, kept_up) {
        (Some(rate), Some(true)) => format!("offered {} flows/s, kept up: ", thousands(rate)),
        (Some(rate), _) => format!("offered {} flows/s, NOT kept up: ", thousands(rate)),
        _ => String::new(),
    }
}

/// A paced run keeps up when its flows' p99 stays under this: no queue grows behind the offered rate.
const KEPT_UP_P99_MS: f64 = 1_000.0;
/// ...and its flows are confirmed at this share of the offered rate at least.
const KEPT_UP_SHARE: f64 = 0.98;

fn figure(shape: Shape, flows: usize, run: ShapeRun) -> Figure {
    let ShapeRun {
        outcome,
        seconds,
        submitted_in,
        platform: extra,
    } = run;
    let approval = shape.approval;
    let latency = Percentiles::of(outcome.latencies.clone());
    let complete = outcome.confirmed == flows;
    let pace = shape.pace.filter(|rate| *rate > 0.0);
    let (per_sec, kept_up) = rate(pace, &outcome, &latency, seconds, flows);
    let mut text = pace_text(pace, kept_up);
    text.push_str(&format!(
        "{} flows/s (flow p50 {:.0} ms, p99 {:.0} ms)",
        thousands(per_sec),
        latency.p50_ms,
        latency.p99_ms
    ));
    if !complete {
        text.push_str(&format!(
            "; only {} of {flows} confirmed ({} failed, {} timed out)",
            outcome.confirmed, outcome.failed, outcome.timed_out
        ));
    }
    let what = match approval {
        Approval::Admin => "request -> admin approve -> pay -> confirmed visible",
        Approval::Instant => "request -> instant approve -> pay -> confirmed visible",
        Approval::PayFirst => {
            "request -> pay -> paid on the desk -> admin approves -> confirmed visible"
        }
    };
    let (target, met) = match (pace, kept_up) {
        (Some(rate), Some(kept_up)) => (
            ">= 1,500 flows/s offered and kept up (every flow confirmed, p99 <= 1 s)",
            kept_up && rate >= 1_500.0,
        ),
        _ => (">= 1,500 flows/s", complete && per_sec >= 1_500.0),
    };
    Figure::new("B3", what, per_sec, "flows/s")
        .figure(text)
        .target(target, met)
        .details(json!({
            "approval": approval.mode(), "flows": flows, "confirmed": outcome.confirmed,
            "failed": outcome.failed, "timed_out": outcome.timed_out, "first_failure": outcome.first_failure,
            "seconds": seconds, "submitted_in_seconds": submitted_in, "pace": pace,
            "kept_up": kept_up,
            "submit_rate": flows as f64 / submitted_in, "flow_latency": latency,
            "submitters": SUBMITTERS, "checkers": CHECKERS, "platform": extra,
            "latency_by_second": by_second(&outcome.timeline),
        }))
}

/// The flows' latency percentiles by the second they started in.
fn by_second(timeline: &[(u32, u32)]) -> serde_json::Value {
    let mut seconds: std::collections::BTreeMap<u32, Vec<u32>> = Default::default();
    for (second, latency) in timeline {
        seconds.entry(*second).or_default().push(*latency);
    }
    let rows: Vec<_> = seconds
        .into_iter()
        .map(|(second, latencies)| {
            let p = Percentiles::of(latencies);
            json!({"second": second, "flows": p.count, "p50_ms": p.p50_ms,
                   "p99_ms": p.p99_ms, "max_ms": p.max_ms})
        })
        .collect();
    serde_json::Value::Array(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_desk_is_read_after_its_last_approval() {
        let fresh = "/management/requests?lodging_id=l1&status=pending&limit=100";
        assert_eq!(desk_path("l1", 0), fresh);
        assert_eq!(desk_path("l1", 42), format!("{fresh}&min_position=42"));
    }

    #[test]
    fn an_admin_with_an_interval_never_sends_an_approval_twice() {
        let page = |ids: &[&str]| -> Vec<Item> {
            ids.iter()
                .map(|id| Item {
                    reservation_id: (*id).to_string(),
                })
                .collect()
        };
        let ids = |items: Vec<Item>| -> Vec<String> {
            items.into_iter().map(|i| i.reservation_id).collect()
        };
        let mut sent = std::collections::HashSet::new();
        assert_eq!(ids(not_sent_yet(page(&["a", "b"]), &mut sent)), ["a", "b"]);
        // "b" still pending on the desk (its view behind the approval), "c" new.
        assert_eq!(ids(not_sent_yet(page(&["b", "c"]), &mut sent)), ["c"]);
        assert!(not_sent_yet(page(&["a", "c"]), &mut sent).is_empty());
    }

    /// A paced run of `flows` at `rate`, each confirmed `latency_ms` after it was offered.
    fn paced(rate: f64, flows: usize, confirmed: usize, latency_ms: u64) -> Figure {
        let start = Instant::now();
        let slot = Duration::from_secs_f64(1.0 / rate);
        let latency = Duration::from_millis(latency_ms);
        let done: Vec<Instant> = (0..confirmed)
            .map(|n| start + slot * n as u32 + latency)
            .collect();
        let outcome = Outcome {
            confirmed,
            latencies: vec![micros(latency); confirmed],
            first_confirmed: done.first().copied(),
            last_confirmed: done.last().copied(),
            ..Outcome::default()
        };
        let shape = Shape {
            approval: Approval::PayFirst,
            lodgings: LODGINGS,
            backlog: 0,
            pace: Some(rate),
            desk_interval: None,
        };
        let seconds = done.last().map_or(1.0, |t| (*t - start).as_secs_f64());
        let run = ShapeRun {
            outcome,
            seconds,
            submitted_in: seconds,
            platform: json!({}),
        };
        figure(shape, flows, run)
    }

    #[test]
    fn a_paced_run_keeps_up_only_with_every_flow_confirmed_in_time() {
        let kept = paced(1_500.0, 3_000, 3_000, 120);
        assert_eq!(kept.met, Some(true), "{}", kept.figure);
        assert!((kept.value - 1_500.0).abs() < 1.0, "{}", kept.value);
        let late = paced(1_500.0, 3_000, 3_000, 1_500);
        assert_eq!(late.met, Some(false), "a queue grew: {}", late.figure);
        let lost = paced(1_500.0, 3_000, 2_990, 120);
        assert_eq!(lost.met, Some(false), "flows were lost: {}", lost.figure);
        let slow = paced(1_000.0, 3_000, 3_000, 120);
        assert_eq!(
            slow.met,
            Some(false),
            "offered under the target: {}",
            slow.figure
        );
    }
}
