//! The single writer: one thread, one connection, group commit.
//!
//! Appends arrive on a channel, already serialized by the caller. The thread takes everything queued at
//! that moment and writes it in ONE transaction (`BEGIN IMMEDIATE`, so other processes sharing the file
//! wait on SQLite's lock), then one `COMMIT` (fsynced: `synchronous=FULL`), and only then answers each
//! append. Every append is checked on its own (event-id dedup, expected version) before anything is
//! written, so a conflict never touches the others; if an insert still fails, the transaction is rolled
//! back, that append alone gets the error and the rest of the batch is written again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use rusqlite::{params, Connection, ErrorCode, OptionalExtension};
use std::sync::mpsc;

use tokio::sync::watch;

use super::ack::{fail_command, release, Acks, Inserted};
use super::command::{Command, EncodedEvent};
use super::head::{Head, HeadSlot};
use super::heads::Heads;
use super::tail::Tail;
use super::{store_error, to_i64, to_u64};
use crate::hash::{self, CanonicalEvent};
use crate::seal::{LogKey, Mac};
use crate::{AppendError, AppendOutcome, ExpectedVersion, LogError};

/// Upper bound of events written in one transaction (keeps a commit's latency bounded).
const MAX_BATCH_EVENTS: usize = 16_384;
/// Longest the writer waits for the callers it just answered to come back, before writing a smaller batch.
const GATHER_WAIT: Duration = Duration::from_micros(250);

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

pub(crate) type Answer = Result<AppendOutcome, AppendError>;

/// Why a batch attempt stopped: one append's insert failed, or the store itself did.
enum BatchError {
    Append(usize, String),
    Store(LogError),
}

impl BatchError {
    /// Name the command of the batch that failed.
    fn at(self, index: usize) -> Self {
        match self {
            Self::Append(_, e) => Self::Append(index, e),
            store @ Self::Store(_) => store,
        }
    }
}

/// A committed batch: each command's answer, the head position after it, and what it inserted.
struct Written {
    answers: Vec<Answer>,
    head: u64,
    inserted: Vec<Inserted>,
    recorded_at: String,
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
    /// Whether anyone follows the log (rows are handed over for the tail only then).
    tail: Arc<Tail>,
    heads: Heads,
    counters: Arc<Counters>,
    /// Dropped with the writer, which stops the background checkpointer.
    _checkpointer: mpsc::Sender<()>,
    /// Committed batches go to the acknowledging thread, so keeping their rows in the tail, waking
    /// the subscriptions and the callers (and freeing what they sent) overlaps the next batch instead
    /// of delaying it.
    acks: mpsc::Sender<Acks>,
    /// The head watch, moved by the acknowledging thread; by the writer itself only if that thread
    /// is gone (then subscriptions read the new rows from the file).
    head: Arc<watch::Sender<u64>>,
    /// Commands in the last batch: that many callers were just answered and are likely to send again.
    last_batch: usize,
    /// The key of the MAC chain and where the new head goes after each commit; `None`: an unkeyed log.
    sealing: Option<Sealing>,
}

/// What a keyed writer needs: the key, and the head thread's slot (`head.rs`).
pub(crate) struct Sealing {
    pub key: LogKey,
    pub heads: HeadSlot,
}

impl Writer {
    pub(crate) fn new(
        conn: Connection,
        tail: Arc<Tail>,
        counters: Arc<Counters>,
        checkpointer: mpsc::Sender<()>,
        acks: mpsc::Sender<Acks>,
        head: Arc<watch::Sender<u64>>,
        sealing: Option<Sealing>,
    ) -> Self {
        Self {
            conn,
            tail,
            heads: Heads::default(),
            counters,
            _checkpointer: checkpointer,
            acks,
            head,
            last_batch: 0,
            sealing,
        }
    }

    /// Serve the channel until every sender is gone.
    pub(crate) fn run(mut self, rx: mpsc::Receiver<Command>) {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            let written = self.try_batch(&mut batch, Some(&rx));
            self.last_batch = batch.len();
            self.finish(batch, written);
        }
    }

    /// Answer a written batch; if one append in it failed, answer that one and write the rest again.
    fn finish(&mut self, mut batch: Vec<Command>, mut written: Result<Written, BatchError>) {
        loop {
            match written {
                Ok(written) => {
                    self.count(&batch);
                    let acks = Acks {
                        answered: batch.into_iter().zip(written.answers).collect(),
                        inserted: written.inserted,
                        recorded_at: written.recorded_at,
                        head: written.head,
                    };
                    if let Err(mpsc::SendError(acks)) = self.acks.send(acks) {
                        release(acks, &self.head);
                    }
                    return;
                }
                Err(BatchError::Append(index, e)) => {
                    self.abort();
                    let failed = batch.remove(index);
                    fail_command(failed, &LogError::Corrupt(format!("append rejected: {e}")));
                    if batch.is_empty() {
                        return;
                    }
                    written = self.try_batch(&mut batch, None);
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

    fn count(&self, batch: &[Command]) {
        let (appends, events) = batch.iter().fold((0, 0), |(a, e), c| match c {
            Command::Append { events, .. } => (a + 1, e + events.len() as u64),
            Command::Snapshot { .. } => (a, e),
        });
        self.counters.transactions.fetch_add(1, Ordering::Relaxed);
        self.counters.appends.fetch_add(appends, Ordering::Relaxed);
        self.counters.events.fetch_add(events, Ordering::Relaxed);
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

    /// One transaction: write `batch`; with `more`, keep taking commands from the channel and writing each
    /// as it arrives (so the callers' turnaround overlaps the writer's work) until as many commands as in
    /// the last batch are in, or [`GATHER_WAIT`] has passed. Then one `COMMIT`.
    fn try_batch(
        &mut self,
        batch: &mut Vec<Command>,
        more: Option<&mpsc::Receiver<Command>>,
    ) -> Result<Written, BatchError> {
        let started = Instant::now();
        let deadline = started + GATHER_WAIT;
        let mut waited = Duration::ZERO;
        let mut cursor = self.begin()?;
        let mut answers = Vec::with_capacity(batch.len());
        let mut size = 0;
        loop {
            while let Some(command) = batch.get(answers.len()) {
                size += command.event_count();
                let index = answers.len();
                cursor.command = index;
                answers.push(self.apply(command, &mut cursor).map_err(|e| e.at(index))?);
            }
            let Some(rx) = more.filter(|_| size < MAX_BATCH_EVENTS) else {
                break;
            };
            let next = match rx.try_recv() {
                Ok(command) => Ok(command),
                Err(_) if batch.len() >= self.last_batch => break,
                Err(_) => {
                    let waiting = Instant::now();
                    let next = rx.recv_timeout(deadline.saturating_duration_since(waiting));
                    waited += waiting.elapsed();
                    next
                }
            };
            match next {
                Ok(command) => batch.push(command),
                Err(_) => break,
            }
        }
        let committing = Instant::now();
        self.conn.prepare_cached("COMMIT")?.execute([])?;
        let c = &self.counters;
        let writing = (committing - started).saturating_sub(waited);
        c.write_micros.fetch_add(micros(writing), Ordering::Relaxed);
        c.commit_micros
            .fetch_add(micros(committing.elapsed()), Ordering::Relaxed);
        if let (Some(sealing), Some((stream, version))) = (&self.sealing, cursor.last.take()) {
            let head = Head {
                position: cursor.position,
                stream,
                version,
                mac: cursor.mac,
            };
            sealing.heads.put(head);
        }
        Ok(Written {
            answers,
            head: cursor.position,
            inserted: cursor.inserted,
            recorded_at: cursor.recorded_at,
        })
    }

    /// Open the write transaction and bring the in-memory stream state up to the file's head (and the
    /// MAC chain, if keyed, onto the last event's MAC: all zeros before the first keyed event).
    fn begin(&mut self) -> Result<Cursor, BatchError> {
        self.conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        let (max, mac): (i64, Option<Vec<u8>>) = self
            .conn
            .prepare_cached(
                "SELECT position, CAST(mac AS BLOB) FROM events ORDER BY position DESC LIMIT 1",
            )?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?
            .unwrap_or((0, None));
        let mac = self
            .sealing
            .as_ref()
            .map(|_| mac.and_then(|m| Mac::try_from(m).ok()).unwrap_or([0; 32]));
        let cursor = Cursor {
            mac,
            last: None,
            position: to_u64(max)?,
            recorded_at: hash::format_recorded_at(&hash::recording_instant(Utc::now())),
            command: 0,
            keep: self.tail.followed(),
            inserted: Vec::new(),
        };
        self.heads.sync(&self.conn, cursor.position)?;
        Ok(cursor)
    }

    fn apply(&mut self, command: &Command, cursor: &mut Cursor) -> Result<Answer, BatchError> {
        match command {
            Command::Append {
                stream,
                expected,
                events,
                ..
            } => self.append(stream, *expected, events, cursor),
            Command::Snapshot {
                stream,
                version,
                state,
                ..
            } => {
                self.snapshot(stream, *version, state, &cursor.recorded_at)?;
                Ok(Ok(AppendOutcome {
                    last_version: *version,
                    position: 0,
                }))
            }
        }
    }

    fn append(
        &mut self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[EncodedEvent],
        cursor: &mut Cursor,
    ) -> Result<Answer, BatchError> {
        let state = self.heads.get(&self.conn, stream, events.len())?;
        let actual = state.as_ref().map(|s| s.version);
        if let Some(s) = &state {
            let present = events
                .iter()
                .filter(|e| s.ids.contains(&e.event_id))
                .count();
            if present > 0 && present == events.len() {
                // Every event is already there: the append happened before; report the stream as it is.
                return Ok(Ok(AppendOutcome {
                    last_version: s.version,
                    position: s.position,
                }));
            }
            if present > 0 {
                // Some but not all: not a retry of one earlier append (appends are atomic). Reject it.
                return Ok(Err(conflict(stream, expected, actual)));
            }
        }
        let matches = match expected {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual.is_none(),
            ExpectedVersion::Exact(v) => actual == Some(v),
        };
        if !matches {
            return Ok(Err(conflict(stream, expected, actual)));
        }
        let ids = events.iter().map(|e| e.event_id);
        let last = match state {
            Some(s) if events.is_empty() => (s.version, s.position),
            None if events.is_empty() => (0, 0),
            Some(s) => {
                let key = self.sealing.as_ref().map(|s| &s.key);
                let (version, position, hash) = insert(
                    &self.conn,
                    key,
                    stream,
                    events,
                    s.version + 1,
                    &s.hash,
                    cursor,
                )?;
                (s.version, s.position, s.hash) = (version, position, hash);
                let before = s.ids.len();
                s.ids.extend(ids);
                let after = s.ids.len();
                self.heads.added(before, after, position);
                (version, position)
            }
            None => {
                let key = self.sealing.as_ref().map(|s| &s.key);
                let (version, position, hash) =
                    insert(&self.conn, key, stream, events, 0, "", cursor)?;
                self.heads.create(stream, ids, version, position, hash);
                (version, position)
            }
        };
        Ok(Ok(AppendOutcome {
            last_version: last.0,
            position: last.1,
        }))
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

/// Insert `events` (at least one) from `version` on, chained onto `prev_hash` (and, with `key`, onto
/// the cursor's MAC); returns the last (version, position, hash).
fn insert(
    conn: &Connection,
    key: Option<&LogKey>,
    stream: &str,
    events: &[EncodedEvent],
    mut version: u64,
    prev_hash: &str,
    cursor: &mut Cursor,
) -> Result<(u64, u64, String), BatchError> {
    let mut prev_hash = prev_hash.to_owned();
    let keep = cursor.keep;
    let mut inserted = Inserted {
        command: cursor.command,
        first_position: cursor.position + 1,
        first_version: version,
        hashes: Vec::with_capacity(if keep { events.len() } else { 0 }),
    };
    let mut statement = conn.prepare_cached(
        "INSERT INTO events (position, stream, version, event_id, event_type, schema_version, \
         data, metadata, recorded_at, hash, mac) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
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
        let mac = match (key, cursor.mac.as_mut()) {
            (Some(key), Some(prev)) => {
                *prev = key.chain(prev, position, &hash);
                Some(prev.as_slice())
            }
            _ => None,
        };
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
                mac,
            ])
            .map_err(|e| match e.sqlite_error_code() {
                Some(ErrorCode::ConstraintViolation) => BatchError::Append(0, e.to_string()),
                _ => BatchError::from(e),
            })?;
        cursor.position = position;
        if keep {
            inserted.hashes.push(hash.clone());
        }
        prev_hash = hash;
        if i + 1 < events.len() {
            version += 1;
        }
    }
    if keep {
        cursor.inserted.push(inserted);
    }
    if key.is_some() {
        cursor.last = Some((stream.to_owned(), version));
    }
    Ok((version, cursor.position, prev_hash))
}

/// Where the batch being written stands: the last position used and its shared `recorded_at`, the
/// command being written, and the rows written so far (if kept for the tail).
struct Cursor {
    position: u64,
    /// The MAC of the event at `position`, if the log is keyed.
    mac: Option<Mac>,
    /// The stream and version of the last event this batch inserted (for the head), if keyed.
    last: Option<(String, u64)>,
    recorded_at: String,
    command: usize,
    /// Whether to hand the rows over for the tail (someone follows the log).
    keep: bool,
    inserted: Vec<Inserted>,
}

fn conflict(stream: &str, expected: ExpectedVersion, actual: Option<u64>) -> AppendError {
    AppendError::Conflict {
        stream: stream.to_owned(),
        expected,
        actual,
    }
}
