//! The write side of the SQLite view store: the projection's [`ViewSource`] over the write
//! transaction, saving what it changed, checkpoints and dead letters.

use chrono::NaiveDate;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use super::schema::store_error;
use crate::projection::{project, CalendarNight, Changes, Stored, ViewSource};
use crate::{
    CustomerView, DeadLetter, LodgingView, ManagementView, PayoutView, ReservationView, ViewError,
    ViewEvent,
};

pub(super) fn parse_doc<T: DeserializeOwned>(doc: &str) -> Result<T, ViewError> {
    serde_json::from_str(doc).map_err(|e| ViewError::Corrupt(format!("stored view: {e}")))
}

pub(super) fn to_doc<T: Serialize>(view: &T) -> Result<String, ViewError> {
    serde_json::to_string(view).map_err(|e| ViewError::Corrupt(format!("view to JSON: {e}")))
}

pub(super) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Rows come back as (seq, doc).
fn stored<T: DeserializeOwned>(row: (i64, String)) -> Result<Stored<T>, ViewError> {
    Ok(Stored {
        seq: u64::try_from(row.0).unwrap_or(0),
        view: parse_doc(&row.1)?,
    })
}

fn seq_and_doc(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, String)> {
    Ok((row.get(0)?, row.get(1)?))
}

/// The projection's view of the store, read inside the write transaction.
struct TxSource<'c> {
    conn: &'c Connection,
}

impl TxSource<'_> {
    fn one<T: DeserializeOwned>(
        &self,
        sql: &str,
        key: &str,
    ) -> Result<Option<Stored<T>>, ViewError> {
        let mut statement = self.conn.prepare_cached(sql).map_err(store_error)?;
        let row = statement
            .query_row([key], seq_and_doc)
            .optional()
            .map_err(store_error)?;
        row.map(stored).transpose()
    }
}

impl ViewSource for TxSource<'_> {
    fn reservation(&mut self, id: Uuid) -> Result<Option<Stored<ReservationView>>, ViewError> {
        let sql = "SELECT seq, doc FROM reservations WHERE reservation_id = ?1";
        self.one(sql, &id.to_string())
    }

    fn request(&mut self, id: Uuid) -> Result<Option<Stored<ManagementView>>, ViewError> {
        self.one(
            "SELECT seq, doc FROM requests WHERE reservation_id = ?1",
            &id.to_string(),
        )
    }

    fn payout(&mut self, id: Uuid) -> Result<Option<Stored<PayoutView>>, ViewError> {
        self.one(
            "SELECT seq, doc FROM payouts WHERE reservation_id = ?1",
            &id.to_string(),
        )
    }

    fn lodging(&mut self, lodging_id: &str) -> Result<Option<LodgingView>, ViewError> {
        let sql = "SELECT 0, doc FROM lodgings WHERE lodging_id = ?1";
        Ok(self.one::<LodgingView>(sql, lodging_id)?.map(|s| s.view))
    }

    fn customer(&mut self, customer_id: &str) -> Result<Option<CustomerView>, ViewError> {
        let sql = "SELECT 0, doc FROM customers WHERE customer_id = ?1";
        Ok(self.one::<CustomerView>(sql, customer_id)?.map(|s| s.view))
    }

    fn calendar(
        &mut self,
        lodging_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<CalendarNight>, ViewError> {
        calendar(self.conn, lodging_id, from, to)
    }

    fn pending_requests(
        &mut self,
        lodging_id: &str,
        first: NaiveDate,
        last: NaiveDate,
    ) -> Result<Vec<Stored<ManagementView>>, ViewError> {
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT seq, doc FROM requests
                 WHERE lodging_id = ?1 AND request_status = 'pending'
                   AND check_in >= ?2 AND check_in <= ?3",
            )
            .map_err(store_error)?;
        let range = params![lodging_id, first.to_string(), last.to_string()];
        let rows = statement
            .query_map(range, seq_and_doc)
            .map_err(store_error)?;
        rows.map(|row| stored(row.map_err(store_error)?)).collect()
    }
}

fn save(conn: &Connection, changes: &Changes) -> Result<(), ViewError> {
    let mut statement = conn
        .prepare_cached(
            "INSERT INTO reservations
               (reservation_id, seq, customer_id, lodging_id, status, check_in, position, doc)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (reservation_id) DO UPDATE SET
               status = excluded.status, position = excluded.position, doc = excluded.doc
             WHERE excluded.position > reservations.position",
        )
        .map_err(store_error)?;
    for Stored { seq, view } in &changes.reservations {
        statement
            .execute(params![
                view.reservation_id.to_string(),
                to_i64(*seq),
                view.customer_id,
                view.lodging_id,
                view.status.as_str(),
                view.check_in.to_string(),
                to_i64(view.position),
                to_doc(view)?
            ])
            .map_err(store_error)?;
    }
    save_requests(conn, &changes.requests)?;
    save_lodgings(conn, &changes.lodgings)?;
    save_customers(conn, &changes.customers)?;
    save_calendar(conn, &changes.calendar)?;
    save_payouts(conn, &changes.payouts)
}

fn save_requests(conn: &Connection, requests: &[Stored<ManagementView>]) -> Result<(), ViewError> {
    let mut statement = conn
        .prepare_cached(
            "INSERT INTO requests
               (reservation_id, seq, lodging_id, request_status, check_in, position, doc)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (reservation_id) DO UPDATE SET
               request_status = excluded.request_status, position = excluded.position, doc = excluded.doc
             WHERE excluded.position > requests.position",
        )
        .map_err(store_error)?;
    for Stored { seq, view } in requests {
        statement
            .execute(params![
                view.reservation_id.to_string(),
                to_i64(*seq),
                view.lodging_id,
                view.request_status.as_str(),
                view.check_in.to_string(),
                to_i64(view.position),
                to_doc(view)?
            ])
            .map_err(store_error)?;
    }
    Ok(())
}

fn save_payouts(conn: &Connection, payouts: &[Stored<PayoutView>]) -> Result<(), ViewError> {
    let mut statement = conn
        .prepare_cached(
            "INSERT INTO payouts
               (reservation_id, seq, lodging_id, host_id, status, currency, gross, fee, net,
                position, doc)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (reservation_id) DO UPDATE SET
               status = excluded.status, position = excluded.position, doc = excluded.doc
             WHERE excluded.position > payouts.position",
        )
        .map_err(store_error)?;
    for Stored { seq, view } in payouts {
        statement
            .execute(params![
                view.reservation_id.to_string(),
                to_i64(*seq),
                view.lodging_id,
                view.host_id,
                view.status.as_str(),
                view.currency,
                view.gross,
                view.fee,
                view.net,
                to_i64(view.position),
                to_doc(view)?
            ])
            .map_err(store_error)?;
    }
    Ok(())
}

fn save_lodgings(conn: &Connection, lodgings: &[LodgingView]) -> Result<(), ViewError> {
    for view in lodgings {
        save_guarded(
            conn,
            "lodgings",
            "lodging_id",
            &view.lodging_id,
            view.position,
            view,
        )?;
    }
    Ok(())
}

fn save_customers(conn: &Connection, customers: &[CustomerView]) -> Result<(), ViewError> {
    for view in customers {
        save_guarded(
            conn,
            "customers",
            "customer_id",
            &view.customer_id,
            view.position,
            view,
        )?;
    }
    Ok(())
}

fn save_calendar(conn: &Connection, nights: &[CalendarNight]) -> Result<(), ViewError> {
    let mut statement = conn
        .prepare_cached(
            "INSERT INTO calendar (lodging_id, night, booked, held, position)
               VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (lodging_id, night) DO UPDATE SET
               booked = excluded.booked, held = excluded.held, position = excluded.position
             WHERE excluded.position > calendar.position",
        )
        .map_err(store_error)?;
    for night in nights {
        statement
            .execute(params![
                night.lodging_id,
                night.night.to_string(),
                night.booked,
                night.held,
                to_i64(night.position)
            ])
            .map_err(store_error)?;
    }
    Ok(())
}

pub(super) fn checkpoint(conn: &Connection, projector_id: &str) -> Result<u64, ViewError> {
    let position: Option<i64> = conn
        .prepare_cached("SELECT position FROM checkpoints WHERE projector_id = ?1")
        .and_then(|mut s| s.query_row([projector_id], |row| row.get(0)).optional())
        .map_err(store_error)?;
    Ok(position.map_or(0, |p| u64::try_from(p).unwrap_or(0)))
}

pub(super) fn move_checkpoint(
    conn: &Connection,
    projector_id: &str,
    position: u64,
) -> Result<(), ViewError> {
    conn.prepare_cached(
        "INSERT INTO checkpoints (projector_id, position) VALUES (?1, ?2)
         ON CONFLICT (projector_id) DO UPDATE SET position = max(position, excluded.position)",
    )
    .and_then(|mut s| s.execute(params![projector_id, to_i64(position)]))
    .map_err(store_error)?;
    Ok(())
}

/// Apply a batch and move the checkpoint, in one transaction.
pub(super) fn apply(
    conn: &mut Connection,
    projector_id: &str,
    events: &[ViewEvent],
) -> Result<(), ViewError> {
    apply_batch(conn, projector_id, events, |tx, events| {
        let changes = project(&mut TxSource { conn: tx }, events)?;
        save(tx, &changes)
    })
}

/// In one transaction: `apply` the events of the batch after the checkpoint of `projector_id`, and
/// move the checkpoint to the batch's last position.
pub(super) fn apply_batch(
    conn: &mut Connection,
    projector_id: &str,
    events: &[ViewEvent],
    apply: impl FnOnce(&Connection, &[ViewEvent]) -> Result<(), ViewError>,
) -> Result<(), ViewError> {
    let Some(last) = events.iter().map(|e| e.position).max() else {
        return Ok(());
    };
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(store_error)?;
    let done = checkpoint(&tx, projector_id)?;
    let start = events
        .iter()
        .position(|e| e.position > done)
        .unwrap_or(events.len());
    apply(&tx, &events[start..])?;
    move_checkpoint(&tx, projector_id, last)?;
    tx.commit().map_err(store_error)
}

/// Insert or replace the document `key` of `table` (keyed by `key_column`, with `position` and
/// `doc` columns) unless the stored one is at `position` or later.
pub(super) fn save_guarded<T: Serialize>(
    conn: &Connection,
    table: &str,
    key_column: &str,
    key: &str,
    position: u64,
    doc: &T,
) -> Result<(), ViewError> {
    let sql = format!(
        "INSERT INTO {table} ({key_column}, position, doc) VALUES (?1, ?2, ?3)
         ON CONFLICT ({key_column}) DO UPDATE SET position = excluded.position, doc = excluded.doc
         WHERE excluded.position > {table}.position"
    );
    let doc = to_doc(doc)?;
    conn.prepare_cached(&sql)
        .and_then(|mut s| s.execute(params![key, to_i64(position), doc]))
        .map_err(store_error)?;
    Ok(())
}

/// Park a dead letter and move the checkpoint past it, in one transaction.
pub(super) fn park(
    conn: &mut Connection,
    projector_id: &str,
    dead: &DeadLetter,
) -> Result<(), ViewError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(store_error)?;
    tx.execute(
        "INSERT INTO dead_letters (projector_id, position, event_id, stream, event_type, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (projector_id, position) DO NOTHING",
        params![
            projector_id,
            to_i64(dead.position),
            dead.event_id.to_string(),
            dead.stream,
            dead.event_type,
            dead.error
        ],
    )
    .map_err(store_error)?;
    move_checkpoint(&tx, projector_id, dead.position)?;
    tx.commit().map_err(store_error)
}

/// The stored nights of `lodging_id` in `from..to`, by night (nights never booked may be absent).
pub(super) fn calendar(
    conn: &Connection,
    lodging_id: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<CalendarNight>, ViewError> {
    let mut statement = conn
        .prepare_cached(
            "SELECT night, booked, held, position FROM calendar
                 WHERE lodging_id = ?1 AND night >= ?2 AND night < ?3 ORDER BY night",
        )
        .map_err(store_error)?;
    let rows = statement
        .query_map(
            params![lodging_id, from.to_string(), to.to_string()],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, i64>(3)?,
                ))
            },
        )
        .map_err(store_error)?;
    rows.map(|row| {
        let (night, booked, held, position) = row.map_err(store_error)?;
        let night = night
            .parse()
            .map_err(|_| ViewError::Corrupt(format!("calendar night {night:?}")))?;
        Ok(CalendarNight {
            lodging_id: lodging_id.to_string(),
            night,
            booked: u32::try_from(booked).unwrap_or(0),
            held: u32::try_from(held).unwrap_or(0),
            position: u64::try_from(position).unwrap_or(0),
        })
    })
    .collect()
}
