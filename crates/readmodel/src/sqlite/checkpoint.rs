//! WAL checkpoints off the writers' path (the views' projector, the notifier's inbox): a background
//! thread with its own connection copies committed WAL frames into the database file every
//! [`INTERVAL`] (`PRAGMA wal_checkpoint(PASSIVE)`: it never waits for readers or the writer). Without
//! it, SQLite checkpoints inside a `COMMIT` once the WAL passes the writer's threshold, and that batch
//! (and the lag of every event in it) pays for copying thousands of pages and an fsync of the
//! database file. The writer keeps the automatic checkpoint as a safety net, at
//! [`WRITER_AUTOCHECKPOINT`] pages.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use rusqlite::Connection;

use super::schema::{self, store_error};
use crate::ViewError;

/// How often the background thread checkpoints. Once a second would copy a page updated several
/// times in between once (the views took 28 KiB of copies a B3 `pay_first` flow at 100 ms, 11 KiB at
/// 1 s), but each checkpoint then writes tens of MiB at once, and the appends' fsyncs behind it put
/// B4's lag p99 at 80-105 ms against 36-47 (docs/benchmarks.md, eleventh session).
const INTERVAL: Duration = Duration::from_millis(100);
/// Automatic checkpoint threshold (pages of 4 KiB) of the writer connection, if the background one
/// falls behind (e.g. a reader holding an old snapshot for long).
pub(super) const WRITER_AUTOCHECKPOINT: u32 = 32_768;

/// Stops the checkpointer when dropped (with the store).
#[derive(Debug)]
pub(super) struct Checkpointer {
    _stop: mpsc::Sender<()>,
}

/// Start checkpointing the store at `path` in the background.
pub(super) fn start(path: &Path, thread: &str) -> Result<Checkpointer, ViewError> {
    let conn = schema::open_checkpointer(path)?;
    let (stop, stopped) = mpsc::channel::<()>();
    std::thread::Builder::new()
        .name(thread.into())
        .spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
                if let Err(e) = checkpoint(&conn) {
                    tracing::warn!(error = %e, "view store: background checkpoint failed");
                }
            }
        })
        .map_err(|e| {
            ViewError::Unavailable(format!("cannot start the view store's checkpointer: {e}"))
        })?;
    Ok(Checkpointer { _stop: stop })
}

fn checkpoint(conn: &Connection) -> Result<(), ViewError> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
        .map_err(store_error)
}
