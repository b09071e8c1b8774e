//! B10: 1,000 customers follow their reservations on the live stream (`GET /stream`, SSE) while
//! B3's flows run (64 lodgings, manual approval, the same submitters and checkers), every flow
//! requested by one of those 1,000 customers in turn (flow `n` by customer `n % 1,000`). Each
//! follower is its own HTTP/1.1 connection with its customer's token, opened (200 and headers read)
//! before the first flow, so every change of the run is after the head it starts at.
//!
//! For each frame (`event: reservation`, `data`: the ReservationList document): lag = arrival - the
//! document's `updated_at` (when the log recorded the event that made that version). After the
//! flows, the streams drain for at most `--drain` (30 s): until every confirmed flow's `confirmed`
//! version reached its customer's stream. Checked against the inbox's status changes of the run
//! (every change of status, with the position of the event that made it and whose it is): how many
//! reached their customer's stream as the version that change made. `serve`'s resident memory is
//! read at the end with the streams still open (`/proc/self/status`: the bench runs `serve` in its
//! own process, so this includes the followers' side, about a thousand sockets and small buffers).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, Empty};
use hyper::header::{HeaderValue, ACCEPT, AUTHORIZATION, HOST};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::b3::{self, Approval, Extras, Shape, ShapeRun};
use super::b9::settled_changes;
use super::load::{micros, Percentiles};
use super::report::{thousands, Figure};
use super::restart::memory;
use super::Plan;

/// Customers, each following their own reservations on one stream.
const FOLLOWERS: usize = 1_000;
const LODGINGS: usize = 64;
/// How long opening every stream may take.
const OPENING: Duration = Duration::from_secs(60);
const TARGET_P99_MS: f64 = 250.0;
/// How often the timeline is sampled.
const SAMPLE: Duration = Duration::from_secs(1);

/// One frame as its follower saw it.
struct Frame {
    reservation: String,
    position: u64,
    status: String,
    /// Arrival - `updated_at`, microseconds (0 if the clock put it before).
    lag: u32,
    negative: bool,
}

/// What one follower saw.
#[derive(Default)]
struct Followed {
    frames: Vec<Frame>,
    /// Frames of another customer's reservation.
    foreign: usize,
    /// Frames whose `id` did not grow.
    not_growing: usize,
    /// Frames that were not a document.
    malformed: usize,
    /// The stream ended before the bench closed it (the server closed it, or an error).
    ended: Option<String>,
}

/// What every follower adds to as frames arrive.
#[derive(Default)]
struct Counters {
    frames: AtomicUsize,
    confirmed: AtomicUsize,
}

#[derive(serde::Deserialize)]
struct Document {
    reservation_id: String,
    customer_id: String,
    status: String,
    position: u64,
    updated_at: DateTime<Utc>,
}

/// Open customer `sub`'s stream; once its headers are read say so on `ready`, then read frames
/// until `stop`.
async fn follow(
    addr: std::net::SocketAddr,
    token: HeaderValue,
    sub: String,
    ready: oneshot::Sender<anyhow::Result<()>>,
    counters: Arc<Counters>,
    stop: CancellationToken,
) -> Followed {
    let opened = async {
        let stream = TcpStream::connect(addr).await.context("connecting")?;
        stream.set_nodelay(true)?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
                .await
                .context("HTTP/1.1 handshake")?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let request = Request::get("/stream")
            .header(HOST, addr.to_string())
            .header(AUTHORIZATION, token)
            .header(ACCEPT, "text/event-stream")
            .body(Empty::new())
            .context("building the request")?;
        let response = sender.send_request(request).await.context("GET /stream")?;
        anyhow::ensure!(
            response.status() == StatusCode::OK,
            "GET /stream: {}",
            response.status()
        );
        // The sender stays alive with the body: dropping it may close the connection.
        Ok((sender, response.into_body()))
    }
    .await;
    let (_sender, mut body) = match opened {
        Ok(opened) => {
            let _ = ready.send(Ok(()));
            opened
        }
        Err(error) => {
            let _ = ready.send(Err(error));
            return Followed::default();
        }
    };
    let mut followed = Followed::default();
    let mut buffer: Vec<u8> = Vec::new();
    let mut last_id = 0u64;
    loop {
        let next = tokio::select! {
            () = stop.cancelled() => return followed,
            next = body.frame() => next,
        };
        let chunk = match next {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                Err(_) => continue,
            },
            Some(Err(error)) => {
                followed.ended = Some(format!("{error}"));
                return followed;
            }
            None => {
                followed.ended = Some("closed by the server".into());
                return followed;
            }
        };
        let arrived = Utc::now();
        buffer.extend_from_slice(&chunk);
        while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
            let block: Vec<u8> = buffer.drain(..end + 2).collect();
            let block = String::from_utf8_lossy(&block);
            let mut data = None;
            let mut id = None;
            for line in block.lines() {
                if let Some(rest) = line.strip_prefix("data:") {
                    data = Some(rest.trim_start().to_string());
                } else if let Some(rest) = line.strip_prefix("id:") {
                    id = rest.trim().parse::<u64>().ok();
                }
            }
            // A comment (keep-alive) has neither.
            let Some(data) = data else { continue };
            let Ok(document) = serde_json::from_str::<Document>(&data) else {
                followed.malformed += 1;
                continue;
            };
            let id = id.unwrap_or(document.position);
            if id <= last_id {
                followed.not_growing += 1;
            }
            last_id = last_id.max(id);
            if document.customer_id != sub {
                followed.foreign += 1;
            }
            counters.frames.fetch_add(1, Ordering::Relaxed);
            if document.status == "confirmed" {
                counters.confirmed.fetch_add(1, Ordering::Relaxed);
            }
            let (lag, negative) = match (arrived - document.updated_at).to_std() {
                Ok(lag) => (micros(lag), false),
                Err(_) => (0, true),
            };
            followed.frames.push(Frame {
                reservation: document.reservation_id,
                position: document.position,
                status: document.status,
                lag,
                negative,
            });
        }
    }
}

/// Every [`SAMPLE`] until `stop`: the process's resident memory and threads, the log's head, the
/// projector's applied position, and the frames received so far.
async fn timeline(
    platform: stayledger::serve::Platform,
    counters: Arc<Counters>,
    stop: CancellationToken,
) -> Vec<serde_json::Value> {
    let began = Instant::now();
    let mut samples = Vec::new();
    while !stop.is_cancelled() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        };
        samples.push(json!({
            "t": (began.elapsed().as_secs_f64() * 10.0).round() / 10.0,
            "rss_mib": field("VmRSS:").map(|kib| (kib / 1024.0).round()),
            "threads": field("Threads:"),
            "head": platform.log.head_position().await.unwrap_or(0),
            "views_applied": platform.projector.applied_position(),
            "frames": counters.frames.load(Ordering::Relaxed),
            "confirmed_frames": counters.confirmed.load(Ordering::Relaxed),
        }));
        tokio::select! {
            () = stop.cancelled() => {}
            () = tokio::time::sleep(SAMPLE) => {}
        }
    }
    samples
}

/// The soft limit on open files (`/proc/self/limits`).
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

pub async fn run(plan: &Plan) -> anyhow::Result<Figure> {
    // Both ends of every stream are in this process, and serve's connection cap follows the
    // same soft limit (less what it keeps for its stores).
    let needed = 2 * FOLLOWERS as u64 + 1_024;
    if let Some(limit) = open_files_limit() {
        anyhow::ensure!(
            limit >= needed,
            "the soft open-files limit is {limit}: B10 needs at least {needed} (ulimit -n {needed})"
        );
    }
    let cap = http_edge::server::default_max_connections();
    anyhow::ensure!(
        cap >= FOLLOWERS + 256,
        "serve's connection cap would be {cap}: too few for {FOLLOWERS} streams"
    );
    let flows = plan.b3_flows;
    let shape = Shape {
        approval: Approval::Admin,
        lodgings: LODGINGS,
        backlog: 0,
        pace: plan.b3_pace,
        desk_interval: None,
    };
    let extras = Extras {
        customers: FOLLOWERS,
        ..Extras::default()
    };
    let stage = b3::stage(plan, shape, extras).await?;
    let stop = CancellationToken::new();
    let measured = async {
        let (rss_before, _) = memory(std::process::id())?;
        let counters = Arc::new(Counters::default());
        let mut followers = Vec::with_capacity(FOLLOWERS);
        let opening = Instant::now();
        for batch in (0..FOLLOWERS).collect::<Vec<_>>().chunks(100) {
            let mut readies = Vec::with_capacity(batch.len());
            for &c in batch {
                let (ready, is_ready) = oneshot::channel();
                followers.push(tokio::spawn(follow(
                    stage.serve.addr(),
                    stage.serve.customer(c)?,
                    format!("bench-customer-{c}"),
                    ready,
                    Arc::clone(&counters),
                    stop.clone(),
                )));
                readies.push(is_ready);
            }
            for is_ready in readies {
                tokio::time::timeout(OPENING, is_ready)
                    .await
                    .context("a stream did not open in time")?
                    .context("a follower stopped")?
                    .context("opening a stream")?;
            }
        }
        let opened_in = opening.elapsed().as_secs_f64();
        let after = stage.serve.platform()?.log.head_position().await?;
        let (rss_open, _) = memory(std::process::id())?;
        let sampling = CancellationToken::new();
        let sampler = tokio::spawn(timeline(
            stage.serve.platform()?.clone(),
            Arc::clone(&counters),
            sampling.clone(),
        ));
        let run = b3::run_flows(&stage, flows).await;
        let draining = Instant::now();
        let deadline = draining + plan.drain;
        let confirmed = run.as_ref().map_or(0, |run| run.outcome.confirmed);
        while counters.confirmed.load(Ordering::Relaxed) < confirmed && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let drained_in = draining.elapsed().as_secs_f64();
        let (rss_end, hwm) = memory(std::process::id())?;
        sampling.cancel();
        let timeline = sampler.await.unwrap_or_default();
        let run = run?;
        let (expected, notifier_at_head) = settled_changes(&stage, after, deadline).await?;
        stop.cancel();
        let mut seen = Vec::with_capacity(FOLLOWERS);
        for follower in followers {
            seen.push(follower.await.context("a follower panicked")?);
        }
        let memory = json!({"rss_before_streams_mib": rss_before, "rss_streams_open_mib": rss_open,
                            "rss_end_mib": rss_end, "hwm_mib": hwm});
        let what = Checked::of(&seen, &expected, &run.outcome.reservations);
        Ok::<_, anyhow::Error>(figure(
            flows,
            plan.b3_pace,
            run,
            &what,
            notifier_at_head,
            json!({"opened_in_seconds": opened_in, "drain_seconds": drained_in,
                   "drain_bound_seconds": plan.drain.as_secs_f64(), "memory": memory,
                   "timeline": timeline}),
            rss_end,
        ))
    }
    .await;
    stop.cancel();
    stage.serve.stop().await?;
    measured
}

/// The frames against the run's status changes.
#[derive(Default)]
struct Checked {
    frames: usize,
    /// Status changes of the run (the inbox's).
    changes: usize,
    /// Of those, the ones whose version reached their customer's stream.
    changes_seen: usize,
    /// Of those, the ones whose status reached their customer's stream (a frame of that
    /// reservation in that status, that version or a later one of it).
    statuses_seen: usize,
    /// Confirmed flows whose `confirmed` version never reached their customer's stream.
    confirmed_missing: usize,
    first_missing: Option<String>,
    foreign: usize,
    not_growing: usize,
    malformed: usize,
    /// Streams that ended before the bench closed them, and the first reason.
    ended: usize,
    first_end: Option<String>,
    negative: usize,
    lags: Vec<u32>,
    /// Frames by the status of their document.
    by_status: std::collections::BTreeMap<String, usize>,
}

impl Checked {
    fn of(seen: &[Followed], expected: &[readmodel::inbox::InboxEntry], flows: &[String]) -> Self {
        let mut c = Checked::default();
        // (reservation, position) -> the customer whose stream carried it.
        let mut carried: HashMap<(&str, u64), usize> = HashMap::new();
        // (reservation, status) -> the customers whose stream carried it.
        let mut in_status: HashMap<(&str, &str), HashSet<usize>> = HashMap::new();
        let mut confirmed: HashSet<&str> = HashSet::new();
        for (customer, followed) in seen.iter().enumerate() {
            c.foreign += followed.foreign;
            c.not_growing += followed.not_growing;
            c.malformed += followed.malformed;
            if let Some(why) = &followed.ended {
                c.ended += 1;
                c.first_end.get_or_insert_with(|| why.clone());
            }
            for frame in &followed.frames {
                c.frames += 1;
                c.lags.push(frame.lag);
                c.negative += usize::from(frame.negative);
                *c.by_status.entry(frame.status.clone()).or_insert(0) += 1;
                carried.insert((frame.reservation.as_str(), frame.position), customer);
                in_status
                    .entry((frame.reservation.as_str(), frame.status.as_str()))
                    .or_default()
                    .insert(customer);
                if frame.status == "confirmed" {
                    confirmed.insert(frame.reservation.as_str());
                }
            }
        }
        c.changes = expected.len();
        for entry in expected {
            let reservation = entry.reservation_id.to_string();
            let on = carried.get(&(reservation.as_str(), entry.position));
            let theirs = on.is_some_and(|c| format!("bench-customer-{c}") == entry.recipient);
            if theirs {
                c.changes_seen += 1;
            }
            let status = entry.status.as_str();
            let shown = in_status
                .get(&(reservation.as_str(), status))
                .is_some_and(|on| {
                    on.iter()
                        .any(|c| format!("bench-customer-{c}") == entry.recipient)
                });
            c.statuses_seen += usize::from(shown);
        }
        for id in flows {
            if !confirmed.contains(id.as_str()) {
                c.confirmed_missing += 1;
                c.first_missing.get_or_insert_with(|| id.clone());
            }
        }
        c
    }
}

fn figure(
    flows: usize,
    pace: Option<f64>,
    run: ShapeRun,
    c: &Checked,
    notifier_at_head: bool,
    extra: serde_json::Value,
    rss_mib: f64,
) -> Figure {
    let ShapeRun {
        outcome,
        seconds,
        submitted_in,
        platform,
    } = run;
    let flow_latency = Percentiles::of(outcome.latencies.clone());
    let (per_sec, kept_up) = b3::rate(pace, &outcome, &flow_latency, seconds, flows);
    let lag = Percentiles::of(c.lags.clone());
    let every = c.statuses_seen == c.changes
        && c.confirmed_missing == 0
        && c.foreign == 0
        && c.not_growing == 0
        && c.malformed == 0
        && c.ended == 0
        && notifier_at_head
        && outcome.confirmed == flows;
    let mut text = format!(
        "{} frames; {} of {} status changes reached their follower ({} as the very version the \
         change made), {} confirmed missing; lag p50 {:.0} / p99 {:.0} / max {:.0} ms; \
         RSS {rss_mib:.0} MiB; {}{} flows/s",
        thousands(c.frames as f64),
        thousands(c.statuses_seen as f64),
        thousands(c.changes as f64),
        thousands(c.changes_seen as f64),
        c.confirmed_missing,
        lag.p50_ms,
        lag.p99_ms,
        lag.max_ms,
        b3::pace_text(pace, kept_up),
        thousands(per_sec),
    );
    if c.ended > 0 {
        text.push_str(&format!("; {} streams ended early", c.ended));
    }
    if outcome.confirmed != flows {
        text.push_str(&format!(
            "; only {} of {flows} flows confirmed",
            outcome.confirmed
        ));
    }
    Figure::new(
        "B10",
        "1,000 customers following their reservations on GET /stream while B3 runs (admin \
         approves): event recorded (updated_at) -> frame read",
        lag.p99_ms,
        "ms",
    )
    .figure(text)
    .target(
        "every change to every follower; p99 <= 250 ms; RSS reported",
        every && lag.p99_ms <= TARGET_P99_MS,
    )
    .details(json!({
        "followers": FOLLOWERS, "flows": flows, "confirmed": outcome.confirmed,
        "failed": outcome.failed, "timed_out": outcome.timed_out, "flows_per_sec": per_sec,
        "pace": pace, "kept_up": kept_up,
        "seconds": seconds, "submitted_in_seconds": submitted_in, "flow_latency": flow_latency,
        "frames": c.frames, "frames_by_status": c.by_status, "status_changes": c.changes,
        "status_changes_seen": c.statuses_seen, "versions_seen": c.changes_seen, "confirmed_missing": c.confirmed_missing,
        "first_confirmed_missing": c.first_missing, "foreign_frames": c.foreign,
        "ids_not_growing": c.not_growing, "malformed": c.malformed, "streams_ended": c.ended,
        "first_end": c.first_end, "negative_lags": c.negative, "lag": lag,
        "notifier_at_head": notifier_at_head, "run": extra, "platform": platform,
    }))
}
