//! What a bare-SQLite baseline needs to write the embedded log's table as this adapter's writer
//! does: its schema, its writer connection's tuning and its background checkpointer. Only for the
//! B1 benchmark (`crates/bench`), which compares the adapter with raw `rusqlite` inserting the same
//! rows on the same disk; events are stored through [`SqliteEventLog`](crate::SqliteEventLog).

use std::path::Path;
use std::sync::mpsc;

use super::checkpoint::{self, WRITER_AUTOCHECKPOINT};
use super::WRITER_CACHE_KIB;
use crate::LogError;

/// The tables of the embedded log (`CREATE TABLE IF NOT EXISTS`).
pub const SCHEMA: &str = super::SCHEMA;

/// The writer connection's pragmas beyond WAL and `synchronous=FULL`: a large automatic
/// checkpoint threshold (the background checkpointer does the work) and its page cache.
pub const WRITER_PRAGMAS: [(&str, i64); 2] = [
    ("wal_autocheckpoint", WRITER_AUTOCHECKPOINT as i64),
    ("cache_size", WRITER_CACHE_KIB),
];

/// The adapter's background WAL checkpointer on a log file; it stops when this is dropped.
pub struct Checkpointer {
    _stop: mpsc::Sender<()>,
}

/// Start the adapter's background checkpointer on the log file at `path`.
pub fn start_checkpointer(path: &Path) -> Result<Checkpointer, LogError> {
    Ok(Checkpointer {
        _stop: checkpoint::start(path.to_path_buf())?,
    })
}
