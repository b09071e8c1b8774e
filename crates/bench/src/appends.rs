//! B1 (docs/requirements.md): durable appends from many concurrent writers on distinct streams, measured on the SQLite
//! adapter and, in the same run and on the same disk, on raw `rusqlite` doing the same batching (the same
//! number of events per fsynced transaction, same schema and indexes, no channel, no hashing, no dedup).
//! The suite runs it as B1 (`b1`); alone, with every knob: `cargo run --release -p stayledger-bench
//! --example b1`. The baseline takes the adapter's schema and writer settings from
//! [`eventlog::sqlite_baseline`].

use std::path::Path;
use std::time::{Duration, Instant};

use futures::stream::FuturesUnordered;
use futures::StreamExt;
use rusqlite::{params, Connection};
use serde::Serialize;
use uuid::Uuid;

use eventlog::sqlite_baseline::{self, Checkpointer};
use eventlog::{
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
    /// Writer-thread time per event outside `COMMIT` (dedup, hashing, inserts).
    pub write_us_per_event: f64,
    /// Average `COMMIT` (fsync) time.
    pub commit_ms_avg: f64,
    /// Raw rusqlite, `avg_events_per_transaction` (rounded) events per transaction, the better of the two
    /// variants below: the baseline `ratio` is taken against.
    pub raw_events_per_sec: f64,
    /// Raw, with the adapter's settings (background checkpoints, writer page cache).
    pub raw_background_checkpoint_events_per_sec: f64,
    /// Raw, with SQLite's defaults (automatic checkpoints inside `COMMIT`, 2 MiB page cache).
    pub raw_default_events_per_sec: f64,
    /// `events_per_sec / raw_events_per_sec`.
    pub ratio: f64,
}

/// Events, transactions and seconds measured by one side.
#[derive(Default, Clone, Copy)]
struct Totals {
    events: u64,
    transactions: u64,
    seconds: f64,
}

impl Totals {
    fn add(&mut self, other: Totals) {
        self.events += other.events;
        self.transactions += other.transactions;
        self.seconds += other.seconds;
    }

    fn per_sec(&self) -> f64 {
        self.events as f64 / self.seconds.max(f64::EPSILON)
    }
}

/// B1 with one event per append and one append in flight per writer.
pub async fn b1(dir: &Path, writers: usize, duration: Duration) -> Result<B1Report, LogError> {
    let options = B1Options {
        writers,
        duration,
        in_flight: 1,
        events_per_append: 1,
    };
    b1_with(dir, options).await
}

/// B1 with every knob; writes three database files under `dir` (left there for inspection). The adapter
/// and the two raw baselines take turns in rounds of about a second, so all see the same disk conditions.
pub async fn b1_with(dir: &Path, options: B1Options) -> Result<B1Report, LogError> {
    let run = Uuid::new_v4().simple().to_string();
    let log = SqliteEventLog::open(dir.join(format!("b1-adapter-{run}.db")))?;
    let open_raw = |name: &str, background| {
        RawBaseline::open(
            &dir.join(format!("b1-{name}-{run}.db")),
            options.writers,
            background,
        )
    };
    let mut raw = vec![open_raw("raw", true)?, open_raw("raw-default", false)?];
    let rounds = options.duration.as_secs_f64().round().max(1.0) as u32;
    let round = options.duration / rounds;
    let mut next = vec![0u64; options.writers];
    let mut latencies = Vec::new();
    let (mut adapter, mut raw_totals) = (Totals::default(), [Totals::default(); 2]);
    for _ in 0..rounds {
        let started = Instant::now();
        let deadline = started + round;
        let writers: Vec<_> = (0..options.writers)
            .map(|w| tokio::spawn(writer(log.clone(), w, next[w], options, deadline)))
            .collect();
        for (w, task) in writers.into_iter().enumerate() {
            let (appended, mut lat) = task
                .await
                .map_err(|e| LogError::Unavailable(format!("bench writer: {e}")))??;
            next[w] += appended;
            latencies.append(&mut lat);
        }
        adapter.seconds += started.elapsed().as_secs_f64();
        let stats = log.stats();
        let batch = (stats.events as f64 / stats.transactions.max(1) as f64)
            .round()
            .max(1.0) as usize;
        let (back, measured) = tokio::task::spawn_blocking(move || {
            let measured: Result<Vec<Totals>, LogError> =
                raw.iter_mut().map(|b| b.run(batch, round)).collect();
            (raw, measured)
        })
        .await
        .map_err(raw_error)?;
        raw = back;
        for (totals, measured) in raw_totals.iter_mut().zip(measured?) {
            totals.add(measured);
        }
    }
    let stats = log.stats();
    (adapter.events, adapter.transactions) = (stats.events, stats.transactions);
    latencies.sort_unstable();
    let raw_best = raw_totals[0].per_sec().max(raw_totals[1].per_sec());
    Ok(B1Report {
        options,
        events: stats.events,
        seconds: adapter.seconds,
        events_per_sec: adapter.per_sec(),
        transactions: stats.transactions,
        avg_events_per_transaction: stats.events as f64 / stats.transactions.max(1) as f64,
        append_p50_ms: percentile(&latencies, 0.50),
        append_p99_ms: percentile(&latencies, 0.99),
        write_us_per_event: stats.write_micros as f64 / stats.events.max(1) as f64,
        commit_ms_avg: stats.commit_micros as f64 / 1000.0 / stats.transactions.max(1) as f64,
        raw_events_per_sec: raw_best,
        raw_background_checkpoint_events_per_sec: raw_totals[0].per_sec(),
        raw_default_events_per_sec: raw_totals[1].per_sec(),
        ratio: adapter.per_sec() / raw_best,
    })
}

fn raw_error(e: impl std::fmt::Display) -> LogError {
    LogError::Unavailable(format!("raw SQLite baseline: {e}"))
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

/// Writer `w`: append to its stream until `deadline`, starting with its `first` append; returns how many
/// appends it made and each one's latency in microseconds.
async fn writer(
    log: SqliteEventLog,
    w: usize,
    first: u64,
    o: B1Options,
    deadline: Instant,
) -> Result<(u64, Vec<u32>), LogError> {
    let stream = format!("bench-{w}");
    let metadata = EventMetadata {
        correlation_id: Uuid::new_v4(),
        causation_id: Uuid::new_v4(),
        actor: "bench".into(),
    };
    let mut latencies = Vec::new();
    let mut in_flight = FuturesUnordered::new();
    let mut n = first;
    loop {
        while in_flight.len() < o.in_flight && Instant::now() < deadline {
            let events = (0..o.events_per_append)
                .map(|_| NewEvent {
                    event_id: Uuid::new_v4(),
                    event_type: "ReservationRequested".into(),
                    schema_version: 1,
                    data: payload(n).into(),
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
            None => return Ok((n - first, latencies)),
        }
    }
}

/// The floor: one connection inserting the same rows (same schema, same indexes) `batch` at a time per
/// fsynced transaction, with nothing else: no channel, no JSON, no hashing, no dedup.
struct RawBaseline {
    conn: Connection,
    streams: Vec<String>,
    versions: Vec<i64>,
    position: i64,
    data: String,
    hash: String,
    /// Keeps the background checkpointer (if any) running.
    _checkpointer: Option<Checkpointer>,
}

impl RawBaseline {
    fn open(path: &Path, streams: usize, background_checkpoint: bool) -> Result<Self, LogError> {
        let conn = Connection::open(path).map_err(raw_error)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(raw_error)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(raw_error)?;
        conn.execute_batch(sqlite_baseline::SCHEMA)
            .map_err(raw_error)?;
        let checkpointer = if background_checkpoint {
            for (pragma, value) in sqlite_baseline::WRITER_PRAGMAS {
                conn.pragma_update(None, pragma, value).map_err(raw_error)?;
            }
            Some(sqlite_baseline::start_checkpointer(path)?)
        } else {
            None
        };
        let streams: Vec<String> = (0..streams.max(1)).map(|w| format!("bench-{w}")).collect();
        Ok(Self {
            conn,
            versions: vec![0; streams.len()],
            streams,
            position: 0,
            data: serde_json::to_string(&payload(0)).unwrap_or_default(),
            hash: "0".repeat(64),
            _checkpointer: checkpointer,
        })
    }

    /// Insert for `duration`; returns (events, transactions, seconds).
    fn run(&mut self, batch: usize, duration: Duration) -> Result<Totals, LogError> {
        self.insert_for(batch, duration).map_err(raw_error)
    }

    fn insert_for(&mut self, batch: usize, duration: Duration) -> rusqlite::Result<Totals> {
        let metadata = r#"{"correlation_id":"6f1c2a7e-3b9d-4c1e-9a57-0d2f4b8e1c33","causation_id":"6f1c2a7e-3b9d-4c1e-9a57-0d2f4b8e1c34","actor":"bench"}"#;
        let (start, mut transactions) = (self.position, 0u64);
        let started = Instant::now();
        while started.elapsed() < duration {
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
            let mut insert = self.conn.prepare_cached(
                "INSERT INTO events (position, stream, version, event_id, event_type, schema_version, \
                 data, metadata, recorded_at, hash) VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7, ?8, ?9)",
            )?;
            for _ in 0..batch {
                self.position += 1;
                let w = self.position as usize % self.streams.len();
                insert.execute(params![
                    self.position,
                    self.streams[w],
                    self.versions[w],
                    Uuid::new_v4().as_bytes().as_slice(),
                    "ReservationRequested",
                    self.data,
                    metadata,
                    "2026-01-01T00:00:00.000000Z",
                    self.hash,
                ])?;
                self.versions[w] += 1;
            }
            drop(insert);
            self.conn.execute_batch("COMMIT")?;
            transactions += 1;
        }
        Ok(Totals {
            events: (self.position - start) as u64,
            transactions,
            seconds: started.elapsed().as_secs_f64(),
        })
    }
}

fn percentile(sorted_micros: &[u32], q: f64) -> f64 {
    if sorted_micros.is_empty() {
        return 0.0;
    }
    let index = ((sorted_micros.len() - 1) as f64 * q).round() as usize;
    f64::from(sorted_micros[index]) / 1000.0
}
