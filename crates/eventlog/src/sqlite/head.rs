//! The signed head record beside the log file (`events.head` beside `events.db`): the newest
//! [`Anchor`] of the MAC chain, rewritten by a thread of its own at most every [`INTERVAL`] (and when
//! the writer stops), never on the append path. The writer leaves each commit's head in a
//! [`HeadSlot`] and wakes the thread only when the slot was empty: at most once an interval, not at
//! every commit. The record only moves forward along the same chain: a record whose signature does
//! not check, or whose event is no longer in the log as it records it, is left as it is (it is the
//! evidence the check reports), and a missing record is only created for a log that held no keyed
//! event when it was opened (docs/decisions/0019).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension};

use super::{open_connection, store_error};
use crate::seal::{same_mac, Anchor, LogKey, Mac};
use crate::LogError;

/// How often, at most, the head record is rewritten while the log grows.
const INTERVAL: Duration = Duration::from_millis(200);

/// Where the head record of the log file at `events` is.
#[must_use]
pub(crate) fn head_path(events: &Path) -> PathBuf {
    events.with_extension("head")
}

/// The newest committed event of the keyed log, sent by the writer after each commit.
pub(crate) struct Head {
    pub position: u64,
    pub stream: String,
    pub version: u64,
    pub mac: Option<Mac>,
}

/// The head record at `path`, if there is one.
pub(crate) fn read(path: &Path) -> Result<Option<Anchor>, LogError> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| LogError::Corrupt(format!("the head record {}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LogError::Unavailable(format!(
            "reading the head record {}: {e}",
            path.display()
        ))),
    }
}

/// The stored MAC at `position` (`None` for position 0, a missing row or an unkeyed event).
pub(crate) fn stored_mac(conn: &Connection, position: u64) -> Result<Option<Vec<u8>>, LogError> {
    let position = i64::try_from(position).unwrap_or(i64::MAX);
    let mac: Option<Option<Vec<u8>>> = conn
        .prepare_cached("SELECT CAST(mac AS BLOB) FROM events WHERE position = ?1")
        .and_then(|mut s| s.query_row([position], |r| r.get(0)).optional())
        .map_err(store_error)?;
    Ok(mac.flatten())
}

/// Where the writer leaves the newest committed head for the head thread.
pub(crate) struct HeadSlot {
    newest: Arc<Mutex<Option<Head>>>,
    wake: mpsc::Sender<()>,
}

impl HeadSlot {
    /// Leave `head` (newer than any before it) for the thread, waking it if it had taken the last one.
    pub(crate) fn put(&self, head: Head) {
        let was_empty = lock(&self.newest).replace(head).is_none();
        if was_empty {
            // The head thread stops only with the writer.
            let _ = self.wake.send(());
        }
    }
}

fn lock(newest: &Mutex<Option<Head>>) -> std::sync::MutexGuard<'_, Option<Head>> {
    newest.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Start the thread that keeps the head record of the log at `events`; it writes `first` at once and
/// stops (writing the last head it was given) when the returned slot is dropped.
pub(crate) fn start(
    events: &Path,
    key: LogKey,
    keyed_from: u64,
    first: Head,
    may_create: bool,
) -> Result<HeadSlot, LogError> {
    let keeper = Keeper {
        conn: open_connection(events)?,
        path: head_path(events),
        key,
        keyed_from,
        may_create,
    };
    let newest = Arc::new(Mutex::new(None));
    let (wake, woken) = mpsc::channel();
    let taken = Arc::clone(&newest);
    std::thread::Builder::new()
        .name("eventlog-head".into())
        .spawn(move || keeper.run(first, &taken, &woken))
        .map_err(|e| LogError::Unavailable(format!("cannot start the head thread: {e}")))?;
    Ok(HeadSlot { newest, wake })
}

struct Keeper {
    conn: Connection,
    path: PathBuf,
    key: LogKey,
    keyed_from: u64,
    may_create: bool,
}

impl Keeper {
    /// Publish `first`, then, at each wake, the newest head once [`INTERVAL`] has passed since the
    /// last write (at once if the writer stops meanwhile); the last one when the writer is gone.
    fn run(mut self, first: Head, newest: &Mutex<Option<Head>>, woken: &mpsc::Receiver<()>) {
        self.publish(&first);
        let mut written = Instant::now();
        loop {
            let mut stopping = woken.recv().is_err();
            if !stopping {
                let wait = INTERVAL.saturating_sub(written.elapsed());
                // No other wake comes while the slot is full: only the writer's end ends the wait.
                stopping = !wait.is_zero()
                    && woken.recv_timeout(wait) == Err(RecvTimeoutError::Disconnected);
            }
            let head = lock(newest).take();
            if let Some(head) = head {
                self.publish(&head);
                written = Instant::now();
            }
            if stopping {
                return;
            }
        }
    }

    fn publish(&mut self, head: &Head) {
        match self.replaceable(head.position) {
            Ok(true) => {}
            Ok(false) => return,
            Err(reason) => {
                tracing::error!(path = %self.path.display(), %reason, "eventlog: the signed head record is not replaced");
                return;
            }
        }
        let anchor = Anchor::sign(
            &self.key,
            head.position,
            &head.stream,
            head.version,
            head.mac.as_ref(),
            self.keyed_from,
        );
        match write_atomically(&self.path, &anchor) {
            Ok(()) => self.may_create = false,
            Err(e) => {
                tracing::error!(path = %self.path.display(), error = %e, "eventlog: cannot write the signed head record");
            }
        }
    }

    /// Whether the record on disk may be replaced by one at `position`: `Ok(false)` if it is already
    /// there or further, `Err` (why) if it must be kept as evidence.
    fn replaceable(&self, position: u64) -> Result<bool, String> {
        let old = match read(&self.path) {
            Ok(Some(old)) => old,
            Ok(None) if self.may_create => return Ok(true),
            Ok(None) => return Err("it is missing, and the log holds keyed events".into()),
            Err(e) => return Err(e.to_string()),
        };
        if !old.signed_by(&self.key) {
            return Err("its signature does not check with this log's key".into());
        }
        if old.position >= position {
            return Ok(false);
        }
        let stored = stored_mac(&self.conn, old.position).map_err(|e| e.to_string())?;
        let recorded = old.mac_bytes().map_err(|e| e.to_string())?;
        let same = match (&stored, &recorded) {
            (None, None) => true,
            (Some(a), Some(b)) => same_mac(a, b),
            _ => false,
        };
        if same {
            Ok(true)
        } else {
            Err(format!(
                "the log no longer holds the event it records at position {}",
                old.position
            ))
        }
    }
}

/// Write `anchor` to `path` through a temporary file (mode 0600), fsynced, then renamed over it.
fn write_atomically(path: &Path, anchor: &Anchor) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(anchor).map_err(std::io::Error::other)?;
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let unique = WRITES.fetch_add(1, Ordering::Relaxed);
    let temporary = path.with_extension(format!("head.{}-{unique}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temporary)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}
