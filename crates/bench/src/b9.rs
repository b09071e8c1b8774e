//! B9: webhook deliveries under B3's load. B3's flows (64 lodgings, manual approval, the same
//! submitters and checkers) on a `serve` that may call loopback targets, with one webhook per
//! lodging: the lodging's admin subscribes (`POST /webhooks`, every event type) a URL of a receiver
//! in this process (axum on 127.0.0.1 port 0, answering 204 at once). The receiver keeps, for each
//! delivery, when it arrived and the body's `occurred_at` (when the log recorded the change): lag =
//! arrival - `occurred_at`.
//!
//! After the flows, the deliveries drain for at most `--drain` (30 s): until every flow's
//! `reservation.confirmed` arrived and, once the notifier has read the whole log, every status
//! change the inbox lists for the run (`status_changes_after`: what the dispatcher delivers) has
//! arrived. Expected = those status changes; each must arrive once (a delivery id twice is a
//! repeat), on its lodging's URL, in log order per reservation.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use readmodel::inbox::{InboxEntry, InboxStore};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::b3::{self, Approval, Extras, Shape, ShapeRun, Stage};
use super::client::{Call, Connection};
use super::load::{micros, Percentiles};
use super::report::{thousands, Figure};
use super::Plan;

const LODGINGS: usize = 64;
const TARGET_P99_MS: f64 = 250.0;
/// How often the timeline is sampled.
const SAMPLE: Duration = Duration::from_millis(500);

/// One delivery as the receiver saw it.
struct Arrival {
    at: DateTime<Utc>,
    /// The lodging of the URL it came to.
    hook: String,
    /// `Stayledger-Delivery`.
    delivery: String,
    signed: bool,
    body: Delivered,
}

#[derive(Debug, Clone, serde::Deserialize)]
struct Delivered {
    #[serde(rename = "type")]
    kind: String,
    reservation_id: String,
    lodging_id: String,
    occurred_at: DateTime<Utc>,
    position: u64,
}

/// The receiver's record.
#[derive(Default)]
struct Received {
    arrivals: std::sync::Mutex<Vec<Arrival>>,
    confirmed: AtomicUsize,
    /// Bodies that were not a delivery's JSON.
    malformed: AtomicUsize,
}

impl Received {
    fn count(&self) -> usize {
        self.arrivals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

async fn hook(
    State(received): State<Arc<Received>>,
    Path(lodging): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let at = Utc::now();
    let Ok(body) = serde_json::from_slice::<Delivered>(&body) else {
        received.malformed.fetch_add(1, Ordering::Relaxed);
        return StatusCode::NO_CONTENT;
    };
    if body.kind == "reservation.confirmed" {
        received.confirmed.fetch_add(1, Ordering::Relaxed);
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let arrival = Arrival {
        at,
        hook: lodging,
        delivery: header("stayledger-delivery")
            .unwrap_or_default()
            .to_string(),
        signed: header("stayledger-signature").is_some_and(|s| !s.is_empty()),
        body,
    };
    received
        .arrivals
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(arrival);
    StatusCode::NO_CONTENT
}

/// The receiver on 127.0.0.1 port 0 (`POST /hook/{lodging}`), until `stop`.
async fn start_receiver(
    received: Arc<Received>,
    stop: CancellationToken,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the receiver")?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new()
        .route("/hook/{lodging}", axum::routing::post(hook))
        .with_state(received);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
    });
    Ok((addr, task))
}

/// Subscribe each lodging's admin to its URL on the receiver; returns (lodging, webhook id).
async fn subscribe(stage: &Stage, receiver: SocketAddr) -> anyhow::Result<Vec<(String, String)>> {
    #[derive(serde::Deserialize)]
    struct Created {
        id: String,
        secret: String,
    }
    let mut connection = Connection::open(stage.serve.addr()).await?;
    let mut hooks = Vec::with_capacity(stage.lodgings.len());
    for lodging in &stage.lodgings {
        let admin = b3::admin_token(&stage.serve, lodging)?;
        let body = json!({"url": format!("http://{receiver}/hook/{lodging}")});
        let call = Call::post("/webhooks", &admin, Bytes::from(body.to_string()));
        let (status, answer) = connection.send(&call).await?;
        anyhow::ensure!(
            status == StatusCode::CREATED,
            "POST /webhooks for {lodging}: {status} {}",
            String::from_utf8_lossy(&answer)
        );
        let created: Created = serde_json::from_slice(&answer).context("POST /webhooks answer")?;
        anyhow::ensure!(!created.secret.is_empty(), "no secret for {lodging}");
        hooks.push((lodging.clone(), created.id));
    }
    Ok(hooks)
}

/// The inbox's status changes (what the webhooks deliver) after log position `after`.
async fn status_changes(inbox: &dyn InboxStore, after: u64) -> anyhow::Result<Vec<InboxEntry>> {
    let mut entries = Vec::new();
    let mut seq = 0;
    loop {
        let page = inbox.status_changes_after(seq, u64::MAX, 1_000).await?;
        let Some(last) = page.last() else {
            return Ok(entries);
        };
        seq = last.seq();
        entries.extend(page.into_iter().filter(|e| e.position > after));
    }
}

/// Every status change after log position `after`, once the log stopped growing and the notifier
/// (the inbox's consumer) reached its head, or what the inbox holds at `deadline` (at least a second
/// from now); and whether the notifier did reach the head.
pub(crate) async fn settled_changes(
    stage: &Stage,
    after: u64,
    deadline: Instant,
) -> anyhow::Result<(Vec<InboxEntry>, bool)> {
    let platform = stage.serve.platform()?;
    // Two readings of the head at least, even when the drain used up the time.
    let deadline = deadline.max(Instant::now() + Duration::from_secs(1));
    let mut last = u64::MAX;
    let at_head = loop {
        let head = platform.log.head_position().await?;
        if head == last && platform.notifier.applied_position() >= head {
            break true;
        }
        if Instant::now() >= deadline {
            break false;
        }
        last = head;
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    Ok((
        status_changes(platform.inbox.as_ref(), after).await?,
        at_head,
    ))
}

/// What the drain found: the expected changes, and whether the notifier had read the whole log.
struct Drained {
    expected: Vec<InboxEntry>,
    notifier_at_head: bool,
    seconds: f64,
    /// How long it could have taken.
    bound: f64,
}

/// Wait (until `deadline`) for every flow's confirmation to arrive, the notifier to reach the
/// log's head, and as many deliveries as the inbox lists.
async fn drain(
    stage: &Stage,
    received: &Received,
    confirmed: usize,
    after: u64,
    deadline: Instant,
) -> anyhow::Result<Drained> {
    let began = Instant::now();
    let tick = Duration::from_millis(50);
    while received.confirmed.load(Ordering::Relaxed) < confirmed && Instant::now() < deadline {
        tokio::time::sleep(tick).await;
    }
    let (expected, notifier_at_head) = settled_changes(stage, after, deadline).await?;
    while received.count() < expected.len() && Instant::now() < deadline {
        tokio::time::sleep(tick).await;
    }
    Ok(Drained {
        expected,
        notifier_at_head,
        seconds: began.elapsed().as_secs_f64(),
        bound: deadline.saturating_duration_since(began).as_secs_f64(),
    })
}

/// How the deliveries stand in the store, by status (`GET /webhooks/{id}/deliveries`, every page).
async fn delivery_states(
    stage: &Stage,
    hooks: &[(String, String)],
) -> anyhow::Result<BTreeMap<String, usize>> {
    #[derive(serde::Deserialize)]
    struct Page {
        items: Vec<Item>,
        next_cursor: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        status: String,
    }
    let mut connection = Connection::open(stage.serve.addr()).await?;
    let mut states = BTreeMap::new();
    for (lodging, id) in hooks {
        let admin = b3::admin_token(&stage.serve, lodging)?;
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/webhooks/{id}/deliveries?limit=500");
            if let Some(cursor) = &cursor {
                path.push_str(&format!("&cursor={cursor}"));
            }
            let (status, body) = connection.send(&Call::get(path, &admin)).await?;
            anyhow::ensure!(status == StatusCode::OK, "deliveries of {id}: {status}");
            let page: Page = serde_json::from_slice(&body)?;
            for item in page.items {
                *states.entry(item.status).or_insert(0) += 1;
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    Ok(states)
}

/// Where each stage between the log and the receiver stands, every [`SAMPLE`] until `stop`: the
/// log's head, the projector's and the notifier's applied positions, the checkpoints the
/// dispatcher reads (views, inbox), and the deliveries received so far.
async fn timeline(
    platform: stayledger::serve::Platform,
    received: Arc<Received>,
    stop: CancellationToken,
) -> Vec<serde_json::Value> {
    let began = Instant::now();
    let mut samples = Vec::new();
    while !stop.is_cancelled() {
        let head = platform.log.head_position().await.unwrap_or(0);
        let views_checkpoint = platform
            .views
            .checkpoint(projector::PROJECTOR_ID)
            .await
            .unwrap_or(0);
        let inbox_checkpoint = platform
            .inbox
            .checkpoint(readmodel::inbox::NOTIFIER_ID)
            .await
            .unwrap_or(0);
        samples.push(json!({
            "t": (began.elapsed().as_secs_f64() * 100.0).round() / 100.0,
            "head": head,
            "views_applied": platform.projector.applied_position(),
            "views_checkpoint": views_checkpoint,
            "notifier_applied": platform.notifier.applied_position(),
            "inbox_checkpoint": inbox_checkpoint,
            "received": received.count(),
        }));
        tokio::select! {
            () = stop.cancelled() => {}
            () = tokio::time::sleep(SAMPLE) => {}
        }
    }
    samples
}

/// What the arrivals say against what was expected.
#[derive(Default)]
struct Tally {
    arrivals: usize,
    /// Distinct `(reservation, position)` changes received.
    distinct: usize,
    /// Arrivals of a delivery id already received.
    repeated: usize,
    unsigned: usize,
    /// Arrivals at another lodging's URL than the change's.
    misrouted: usize,
    /// Expected changes that never arrived.
    missing: usize,
    /// Changes that arrived but the inbox does not list for the run.
    unexpected: usize,
    /// Reservations whose changes arrived out of log order.
    out_of_order: usize,
    /// Flows without their `reservation.confirmed` delivery.
    confirmed_missing: usize,
    /// Arrival - `occurred_at`, first arrival of each change, in microseconds.
    lags: Vec<u32>,
    /// Arrivals stamped before their `occurred_at` (clock), counted as 0 lag.
    negative: usize,
    first_missing: Option<String>,
    /// Arrivals before the last flow was seen confirmed.
    during_flows: usize,
    /// How many reservations got each sequence of types.
    sequences: BTreeMap<String, usize>,
}

fn tally(arrivals: &[Arrival], expected: &[InboxEntry], flows: &[String]) -> Tally {
    let mut t = Tally {
        arrivals: arrivals.len(),
        ..Tally::default()
    };
    let mut deliveries = HashSet::new();
    let mut changes = HashSet::new();
    let mut per_reservation: HashMap<&str, Vec<&Delivered>> = HashMap::new();
    for arrival in arrivals {
        let body = &arrival.body;
        if !deliveries.insert(arrival.delivery.as_str()) {
            t.repeated += 1;
        }
        if !arrival.signed {
            t.unsigned += 1;
        }
        if arrival.hook != body.lodging_id {
            t.misrouted += 1;
        }
        if changes.insert((body.reservation_id.as_str(), body.position)) {
            per_reservation
                .entry(body.reservation_id.as_str())
                .or_default()
                .push(body);
            let lag = arrival.at - body.occurred_at;
            match lag.to_std() {
                Ok(lag) => t.lags.push(micros(lag)),
                Err(_) => {
                    t.negative += 1;
                    t.lags.push(0);
                }
            }
        }
    }
    t.distinct = changes.len();
    let wanted: HashSet<(String, u64)> = expected
        .iter()
        .map(|e| (e.reservation_id.to_string(), e.position))
        .collect();
    for (reservation, position) in &wanted {
        if !changes.contains(&(reservation.as_str(), *position)) {
            t.missing += 1;
            t.first_missing
                .get_or_insert_with(|| format!("{reservation} at position {position}"));
        }
    }
    t.unexpected = changes
        .iter()
        .filter(|(r, p)| !wanted.contains(&((*r).to_string(), *p)))
        .count();
    for bodies in per_reservation.values() {
        if bodies.windows(2).any(|w| w[0].position >= w[1].position) {
            t.out_of_order += 1;
        }
        let kinds: Vec<&str> = bodies
            .iter()
            .map(|b| b.kind.trim_start_matches("reservation."))
            .collect();
        *t.sequences.entry(kinds.join(">")).or_insert(0) += 1;
    }
    t.confirmed_missing = flows
        .iter()
        .filter(|id| {
            per_reservation
                .get(id.as_str())
                .is_none_or(|b| !b.iter().any(|b| b.kind == "reservation.confirmed"))
        })
        .count();
    t
}

pub async fn run(plan: &Plan) -> anyhow::Result<Figure> {
    let flows = plan.b3_flows;
    let shape = Shape {
        approval: Approval::Admin,
        lodgings: LODGINGS,
        backlog: 0,
        pace: plan.b3_pace,
        desk_interval: None,
    };
    let extras = Extras {
        webhook_allow_private: true,
        ..Extras::default()
    };
    let stage = b3::stage(plan, shape, extras).await?;
    let received = Arc::new(Received::default());
    let stop = CancellationToken::new();
    let measured = async {
        let (receiver, _task) = start_receiver(Arc::clone(&received), stop.clone()).await?;
        let hooks = subscribe(&stage, receiver).await?;
        let after = stage.serve.platform()?.log.head_position().await?;
        let sampling = CancellationToken::new();
        let sampler = tokio::spawn(timeline(
            stage.serve.platform()?.clone(),
            Arc::clone(&received),
            sampling.clone(),
        ));
        let run = b3::run_flows(&stage, flows).await;
        let flows_done = Utc::now();
        let run = run?;
        let drained = drain(
            &stage,
            &received,
            run.outcome.confirmed,
            after,
            Instant::now() + plan.drain,
        )
        .await;
        sampling.cancel();
        let timeline = sampler.await.unwrap_or_default();
        let drained = drained?;
        let arrivals = std::mem::take(
            &mut *received
                .arrivals
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        let mut t = tally(&arrivals, &drained.expected, &run.outcome.reservations);
        t.during_flows = arrivals.iter().filter(|a| a.at <= flows_done).count();
        // Where the undelivered ones stand, from the store's side.
        let states = if t.missing > 0 || t.confirmed_missing > 0 {
            match delivery_states(&stage, &hooks).await {
                Ok(states) => json!(states),
                Err(e) => json!(format!("could not read: {e:#}")),
            }
        } else {
            serde_json::Value::Null
        };
        Ok::<_, anyhow::Error>(figure(
            flows,
            plan.b3_pace,
            run,
            &drained,
            &t,
            received.malformed.load(Ordering::Relaxed),
            json!({"store_states": states, "timeline": timeline}),
        ))
    }
    .await;
    stop.cancel();
    stage.serve.stop().await?;
    measured
}

fn figure(
    flows: usize,
    pace: Option<f64>,
    run: ShapeRun,
    drained: &Drained,
    t: &Tally,
    malformed: usize,
    extra: serde_json::Value,
) -> Figure {
    let ShapeRun {
        outcome,
        seconds,
        submitted_in,
        platform,
    } = run;
    let flow_latency = Percentiles::of(outcome.latencies.clone());
    let (per_sec, kept_up) = b3::rate(pace, &outcome, &flow_latency, seconds, flows);
    let lag = Percentiles::of(t.lags.clone());
    let expected = drained.expected.len();
    let every_one = t.missing == 0
        && t.confirmed_missing == 0
        && t.repeated == 0
        && t.unexpected == 0
        && t.misrouted == 0
        && t.unsigned == 0
        && t.out_of_order == 0
        && malformed == 0
        && drained.notifier_at_head
        && outcome.confirmed == flows;
    let mut text = format!(
        "{} of {} changes delivered ({} twice), lag p50 {:.0} / p99 {:.0} / max {:.0} ms; \
         {}{} flows/s",
        thousands(t.distinct as f64),
        thousands(expected as f64),
        t.repeated,
        lag.p50_ms,
        lag.p99_ms,
        lag.max_ms,
        b3::pace_text(pace, kept_up),
        thousands(per_sec),
    );
    if t.confirmed_missing > 0 {
        text.push_str(&format!(
            "; {} flows without their confirmed delivery",
            t.confirmed_missing
        ));
    }
    if outcome.confirmed != flows {
        text.push_str(&format!(
            "; only {} of {flows} flows confirmed",
            outcome.confirmed
        ));
    }
    Figure::new(
        "B9",
        "webhook deliveries under B3 load (admin approves), one subscriber per lodging on a local \
         receiver: commit (occurred_at) -> received",
        lag.p99_ms,
        "ms",
    )
    .figure(text)
    .target(
        "every one delivered; p99 <= 250 ms",
        every_one && lag.p99_ms <= TARGET_P99_MS,
    )
    .details(json!({
        "flows": flows, "confirmed": outcome.confirmed, "failed": outcome.failed,
        "timed_out": outcome.timed_out, "flows_per_sec": per_sec,
        "pace": pace, "kept_up": kept_up,
        "seconds": seconds,
        "submitted_in_seconds": submitted_in, "flow_latency": flow_latency,
        "subscribers": LODGINGS, "expected": expected, "arrivals": t.arrivals,
        "delivered_distinct": t.distinct, "repeated": t.repeated, "missing": t.missing,
        "first_missing": t.first_missing, "unexpected": t.unexpected,
        "confirmed_missing": t.confirmed_missing, "misrouted": t.misrouted,
        "unsigned": t.unsigned, "malformed": malformed, "out_of_order_reservations": t.out_of_order,
        "negative_lags": t.negative, "lag": lag, "sequences": t.sequences,
        "drain_seconds": drained.seconds, "drain_bound_seconds": drained.bound,
        "notifier_at_head": drained.notifier_at_head, "received_during_flows": t.during_flows,
        "lag_min_ms": t.lags.iter().min().map(|m| f64::from(*m) / 1000.0),
        "run": extra, "platform": platform,
    }))
}
