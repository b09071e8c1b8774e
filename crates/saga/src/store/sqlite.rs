//! The embedded SQLite adapter of [`TimerStore`]: one file, WAL, `synchronous=FULL`.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use domain::saga::TimerKind;
use domain::Timestamp;
use rusqlite::{params, Connection, Transaction};
use uuid::Uuid;

use super::{
    ArmedTimer, ParkedAction, ProgressUpdate, RefundRetry, SagaProgress, TimerStore,
    TimerStoreError,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS saga_checkpoint (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    position INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS timers (
    reservation_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    due_at_ns INTEGER NOT NULL,
    PRIMARY KEY (reservation_id, kind)
);
CREATE INDEX IF NOT EXISTS timers_by_due ON timers (due_at_ns);
CREATE TABLE IF NOT EXISTS refund_retries (
    action_id TEXT PRIMARY KEY,
    reservation_id TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    charge_ref TEXT NOT NULL,
    amount INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    next_attempt_ns INTEGER NOT NULL,
    last_error TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS parked_actions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    reservation_id TEXT,
    trigger_id TEXT NOT NULL,
    attempted TEXT NOT NULL,
    error TEXT NOT NULL,
    parked_at TEXT NOT NULL
);
";

/// Saga progress in a SQLite file.
#[derive(Clone)]
pub struct SqliteTimerStore {
    conn: Arc<Mutex<Connection>>,
}

fn unavailable(e: impl std::fmt::Display) -> TimerStoreError {
    TimerStoreError::Unavailable(e.to_string())
}

fn corrupt(e: impl std::fmt::Display) -> TimerStoreError {
    TimerStoreError::Corrupt(e.to_string())
}

impl SqliteTimerStore {
    /// Open (or create) the store at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, TimerStoreError> {
        let conn = Connection::open(path).map_err(unavailable)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(unavailable)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(unavailable)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(unavailable)?;
        conn.execute_batch(SCHEMA).map_err(unavailable)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    async fn with_conn<T, F>(&self, work: F) -> Result<T, TimerStoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, TimerStoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut conn = conn
                .lock()
                .map_err(|_| unavailable("connection lock poisoned"))?;
            work(&mut conn)
        })
        .await
        .map_err(unavailable)?
    }
}

fn kind_name(kind: TimerKind) -> &'static str {
    kind.as_str()
}

fn parse_kind(name: &str) -> Result<TimerKind, TimerStoreError> {
    TimerKind::parse(name).ok_or_else(|| corrupt(format!("unknown timer kind {name}")))
}

fn to_nanos(at: Timestamp) -> Result<i64, TimerStoreError> {
    at.timestamp_nanos_opt()
        .ok_or_else(|| corrupt(format!("timestamp {at} out of range")))
}

fn parse_uuid(text: &str) -> Result<Uuid, TimerStoreError> {
    Uuid::parse_str(text).map_err(corrupt)
}

fn load_progress(conn: &mut Connection) -> Result<SagaProgress, TimerStoreError> {
    let checkpoint: i64 = conn
        .query_row(
            "SELECT COALESCE((SELECT position FROM saga_checkpoint WHERE id = 0), 0)",
            [],
            |row| row.get(0),
        )
        .map_err(unavailable)?;
    Ok(SagaProgress {
        checkpoint: u64::try_from(checkpoint).map_err(corrupt)?,
        timers: load_timers(conn, None)?,
        refunds: load_refunds(conn)?,
    })
}

/// Every armed timer, or (`before`) those of the reservations with a timer due before then.
fn load_timers(
    conn: &Connection,
    before: Option<Timestamp>,
) -> Result<Vec<ArmedTimer>, TimerStoreError> {
    let (sql, before) = match before {
        None => (
            "SELECT reservation_id, kind, due_at_ns FROM timers ORDER BY due_at_ns",
            None,
        ),
        Some(before) => (
            "SELECT reservation_id, kind, due_at_ns FROM timers WHERE reservation_id IN
                 (SELECT reservation_id FROM timers WHERE due_at_ns < ?1)
             ORDER BY due_at_ns",
            Some(to_nanos(before)?),
        ),
    };
    let mut stmt = conn.prepare_cached(sql).map_err(unavailable)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(before), |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
            ))
        })
        .map_err(unavailable)?;
    rows.map(|row| {
        let (reservation_id, kind, due_at_ns) = row.map_err(unavailable)?;
        Ok(ArmedTimer {
            reservation_id: parse_uuid(&reservation_id)?,
            kind: parse_kind(&kind)?,
            due_at: DateTime::from_timestamp_nanos(due_at_ns),
        })
    })
    .collect()
}

fn load_refunds(conn: &Connection) -> Result<Vec<RefundRetry>, TimerStoreError> {
    let mut stmt = conn
        .prepare(
            "SELECT action_id, reservation_id, correlation_id, charge_ref, amount, attempt,
                    next_attempt_ns, last_error
             FROM refund_retries ORDER BY next_attempt_ns",
        )
        .map_err(unavailable)?;
    let rows = stmt
        .query_map([], |row| {
            Ok((
                [row.get::<_, String>(0)?, row.get(1)?, row.get(2)?],
                row.get::<_, String>(3)?,
                row.get::<_, i64>(4)?,
                row.get::<_, u32>(5)?,
                row.get::<_, i64>(6)?,
                row.get::<_, String>(7)?,
            ))
        })
        .map_err(unavailable)?;
    rows.map(|row| {
        let ([action_id, reservation_id, correlation_id], charge_ref, amount, attempt, next, error) =
            row.map_err(unavailable)?;
        Ok(RefundRetry {
            action_id: parse_uuid(&action_id)?,
            reservation_id: parse_uuid(&reservation_id)?,
            correlation_id: parse_uuid(&correlation_id)?,
            charge_ref,
            amount,
            attempt,
            next_attempt_at: DateTime::from_timestamp_nanos(next),
            last_error: error,
        })
    })
    .collect()
}

/// Run one statement, prepared once per connection (a step commits several per reservation).
fn run(tx: &Transaction<'_>, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
    tx.prepare_cached(sql)?.execute(params)
}

fn apply(tx: &Transaction<'_>, update: &ProgressUpdate) -> Result<(), TimerStoreError> {
    for (reservation_id, timers) in &update.timers {
        let id = reservation_id.to_string();
        run(
            tx,
            "DELETE FROM timers WHERE reservation_id = ?1",
            params![id],
        )
        .map_err(unavailable)?;
        for (kind, due_at) in timers {
            run(
                tx,
                "INSERT INTO timers (reservation_id, kind, due_at_ns) VALUES (?1, ?2, ?3)",
                params![id, kind_name(*kind), to_nanos(*due_at)?],
            )
            .map_err(unavailable)?;
        }
    }
    for refund in &update.refunds_due {
        run(
            tx,
            "INSERT OR REPLACE INTO refund_retries (action_id, reservation_id, correlation_id,
                 charge_ref, amount, attempt, next_attempt_ns, last_error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                refund.action_id.to_string(),
                refund.reservation_id.to_string(),
                refund.correlation_id.to_string(),
                refund.charge_ref,
                refund.amount,
                refund.attempt,
                to_nanos(refund.next_attempt_at)?,
                refund.last_error,
            ],
        )
        .map_err(unavailable)?;
    }
    for action_id in &update.refunds_settled {
        run(
            tx,
            "DELETE FROM refund_retries WHERE action_id = ?1",
            params![action_id.to_string()],
        )
        .map_err(unavailable)?;
    }
    apply_parked_and_checkpoint(tx, update)
}

fn apply_parked_and_checkpoint(
    tx: &Transaction<'_>,
    update: &ProgressUpdate,
) -> Result<(), TimerStoreError> {
    for parked in &update.parked {
        run(
            tx,
            "INSERT INTO parked_actions (reservation_id, trigger_id, attempted, error, parked_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                parked.reservation_id.map(|id| id.to_string()),
                parked.trigger_id.to_string(),
                parked.attempted,
                parked.error,
                parked
                    .parked_at
                    .to_rfc3339_opts(SecondsFormat::Micros, true),
            ],
        )
        .map_err(unavailable)?;
    }
    if let Some(position) = update.checkpoint {
        let position = i64::try_from(position).map_err(corrupt)?;
        run(
            tx,
            "INSERT INTO saga_checkpoint (id, position) VALUES (0, ?1)
             ON CONFLICT (id) DO UPDATE SET position = MAX(position, excluded.position)",
            params![position],
        )
        .map_err(unavailable)?;
    }
    Ok(())
}

fn load_parked(conn: &Connection, limit: usize) -> Result<Vec<ParkedAction>, TimerStoreError> {
    let mut stmt = conn
        .prepare(
            "SELECT reservation_id, trigger_id, attempted, error, parked_at
             FROM parked_actions ORDER BY id DESC LIMIT ?1",
        )
        .map_err(unavailable)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt
        .query_map(params![limit], |row| {
            Ok((
                row.get::<_, Option<String>>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
            ))
        })
        .map_err(unavailable)?;
    rows.map(|row| {
        let (reservation_id, trigger_id, attempted, error, parked_at) = row.map_err(unavailable)?;
        Ok(ParkedAction {
            reservation_id: reservation_id.as_deref().map(parse_uuid).transpose()?,
            trigger_id: parse_uuid(&trigger_id)?,
            attempted,
            error,
            parked_at: DateTime::parse_from_rfc3339(&parked_at)
                .map_err(corrupt)?
                .with_timezone(&Utc),
        })
    })
    .collect()
}

#[async_trait]
impl TimerStore for SqliteTimerStore {
    async fn load(&self) -> Result<SagaProgress, TimerStoreError> {
        self.with_conn(load_progress).await
    }

    async fn commit(&self, update: ProgressUpdate) -> Result<(), TimerStoreError> {
        if update.is_empty() {
            return Ok(());
        }
        self.with_conn(move |conn| {
            let tx = conn.transaction().map_err(unavailable)?;
            apply(&tx, &update)?;
            tx.commit().map_err(unavailable)
        })
        .await
    }

    async fn armed_before(&self, before: Timestamp) -> Result<Vec<ArmedTimer>, TimerStoreError> {
        self.with_conn(move |conn| load_timers(conn, Some(before)))
            .await
    }

    async fn parked(&self, limit: usize) -> Result<Vec<ParkedAction>, TimerStoreError> {
        self.with_conn(move |conn| load_parked(conn, limit)).await
    }
}
