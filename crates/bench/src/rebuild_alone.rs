//! B5 (docs/requirements.md): rebuild every view from a log of `events` events (1,000,000 for the target),
//! on the embedded stores. The log holds whole reservation flows (request -> approve -> pay ->
//! confirmed, with saga events) over many lodgings; the rebuild replays it into a fresh SQLite
//! view store. Run it with `cargo run --release -p stayledger-bench --example b5` (the suite's own B5,
//! `b5`, rebuilds the shared data dir of B7 and B8 instead).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use chrono::{Days, NaiveDate};
use domain::lodging::{ApprovalMode, LodgingEvent, LodgingProfile};
use domain::payment::PaymentEvent;
use domain::reservation::{ReservationEvent, ReservationRequested};
use domain::DomainEvent;
use eventlog::{EventLog, EventMetadata, ExpectedVersion, LogError, NewEvent, SqliteEventLog};
use futures::stream::{FuturesUnordered, StreamExt};
use projector::{rebuild, ProjectorError};
use readmodel::SqliteViewStore;
use serde::Serialize;
use uuid::Uuid;

/// Events of one generated reservation flow.
pub const EVENTS_PER_FLOW: u64 = 10;
const LODGINGS: u64 = 500;
const WRITERS: u64 = 64;

/// What a B5 run measured.
#[derive(Debug, Clone, Serialize)]
pub struct B5Report {
    pub events: u64,
    pub seed_seconds: f64,
    pub rebuild_seconds: f64,
    pub events_per_sec: f64,
    /// CPU seconds (user + system, all threads) the rebuild used, where the OS says (Linux):
    /// on a busy machine `events / cpu_seconds * cores` bounds what an idle one would do.
    pub rebuild_cpu_seconds: Option<f64>,
    pub reservations: u64,
}

fn new_event<E: DomainEvent>(event: &E) -> NewEvent {
    NewEvent {
        schema_version: event.schema_version(),
        ..raw(event.event_type(), event.payload())
    }
}

fn raw(event_type: &str, data: serde_json::Value) -> NewEvent {
    NewEvent {
        event_id: Uuid::new_v4(),
        event_type: event_type.to_string(),
        schema_version: 1,
        data: data.into(),
        metadata: EventMetadata {
            correlation_id: Uuid::nil(),
            causation_id: Uuid::nil(),
            actor: "bench".to_string(),
        },
    }
}

async fn append(log: &SqliteEventLog, stream: &str, events: Vec<NewEvent>) -> Result<(), LogError> {
    match log.append(stream, ExpectedVersion::Any, events).await {
        Ok(_) => Ok(()),
        Err(eventlog::AppendError::Log(e)) => Err(e),
        Err(e) => Err(LogError::Unavailable(e.to_string())),
    }
}

fn lodging_id(n: u64) -> String {
    format!("bench-{}", n % LODGINGS)
}

fn saga_step() -> NewEvent {
    raw(
        "SagaTimerCancelled",
        serde_json::json!({"timer": "approval_deadline"}),
    )
}

/// The stay of flow `n`: one night, spread over 300 nights.
fn stay_of(n: u64) -> (NaiveDate, NaiveDate) {
    let check_in = NaiveDate::from_ymd_opt(2031, 1, 1)
        .and_then(|d| d.checked_add_days(Days::new(n % 300)))
        .unwrap_or_default();
    (check_in, check_in.succ_opt().unwrap_or(check_in))
}

/// The appends of one reservation flow (stream, events), in the order the services make them.
fn flow_appends(n: u64) -> Vec<(String, Vec<NewEvent>)> {
    let id = Uuid::new_v4();
    let lodging = lodging_id(n);
    let (check_in, check_out) = stay_of(n);
    let requested = ReservationEvent::ReservationRequested(ReservationRequested {
        timezone: domain::WAVE1_TIMEZONE,
        rooms: 1,
        reservation_id: id,
        customer_id: format!("c-{}", n % 10_000),
        lodging_id: lodging.clone(),
        check_in,
        check_out,
        guests: 2,
        nights: 1,
        total_amount: 120_000,
        currency: "KRW".into(),
    });
    let forwarded = LodgingEvent::ApprovalRequested {
        rooms: 1,
        reservation_id: id,
        check_in,
        check_out,
        guests: 2,
    };
    let granted = LodgingEvent::ApprovalGranted {
        reservation_id: id,
        granted_by: "admin".into(),
    };
    let approved = ReservationEvent::ReservationApproved {
        approved_by: "admin".into(),
    };
    let (payment_id, gateway_ref) = (format!("p-{id}"), format!("g-{id}"));
    let charge = PaymentEvent::PaymentRequested {
        reservation_id: id,
        amount: 120_000,
        currency: "KRW".into(),
    };
    let paid = PaymentEvent::PaymentCompleted {
        payment_id: payment_id.clone(),
        gateway_ref,
        amount: 120_000,
    };
    let confirmed = ReservationEvent::ReservationConfirmed {
        payment_id,
        amount: 120_000,
    };
    let (reservation, saga) = (format!("reservation-{id}"), format!("saga-{id}"));
    vec![
        (reservation.clone(), vec![new_event(&requested)]),
        (saga.clone(), vec![saga_step()]),
        (
            format!("lodging-{lodging}"),
            vec![new_event(&forwarded), new_event(&granted)],
        ),
        (saga.clone(), vec![saga_step()]),
        (reservation.clone(), vec![new_event(&approved)]),
        (
            format!("payment-{id}"),
            vec![new_event(&charge), new_event(&paid)],
        ),
        (saga, vec![saga_step()]),
        (reservation, vec![new_event(&confirmed)]),
    ]
}

/// Append one reservation flow.
async fn flow(log: &SqliteEventLog, n: u64) -> Result<(), LogError> {
    for (stream, events) in flow_appends(n) {
        append(log, &stream, events).await?;
    }
    Ok(())
}

async fn register(log: &SqliteEventLog) -> Result<(), LogError> {
    for n in 0..LODGINGS {
        let id = lodging_id(n);
        let profile = LodgingProfile {
            fee_bps: 1_000,
            lodging_id: id.clone(),
            name: format!("Bench stay {n}"),
            nightly_rate: 120_000,
            currency: "KRW".into(),
            rooms: 1_000,
            max_guests: 4,
            approval_mode: ApprovalMode::Manual,
            admin_id: "admin".into(),
            timezone: domain::Tz::Asia__Seoul,
        };
        append(
            log,
            &format!("lodging-{id}"),
            vec![new_event(&LodgingEvent::LodgingRegistered(profile))],
        )
        .await?;
    }
    Ok(())
}

/// Fill `log` with about `events` events of whole flows, from `WRITERS` concurrent writers.
async fn seed(log: &SqliteEventLog, events: u64) -> Result<u64, LogError> {
    register(log).await?;
    let flows = events.saturating_sub(LODGINGS) / EVENTS_PER_FLOW;
    let mut writers: FuturesUnordered<_> = (0..WRITERS)
        .map(|w| async move {
            let mut n = w;
            while n < flows {
                flow(log, n).await?;
                n += WRITERS;
            }
            Ok::<_, LogError>(())
        })
        .collect();
    while let Some(done) = writers.next().await {
        done?;
    }
    Ok(flows)
}

/// Seed a log of about `events` events in `dir` (unless one is there), then rebuild the views
/// from it into a fresh view store and time that.
pub async fn b5(dir: &Path, events: u64) -> Result<B5Report, ProjectorError> {
    let log = SqliteEventLog::open(dir.join("b5-events.db"))?;
    let started = Instant::now();
    // A log left by an earlier run in `dir` is reused.
    let reservations = if log.head_position().await? >= events {
        0
    } else {
        seed(&log, events).await?
    };
    let seed_seconds = started.elapsed().as_secs_f64();
    let views_path = dir.join("b5-views.db");
    for stale in ["", "-wal", "-shm"] {
        let mut path = views_path.clone().into_os_string();
        path.push(stale);
        let _ = std::fs::remove_file(path);
    }
    let views = SqliteViewStore::open(&views_path)?;
    let log: Arc<dyn EventLog> = Arc::new(log);
    let (started, cpu) = (Instant::now(), process_cpu_seconds());
    let applied = rebuild(log, Arc::new(views), |_, _| {}).await?;
    let rebuild_seconds = started.elapsed().as_secs_f64();
    let rebuild_cpu_seconds = process_cpu_seconds()
        .zip(cpu)
        .map(|(after, before)| after - before);
    Ok(B5Report {
        events: applied,
        seed_seconds,
        rebuild_seconds,
        events_per_sec: applied as f64 / rebuild_seconds.max(f64::EPSILON),
        rebuild_cpu_seconds,
        reservations,
    })
}

/// User + system CPU seconds of this process so far, from `/proc/self/stat` (Linux only).
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start at "state": utime is the
    // 12th of those and stime the 13th, in clock ticks (100 per second on Linux).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    Some((ticks(11)? + ticks(12)?) / 100.0)
}
