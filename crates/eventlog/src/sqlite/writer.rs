//! The single writer: one thread, one connection, group commit.
//!
//! Appends arrive on a channel, already serialized by the caller. The thread takes everything queued at
//! that moment and writes it in ONE transaction (`BEGIN IMMEDIATE`, so other processes sharing the file
//! wait on SQLite's lock), then one `COMMIT` (fsynced: `synchronous=FULL`), and only then answers each
//! append. Every append is checked on its own (event-id dedup, expected version) before anything is
//! written, so a conflict never touches the others; if an insert still fails, the transaction is rolled
//! back, that append alone gets the error and the rest of the batch is written again.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use rusqlite::{params, Connection, ErrorCode};
use std::sync::mpsc;

use tokio::sync::{oneshot, watch};
use uuid::Uuid;

use super::heads::Heads;
use super::{store_error, to_i64, to_u64};
use crate::hash::{self, CanonicalEvent};
use crate::{AppendError, AppendOutcome, ExpectedVersion, LogError, NewEvent};

/// Upper bound of events written in one transaction (keeps a commit's latency bounded).
const MAX_BATCH_EVENTS: usize = 16_384;
/// Longest the writer waits for the callers it just answered to come back, before writing a smaller batch.
const GATHER_WAIT: Duration = Duration::from_micros(250);

pub(crate) type Reply<T> = oneshot::Sender<Result<T, AppendError>>;

/// An event serialized by the caller, so the writer thread only hashes and inserts.
pub(crate) struct EncodedEvent {
    event_id: Uuid,
    event_type: String,
    schema_version: u32,
    data: String,
    metadata: String,
}

impl EncodedEvent {
    pub(crate) fn encode(event: NewEvent) -> Result<Self, LogError> {
        let data = serde_json::to_string(&event.data)
            .map_err(|e| LogError::Corrupt(format!("data of event {}: {e}", event.event_id)))?;
        Ok(Self {
            metadata: hash::metadata_json(&event.metadata)?,
            event_id: event.event_id,
            event_type: event.event_type,
            schema_version: event.schema_version,
            data,
        })
    }
}

pub(crate) enum Command {
    Append {
        stream: String,
        expected: ExpectedVersion,
        events: Vec<EncodedEvent>,
        reply: Reply<AppendOutcome>,
    },
    Snapshot {
        stream: String,
        version: u64,
        state: String,
        reply: Reply<()>,
    },
}

impl Command {
    fn event_count(&self) -> usize {
        match self {
            Self::Append { events, .. } => events.len().max(1),
            Self::Snapshot { .. } => 1,
        }
    }
}

/// What the writer has done so far (for benchmarks and operators).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub transactions: AtomicU64,
    pub appends: AtomicU64,
    pub events: AtomicU64,
    /// Time spent writing batches (checks, hashing, inserts), commits excluded.
    pub write_micros: AtomicU64,
    /// Time spent in `COMMIT` (the fsync, and any automatic checkpoint).
    pub commit_micros: AtomicU64,
}

type Answer = Result<AppendOutcome, AppendError>;

/// Why a batch attempt stopped: one append's insert failed, or the store itself did.
enum BatchError {
    Append(usize, String),
    Store(LogError),
}

impl From<rusqlite::Error> for BatchError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(store_error(e))
    }
}

impl From<LogError> for BatchError {
    fn from(e: LogError) -> Self {
        Self::Store(e)
    }
}

pub(crate) struct Writer {
    conn: Connection,
    heads: Heads,
    head_tx: watch::Sender<u64>,
    counters: Arc<Counters>,
    /// Dropped with the writer, which stops the background checkpointer.
    _checkpointer: mpsc::Sender<()>,
    /// Commands in the last batch: that many callers were just answered and are likely to send again.
    last_batch: usize,
}

impl Writer {
    pub(crate) fn new(
        conn: Connection,
        head_tx: watch::Sender<u64>,
        counters: Arc<Counters>,
        checkpointer: mpsc::Sender<()>,
    ) -> Self {
        Self {
            conn,
            heads: Heads::default(),
            head_tx,
            counters,
            _checkpointer: checkpointer,
            last_batch: 0,
        }
    }

    /// Serve the channel until every sender is gone.
    pub(crate) fn run(mut self, rx: mpsc::Receiver<Command>) {
        while let Ok(first) = rx.recv() {
            let batch = self.gather(first, &rx);
            self.last_batch = batch.len();
            self.write(batch);
        }
    }

    /// Everything queued now; and when fewer callers than last time are back yet, wait a moment for the
    /// rest (they are busy handling the previous answer), so the batch stays as large as the concurrency.
    fn gather(&self, first: Command, rx: &mpsc::Receiver<Command>) -> Vec<Command> {
        let mut size = first.event_count();
        let mut batch = vec![first];
        let deadline = Instant::now() + GATHER_WAIT;
        while size < MAX_BATCH_EVENTS {
            let next = match rx.try_recv() {
                Ok(command) => Ok(command),
                Err(_) if batch.len() >= self.last_batch => break,
                Err(_) => rx.recv_timeout(deadline.saturating_duration_since(Instant::now())),
            };
            match next {
                Ok(command) => {
                    size += command.event_count();
                    batch.push(command);
                }
                Err(_) => break,
            }
        }
        batch
    }

    /// Write one batch and answer every command in it.
    fn write(&mut self, mut batch: Vec<Command>) {
        while !batch.is_empty() {
            match self.try_batch(&batch) {
                Ok((answers, head)) => {
                    self.count(&batch, head);
                    for (command, answer) in batch.into_iter().zip(answers) {
                        answer_command(command, answer);
                    }
                    return;
                }
                Err(BatchError::Append(index, e)) => {
                    self.abort();
                    let failed = batch.remove(index);
                    fail_command(failed, &LogError::Corrupt(format!("append rejected: {e}")));
                }
                Err(BatchError::Store(error)) => {
                    self.abort();
                    for command in batch {
                        fail_command(command, &error);
                    }
                    return;
                }
            }
        }
    }

    fn count(&self, batch: &[Command], head: u64) {
        let (appends, events) = batch.iter().fold((0, 0), |(a, e), c| match c {
            Command::Append { events, .. } => (a + 1, e + events.len() as u64),
            Command::Snapshot { .. } => (a, e),
        });
        self.counters.transactions.fetch_add(1, Ordering::Relaxed);
        self.counters.appends.fetch_add(appends, Ordering::Relaxed);
        self.counters.events.fetch_add(events, Ordering::Relaxed);
        self.head_tx.send_if_modified(|current| {
            let moved = head > *current;
            *current = head.max(*current);
            moved
        });
    }

    /// Roll back whatever the failed attempt wrote and forget cached stream state.
    fn abort(&mut self) {
        if !self.conn.is_autocommit() {
            if let Err(e) = self.conn.execute_batch("ROLLBACK") {
                tracing::error!(error = %e, "eventlog writer: rollback failed");
            }
        }
        self.heads.clear();
    }

    /// One transaction over the whole batch; returns each command's answer and the new head position.
    fn try_batch(&mut self, batch: &[Command]) -> Result<(Vec<Answer>, u64), BatchError> {
        let started = Instant::now();
        self.conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        let max: i64 = self
            .conn
            .prepare_cached("SELECT COALESCE(MAX(position), 0) FROM events")?
            .query_row([], |r| r.get(0))?;
        let mut cursor = Cursor {
            position: to_u64(max)?,
            recorded_at: hash::format_recorded_at(&hash::recording_instant(Utc::now())),
        };
        self.heads.sync(&self.conn, cursor.position)?;
        let mut answers = Vec::with_capacity(batch.len());
        for (index, command) in batch.iter().enumerate() {
            answers.push(match command {
                Command::Append {
                    stream,
                    expected,
                    events,
                    ..
                } => self
                    .append(stream, *expected, events, &mut cursor)
                    .map_err(|e| match e {
                        BatchError::Append(_, e) => BatchError::Append(index, e),
                        store => store,
                    })?,
                Command::Snapshot {
                    stream,
                    version,
                    state,
                    ..
                } => self
                    .snapshot(stream, *version, state, &cursor.recorded_at)
                    .map(|()| {
                        Ok(AppendOutcome {
                            last_version: *version,
                            position: 0,
                        })
                    })?,
            });
        }
        let committing = Instant::now();
        self.conn.prepare_cached("COMMIT")?.execute([])?;
        let c = &self.counters;
        c.write_micros
            .fetch_add(micros(committing - started), Ordering::Relaxed);
        c.commit_micros
            .fetch_add(micros(committing.elapsed()), Ordering::Relaxed);
        Ok((answers, cursor.position))
    }

    fn append(
        &mut self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[EncodedEvent],
        cursor: &mut Cursor,
    ) -> Result<Answer, BatchError> {
        let events = distinct(events);
        let (actual, present, head) = match self.heads.get(&self.conn, stream)? {
            Some(s) => {
                let present = events
                    .iter()
                    .filter(|e| s.ids.contains(&e.event_id))
                    .count();
                (Some(s.version), present, Some((s.position, s.hash.clone())))
            }
            None => (None, 0, None),
        };
        if present > 0 {
            if present == events.len() {
                // Every event is already there: the append happened before; report the stream as it is.
                let position = head.map_or(0, |(p, _)| p);
                return Ok(Ok(AppendOutcome {
                    last_version: actual.unwrap_or(0),
                    position,
                }));
            }
            // Some but not all: not a retry of one earlier append (appends are atomic). Reject it.
            return Ok(Err(conflict(stream, expected, actual)));
        }
        let matches = match expected {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual.is_none(),
            ExpectedVersion::Exact(v) => actual == Some(v),
        };
        if !matches {
            return Ok(Err(conflict(stream, expected, actual)));
        }
        if events.is_empty() {
            return Ok(Ok(AppendOutcome {
                last_version: actual.unwrap_or(0),
                position: head.map_or(0, |(p, _)| p),
            }));
        }
        let (first_version, prev_hash) = match head {
            Some((_, hash)) => (actual.map_or(0, |v| v + 1), hash),
            None => (0, String::new()),
        };
        let last = self.insert(stream, &events, first_version, prev_hash, cursor)?;
        let outcome = AppendOutcome {
            last_version: last.0,
            position: last.1,
        };
        self.heads
            .record(stream, events.iter().map(|e| e.event_id), last);
        Ok(Ok(outcome))
    }

    /// Insert `events` (at least one) from `version` on; returns the last (version, position, hash).
    fn insert(
        &self,
        stream: &str,
        events: &[&EncodedEvent],
        mut version: u64,
        mut prev_hash: String,
        cursor: &mut Cursor,
    ) -> Result<(u64, u64, String), BatchError> {
        let mut statement = self.conn.prepare_cached(
            "INSERT INTO events (position, stream, version, event_id, event_type, schema_version, \
             data, metadata, recorded_at, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?;
        for (i, event) in events.iter().enumerate() {
            let hash = hash::chain_hash(
                &prev_hash,
                &CanonicalEvent {
                    stream,
                    version,
                    event_id: event.event_id,
                    event_type: &event.event_type,
                    schema_version: event.schema_version,
                    data_json: &event.data,
                    metadata_json: &event.metadata,
                    recorded_at: &cursor.recorded_at,
                },
            );
            let position = cursor.position + 1;
            statement
                .execute(params![
                    to_i64(position)?,
                    stream,
                    to_i64(version)?,
                    event.event_id.as_bytes().as_slice(),
                    event.event_type,
                    event.schema_version,
                    event.data,
                    event.metadata,
                    cursor.recorded_at,
                    hash,
                ])
                .map_err(|e| match e.sqlite_error_code() {
                    Some(ErrorCode::ConstraintViolation) => BatchError::Append(0, e.to_string()),
                    _ => BatchError::from(e),
                })?;
            cursor.position = position;
            prev_hash = hash;
            if i + 1 < events.len() {
                version += 1;
            }
        }
        Ok((version, cursor.position, prev_hash))
    }

    fn snapshot(
        &self,
        stream: &str,
        version: u64,
        state: &str,
        saved_at: &str,
    ) -> Result<(), BatchError> {
        self.conn
            .prepare_cached(
                "INSERT INTO snapshots (stream, version, state, saved_at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (stream) DO UPDATE SET version = excluded.version, state = excluded.state, \
                 saved_at = excluded.saved_at WHERE excluded.version >= snapshots.version",
            )?
            .execute(params![stream, to_i64(version)?, state, saved_at])?;
        Ok(())
    }
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Where the batch being written stands: the last position used and its shared `recorded_at`.
struct Cursor {
    position: u64,
    recorded_at: String,
}

/// The events of one append with repeated ids collapsed (the first occurrence wins).
fn distinct(events: &[EncodedEvent]) -> Vec<&EncodedEvent> {
    if events.len() < 2 {
        return events.iter().collect();
    }
    let mut seen = HashSet::<Uuid>::with_capacity(events.len());
    events.iter().filter(|e| seen.insert(e.event_id)).collect()
}

fn conflict(stream: &str, expected: ExpectedVersion, actual: Option<u64>) -> AppendError {
    AppendError::Conflict {
        stream: stream.to_owned(),
        expected,
        actual,
    }
}

fn answer_command(command: Command, answer: Answer) {
    // A caller that gave up waiting has dropped its receiver; the write stands regardless.
    match command {
        Command::Append { reply, .. } => {
            let _ = reply.send(answer);
        }
        Command::Snapshot { reply, .. } => {
            let _ = reply.send(answer.map(|_| ()));
        }
    }
}

fn fail_command(command: Command, error: &LogError) {
    let error = match error {
        LogError::Unavailable(m) => LogError::Unavailable(m.clone()),
        LogError::Corrupt(m) => LogError::Corrupt(m.clone()),
    };
    match command {
        Command::Append { reply, .. } => {
            let _ = reply.send(Err(AppendError::Log(error)));
        }
        Command::Snapshot { reply, .. } => {
            let _ = reply.send(Err(AppendError::Log(error)));
        }
    }
}
