//! The embedded key store: its own SQLite file in the data dir (never the event log's file), one
//! row per customer in `keys(customer_id, key, created_at, destroyed_at)`. Erasure sets `key` to
//! NULL and keeps the row as a tombstone, so no key is ever made for that customer again.
//!
//! Durability: WAL with `synchronous=FULL`, so a key is on disk before anything sealed under it
//! can be appended to the log.
//!
//! Shredding: `secure_delete=ON` makes SQLite overwrite freed content with zeros, so the page
//! rewritten by a destroy holds no trace of the key. In WAL mode the old page images (the insert
//! that created the key, the page before the destroy) stay in the `-wal` file and in the
//! database file until a checkpoint, so a destroy ends with `wal_checkpoint(TRUNCATE)`: the
//! rewritten page replaces the old one in place and the log is cut to zero bytes. `destroy`
//! returns `Ok` only once that checkpoint completed; if readers kept it from completing it
//! returns `Unavailable` and the (idempotent) destroy is retried. Opening the store also runs
//! that checkpoint, for a destroy that committed just before a crash.
//!
//! Why WAL rather than `journal_mode=DELETE`: both leave no copy in any file once done (the
//! rollback journal holds the old page only until it is deleted at commit), but WAL lets the
//! readers opening fields go on while a key is written, as every other store in the workspace
//! does, and the explicit, checked checkpoint makes "the bytes are gone" a result `destroy`
//! reports rather than a side effect of the journal mode. Neither mode can scrub blocks the
//! filesystem has already freed (a truncated log, a deleted journal): against reading the raw
//! device, the data dir belongs on an encrypted volume.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, OptionalExtension};

use crate::cipher::DataKey;
use crate::store::{for_writing, state_of};
use crate::{KeyState, KeyStore, KeyStoreError};

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS keys (
    customer_id  TEXT PRIMARY KEY NOT NULL,
    key          BLOB NULL CHECK (key IS NULL OR length(key) = 32),
    created_at   TEXT NOT NULL,
    destroyed_at TEXT NULL,
    CHECK ((key IS NULL) = (destroyed_at IS NOT NULL))
);";

const INSERT_IF_ABSENT: &str = "
INSERT INTO keys (customer_id, key, created_at)
VALUES (?1, ?2, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
ON CONFLICT (customer_id) DO NOTHING";

const DESTROY: &str = "
INSERT INTO keys (customer_id, key, created_at, destroyed_at)
VALUES (?1, NULL, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
ON CONFLICT (customer_id) DO UPDATE
SET key = NULL, destroyed_at = coalesce(destroyed_at, excluded.destroyed_at)";

/// Data keys in a SQLite file of their own. Clones share one connection; stores opened
/// separately on one file agree through SQLite's locks.
#[derive(Debug, Clone)]
pub struct SqliteKeyStore {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteKeyStore {
    /// Open (or create) the key store at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, KeyStoreError> {
        let conn = Connection::open(path).map_err(store_error)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(store_error)?;
        let secure: i64 = conn
            .pragma_update_and_check(None, "secure_delete", "ON", |row| row.get(0))
            .map_err(store_error)?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(store_error)?;
        if secure != 1 || !mode.eq_ignore_ascii_case("wal") {
            return Err(KeyStoreError::Unavailable(format!(
                "key store needs secure_delete and WAL, got secure_delete={secure}, journal_mode={mode}"
            )));
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(store_error)?;
        conn.execute_batch(SCHEMA).map_err(store_error)?;
        // Best effort: readers of another instance may hold it off; the next destroy retries.
        truncate_log(&conn)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    async fn with_conn<T, F>(&self, work: F) -> Result<T, KeyStoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, KeyStoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let conn = conn
                .lock()
                .map_err(|_| KeyStoreError::Unavailable("key store connection poisoned".into()))?;
            work(&conn)
        })
        .await
        .map_err(|e| KeyStoreError::Unavailable(format!("key store task failed: {e}")))?
    }
}

#[async_trait]
impl KeyStore for SqliteKeyStore {
    async fn key_for_writing(&self, customer_id: &str) -> Result<DataKey, KeyStoreError> {
        let id = customer_id.to_owned();
        self.with_conn(move |conn| {
            match read(conn, &id)? {
                KeyState::Missing => {}
                known => return for_writing(known),
            }
            let key = DataKey::generate();
            conn.execute(INSERT_IF_ABSENT, (id.as_str(), key.as_bytes().as_slice()))
                .map_err(store_error)?;
            for_writing(read(conn, &id)?)
        })
        .await
    }

    async fn key(&self, customer_id: &str) -> Result<KeyState, KeyStoreError> {
        let id = customer_id.to_owned();
        self.with_conn(move |conn| read(conn, &id)).await
    }

    async fn destroy(&self, customer_id: &str) -> Result<(), KeyStoreError> {
        let id = customer_id.to_owned();
        self.with_conn(move |conn| {
            conn.execute(DESTROY, [id.as_str()]).map_err(store_error)?;
            if truncate_log(conn)? {
                Ok(())
            } else {
                Err(KeyStoreError::Unavailable(
                    "key destroyed, but readers held off the checkpoint that removes its old \
                     copies from the write-ahead log: destroy again"
                        .into(),
                ))
            }
        })
        .await
    }
}

fn read(conn: &Connection, customer_id: &str) -> Result<KeyState, KeyStoreError> {
    let found = conn
        .query_row(
            "SELECT key, destroyed_at IS NOT NULL FROM keys WHERE customer_id = ?1",
            [customer_id],
            |row| {
                let destroyed: bool = row.get(1)?;
                Ok(match row.get_ref(0)? {
                    ValueRef::Null => state_of(customer_id, None, destroyed),
                    ValueRef::Blob(bytes) => state_of(customer_id, Some(bytes), destroyed),
                    other => Err(KeyStoreError::Corrupt(format!(
                        "key of customer {customer_id} is stored as {:?}, not a blob",
                        other.data_type()
                    ))),
                })
            },
        )
        .optional()
        .map_err(store_error)?;
    found.unwrap_or(Ok(KeyState::Missing))
}

/// Copy every logged page into the database file and cut the log to zero bytes; `false` if
/// readers kept the checkpoint from completing.
fn truncate_log(conn: &Connection) -> Result<bool, KeyStoreError> {
    let busy: i64 = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))
        .map_err(store_error)?;
    Ok(busy == 0)
}

fn store_error(error: rusqlite::Error) -> KeyStoreError {
    match error.sqlite_error_code() {
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
            KeyStoreError::Corrupt(format!("SQLite: {error}"))
        }
        _ => KeyStoreError::Unavailable(format!("SQLite: {error}")),
    }
}

#[cfg(test)]
mod tests;
