//! The single writer: one thread, one connection, group commit.
//!
//! Appends arrive on a channel. The thread takes everything queued at that moment and writes it in ONE
//! transaction (`BEGIN IMMEDIATE`, so other processes sharing the file wait on SQLite's lock), then one
//! `COMMIT` (fsynced: `synchronous=FULL`), and only then answers each append. Every append is checked on
//! its own (event-id dedup, expected version) before anything is written, so a conflict never touches
//! the others; if an insert still fails, the transaction is rolled back, that append alone gets the
//! error and the rest of the batch is written again.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::Utc;
use rusqlite::{params, Connection, ErrorCode, OptionalExtension};
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use super::{store_error, to_i64, to_u64};
use crate::hash::{self, CanonicalEvent};
use crate::{AppendError, AppendOutcome, ExpectedVersion, LogError, NewEvent};

/// Upper bound of events written in one transaction (keeps a commit's latency bounded).
const MAX_BATCH_EVENTS: usize = 8_192;
/// Stream heads kept in memory before the cache is dropped and rebuilt.
const MAX_CACHED_STREAMS: usize = 100_000;

pub(crate) type Reply<T> = oneshot::Sender<Result<T, AppendError>>;

pub(crate) enum Command {
    Append {
        stream: String,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
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
}

/// Last event of a stream, as the writer needs it to chain the next one.
#[derive(Clone)]
struct StreamHead {
    version: u64,
    position: u64,
    hash: String,
}

enum Answer {
    Appended(Result<AppendOutcome, AppendError>),
    Snapshot,
}

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
    heads: HashMap<String, StreamHead>,
    data_version: Option<i64>,
    head_tx: watch::Sender<u64>,
    counters: Arc<Counters>,
}

impl Writer {
    pub(crate) fn new(
        conn: Connection,
        head_tx: watch::Sender<u64>,
        counters: Arc<Counters>,
    ) -> Self {
        Self {
            conn,
            heads: HashMap::new(),
            data_version: None,
            head_tx,
            counters,
        }
    }

    /// Serve the channel until every sender is gone.
    pub(crate) fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>) {
        while let Some(first) = rx.blocking_recv() {
            let mut size = first.event_count();
            let mut batch = vec![first];
            while size < MAX_BATCH_EVENTS {
                match rx.try_recv() {
                    Ok(command) => {
                        size += command.event_count();
                        batch.push(command);
                    }
                    Err(_) => break,
                }
            }
            self.write(batch);
        }
    }

    /// Write one batch and answer every command in it.
    fn write(&mut self, mut batch: Vec<Command>) {
        while !batch.is_empty() {
            match self.try_batch(&batch) {
                Ok((answers, head)) => {
                    self.record(&batch, head);
                    for (command, answer) in batch.into_iter().zip(answers) {
                        answer_command(command, answer);
                    }
                    return;
                }
                Err(BatchError::Append(index, e)) => {
                    self.abort();
                    let failed = batch.remove(index);
                    fail_command(failed, LogError::Corrupt(format!("append rejected: {e}")));
                }
                Err(BatchError::Store(error)) => {
                    self.abort();
                    for command in batch {
                        fail_command(command, LogError::Unavailable(error.to_string()));
                    }
                    return;
                }
            }
        }
    }

    fn record(&self, batch: &[Command], head: u64) {
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

    /// Roll back whatever the failed attempt wrote and forget cached stream heads.
    fn abort(&mut self) {
        if !self.conn.is_autocommit() {
            if let Err(e) = self.conn.execute_batch("ROLLBACK") {
                tracing::error!(error = %e, "eventlog writer: rollback failed");
            }
        }
        self.heads.clear();
        self.data_version = None;
    }

    /// One transaction over the whole batch; returns each command's answer and the new head position.
    fn try_batch(&mut self, batch: &[Command]) -> Result<(Vec<Answer>, u64), BatchError> {
        self.conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        // Another process may have written since our last commit: then cached heads are stale.
        let data_version: i64 = self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))?;
        if self.data_version != Some(data_version) || self.heads.len() > MAX_CACHED_STREAMS {
            self.heads.clear();
        }
        let max: i64 = self
            .conn
            .prepare_cached("SELECT COALESCE(MAX(position), 0) FROM events")?
            .query_row([], |r| r.get(0))?;
        let mut next_position = to_u64(max)?;
        let recorded_at = hash::recording_instant(Utc::now());
        let recorded_at = hash::format_recorded_at(&recorded_at);
        let mut answers = Vec::with_capacity(batch.len());
        for (index, command) in batch.iter().enumerate() {
            let answer = match command {
                Command::Append {
                    stream,
                    expected,
                    events,
                    ..
                } => {
                    let mut append = Append {
                        stream,
                        expected: *expected,
                        events,
                        recorded_at: &recorded_at,
                        next_position: &mut next_position,
                    };
                    Answer::Appended(self.append(&mut append).map_err(|e| match e {
                        BatchError::Append(_, e) => BatchError::Append(index, e),
                        store => store,
                    })?)
                }
                Command::Snapshot {
                    stream,
                    version,
                    state,
                    ..
                } => {
                    self.snapshot(stream, *version, state, &recorded_at)?;
                    Answer::Snapshot
                }
            };
            answers.push(answer);
        }
        self.conn.prepare_cached("COMMIT")?.execute([])?;
        self.data_version = Some(data_version);
        Ok((answers, next_position))
    }

    fn append(
        &mut self,
        a: &mut Append<'_>,
    ) -> Result<Result<AppendOutcome, AppendError>, BatchError> {
        let head = self.head(a.stream)?;
        let events = distinct(a.events);
        let duplicates = match &head {
            Some(_) => self.count_present(a.stream, &events)?,
            None => 0,
        };
        let actual = head.as_ref().map(|h| h.version);
        if let Some(head) = head.as_ref().filter(|_| duplicates > 0) {
            if duplicates == events.len() {
                // Every event is already there: the append happened before; report the stream as it is.
                return Ok(Ok(AppendOutcome {
                    last_version: head.version,
                    position: head.position,
                }));
            }
            // Some but not all: not a retry of one earlier append (appends are atomic). Reject it.
            return Ok(Err(conflict(a.stream, a.expected, actual)));
        }
        let matches = match a.expected {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual.is_none(),
            ExpectedVersion::Exact(v) => actual == Some(v),
        };
        if !matches {
            return Ok(Err(conflict(a.stream, a.expected, actual)));
        }
        if events.is_empty() {
            return Ok(Ok(AppendOutcome {
                last_version: actual.unwrap_or(0),
                position: head.map_or(0, |h| h.position),
            }));
        }
        let mut last = self.insert(a, head, &events)?;
        let outcome = AppendOutcome {
            last_version: last.version,
            position: last.position,
        };
        last.hash.shrink_to_fit();
        self.heads.insert(a.stream.to_owned(), last);
        Ok(Ok(outcome))
    }

    /// Insert `events` (at least one) after `head`; returns the new head.
    fn insert(
        &mut self,
        a: &mut Append<'_>,
        mut head: Option<StreamHead>,
        events: &[&NewEvent],
    ) -> Result<StreamHead, BatchError> {
        let mut statement = self.conn.prepare_cached(
            "INSERT INTO events (position, stream, version, event_id, event_type, schema_version, \
             data, metadata, recorded_at, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?;
        for event in events {
            let version = head.as_ref().map_or(0, |h| h.version + 1);
            let position = *a.next_position + 1;
            let data = serde_json::to_string(&event.data)
                .map_err(|e| BatchError::Append(0, e.to_string()))?;
            let metadata = hash::metadata_json(&event.metadata)?;
            let hash = hash::chain_hash(
                head.as_ref().map_or("", |h| h.hash.as_str()),
                &CanonicalEvent {
                    stream: a.stream,
                    version,
                    event_id: event.event_id,
                    event_type: &event.event_type,
                    schema_version: event.schema_version,
                    data_json: &data,
                    metadata_json: &metadata,
                    recorded_at: a.recorded_at,
                },
            );
            statement
                .execute(params![
                    to_i64(position)?,
                    a.stream,
                    to_i64(version)?,
                    event.event_id.as_bytes().as_slice(),
                    event.event_type,
                    event.schema_version,
                    data,
                    metadata,
                    a.recorded_at,
                    hash,
                ])
                .map_err(|e| match e.sqlite_error_code() {
                    Some(ErrorCode::ConstraintViolation) => BatchError::Append(0, e.to_string()),
                    _ => BatchError::from(e),
                })?;
            *a.next_position = position;
            head = Some(StreamHead {
                version,
                position,
                hash,
            });
        }
        head.ok_or_else(|| BatchError::Store(LogError::Corrupt("empty insert".into())))
    }

    fn head(&mut self, stream: &str) -> Result<Option<StreamHead>, BatchError> {
        if let Some(head) = self.heads.get(stream) {
            return Ok(Some(head.clone()));
        }
        let row = self
            .conn
            .prepare_cached(
                "SELECT version, position, hash FROM events WHERE stream = ?1 \
                 ORDER BY version DESC LIMIT 1",
            )?
            .query_row([stream], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get(2)?))
            })
            .optional()?;
        let Some((version, position, hash)) = row else {
            return Ok(None);
        };
        let head = StreamHead {
            version: to_u64(version)?,
            position: to_u64(position)?,
            hash,
        };
        self.heads.insert(stream.to_owned(), head.clone());
        Ok(Some(head))
    }

    /// How many of `events` are already recorded in `stream`.
    fn count_present(&self, stream: &str, events: &[&NewEvent]) -> Result<usize, BatchError> {
        let mut statement = self
            .conn
            .prepare_cached("SELECT 1 FROM events WHERE event_id = ?1 AND stream = ?2 LIMIT 1")?;
        let mut present = 0;
        for event in events {
            if statement.exists(params![event.event_id.as_bytes().as_slice(), stream])? {
                present += 1;
            }
        }
        Ok(present)
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
            .execute(params![
                stream,
                to_i64(version)?,
                state,
                saved_at
            ])?;
        Ok(())
    }
}

/// One append being written: where it goes and the batch-wide cursor it advances.
struct Append<'a> {
    stream: &'a str,
    expected: ExpectedVersion,
    events: &'a [NewEvent],
    recorded_at: &'a str,
    next_position: &'a mut u64,
}

/// The events of one append with repeated ids collapsed (the first occurrence wins).
fn distinct(events: &[NewEvent]) -> Vec<&NewEvent> {
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
    match (command, answer) {
        (Command::Append { reply, .. }, Answer::Appended(result)) => {
            let _ = reply.send(result);
        }
        (Command::Snapshot { reply, .. }, Answer::Snapshot) => {
            let _ = reply.send(Ok(()));
        }
        (command, _) => fail_command(command, LogError::Corrupt("writer answer mismatch".into())),
    }
}

fn fail_command(command: Command, error: LogError) {
    match command {
        Command::Append { reply, .. } => {
            let _ = reply.send(Err(AppendError::Log(error)));
        }
        Command::Snapshot { reply, .. } => {
            let _ = reply.send(Err(AppendError::Log(error)));
        }
    }
}
