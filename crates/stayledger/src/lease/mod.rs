//! Leases for the scale-out of the consumers (`scale_out`): the [`LeaseStore`] port and its two
//! adapters, a SQLite table shared by the processes of one host ([`LeaseTable`], `leases.db` in the
//! data dir, see `data_dir`) and a MongoDB collection for processes on several hosts
//! ([`MongoLeases`], `mongo`).
//!
//! In the SQLite table a lease is a row (name, owner, expires_at, epoch). Taking or renewing one is a
//! single conditional upsert that succeeds only when the caller owns the row already or the row has
//! expired, so at most one live owner exists at a time; `epoch` grows each time the owner changes.
//!
//! Times are wall-clock milliseconds: every process must read the same clock (one host), and the
//! TTL must exceed any pause of a holder between two renewals (the holder fences itself earlier).

mod mongo;

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

pub use mongo::MongoLeases;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    epoch INTEGER NOT NULL
);
";

/// How long a statement waits for another process's write before the round gives up.
const BUSY_TIMEOUT: Duration = Duration::from_millis(500);

/// Failure of a lease store. A lease held live by another owner is not one: `acquire` answers
/// `false`. Either kind fails one lease round, and the next round tries again; a holder whose leases
/// cannot be renewed in time stops its shards (`scale_out::group`).
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The store cannot be reached or did not answer: a file that cannot be opened or stays locked
    /// past the busy timeout, an I/O error, a MongoDB server down or timing out.
    #[error("lease store unavailable: {0}")]
    Unavailable(String),
    /// The store answered with something that is not a lease table: a damaged SQLite file, a row of
    /// the wrong shape.
    #[error("lease store corrupt: {0}")]
    Corrupt(String),
}

/// `what` failed on the SQLite table with `error`.
fn sqlite_error(what: &str, error: &rusqlite::Error) -> LeaseError {
    use rusqlite::{Error as E, ErrorCode};
    let message = format!("{what}: {error}");
    match error {
        E::InvalidColumnType(..)
        | E::FromSqlConversionFailure(..)
        | E::IntegralValueOutOfRange(..) => LeaseError::Corrupt(message),
        _ => match error.sqlite_error_code() {
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
                LeaseError::Corrupt(message)
            }
            _ => LeaseError::Unavailable(message),
        },
    }
}

/// One row of the lease table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub name: String,
    pub owner: String,
    /// Unix time in milliseconds after which anyone may take it.
    pub expires_at: i64,
    /// How many times the lease changed owner (a fencing token).
    pub epoch: i64,
}

impl Lease {
    #[must_use]
    pub fn is_live(&self, now_ms: i64) -> bool {
        self.expires_at >= now_ms
    }
}

/// Where leases are kept: a SQLite file for the processes of one host ([`LeaseTable`]), or a MongoDB
/// collection for processes on several hosts (`MongoLeases`). Each call is atomic on its own: taking
/// a lease succeeds only for its owner or once it has expired, whatever else a round looked at.
#[async_trait]
pub trait LeaseStore: Send + Sync + 'static {
    /// Take or renew `name` for `owner` until the store's now + `ttl`; `false` if another owner
    /// holds it live.
    async fn acquire(&self, name: &str, owner: &str, ttl: Duration) -> Result<bool, LeaseError>;

    /// Give `name` up if `owner` holds it; `false` if it did not.
    async fn release(&self, name: &str, owner: &str) -> Result<bool, LeaseError>;

    /// One lease, live or not.
    async fn get(&self, name: &str) -> Result<Option<Lease>, LeaseError>;

    /// Whether `name` is held, live, by someone other than `owner`.
    async fn held_by_other(&self, name: &str, owner: &str) -> Result<bool, LeaseError>;
}

#[async_trait]
impl LeaseStore for LeaseTable {
    async fn acquire(&self, name: &str, owner: &str, ttl: Duration) -> Result<bool, LeaseError> {
        let (name, owner) = (name.to_owned(), owner.to_owned());
        self.with(ttl, move |l| l.acquire(&name, &owner)).await
    }

    async fn release(&self, name: &str, owner: &str) -> Result<bool, LeaseError> {
        let (name, owner) = (name.to_owned(), owner.to_owned());
        self.with(Duration::ZERO, move |l| l.release(&name, &owner))
            .await
    }

    async fn get(&self, name: &str) -> Result<Option<Lease>, LeaseError> {
        let name = name.to_owned();
        self.with(Duration::ZERO, move |l| l.get(&name)).await
    }

    async fn held_by_other(&self, name: &str, owner: &str) -> Result<bool, LeaseError> {
        let (name, owner) = (name.to_owned(), owner.to_owned());
        self.with(Duration::ZERO, move |l| l.held_by_other(&name, &owner))
            .await
    }
}

/// The lease table (cheap to clone).
#[derive(Clone)]
pub struct LeaseTable {
    conn: Arc<Mutex<Connection>>,
}

/// The leases within one transaction, at one instant.
pub struct Leases<'t> {
    tx: &'t Transaction<'t>,
    now_ms: i64,
    ttl_ms: i64,
}

/// Unix time in milliseconds.
fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

impl LeaseTable {
    /// Open (or create) the lease table at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, LeaseError> {
        let path = path.as_ref();
        let conn = Connection::open(path).map_err(|e| {
            sqlite_error(&format!("opening the lease table {}", path.display()), &e)
        })?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| sqlite_error("lease table: WAL", &e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| sqlite_error("lease table: busy timeout", &e))?;
        conn.execute_batch(SCHEMA)
            .map_err(|e| sqlite_error("lease table: schema", &e))?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Run `work` over the leases in one write transaction (leases taken now last `ttl`).
    pub async fn with<T, F>(&self, ttl: Duration, work: F) -> Result<T, LeaseError>
    where
        T: Send + 'static,
        F: FnOnce(&Leases<'_>) -> Result<T, LeaseError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| sqlite_error("lease table: begin", &e))?;
            let leases = Leases {
                tx: &tx,
                now_ms: now_ms(),
                ttl_ms: i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX),
            };
            let result = work(&leases)?;
            tx.commit()
                .map_err(|e| sqlite_error("lease table: commit", &e))?;
            Ok(result)
        })
        .await
        .map_err(|e| LeaseError::Unavailable(format!("lease table task: {e}")))?
    }
}

impl Leases<'_> {
    /// The instant of this transaction (Unix milliseconds).
    #[must_use]
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    /// Take or renew `name` for `owner` until now + TTL; `false` if another owner holds it live.
    pub fn acquire(&self, name: &str, owner: &str) -> Result<bool, LeaseError> {
        let changed = self
            .tx
            .prepare_cached(
                "INSERT INTO leases (name, owner, expires_at, epoch) VALUES (?1, ?2, ?3, 1)
                 ON CONFLICT (name) DO UPDATE SET
                     epoch = CASE WHEN leases.owner = excluded.owner
                                  THEN leases.epoch ELSE leases.epoch + 1 END,
                     owner = excluded.owner,
                     expires_at = excluded.expires_at
                 WHERE leases.owner = excluded.owner OR leases.expires_at < ?4",
            )
            .and_then(|mut s| {
                s.execute(params![
                    name,
                    owner,
                    self.now_ms.saturating_add(self.ttl_ms),
                    self.now_ms
                ])
            })
            .map_err(|e| sqlite_error(&format!("acquiring lease {name}"), &e))?;
        Ok(changed == 1)
    }

    /// Give `name` up if `owner` holds it; `false` if it did not.
    pub fn release(&self, name: &str, owner: &str) -> Result<bool, LeaseError> {
        let deleted = self
            .tx
            .execute(
                "DELETE FROM leases WHERE name = ?1 AND owner = ?2",
                params![name, owner],
            )
            .map_err(|e| sqlite_error(&format!("releasing lease {name}"), &e))?;
        Ok(deleted == 1)
    }

    /// One lease, live or not.
    pub fn get(&self, name: &str) -> Result<Option<Lease>, LeaseError> {
        self.tx
            .query_row(
                "SELECT name, owner, expires_at, epoch FROM leases WHERE name = ?1",
                [name],
                |row| {
                    Ok(Lease {
                        name: row.get(0)?,
                        owner: row.get(1)?,
                        expires_at: row.get(2)?,
                        epoch: row.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(|e| sqlite_error(&format!("reading lease {name}"), &e))
    }

    /// Whether `name` is held, live, by someone other than `owner`.
    pub fn held_by_other(&self, name: &str, owner: &str) -> Result<bool, LeaseError> {
        Ok(self
            .get(name)?
            .is_some_and(|lease| lease.owner != owner && lease.is_live(self.now_ms)))
    }
}

/// The behaviour every [`LeaseStore`] must show, run on each (tests): one live owner at a time,
/// takeover only after expiry with the epoch counting owners, release only by the owner.
#[cfg(test)]
pub(crate) mod conformance {
    use std::time::Duration;

    use super::LeaseStore;

    /// `prefix` keeps the names apart on a shared store.
    pub(crate) async fn one_live_owner_at_a_time(store: &dyn LeaseStore, prefix: &str) {
        let name = format!("{prefix}saga/shard-0-of-2");
        let ttl = Duration::from_secs(10);
        assert!(store.acquire(&name, "a", ttl).await.expect("acquire"));
        assert!(
            store.acquire(&name, "a", ttl).await.expect("renew"),
            "renewed"
        );
        assert!(
            !store.acquire(&name, "b", ttl).await.expect("acquire"),
            "held by a"
        );
        assert!(store.held_by_other(&name, "b").await.expect("read"));
        assert!(!store.held_by_other(&name, "a").await.expect("read"));
        let first = store.get(&name).await.expect("read").expect("exists");
        assert_eq!((first.owner.as_str(), first.epoch), ("a", 1));
    }

    /// Once the holder's lease expires another owner takes it, and the epoch counts the change.
    pub(crate) async fn takeover_after_expiry(store: &dyn LeaseStore, prefix: &str) {
        let name = format!("{prefix}saga/shard-1-of-2");
        let (short, long) = (Duration::from_millis(300), Duration::from_secs(10));
        assert!(store.acquire(&name, "a", short).await.expect("acquire"));
        // Whether or not it has expired by now, the row names its first owner.
        let held = store.get(&name).await.expect("read").expect("exists");
        assert_eq!((held.owner.as_str(), held.epoch), ("a", 1));
        // Polled rather than slept: the store's clock decides when it expires.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while store.held_by_other(&name, "b").await.expect("read") {
            assert!(tokio::time::Instant::now() < deadline, "never expired");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            store.acquire(&name, "b", long).await.expect("acquire"),
            "expired: b takes it"
        );
        assert!(
            !store.acquire(&name, "a", long).await.expect("acquire"),
            "a lost it"
        );
        let taken = store.get(&name).await.expect("read").expect("exists");
        assert_eq!((taken.owner.as_str(), taken.epoch), ("b", 2));
    }

    pub(crate) async fn only_the_owner_releases(store: &dyn LeaseStore, prefix: &str) {
        let name = format!("{prefix}projector/shard-1-of-2");
        let ttl = Duration::from_secs(10);
        assert!(store.acquire(&name, "a", ttl).await.expect("acquire"));
        assert!(!store.release(&name, "b").await.expect("release"));
        assert!(store.held_by_other(&name, "b").await.expect("read"));
        assert!(store.release(&name, "a").await.expect("release"));
        assert!(store.get(&name).await.expect("read").is_none());
        assert!(store.acquire(&name, "b", ttl).await.expect("acquire"));
    }

    /// Racing takers of one free lease: exactly one wins.
    pub(crate) async fn racing_takers_one_wins(store: &dyn LeaseStore, prefix: &str) {
        let name = format!("{prefix}projector/shard-0-of-1");
        let ttl = Duration::from_secs(10);
        let owners: Vec<String> = (0..8).map(|i| format!("owner-{i}")).collect();
        let won =
            futures::future::join_all(owners.iter().map(|o| store.acquire(&name, o, ttl))).await;
        let winners = won.into_iter().filter(|r| matches!(r, Ok(true))).count();
        assert_eq!(winners, 1, "one owner at a time");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> (tempfile::TempDir, LeaseTable) {
        let dir = tempfile::tempdir().expect("dir");
        let table = LeaseTable::open(dir.path().join("leases.db")).expect("open");
        (dir, table)
    }

    #[tokio::test]
    async fn one_live_owner_at_a_time_and_takeover_after_expiry() {
        let (_dir, table) = table();
        conformance::one_live_owner_at_a_time(&table, "").await;
        conformance::takeover_after_expiry(&table, "").await;
    }

    #[tokio::test]
    async fn only_the_owner_releases() {
        let (_dir, table) = table();
        conformance::only_the_owner_releases(&table, "").await;
    }

    #[test]
    fn a_path_that_cannot_be_opened_is_unavailable_and_a_foreign_file_corrupt() {
        let dir = tempfile::tempdir().expect("dir");
        let unopenable = LeaseTable::open(dir.path().join("missing-dir").join("leases.db"));
        assert!(
            matches!(unopenable, Err(LeaseError::Unavailable(_))),
            "{:?}",
            unopenable.err()
        );
        let foreign = dir.path().join("leases.db");
        std::fs::write(&foreign, vec![b'x'; 4096]).expect("write");
        let corrupt = LeaseTable::open(&foreign);
        assert!(
            matches!(corrupt, Err(LeaseError::Corrupt(_))),
            "{:?}",
            corrupt.err()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn racing_takers_one_wins() {
        let (dir, table) = table();
        // A second opener of the file, as another process would be.
        let other = LeaseTable::open(dir.path().join("leases.db")).expect("second opener");
        conformance::racing_takers_one_wins(&table, "").await;
        assert!(other
            .held_by_other("projector/shard-0-of-1", "nobody")
            .await
            .expect("read"));
    }
}
