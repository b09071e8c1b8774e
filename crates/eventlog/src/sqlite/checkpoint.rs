//! WAL checkpoints off the writer's path: a background thread with its own connection copies committed
//! WAL frames into the database file every [`INTERVAL`], so the writer's `COMMIT` is only the WAL fsync
//! instead of also, every so often, a checkpoint of a thousand pages and a database fsync.
//! The writer keeps SQLite's automatic checkpoint as a safety net, at a much larger WAL size.

use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use super::{open_connection, store_error};
use crate::LogError;

/// How often the background thread checkpoints. Less often copies a hot page (the `(stream,
/// version)` index's leaves) fewer times: 34 KiB a B3 `pay_first` flow at 50 ms, 20 at 250 ms, 14 at
/// 1 s. But each checkpoint is then a larger burst of writes, and the appends' fsyncs wait behind it:
/// B2 lost ~6% at 250 ms (docs/benchmarks.md, eleventh session).
const INTERVAL: Duration = Duration::from_millis(50);
/// Automatic checkpoint threshold (in pages) of the writer connection, if the background one falls behind.
pub(crate) const WRITER_AUTOCHECKPOINT: u32 = 20_000;

/// Start the checkpointer; it stops when the returned sender is dropped (with the writer).
pub(crate) fn start(path: PathBuf) -> Result<mpsc::Sender<()>, LogError> {
    let conn = open_connection(&path)?;
    let (stop, stopped) = mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("eventlog-checkpoint".into())
        .spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
                let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                if let Err(e) = result.map_err(store_error) {
                    tracing::warn!(error = %e, "eventlog: background checkpoint failed");
                }
            }
        })
        .map_err(|e| LogError::Unavailable(format!("cannot start the checkpoint thread: {e}")))?;
    Ok(stop)
}
