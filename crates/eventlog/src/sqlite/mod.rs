//! The embedded SQLite adapter (the default store).
//!
//! One file in WAL mode with `synchronous=FULL`: an append is acknowledged only after the transaction
//! holding it is fsynced. All writes go through one writer thread that group-commits whatever is queued
//! (see `writer`); reads use separate pooled connections (see `reader`). Several processes may open the
//! same file: SQLite's write lock (waited on with `busy_timeout`) lets one writer at a time in, and each
//! writer takes positions from `MAX(position) + 1` inside its write transaction, so positions stay
//! gap-free across processes. Subscriptions are woken by this process's writer and also poll, so they
//! see events written by another process too; what this process's writer just committed they read from
//! memory (`tail`), the rest from the file.
//!
//! Duplicate event ids: an append whose events are all already in the stream returns the stream's
//! current outcome, whatever its expected version. An append where only some are already there is
//! rejected as a [`AppendError::Conflict`] (it cannot be a retry of one earlier, atomic append).

mod ack;
pub mod baseline;
pub(crate) mod checkpoint;
mod command;
mod head;
mod heads;
mod import;
mod integrity;
mod reader;
mod tail;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, ErrorCode, OpenFlags};
use serde::Serialize;
use std::sync::mpsc;

use tokio::sync::{oneshot, watch};

use crate::hash::VerifyReport;
use crate::seal::{Anchor, Integrity, LogKey, Mac};
use crate::subscription::{self, PageReader};
use crate::{
    AppendError, AppendOutcome, EventLog, ExpectedVersion, LogError, NewEvent, Position,
    RawEventSubscription, RawRecordedEvent, RecordedEvent, Snapshots, StreamVersion,
};
use command::{Command, EncodedEvent};
use reader::Reader;
use tail::Tail;
use writer::{Counters, Sealing, Writer};

pub use import::{import_into, ImportReport};

/// How long a writer waits for another process holding the write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Page cache of the writer connection, in KiB (SQLite's negative `cache_size` convention). 8 MiB:
/// 16 held `serve` over its memory target under load at no gain in speed (issue 18).
pub(crate) const WRITER_CACHE_KIB: i64 = -8_192;
/// Page cache of each reader connection, in KiB. Small on purpose: SQLite drops a reader's cache
/// whenever another connection has committed since its last read, which under load is every read, and a
/// stream read touches a handful of pages; SQLite's default (2 MiB) per pooled connection only held
/// resident memory (issue 18: B7 under load).
pub(crate) const READER_CACHE_KIB: i64 = -512;
/// How often a live subscription re-reads the file even without an in-process notification.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    position       INTEGER PRIMARY KEY,
    stream         TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    event_id       BLOB    NOT NULL,
    event_type     TEXT    NOT NULL,
    schema_version INTEGER NOT NULL,
    data           TEXT    NOT NULL,
    metadata       TEXT    NOT NULL,
    recorded_at    TEXT    NOT NULL,
    hash           TEXT    NOT NULL,
    mac            BLOB,
    UNIQUE (stream, version)
);
CREATE TABLE IF NOT EXISTS snapshots (
    stream   TEXT PRIMARY KEY,
    version  INTEGER NOT NULL,
    state    TEXT    NOT NULL,
    saved_at TEXT    NOT NULL
);
";

/// The embedded event log. Cheap to clone; the writer thread stops when the last clone is dropped
/// (subscriptions keep reading).
#[derive(Clone)]
pub struct SqliteEventLog {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    commands: mpsc::Sender<Command>,
    head: watch::Receiver<u64>,
    reader: Arc<Reader>,
    tail: Arc<Tail>,
    counters: Arc<Counters>,
    /// The key of the MAC chain (docs/decisions/0019); `None`: an unkeyed log (no MACs written).
    key: Option<LogKey>,
}

impl std::fmt::Debug for SqliteEventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteEventLog")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

/// Totals of the writer since `open` (group-commit efficiency: `events / transactions`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WriterStats {
    pub transactions: u64,
    pub appends: u64,
    pub events: u64,
    /// Writer-thread time spent preparing batches (dedup, hashing, inserts), commits excluded.
    pub write_micros: u64,
    /// Writer-thread time spent in `COMMIT`: the fsync, and any automatic WAL checkpoint.
    pub commit_micros: u64,
}

impl SqliteEventLog {
    /// Open (or create) the log file at `path`, unkeyed (its events carry no MAC: for tests and tools
    /// that make logs of their own; a deployment opens its log with [`open_keyed`](Self::open_keyed)),
    /// and start its writer thread.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, LogError> {
        Self::open_with(path.as_ref(), None)
    }

    /// Open (or create) the log file at `path` keyed with `key`: every event appended carries its MAC
    /// and a thread keeps the signed head record beside the file (`events.head` beside `events.db`).
    pub fn open_keyed(path: impl AsRef<Path>, key: LogKey) -> Result<Self, LogError> {
        Self::open_with(path.as_ref(), Some(key))
    }

    fn open_with(path: &Path, key: Option<LogKey>) -> Result<Self, LogError> {
        let path = path.to_path_buf();
        let conn = open_connection(&path)?;
        conn.execute_batch(SCHEMA).map_err(store_error)?;
        add_mac_column(&conn)?;
        let sealing = key
            .as_ref()
            .map(|key| seal(&conn, &path, key))
            .transpose()?;
        let head = reader::head_position(&conn)?;
        let (head_tx, head_rx) = watch::channel(head);
        let head_tx = Arc::new(head_tx);
        let (commands, rx) = mpsc::channel();
        let counters = Arc::new(Counters::default());
        conn.pragma_update(
            None,
            "wal_autocheckpoint",
            checkpoint::WRITER_AUTOCHECKPOINT,
        )
        .map_err(store_error)?;
        // The writer's working set (the tail of the table and of the stream index, plus stream heads read
        // on first use) must stay in SQLite's cache, or every insert pays a read from the WAL or the file.
        conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB)
            .map_err(store_error)?;
        let checkpointer = checkpoint::start(path.clone())?;
        let (acks, to_acknowledge) = mpsc::channel();
        let tail = Arc::new(Tail::default());
        let (kept, moved) = (Arc::clone(&tail), Arc::clone(&head_tx));
        std::thread::Builder::new()
            .name("eventlog-ack".into())
            .spawn(move || ack::acknowledge(to_acknowledge, &kept, &moved))
            .map_err(|e| LogError::Unavailable(format!("cannot start the ack thread: {e}")))?;
        let writer = Writer::new(
            conn,
            Arc::clone(&tail),
            Arc::clone(&counters),
            checkpointer,
            acks,
            head_tx,
            sealing,
        );
        std::thread::Builder::new()
            .name("eventlog-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| LogError::Unavailable(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                reader: Arc::new(Reader::new(path.clone())),
                tail,
                path,
                commands,
                head: head_rx,
                counters,
                key,
            }),
        })
    }

    /// The file this log lives in.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Writer totals since `open`.
    #[must_use]
    pub fn stats(&self) -> WriterStats {
        let c = &self.inner.counters;
        WriterStats {
            transactions: c.transactions.load(Ordering::Relaxed),
            appends: c.appends.load(Ordering::Relaxed),
            events: c.events.load(Ordering::Relaxed),
            write_micros: c.write_micros.load(Ordering::Relaxed),
            commit_micros: c.commit_micros.load(Ordering::Relaxed),
        }
    }

    /// Walk every stream's hash chain over the stored bytes, check positions are gap-free and, if the
    /// log is keyed, the MAC chain and the signed head record (docs/decisions/0019).
    pub async fn verify(&self) -> Result<VerifyReport, LogError> {
        self.verify_keyed(None).await
    }

    /// Where the signed head record of this log is kept.
    #[must_use]
    pub fn head_path(&self) -> PathBuf {
        head::head_path(&self.inner.path)
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, LogError> + Send + 'static,
    ) -> Result<T, LogError> {
        let reader = Arc::clone(&self.inner.reader);
        run_blocking(move || reader.with(f)).await
    }

    /// Follow the log from `from_position`: from the tail while the next position is there, else
    /// from the file.
    fn follow(&self, from_position: Position) -> RawEventSubscription {
        let reader = Arc::clone(&self.inner.reader);
        let tail = Arc::clone(&self.inner.tail);
        let following = tail.follow();
        let read: PageReader<String> = Box::new(move |from, limit| {
            let _following = &following;
            if let Some(page) = tail.page(from, limit, reader::decode_raw) {
                return Box::pin(std::future::ready(page));
            }
            let reader = Arc::clone(&reader);
            Box::pin(run_blocking(move || {
                reader.with(|c| reader::read_all(c, from, limit))
            }))
        });
        let wake = Some(self.inner.head.clone());
        subscription::follow(read, from_position, wake, POLL_INTERVAL)
    }

    async fn send<T>(
        &self,
        command: impl FnOnce(command::Reply<T>) -> Command,
    ) -> Result<T, AppendError> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .commands
            .send(command(reply))
            .map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }
}

#[async_trait]
impl EventLog for SqliteEventLog {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, AppendError> {
        // Serialize here, on the caller's task, so the single writer thread only hashes and inserts.
        let events = EncodedEvent::encode_all(events)?;
        let stream = stream.to_owned();
        self.send(|reply| Command::Append {
            stream,
            expected,
            events,
            reply,
        })
        .await
    }

    /// Read on the calling task, not on the blocking pool: one aggregate's stream is a few
    /// indexed rows (loads past a snapshot, or a cached state, read the tail only) from pages WAL
    /// readers find in the page cache, i.e. tens of microseconds, less than the two thread hand-offs
    /// of `spawn_blocking` (measured: B2 with the saga keeping up, 4,600-5,600 -> 6,700-7,200 req/s;
    /// docs/decisions/0007). Reads of the whole log (`read_all`) stay on the blocking pool.
    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        self.inner
            .reader
            .with(|c| reader::read_stream(c, stream, from_version, limit))
    }

    /// On the calling task, as `read_stream`: one indexed row.
    async fn stream_version(&self, stream: &str) -> Result<StreamVersion, LogError> {
        self.inner
            .reader
            .with(|c| reader::stream_version(c, stream))
    }

    async fn read_all(
        &self,
        from_position: Position,
        limit: usize,
    ) -> Result<Vec<RawRecordedEvent>, LogError> {
        if limit < reader::MAPPED_READ_EVENTS {
            return self
                .read(move |c| reader::read_all(c, from_position, limit))
                .await;
        }
        let reader = Arc::clone(&self.inner.reader);
        run_blocking(move || reader.with_mapped(|c| reader::read_all(c, from_position, limit)))
            .await
    }

    async fn head_position(&self) -> Result<Position, LogError> {
        self.read(reader::head_position).await
    }

    fn subscribe(&self, from_position: Position) -> RawEventSubscription {
        self.follow(from_position)
    }

    fn snapshots(&self) -> Option<Arc<dyn Snapshots>> {
        Some(Arc::new(self.clone()))
    }

    fn integrity(&self) -> Option<Arc<dyn Integrity>> {
        Some(Arc::new(self.clone()))
    }
}

#[async_trait]
impl Integrity for SqliteEventLog {
    async fn verify_keyed(&self, anchor: Option<&Anchor>) -> Result<VerifyReport, LogError> {
        let key = self.inner.key.clone();
        let head_path = self.head_path();
        let anchor = anchor.cloned();
        self.read(move |c| integrity::verify(c, key.as_ref(), &head_path, anchor.as_ref()))
            .await
    }

    async fn anchor(&self) -> Result<Anchor, LogError> {
        let Some(key) = self.inner.key.clone() else {
            return Err(LogError::Unavailable(
                "this log was opened without its key: it has no signed head".into(),
            ));
        };
        self.read(move |c| integrity::current(c, &key)).await
    }
}

/// Add the `mac` column to a log file written before it existed (its events stay without a MAC).
fn add_mac_column(conn: &Connection) -> Result<(), LogError> {
    let present: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM pragma_table_info('events') WHERE name = 'mac'",
            [],
            |r| r.get(0),
        )
        .map_err(store_error)?;
    if present == 0 {
        conn.execute_batch("ALTER TABLE events ADD COLUMN mac BLOB")
            .map_err(store_error)?;
    }
    Ok(())
}

/// Start keeping the signed head of a keyed log: where its keyed events begin (from a head record
/// that checks, else from the file), and its head as it is now.
fn seal(conn: &Connection, path: &Path, key: &LogKey) -> Result<Sealing, LogError> {
    let integrity::LastEvent {
        position,
        stream,
        version,
        mac,
    } = integrity::last_event(conn)?;
    let recorded = head::read(&head::head_path(path))
        .ok()
        .flatten()
        .filter(|h| h.signed_by(key));
    let first_keyed = match recorded {
        Some(h) if h.keyed_from <= position + 1 => Some(h.keyed_from),
        _ => integrity::first_keyed(conn)?,
    };
    let keyed_from = first_keyed.unwrap_or(position + 1);
    let first = head::Head {
        position,
        stream,
        version,
        mac: mac.and_then(|m| Mac::try_from(m).ok()),
    };
    let may_create = keyed_from > position;
    let heads = head::start(path, key.clone(), keyed_from, first, may_create)?;
    Ok(Sealing {
        key: key.clone(),
        heads,
    })
}

/// Snapshots live in the log's file, table `snapshots` (one row per stream, the latest), written by
/// the log's writer thread.
#[async_trait]
impl Snapshots for SqliteEventLog {
    async fn load(&self, stream: &str) -> Result<Option<(u64, serde_json::Value)>, LogError> {
        let stream = stream.to_owned();
        self.read(move |c| reader::load_snapshot(c, &stream)).await
    }

    async fn save(
        &self,
        stream: &str,
        version: u64,
        state: serde_json::Value,
    ) -> Result<(), LogError> {
        let state = serde_json::to_string(&state)
            .map_err(|e| LogError::Corrupt(format!("snapshot of {stream}: {e}")))?;
        let stream = stream.to_owned();
        let saved = self.send(|reply| Command::Snapshot {
            stream,
            version,
            state,
            reply,
        });
        saved.await.map_err(|e| match e {
            AppendError::Log(e) => e,
            conflict @ AppendError::Conflict { .. } => LogError::Corrupt(conflict.to_string()),
        })
    }
}

/// A connection with the adapter's settings: WAL, fsync on every commit, wait on other processes' locks.
fn open_connection(path: &Path) -> Result<Connection, LogError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(store_error)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(store_error)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(store_error)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(store_error)?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, LogError> + Send + 'static,
) -> Result<T, LogError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| LogError::Unavailable(format!("reader task failed: {e}")))?
}

fn writer_gone() -> AppendError {
    AppendError::Log(LogError::Unavailable(
        "the event log writer has stopped".into(),
    ))
}

/// SQLite errors: a damaged file or a value of the wrong type is `Corrupt`; anything else (I/O, busy,
/// full disk) `Unavailable`.
fn store_error(e: rusqlite::Error) -> LogError {
    use rusqlite::Error as E;
    match &e {
        E::InvalidColumnType(..)
        | E::FromSqlConversionFailure(..)
        | E::IntegralValueOutOfRange(..) => LogError::Corrupt(e.to_string()),
        _ => match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
                LogError::Corrupt(e.to_string())
            }
            _ => LogError::Unavailable(e.to_string()),
        },
    }
}

fn to_i64(value: u64) -> Result<i64, LogError> {
    i64::try_from(value).map_err(|_| LogError::Corrupt(format!("{value} does not fit the store")))
}

fn to_u64(value: i64) -> Result<u64, LogError> {
    u64::try_from(value)
        .map_err(|_| LogError::Corrupt(format!("negative value {value} in the store")))
}
