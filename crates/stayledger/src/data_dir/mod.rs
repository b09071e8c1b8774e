//! The data dir of the embedded deployment (`--data-dir`): what every file in it is called, and
//! opening the embedded stores in it. Every other module asks here; none joins a file name itself.
//!
//! | file | what |
//! |---|---|
//! | `events.db` | the event log |
//! | `views.db`, or the file `views.generation` names | the views (`stayledger replay` makes a new generation) |
//! | `saga.db`, `saga-{i}-of-{n}.db`, `saga-group-{member}.db` | the saga's timer store: all of it, one shard, one consumer-group member |
//! | `leases.db` | the scale-out leases of the processes of one host |
//! | `jwt-secret` | the JWT signing secret ([`secret`]) |
//! | `log-key` | the event log's key ([`log_key`]; `--log-key` keeps it elsewhere) |
//! | `events.head` | the signed head of the log's MAC chain, kept by the log itself |
//!
//! Must not: decide which store a process uses (embedded or a server by URL: `stores`), nor hold
//! what the stores do.

mod generation;
pub mod log_key;
pub mod secret;

use std::path::{Path, PathBuf};

use anyhow::Context;
use eventlog::SqliteEventLog;
use readmodel::SqliteViewStore;
use saga::{Shard, SqliteTimerStore};

use crate::lease::LeaseTable;

pub use generation::{current_views_file, fresh_views_file, publish_generation};

/// The event log.
pub const EVENTS_FILE: &str = "events.db";
/// The views, until `replay` names another file in [`VIEWS_GENERATION_FILE`].
pub const VIEWS_FILE: &str = "views.db";
/// The file naming the views file in use; absent means [`VIEWS_FILE`].
pub const VIEWS_GENERATION_FILE: &str = "views.generation";
/// The saga's timer store when one saga handles every reservation (as `serve`).
pub const SAGA_FILE: &str = "saga.db";
/// The lease table of scaled-out consumers.
pub const LEASES_FILE: &str = "leases.db";
/// The JWT signing secret (hex).
pub const SECRET_FILE: &str = "jwt-secret";
/// The event log's key (hex), unless `--log-key` names another file.
pub const LOG_KEY_FILE: &str = "log-key";

/// Where the event log of `data_dir` is.
#[must_use]
pub fn events_path(data_dir: &Path) -> PathBuf {
    data_dir.join(EVENTS_FILE)
}

/// Where the first generation of the views of `data_dir` is (before any `replay`).
#[must_use]
pub fn views_path(data_dir: &Path) -> PathBuf {
    data_dir.join(VIEWS_FILE)
}

/// The saga's timer file for `shard`: `saga.db` for the only shard, else one file per shard, since
/// each shard keeps its own checkpoint and timers.
#[must_use]
pub fn timer_path(data_dir: &Path, shard: Shard) -> PathBuf {
    let file = if shard == Shard::ALL {
        SAGA_FILE.to_string()
    } else {
        format!("saga-{}-of-{}.db", shard.index(), shard.count())
    };
    data_dir.join(file)
}

/// The embedded event log in `data_dir` (created if missing), keyed with the key at `key_file` (default
/// `log-key` in `data_dir`; created if missing).
pub fn sqlite_log(data_dir: &Path, key_file: Option<&Path>) -> anyhow::Result<SqliteEventLog> {
    create_dir(data_dir)?;
    let key = log_key::load_or_create(&log_key::path(data_dir, key_file))?;
    SqliteEventLog::open_keyed(events_path(data_dir), key).context("opening the event log")
}

/// The embedded event log in `data_dir`, which must be there already (the auditor tools): keyed if
/// its key is found (never created here), else unkeyed (its check then says it was not keyed).
pub fn existing_log(data_dir: &Path, key_file: Option<&Path>) -> anyhow::Result<SqliteEventLog> {
    let path = events_path(data_dir);
    anyhow::ensure!(path.exists(), "no event log at {}", path.display());
    let opened = match log_key::load(&log_key::path(data_dir, key_file))? {
        Some(key) => SqliteEventLog::open_keyed(&path, key),
        None => SqliteEventLog::open(&path),
    };
    opened.context("opening the event log")
}

/// The embedded view store in `data_dir`: the current generation (created if missing).
pub fn sqlite_views(data_dir: &Path) -> anyhow::Result<SqliteViewStore> {
    create_dir(data_dir)?;
    let file = current_views_file(data_dir)?;
    SqliteViewStore::open(data_dir.join(file)).context("opening the view store")
}

/// The view store file `name` in `data_dir` (a generation made by `replay`; created if missing).
pub fn views_generation(data_dir: &Path, name: &str) -> anyhow::Result<SqliteViewStore> {
    SqliteViewStore::open(data_dir.join(name)).with_context(|| format!("opening {name}"))
}

/// The saga's timer store in `data_dir` for `shard` (see [`timer_path`]).
pub fn timer_store(data_dir: &Path, shard: Shard) -> anyhow::Result<SqliteTimerStore> {
    create_dir(data_dir)?;
    SqliteTimerStore::open(timer_path(data_dir, shard)).context("opening the saga store")
}

/// The saga's timer store as member `member` of a consumer group: `saga-group-{member}.db`, kept
/// by the member across restarts (the group hands out events, not the timers they armed).
pub fn group_timer_store(data_dir: &Path, member: &str) -> anyhow::Result<SqliteTimerStore> {
    create_dir(data_dir)?;
    SqliteTimerStore::open(data_dir.join(format!("saga-group-{member}.db")))
        .context("opening the saga store")
}

/// The lease table of the processes sharing `data_dir` (created if missing).
pub fn lease_table(data_dir: &Path) -> anyhow::Result<LeaseTable> {
    create_dir(data_dir)?;
    Ok(LeaseTable::open(data_dir.join(LEASES_FILE))?)
}

/// Create `data_dir` if it is not there.
pub fn create_dir(data_dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data dir {}", data_dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_keep_their_own_timer_files() {
        let dir = tempfile::tempdir().expect("dir");
        timer_store(dir.path(), Shard::ALL).expect("all");
        timer_store(dir.path(), Shard::new(1, 2).expect("shard")).expect("one of two");
        assert!(dir.path().join(SAGA_FILE).exists());
        assert!(dir.path().join("saga-1-of-2.db").exists());
    }
}
