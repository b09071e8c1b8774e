//! Leases in a SQLite file shared by the processes of one host (`leases.db` in the data dir): a
//! lease is a row (name, owner, expires_at, epoch). Taking or renewing one is a single conditional
//! upsert that succeeds only when the caller owns the row already or the row has expired, so at
//! most one live owner exists at a time; `epoch` grows each time the owner changes.
//!
//! Times are wall-clock milliseconds: every process must read the same clock (one host), and the
//! TTL must exceed any pause of a holder between two renewals (the holder fences itself earlier).

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

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
    pub fn open(path: impl AsRef<Path>) -> anyhow::Result<Self> {
        let path = path.as_ref();
        let conn = Connection::open(path)
            .with_context(|| format!("opening the lease table {}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .context("lease table: WAL")?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .context("lease table: busy timeout")?;
        conn.execute_batch(SCHEMA).context("lease table: schema")?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Run `work` over the leases in one write transaction (leases taken now last `ttl`).
    pub async fn with<T, F>(&self, ttl: Duration, work: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Leases<'_>) -> anyhow::Result<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .context("lease table: begin")?;
            let leases = Leases {
                tx: &tx,
                now_ms: now_ms(),
                ttl_ms: i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX),
            };
            let result = work(&leases)?;
            tx.commit().context("lease table: commit")?;
            Ok(result)
        })
        .await
        .context("lease table task")?
    }
}

impl Leases<'_> {
    /// The instant of this transaction (Unix milliseconds).
    #[must_use]
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    /// Take or renew `name` for `owner` until now + TTL; `false` if another owner holds it live.
    pub fn acquire(&self, name: &str, owner: &str) -> anyhow::Result<bool> {
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
            .with_context(|| format!("acquiring lease {name}"))?;
        Ok(changed == 1)
    }

    /// Give `name` up if `owner` holds it; `false` if it did not.
    pub fn release(&self, name: &str, owner: &str) -> anyhow::Result<bool> {
        let deleted = self
            .tx
            .execute(
                "DELETE FROM leases WHERE name = ?1 AND owner = ?2",
                params![name, owner],
            )
            .with_context(|| format!("releasing lease {name}"))?;
        Ok(deleted == 1)
    }

    /// One lease, live or not.
    pub fn get(&self, name: &str) -> anyhow::Result<Option<Lease>> {
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
            .with_context(|| format!("reading lease {name}"))
    }

    /// Whether `name` is held, live, by someone other than `owner`.
    pub fn held_by_other(&self, name: &str, owner: &str) -> anyhow::Result<bool> {
        Ok(self
            .get(name)?
            .is_some_and(|lease| lease.owner != owner && lease.is_live(self.now_ms)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn acquire(table: &LeaseTable, ttl_ms: u64, name: &str, owner: &str) -> bool {
        let (name, owner) = (name.to_string(), owner.to_string());
        table
            .with(Duration::from_millis(ttl_ms), move |l| {
                l.acquire(&name, &owner)
            })
            .await
            .expect("acquire")
    }

    async fn lease(table: &LeaseTable, name: &str) -> Option<Lease> {
        let name = name.to_string();
        table
            .with(Duration::ZERO, move |l| l.get(&name))
            .await
            .expect("read")
    }

    #[tokio::test]
    async fn one_live_owner_at_a_time_and_takeover_after_expiry() {
        let dir = tempfile::tempdir().expect("dir");
        let a = LeaseTable::open(dir.path().join("leases.db")).expect("open");
        let b = LeaseTable::open(dir.path().join("leases.db")).expect("second opener");
        assert!(acquire(&a, 200, "saga/shard-0-of-2", "a").await);
        assert!(acquire(&a, 200, "saga/shard-0-of-2", "a").await, "renewed");
        assert!(
            !acquire(&b, 200, "saga/shard-0-of-2", "b").await,
            "held by a"
        );
        let first = lease(&b, "saga/shard-0-of-2").await.expect("exists");
        assert_eq!((first.owner.as_str(), first.epoch), ("a", 1));

        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(
            acquire(&b, 200, "saga/shard-0-of-2", "b").await,
            "expired: b takes it"
        );
        assert!(
            !acquire(&a, 200, "saga/shard-0-of-2", "a").await,
            "a lost it"
        );
        let taken = lease(&a, "saga/shard-0-of-2").await.expect("exists");
        assert_eq!((taken.owner.as_str(), taken.epoch), ("b", 2));
    }

    #[tokio::test]
    async fn only_the_owner_releases() {
        let dir = tempfile::tempdir().expect("dir");
        let table = LeaseTable::open(dir.path().join("leases.db")).expect("open");
        assert!(acquire(&table, 10_000, "projector/shard-1-of-2", "a").await);
        let released = table
            .with(Duration::ZERO, |l| {
                Ok((
                    l.release("projector/shard-1-of-2", "b")?,
                    l.held_by_other("projector/shard-1-of-2", "b")?,
                    l.release("projector/shard-1-of-2", "a")?,
                ))
            })
            .await
            .expect("release");
        assert_eq!(released, (false, true, true));
        assert!(acquire(&table, 10_000, "projector/shard-1-of-2", "b").await);
    }
}
