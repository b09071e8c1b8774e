//! Connection settings and the schema of the SQLite view store.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::ViewError;

/// How long a connection waits for another connection's (or process's) write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Bumped whenever the layout changes; a store at another version is dropped and rebuilt from the
/// log (its checkpoint goes with it), since views are derived data.
const SCHEMA_VERSION: i64 = 7;

/// The writer's page cache (negative: KiB), and while a rebuild loads an empty store. 8 MiB: 16
/// held `serve` over its memory target under load at no gain in speed (issue 18, docs/benchmarks.md).
pub(super) const WRITER_CACHE_KIB: i64 = -8_192;
pub(super) const BULK_LOAD_CACHE_KIB: i64 = -65_536;

const DROP: &str = "
DROP TABLE IF EXISTS reservations;
DROP TABLE IF EXISTS requests;
DROP TABLE IF EXISTS lodgings;
DROP TABLE IF EXISTS calendar;
DROP TABLE IF EXISTS payouts;
DROP TABLE IF EXISTS customers;
DROP TABLE IF EXISTS checkpoints;
DROP TABLE IF EXISTS dead_letters;
";

/// List documents are keyed by `seq` (the rowid: the position of the event that created them), so
/// inserts append and every list is read in rowid order; secondary indexes end in the rowid, so an
/// index on `customer_id` alone serves `WHERE customer_id = ? ORDER BY seq`.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS reservations (
    seq INTEGER PRIMARY KEY,
    reservation_id TEXT NOT NULL UNIQUE,
    customer_id TEXT NOT NULL,
    lodging_id TEXT NOT NULL,
    status TEXT NOT NULL,
    check_in TEXT NOT NULL,
    position INTEGER NOT NULL,
    doc TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS requests (
    seq INTEGER PRIMARY KEY,
    reservation_id TEXT NOT NULL UNIQUE,
    lodging_id TEXT NOT NULL,
    request_status TEXT NOT NULL,
    check_in TEXT NOT NULL,
    position INTEGER NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_pending_by_check_in ON requests (lodging_id, check_in)
    WHERE request_status = 'pending';

CREATE TABLE IF NOT EXISTS lodgings (
    lodging_id TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    doc TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS calendar (
    lodging_id TEXT NOT NULL,
    night TEXT NOT NULL,
    booked INTEGER NOT NULL,
    held INTEGER NOT NULL DEFAULT 0,
    position INTEGER NOT NULL,
    PRIMARY KEY (lodging_id, night)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS payouts (
    seq INTEGER PRIMARY KEY,
    reservation_id TEXT NOT NULL UNIQUE,
    lodging_id TEXT NOT NULL,
    host_id TEXT NOT NULL,
    status TEXT NOT NULL,
    currency TEXT NOT NULL,
    gross INTEGER NOT NULL,
    fee INTEGER NOT NULL,
    net INTEGER NOT NULL,
    position INTEGER NOT NULL,
    doc TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS customers (
    customer_id TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    doc TEXT NOT NULL
);

";

/// The indexes only queries use (`name`, `table (columns)`): the projection never reads by them,
/// so a rebuild into an empty store leaves them out until it has caught up
/// ([`drop_query_indexes`], [`create_query_indexes`]): building an index once from the finished
/// table is cheaper than keeping it in order through every insert and update. Every open creates
/// those missing, so adding one needs no new [`SCHEMA_VERSION`] (nor a rebuild).
const QUERY_INDEXES: &[(&str, &str)] = &[
    ("reservations_by_customer", "reservations (customer_id)"),
    ("reservations_by_lodging", "reservations (lodging_id)"),
    ("reservations_by_status", "reservations (status)"),
    (
        "reservations_by_lodging_check_in",
        "reservations (lodging_id, check_in)",
    ),
    ("requests_by_lodging", "requests (lodging_id)"),
    (
        "requests_by_lodging_status",
        "requests (lodging_id, request_status)",
    ),
    ("requests_by_status", "requests (request_status)"),
    ("payouts_by_lodging", "payouts (lodging_id, status)"),
    // A lodging's payouts in `seq` order, for its list without a status (no sort).
    ("payouts_by_lodging_seq", "payouts (lodging_id)"),
    ("payouts_by_host", "payouts (host_id)"),
    ("payouts_by_status", "payouts (status)"),
    // An admin's lodgings, listed at each request of a non-platform admin; the expression is
    // `read.rs`'s `lodging_field("admin_id")` exactly, or SQLite scans the catalog.
    (
        "lodgings_by_admin",
        "lodgings (json_extract(doc, '$.admin_id'), lodging_id)",
    ),
];

fn query_indexes_sql() -> String {
    QUERY_INDEXES
        .iter()
        .map(|(name, on)| format!("CREATE INDEX IF NOT EXISTS {name} ON {on};\n"))
        .collect()
}

/// Drop the indexes only queries use (a rebuild into an empty store begins).
pub(super) fn drop_query_indexes(conn: &mut Connection) -> Result<(), ViewError> {
    let sql: String = QUERY_INDEXES
        .iter()
        .map(|(name, _)| format!("DROP INDEX IF EXISTS {name};\n"))
        .collect();
    in_transaction(conn, &sql)
}

/// Create whichever of the indexes only queries use are missing.
pub(super) fn create_query_indexes(conn: &mut Connection) -> Result<(), ViewError> {
    in_transaction(conn, &query_indexes_sql())
}

fn in_transaction(conn: &mut Connection, sql: &str) -> Result<(), ViewError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(store_error)?;
    tx.execute_batch(sql).map_err(store_error)?;
    tx.commit().map_err(store_error)
}

/// The checkpoints and dead letters of a store's consumers (the views' and the inbox's files).
pub(super) const BOOKKEEPING: &str = "
CREATE TABLE IF NOT EXISTS checkpoints (
    projector_id TEXT PRIMARY KEY,
    position INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS dead_letters (
    projector_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    stream TEXT NOT NULL,
    event_type TEXT NOT NULL,
    error TEXT NOT NULL,
    PRIMARY KEY (projector_id, position)
);
";

/// Map a SQLite failure: corruption is [`ViewError::Corrupt`], anything else (busy, locked, I/O,
/// cannot open) is [`ViewError::Unavailable`].
pub(super) fn store_error(error: rusqlite::Error) -> ViewError {
    use rusqlite::ErrorCode;
    match error.sqlite_error_code() {
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
            ViewError::Corrupt(error.to_string())
        }
        _ => ViewError::Unavailable(error.to_string()),
    }
}

pub(super) fn configure(conn: &Connection) -> Result<(), ViewError> {
    conn.busy_timeout(BUSY_TIMEOUT).map_err(store_error)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(store_error)?;
    conn.pragma_update(None, "foreign_keys", "OFF")
        .map_err(store_error)?;
    Ok(())
}

/// Open the writer connection, switching the file to WAL and creating the schema if needed.
pub(super) fn open_writer(path: &Path) -> Result<Connection, ViewError> {
    let mut conn = Connection::open(path).map_err(store_error)?;
    configure(&conn)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(store_error)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(ViewError::Unavailable(format!(
            "view store {} cannot use WAL (journal mode {mode})",
            path.display()
        )));
    }
    conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB)
        .map_err(store_error)?;
    // The background checkpointer (`checkpoint.rs`) keeps the WAL short; the writer checkpoints in
    // a commit only if it falls far behind.
    conn.pragma_update(
        None,
        "wal_autocheckpoint",
        super::checkpoint::WRITER_AUTOCHECKPOINT,
    )
    .map_err(store_error)?;
    migrate(
        &mut conn,
        SCHEMA_VERSION,
        DROP,
        &format!("{SCHEMA}{}{BOOKKEEPING}", query_indexes_sql()),
    )?;
    Ok(conn)
}

/// Create the tables of `schema` at `version`: a file at another version first has its tables
/// dropped (`drop`), since what it holds is derived and is built again from the log.
pub(super) fn migrate(
    conn: &mut Connection,
    version: i64,
    drop: &str,
    schema: &str,
) -> Result<(), ViewError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(store_error)?;
    let found: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(store_error)?;
    if found != version {
        tx.execute_batch(drop).map_err(store_error)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(store_error)?;
    }
    tx.execute_batch(schema).map_err(store_error)?;
    tx.commit().map_err(store_error)
}

/// Open the background checkpointer's connection (after the writer's, which set up the file).
pub(super) fn open_checkpointer(path: &Path) -> Result<Connection, ViewError> {
    let conn = Connection::open(path).map_err(store_error)?;
    configure(&conn)?;
    Ok(conn)
}

/// Open a reader connection (query-only).
pub(super) fn open_reader(path: &Path) -> Result<Connection, ViewError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags).map_err(store_error)?;
    configure(&conn)?;
    conn.pragma_update(None, "query_only", "ON")
        .map_err(store_error)?;
    // 1 MiB instead of SQLite's 2 MiB default: a page read is one view row or index range, and under
    // load SQLite drops a reader's cache after every commit of the writer anyway.
    conn.pragma_update(None, "cache_size", -1_024)
        .map_err(store_error)?;
    Ok(conn)
}
