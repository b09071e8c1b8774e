//! The webhook store in its own SQLite file (`webhooks.db` in the data dir): subscriptions,
//! deliveries and the dispatcher's cursor. WAL with full fsync: a delivery recorded as delivered
//! survives a crash. Never rebuilt (see [`crate::store`]): its tables are created, or migrated
//! once, on open (`sqlite_schema.rs`).
//!
//! A delivery is kept in two rows: its state (`deliveries.doc`, the delivery without its body,
//! rewritten at every attempt) and its body (`delivery_bodies`, under the state row's rowid,
//! written once: the same bytes go out at every attempt). An attempt's outcome is then a write of
//! a few hundred bytes, not of the ~2 KB body escaped inside a JSON document.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use readmodel::{decode_delivery_cursor, encode_delivery_cursor, Page, PageRequest, ViewError};
use rusqlite::{params, Connection, Transaction};
use uuid::Uuid;

use crate::group_commit::GroupCommit;
use crate::model::{Delivery, DeliveryState, Redrive, Subscription};
use crate::store::WebhookStore;

/// Reading connections of a store: the senders' windows are read side by side.
const READERS: usize = 4;

/// The webhook store in one SQLite file: one connection writes (the senders' saves grouped into
/// shared transactions, `group_commit.rs`), four others (`READERS`) read the senders' windows beside it
/// and beside one another (WAL).
pub struct SqliteWebhooks {
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
    /// Reading connections (WAL: they read side by side, and beside the writer).
    readers: Arc<[Mutex<Connection>]>,
    /// Whose turn it is when every reader is busy.
    next_reader: Arc<AtomicUsize>,
    attempts: GroupCommit<Vec<Delivery>, usize>,
}

impl std::fmt::Debug for SqliteWebhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteWebhooks")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn store_error(e: rusqlite::Error) -> ViewError {
    ViewError::Unavailable(format!("webhook store: {e}"))
}

fn to_doc<T: serde::Serialize>(value: &T) -> Result<String, ViewError> {
    serde_json::to_string(value).map_err(|e| ViewError::Corrupt(format!("webhook record: {e}")))
}

fn parse<T: serde::de::DeserializeOwned>(doc: &str) -> Result<T, ViewError> {
    serde_json::from_str(doc).map_err(|e| ViewError::Corrupt(format!("webhook record: {e}")))
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl SqliteWebhooks {
    /// Open (or create) the store at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ViewError> {
        let path = path.as_ref().to_path_buf();
        let mut conn = Connection::open(&path).map_err(store_error)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(store_error)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(store_error)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(store_error)?;
        crate::sqlite_schema::prepare(&mut conn).map_err(store_error)?;
        let readers = (0..READERS)
            .map(|_| {
                let reader = Connection::open(&path).map_err(store_error)?;
                reader
                    .busy_timeout(std::time::Duration::from_secs(5))
                    .map_err(store_error)?;
                Ok(Mutex::new(reader))
            })
            .collect::<Result<Arc<[_]>, ViewError>>()?;
        let conn = Arc::new(Mutex::new(conn));
        Ok(Self {
            path,
            attempts: GroupCommit::new(Arc::clone(&conn), save_window),
            conn,
            readers,
            next_reader: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// The file it lives in.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn with<T: Send + 'static>(
        &self,
        task: impl FnOnce(&mut Connection) -> Result<T, ViewError> + Send + 'static,
    ) -> Result<T, ViewError> {
        Self::on(&self.conn, task).await
    }

    /// Run a read on a reading connection: the first free one, else (all busy) the next in turn.
    async fn read<T: Send + 'static>(
        &self,
        task: impl FnOnce(&mut Connection) -> Result<T, ViewError> + Send + 'static,
    ) -> Result<T, ViewError> {
        let readers = Arc::clone(&self.readers);
        let next = Arc::clone(&self.next_reader);
        tokio::task::spawn_blocking(move || {
            let free = readers.iter().find_map(|reader| reader.try_lock().ok());
            let mut conn = match free {
                Some(conn) => conn,
                None => {
                    let turn = next.fetch_add(1, Ordering::Relaxed);
                    readers[turn % readers.len()]
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                }
            };
            task(&mut conn)
        })
        .await
        .map_err(|e| ViewError::Unavailable(format!("webhook store task: {e}")))?
    }

    async fn on<T: Send + 'static>(
        conn: &Arc<Mutex<Connection>>,
        task: impl FnOnce(&mut Connection) -> Result<T, ViewError> + Send + 'static,
    ) -> Result<T, ViewError> {
        let conn = Arc::clone(conn);
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            task(&mut conn)
        })
        .await
        .map_err(|e| ViewError::Unavailable(format!("webhook store task: {e}")))?
    }
}

/// The rows `sql` selects, each as `row` makes it.
fn rows<R>(
    conn: &Connection,
    sql: &str,
    values: impl rusqlite::Params,
    row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<R>,
) -> Result<Vec<R>, ViewError> {
    let mut statement = conn.prepare_cached(sql).map_err(store_error)?;
    statement
        .query_map(values, row)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(store_error)
}

fn docs<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    sql: &str,
    values: impl rusqlite::Params,
) -> Result<Vec<T>, ViewError> {
    let docs = rows(conn, sql, values, |row| row.get::<_, String>(0))?;
    docs.iter().map(|doc| parse(doc)).collect()
}

/// A query of deliveries with their bodies: `SELECT d.doc, b.body FROM deliveries AS d`, then
/// `LEFT JOIN delivery_bodies AS b ON b.id = d.rowid` and the given clauses.
macro_rules! deliveries_sql {
    ($index:literal, $clauses:literal) => {
        concat!(
            "SELECT d.doc, b.body FROM deliveries AS d ",
            $index,
            " LEFT JOIN delivery_bodies AS b ON b.id = d.rowid ",
            $clauses
        )
    };
}

/// The deliveries `sql` selects (`deliveries_sql!`), each with its body. A row
/// written before bodies had their own table keeps its body in its `doc` too (the same bytes).
fn deliveries(
    conn: &Connection,
    sql: &str,
    values: impl rusqlite::Params,
) -> Result<Vec<Delivery>, ViewError> {
    let found = rows(conn, sql, values, |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, Option<String>>(1)?))
    })?;
    found
        .into_iter()
        .map(|(doc, body)| {
            let mut delivery: Delivery = parse(&doc)?;
            if let Some(body) = body {
                delivery.body = body;
            }
            if delivery.body.is_empty() {
                return Err(ViewError::Corrupt(format!(
                    "webhook delivery {} has no body",
                    delivery.delivery_id
                )));
            }
            Ok(delivery)
        })
        .collect()
}

/// A delivery's state as its row keeps it: everything but the body (kept once, beside it).
fn state_doc(delivery: &Delivery) -> Result<String, ViewError> {
    if delivery.body.is_empty() {
        return to_doc(delivery);
    }
    to_doc(&Delivery {
        body: String::new(),
        ..delivery.clone()
    })
}

/// Save a sender's window of outcomes: how many were still open.
fn save_window(tx: &Transaction<'_>, deliveries: Vec<Delivery>) -> Result<usize, ViewError> {
    let mut saved = 0;
    for mut delivery in deliveries {
        // The body is written once, at enqueue: only the state is saved here.
        delivery.body = String::new();
        saved += usize::from(save_open(tx, &delivery)?);
    }
    Ok(saved)
}

fn enqueue(tx: &Transaction<'_>, deliveries: Vec<Delivery>, cursor: u64) -> Result<(), ViewError> {
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO deliveries (subscription_id, seq, delivery_id, state, doc)
             SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM subscriptions WHERE id = ?1)
             ON CONFLICT (subscription_id, seq) DO NOTHING",
        )
        .map_err(store_error)?;
    let mut insert_body = tx
        .prepare_cached("INSERT OR REPLACE INTO delivery_bodies (id, body) VALUES (?1, ?2)")
        .map_err(store_error)?;
    for mut d in deliveries {
        let body = std::mem::take(&mut d.body);
        let queued = insert
            .execute(params![
                d.subscription_id.to_string(),
                to_i64(d.seq),
                d.delivery_id.to_string(),
                d.state.as_str(),
                to_doc(&d)?
            ])
            .map_err(store_error)?;
        if queued == 1 {
            insert_body
                .execute(params![tx.last_insert_rowid(), body])
                .map_err(store_error)?;
        }
    }
    tx.execute(
        "UPDATE cursor SET seq = MAX(seq, ?1) WHERE id = 1",
        [to_i64(cursor)],
    )
    .map_err(store_error)?;
    Ok(())
}

fn find(
    conn: &Connection,
    subscription_id: Uuid,
    delivery_id: Uuid,
) -> Result<Option<Delivery>, ViewError> {
    let found = deliveries(
        conn,
        deliveries_sql!("", "WHERE d.delivery_id = ?1 AND d.subscription_id = ?2"),
        params![delivery_id.to_string(), subscription_id.to_string()],
    )?;
    Ok(found.into_iter().next())
}

/// Save `delivery`'s state over its row if still open (its body stays as it was written).
fn save_open(conn: &Connection, delivery: &Delivery) -> Result<bool, ViewError> {
    let doc = state_doc(delivery)?;
    let changed = conn
        .prepare_cached(
            "UPDATE deliveries SET state = ?3, doc = ?4
             WHERE subscription_id = ?1 AND seq = ?2 AND state IN ('pending', 'retrying')",
        )
        .and_then(|mut update| {
            update.execute(params![
                delivery.subscription_id.to_string(),
                to_i64(delivery.seq),
                delivery.state.as_str(),
                doc
            ])
        })
        .map_err(store_error)?;
    Ok(changed == 1)
}

fn redrive(
    conn: &Connection,
    subscription_id: Uuid,
    delivery_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Redrive, ViewError> {
    let Some(found) = find(conn, subscription_id, delivery_id)? else {
        return Ok(Redrive::NotFound);
    };
    if found.state != DeliveryState::Parked {
        return Ok(Redrive::NotParked(found.state));
    }
    let queued = Delivery {
        state: DeliveryState::Pending,
        attempts: 0,
        first_attempt_at: None,
        next_attempt_at: Some(now),
        settled_at: None,
        ..found
    };
    let changed = conn
        .execute(
            "UPDATE deliveries SET state = 'pending', doc = ?3
             WHERE subscription_id = ?1 AND seq = ?2 AND state = 'parked'",
            params![
                subscription_id.to_string(),
                to_i64(queued.seq),
                state_doc(&queued)?
            ],
        )
        .map_err(store_error)?;
    if changed == 0 {
        // Another handle moved it since it was read: say what it is now.
        return Ok(find(conn, subscription_id, delivery_id)?
            .map_or(Redrive::NotFound, |now| Redrive::NotParked(now.state)));
    }
    Ok(Redrive::Queued(Box::new(queued)))
}

#[async_trait]
impl WebhookStore for SqliteWebhooks {
    async fn add_subscription(&self, subscription: &Subscription) -> Result<(), ViewError> {
        let (id, at, doc) = (
            subscription.id.to_string(),
            subscription.created_at.to_rfc3339(),
            to_doc(subscription)?,
        );
        self.with(move |conn| {
            conn.execute(
                "INSERT INTO subscriptions (id, created_at, doc) VALUES (?1, ?2, ?3)",
                params![id, at, doc],
            )
            .map(drop)
            .map_err(store_error)
        })
        .await
    }

    async fn subscriptions(&self) -> Result<Vec<Subscription>, ViewError> {
        self.with(|conn| {
            docs(
                conn,
                "SELECT doc FROM subscriptions ORDER BY created_at, rowid",
                [],
            )
        })
        .await
    }

    async fn subscription(&self, id: Uuid) -> Result<Option<Subscription>, ViewError> {
        self.with(move |conn| {
            let found = docs(
                conn,
                "SELECT doc FROM subscriptions WHERE id = ?1",
                [id.to_string()],
            )?;
            Ok(found.into_iter().next())
        })
        .await
    }

    async fn remove_subscription(&self, id: Uuid) -> Result<bool, ViewError> {
        self.with(move |conn| {
            let tx = conn.transaction().map_err(store_error)?;
            let id = id.to_string();
            tx.execute(
                "DELETE FROM delivery_bodies WHERE id IN
                 (SELECT rowid FROM deliveries WHERE subscription_id = ?1)",
                [&id],
            )
            .map_err(store_error)?;
            tx.execute("DELETE FROM deliveries WHERE subscription_id = ?1", [&id])
                .map_err(store_error)?;
            let removed = tx
                .execute("DELETE FROM subscriptions WHERE id = ?1", [&id])
                .map_err(store_error)?;
            tx.commit().map_err(store_error)?;
            Ok(removed == 1)
        })
        .await
    }

    async fn cursor(&self) -> Result<u64, ViewError> {
        self.with(|conn| {
            conn.query_row("SELECT seq FROM cursor WHERE id = 1", [], |row| {
                row.get::<_, i64>(0)
            })
            .map(|seq| u64::try_from(seq).unwrap_or(0))
            .map_err(store_error)
        })
        .await
    }

    async fn enqueue(&self, deliveries: &[Delivery], cursor: u64) -> Result<(), ViewError> {
        let deliveries = deliveries.to_vec();
        self.with(move |conn| {
            let tx = conn.transaction().map_err(store_error)?;
            enqueue(&tx, deliveries, cursor)?;
            tx.commit().map_err(store_error)
        })
        .await
    }

    async fn open_deliveries(
        &self,
        subscription_id: Uuid,
        limit: usize,
    ) -> Result<Vec<Delivery>, ViewError> {
        self.read(move |conn| {
            deliveries(
                conn,
                deliveries_sql!(
                    "INDEXED BY open_deliveries",
                    "WHERE d.subscription_id = ?1 AND d.state IN ('pending', 'retrying')
                     ORDER BY d.seq LIMIT ?2"
                ),
                params![subscription_id.to_string(), to_i64(limit as u64)],
            )
        })
        .await
    }

    async fn record_attempt(&self, delivery: &Delivery) -> Result<bool, ViewError> {
        let delivery = delivery.clone();
        self.with(move |conn| save_open(conn, &delivery)).await
    }

    async fn record_attempts(&self, deliveries: &[Delivery]) -> Result<usize, ViewError> {
        self.attempts.write(deliveries.to_vec()).await
    }

    async fn deliveries(
        &self,
        subscription_id: Uuid,
        page: &PageRequest,
    ) -> Result<Page<Delivery>, ViewError> {
        let before = page
            .cursor
            .as_deref()
            .map(decode_delivery_cursor)
            .transpose()?
            .map_or(i64::MAX, to_i64);
        let limit = page.clamped_limit();
        self.with(move |conn| {
            let mut items = deliveries(
                conn,
                deliveries_sql!(
                    "",
                    "WHERE d.subscription_id = ?1 AND d.seq < ?2 ORDER BY d.seq DESC LIMIT ?3"
                ),
                params![
                    subscription_id.to_string(),
                    before,
                    to_i64(limit as u64 + 1)
                ],
            )?;
            let next_cursor = if items.len() > limit {
                items.truncate(limit);
                items.last().map(|d| encode_delivery_cursor(d.seq))
            } else {
                None
            };
            Ok(Page { items, next_cursor })
        })
        .await
    }

    async fn redrive(
        &self,
        subscription_id: Uuid,
        delivery_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Redrive, ViewError> {
        self.with(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(store_error)?;
            let outcome = redrive(&tx, subscription_id, delivery_id, now)?;
            tx.commit().map_err(store_error)?;
            Ok(outcome)
        })
        .await
    }
}
