//! B1 (QUALITY.md): durable appends from many concurrent writers on distinct streams, measured on the SQLite
//! adapter and, in the same run and on the same disk, on raw `rusqlite` doing the same batching (the same
//! number of events per fsynced transaction, same schema and indexes, no channel, no hashing, no dedup).
//! Run it with `cargo run --release -p eventlog --example b1`.

use std::path::Path;
use std::time::{Duration, Instant};

use futures::stream::FuturesUnordered;
use futures::StreamExt;
use rusqlite::{params, Connection};
use serde::Serialize;
use uuid::Uuid;

use crate::{
    AppendError, EventLog, EventMetadata, ExpectedVersion, LogError, NewEvent, SqliteEventLog,
};

/// The shape of one B1 run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct B1Options {
    /// Concurrent writers, each on its own stream.
    pub writers: usize,
    /// How long each of the two measurements runs.
    pub duration: Duration,
    /// Appends each writer keeps in flight (1 = wait for each acknowledgement before the next).
    pub in_flight: usize,
    /// Events per append.
    pub events_per_append: usize,
}

/// What a B1 run measured.
#[derive(Debug, Clone, Serialize)]
pub struct B1Report {
    pub options: B1Options,
    pub events: u64,
    pub seconds: f64,
    pub events_per_sec: f64,
    pub transactions: u64,
    pub avg_events_per_transaction: f64,
    pub append_p50_ms: f64,
    pub append_p99_ms: f64,
    /// Raw rusqlite with `avg_events_per_transaction` (rounded) events per transaction.
    pub raw_events_per_sec: f64,
    pub raw_transactions_per_sec: f64,
    /// `events_per_sec / raw_events_per_sec`.
    pub ratio: f64,
}

/// B1 with one event per append and one append in flight per writer.
pub async fn b1(dir: &Path, writers: usize, duration: Duration) -> Result<B1Report, LogError> {
    b1_with(
        dir,
        B1Options {
            writers,
            duration,
            in_flight: 1,
            events_per_append: 1,
        },
    )
    .await
}

/// B1 with every knob; writes two database files under `dir` (left there for inspection).
pub async fn b1_with(dir: &Path, options: B1Options) -> Result<B1Report, LogError> {
    let run = Uuid::new_v4().simple().to_string();
    let log = SqliteEventLog::open(dir.join(format!("b1-adapter-{run}.db")))?;
    let started = Instant::now();
    let deadline = started + options.duration;
    let writers: Vec<_> = (0..options.writers)
        .map(|w| tokio::spawn(writer(log.clone(), format!("bench-{w}"), options, deadline)))
        .collect();
    let mut latencies = Vec::new();
    for task in writers {
        let task = task
            .await
            .map_err(|e| LogError::Unavailable(format!("bench writer failed: {e}")))?;
        latencies.extend(task?);
    }
    let seconds = started.elapsed().as_secs_f64();
    let stats = log.stats();
    drop(log);
    latencies.sort_unstable();
    let per_tx = stats.events as f64 / stats.transactions.max(1) as f64;
    let raw_path = dir.join(format!("b1-raw-{run}.db"));
    let batch = (per_tx.round() as usize).max(1);
    let (raw_events, raw_tx, raw_seconds) = tokio::task::spawn_blocking(move || {
        raw_sqlite(&raw_path, batch, options.writers, options.duration)
    })
    .await
    .map_err(|e| LogError::Unavailable(format!("raw bench failed: {e}")))?
    .map_err(|e| LogError::Unavailable(e.to_string()))?;
    let events_per_sec = stats.events as f64 / seconds;
    let raw_events_per_sec = raw_events as f64 / raw_seconds;
    Ok(B1Report {
        options,
        events: stats.events,
        seconds,
        events_per_sec,
        transactions: stats.transactions,
        avg_events_per_transaction: per_tx,
        append_p50_ms: percentile(&latencies, 0.50),
        append_p99_ms: percentile(&latencies, 0.99),
        raw_events_per_sec,
        raw_transactions_per_sec: raw_tx as f64 / raw_seconds,
        ratio: events_per_sec / raw_events_per_sec,
    })
}

/// About 200 bytes of JSON, like a `ReservationRequested` payload.
fn payload(n: u64) -> serde_json::Value {
    serde_json::json!({
        "reservation_id": "6f1c2a7e-3b9d-4c1e-9a57-0d2f4b8e1c33",
        "customer_id": "customer-42",
        "lodging_id": "lodging-7",
        "check_in": "2026-07-01",
        "check_out": "2026-07-04",
        "guests": 2,
        "nights": 3,
        "total_amount": 36_000 + n % 1000,
        "currency": "EUR"
    })
}

/// One writer: append to `stream` until `deadline`; returns each append's latency in microseconds.
async fn writer(
    log: SqliteEventLog,
    stream: String,
    o: B1Options,
    deadline: Instant,
) -> Result<Vec<u32>, LogError> {
    let metadata = EventMetadata {
        correlation_id: Uuid::new_v4(),
        causation_id: Uuid::new_v4(),
        actor: "bench".into(),
    };
    let mut latencies = Vec::new();
    let mut in_flight = FuturesUnordered::new();
    let mut n = 0u64;
    loop {
        while in_flight.len() < o.in_flight && Instant::now() < deadline {
            let events = (0..o.events_per_append)
                .map(|_| NewEvent {
                    event_id: Uuid::new_v4(),
                    event_type: "ReservationRequested".into(),
                    schema_version: 1,
                    data: payload(n),
                    metadata: metadata.clone(),
                })
                .collect();
            // One append in flight: exact optimistic concurrency, as the repository does. Several: `Any`.
            let expected = if o.in_flight == 1 {
                ExpectedVersion::from_current((n * o.events_per_append as u64).checked_sub(1))
            } else {
                ExpectedVersion::Any
            };
            let (log, stream) = (log.clone(), stream.clone());
            in_flight.push(async move {
                let sent = Instant::now();
                log.append(&stream, expected, events)
                    .await
                    .map(|_| sent.elapsed())
            });
            n += 1;
        }
        match in_flight.next().await {
            Some(Ok(latency)) => {
                latencies.push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX))
            }
            Some(Err(AppendError::Log(e))) => return Err(e),
            Some(Err(conflict)) => {
                return Err(LogError::Corrupt(format!(
                    "bench writer lost its own stream: {conflict}"
                )))
            }
            None => return Ok(latencies),
        }
    }
}

/// The floor: one connection inserting `batch` rows per fsynced transaction for `duration`.
fn raw_sqlite(
    path: &Path,
    batch: usize,
    streams: usize,
    duration: Duration,
) -> rusqlite::Result<(u64, u64, f64)> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(crate::sqlite::SCHEMA)?;
    let data = serde_json::to_string(&payload(0)).unwrap_or_default();
    let metadata = r#"{"correlation_id":"6f1c2a7e-3b9d-4c1e-9a57-0d2f4b8e1c33","causation_id":"6f1c2a7e-3b9d-4c1e-9a57-0d2f4b8e1c34","actor":"bench"}"#;
    let hash = "0".repeat(64);
    let stream_names: Vec<String> = (0..streams.max(1)).map(|w| format!("bench-{w}")).collect();
    let mut versions = vec![0i64; stream_names.len()];
    let (mut position, mut transactions) = (0i64, 0u64);
    let started = Instant::now();
    while started.elapsed() < duration {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let mut insert = conn.prepare_cached(
            "INSERT INTO events (position, stream, version, event_id, event_type, schema_version, \
             data, metadata, recorded_at, hash) VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7, ?8, ?9)",
        )?;
        for _ in 0..batch {
            position += 1;
            let w = position as usize % stream_names.len();
            insert.execute(params![
                position,
                stream_names[w],
                versions[w],
                Uuid::new_v4().as_bytes().as_slice(),
                "ReservationRequested",
                data,
                metadata,
                "2026-01-01T00:00:00.000000Z",
                hash,
            ])?;
            versions[w] += 1;
        }
        drop(insert);
        conn.execute_batch("COMMIT")?;
        transactions += 1;
    }
    Ok((
        position as u64,
        transactions,
        started.elapsed().as_secs_f64(),
    ))
}

fn percentile(sorted_micros: &[u32], q: f64) -> f64 {
    if sorted_micros.is_empty() {
        return 0.0;
    }
    let index = ((sorted_micros.len() - 1) as f64 * q).round() as usize;
    f64::from(sorted_micros[index]) / 1000.0
}
