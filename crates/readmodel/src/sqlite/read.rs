//! The query side of the SQLite view store.

use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection, OptionalExtension};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::schema::store_error;
use super::write::parse_doc;
use crate::query::{
    decode_cursor, decode_seq_cursor, encode_cursor, encode_seq_cursor, CursorKind,
};
use crate::{
    CustomerView, DeadLetter, LodgingFilter, LodgingView, ManagementView, Page, PageRequest,
    PayoutFilter, PayoutTotals, PayoutView, RequestFilter, ReservationFilter, ReservationView,
    ViewError,
};

/// One document by primary key.
pub(super) fn one<T: DeserializeOwned>(
    conn: &Connection,
    sql: &str,
    key: &str,
) -> Result<Option<T>, ViewError> {
    let doc: Option<String> = conn
        .prepare_cached(sql)
        .and_then(|mut s| s.query_row([key], |row| row.get(0)).optional())
        .map_err(store_error)?;
    doc.map(|doc| parse_doc(&doc)).transpose()
}

/// A WHERE clause under construction.
#[derive(Default)]
struct Conditions {
    clauses: Vec<String>,
    values: Vec<Value>,
}

impl Conditions {
    fn equal(&mut self, column: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.clauses.push(format!("{column} = ?"));
            self.values.push(Value::Text(value.to_string()));
        }
    }

    /// `column` equals one of the store's own words (a status), written into the SQL instead of
    /// bound: SQLite plans a statement again at every run whose bound value could change the plan,
    /// and `request_status` decides whether the partial index of pending requests applies. Bound,
    /// every read of a desk was parsed and planned anew (45% of its cost in a profile).
    fn fixed(&mut self, column: &str, word: Option<&'static str>) {
        if let Some(word) = word {
            debug_assert!(word.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
            self.clauses.push(format!("{column} = '{word}'"));
        }
    }

    fn one_of(&mut self, column: &str, values: &[String]) {
        let marks = vec!["?"; values.len()].join(", ");
        self.clauses.push(format!("{column} IN ({marks})"));
        self.values
            .extend(values.iter().map(|v| Value::Text(v.clone())));
    }

    /// `column` contains `text`, ignoring the case of ASCII letters.
    fn contains(&mut self, column: &str, text: &str) {
        self.clauses
            .push(format!("instr(lower({column}), lower(?)) > 0"));
        self.values.push(Value::Text(text.to_string()));
    }

    fn compare(&mut self, column: &str, operator: &str, value: Value) {
        self.clauses.push(format!("{column} {operator} ?"));
        self.values.push(value);
    }

    fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }
}

/// A page's cursor of `kind` from its last row's `seq`.
pub(super) fn seq_cursor(kind: CursorKind) -> impl Fn(&Value) -> String {
    move |key| encode_seq_cursor(kind, seq_of(key))
}

/// Run a list query returning (sort key, doc) rows; the page's cursor is built from the last key.
pub(super) fn page<T: DeserializeOwned>(
    conn: &Connection,
    query: ListQuery,
    cursor: impl Fn(&Value) -> String,
) -> Result<Page<T>, ViewError> {
    let ListQuery { sql, values, limit } = query;
    let mut statement = conn.prepare_cached(&sql).map_err(store_error)?;
    let rows = statement
        .query_map(params_from_iter(values), |row| {
            Ok((row.get::<_, Value>(0)?, row.get::<_, String>(1)?))
        })
        .map_err(store_error)?;
    let mut keyed = Vec::with_capacity(limit + 1);
    for row in rows {
        keyed.push(row.map_err(store_error)?);
    }
    let next_cursor = if keyed.len() > limit {
        keyed.truncate(limit);
        keyed.last().map(|(key, _)| cursor(key))
    } else {
        None
    };
    let items = keyed
        .iter()
        .map(|(_, doc)| parse_doc(doc))
        .collect::<Result<_, _>>()?;
    Ok(Page { items, next_cursor })
}

pub(super) fn seq_of(value: &Value) -> u64 {
    match value {
        Value::Integer(seq) => u64::try_from(*seq).unwrap_or(0),
        _ => 0,
    }
}

pub(super) fn seq_value(seq: u64) -> Value {
    Value::Integer(i64::try_from(seq).unwrap_or(i64::MAX))
}

/// A list's query: its SQL, its values, and the page size (the SQL asks for one row more).
pub(super) struct ListQuery {
    pub(super) sql: String,
    pub(super) values: Vec<Value>,
    pub(super) limit: usize,
}

impl ListQuery {
    /// `SELECT seq, doc FROM table WHERE .. ORDER BY seq ..` for a page of `request`'s size.
    fn by_seq(table: &str, conditions: Conditions, order: &str, request: &PageRequest) -> Self {
        let limit = request.clamped_limit();
        let sql = format!(
            "SELECT seq, doc FROM {table} {} ORDER BY seq {order} LIMIT {}",
            conditions.sql(),
            limit + 1
        );
        Self {
            sql,
            values: conditions.values,
            limit,
        }
    }
}

/// A page of `filter`'s reservations, newest first. A customer's reservations come from
/// `reservations_by_customer`: with a customer, the other columns are written `+column`, which
/// keeps SQLite off their indexes. Left to choose, it took `reservations_by_status` and walked
/// every reservation of that status on the platform (48-63 ms a page at 300,000 reservations).
pub(super) fn reservations_query(
    filter: &ReservationFilter,
    request: &PageRequest,
) -> Result<ListQuery, ViewError> {
    let status = filter.parsed_status()?;
    let column = |name: &str| match filter.customer_id {
        Some(_) => format!("+{name}"),
        None => name.to_string(),
    };
    let mut conditions = Conditions::default();
    conditions.equal("customer_id", filter.customer_id.as_deref());
    if let Some(lodgings) = filter.lodgings() {
        conditions.one_of(&column("lodging_id"), &lodgings);
    }
    conditions.equal(&column("status"), status.map(|s| s.as_str()));
    if let Some(from) = filter.check_in_from {
        conditions.compare(&column("check_in"), ">=", Value::Text(from.to_string()));
    }
    if let Some(to) = filter.check_in_to {
        conditions.compare(&column("check_in"), "<=", Value::Text(to.to_string()));
    }
    if let Some(cursor) = &request.cursor {
        let seq = decode_seq_cursor(CursorKind::Reservations, cursor)?;
        conditions.compare("seq", "<", seq_value(seq));
    }
    Ok(ListQuery::by_seq(
        "reservations",
        conditions,
        "DESC",
        request,
    ))
}

pub(super) fn reservations(
    conn: &Connection,
    filter: &ReservationFilter,
    request: &PageRequest,
) -> Result<Page<ReservationView>, ViewError> {
    page(
        conn,
        reservations_query(filter, request)?,
        seq_cursor(CursorKind::Reservations),
    )
}

/// A page of `filter`'s requests, oldest first. `seq` is bounded on the first page too (below
/// every seq, a log position): then SQLite walks a host's lodgings in `requests_by_lodging` as it
/// does for the next pages. Unbounded, it took `requests_by_lodging_status` and sorted every
/// request of the host's lodgings (5.3 ms against 0.08 for a host of 100 lodgings and 106,000
/// requests).
pub(super) fn requests_query(
    filter: &RequestFilter,
    request: &PageRequest,
) -> Result<ListQuery, ViewError> {
    let status = filter.parsed_status()?;
    let mut conditions = Conditions::default();
    if let Some(lodgings) = filter.lodgings() {
        conditions.one_of("lodging_id", &lodgings);
    }
    conditions.fixed("request_status", status.map(|s| s.as_str()));
    let after = match &request.cursor {
        Some(cursor) => seq_value(decode_seq_cursor(CursorKind::Requests, cursor)?),
        None => Value::Integer(-1),
    };
    conditions.compare("seq", ">", after);
    Ok(ListQuery::by_seq("requests", conditions, "ASC", request))
}

pub(super) fn requests(
    conn: &Connection,
    filter: &RequestFilter,
    request: &PageRequest,
) -> Result<Page<ManagementView>, ViewError> {
    page(
        conn,
        requests_query(filter, request)?,
        seq_cursor(CursorKind::Requests),
    )
}

/// The conditions of a payout filter (its cursor aside).
fn payout_conditions(filter: &PayoutFilter) -> Result<Conditions, ViewError> {
    let status = filter.parsed_status()?;
    let mut conditions = Conditions::default();
    if let Some(lodgings) = filter.lodgings() {
        conditions.one_of("lodging_id", &lodgings);
    }
    conditions.equal("host_id", filter.host_id.as_deref());
    conditions.equal("status", status.map(|s| s.as_str()));
    Ok(conditions)
}

/// A page of `filter`'s payouts, newest first.
pub(super) fn payouts_query(
    filter: &PayoutFilter,
    request: &PageRequest,
) -> Result<ListQuery, ViewError> {
    let mut conditions = payout_conditions(filter)?;
    if let Some(cursor) = &request.cursor {
        let seq = decode_seq_cursor(CursorKind::Payouts, cursor)?;
        conditions.compare("seq", "<", seq_value(seq));
    }
    Ok(ListQuery::by_seq("payouts", conditions, "DESC", request))
}

pub(super) fn payouts(
    conn: &Connection,
    filter: &PayoutFilter,
    request: &PageRequest,
) -> Result<Page<PayoutView>, ViewError> {
    page(
        conn,
        payouts_query(filter, request)?,
        seq_cursor(CursorKind::Payouts),
    )
}

pub(super) fn payout_summary(
    conn: &Connection,
    filter: &PayoutFilter,
) -> Result<Vec<PayoutTotals>, ViewError> {
    let conditions = payout_conditions(filter)?;
    let sql = format!(
        "SELECT currency, count(*), sum(gross), sum(fee), sum(net) FROM payouts {}
         GROUP BY currency ORDER BY currency",
        conditions.sql()
    );
    let mut statement = conn.prepare_cached(&sql).map_err(store_error)?;
    let rows = statement
        .query_map(params_from_iter(conditions.values), |row| {
            Ok(PayoutTotals {
                currency: row.get(0)?,
                count: u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
                gross: row.get(2)?,
                fee: row.get(3)?,
                net: row.get(4)?,
            })
        })
        .map_err(store_error)?;
    rows.map(|row| row.map_err(store_error)).collect()
}

/// A catalog document's field, as SQL. The catalog is small and filtered by scanning it, but for
/// `admin_id`: every request of a non-platform admin lists their lodgings, from the expression
/// index `lodgings_by_admin` (`schema.rs`), which SQLite uses only for this very expression.
fn lodging_field(field: &str) -> String {
    format!("json_extract(doc, '$.{field}')")
}

/// A page of `filter`'s lodgings, by lodging id.
pub(super) fn lodgings_query(
    filter: &LodgingFilter,
    request: &PageRequest,
) -> Result<ListQuery, ViewError> {
    let mut conditions = Conditions::default();
    if let Some(text) = &filter.name_contains {
        conditions.contains(&lodging_field("name"), text);
    }
    let mode = filter.approval_mode.map(|m| m.as_str());
    conditions.equal(&lodging_field("approval_mode"), mode);
    conditions.equal(&lodging_field("admin_id"), filter.admin_id.as_deref());
    // Documents stored before listings had a status were all active.
    let status = format!("coalesce({}, 'active')", lodging_field("status"));
    conditions.equal(&status, filter.status.map(|s| s.as_str()));
    if let Some(cursor) = &request.cursor {
        let after = decode_cursor(CursorKind::Lodgings, cursor)?;
        conditions.compare("lodging_id", ">", Value::Text(after));
    }
    let limit = request.clamped_limit();
    let sql = format!(
        "SELECT lodging_id, doc FROM lodgings {} ORDER BY lodging_id ASC LIMIT {}",
        conditions.sql(),
        limit + 1
    );
    Ok(ListQuery {
        sql,
        values: conditions.values,
        limit,
    })
}

pub(super) fn lodgings(
    conn: &Connection,
    filter: &LodgingFilter,
    request: &PageRequest,
) -> Result<Page<LodgingView>, ViewError> {
    page(conn, lodgings_query(filter, request)?, |key| match key {
        Value::Text(id) => encode_cursor(CursorKind::Lodgings, id),
        _ => encode_cursor(CursorKind::Lodgings, ""),
    })
}

pub(super) fn dead_letters(conn: &Connection) -> Result<Vec<DeadLetter>, ViewError> {
    let mut statement = conn
        .prepare_cached(
            "SELECT position, event_id, stream, event_type, error FROM dead_letters
             ORDER BY position, projector_id",
        )
        .map_err(store_error)?;
    let rows = statement
        .query_map([], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
            ))
        })
        .map_err(store_error)?;
    rows.map(|row| {
        let (position, event_id, stream, event_type, error) = row.map_err(store_error)?;
        let event_id = Uuid::parse_str(&event_id)
            .map_err(|_| ViewError::Corrupt(format!("dead letter event id {event_id:?}")))?;
        Ok(DeadLetter {
            position: u64::try_from(position).unwrap_or(0),
            event_id,
            stream,
            event_type,
            error,
        })
    })
    .collect()
}

pub(super) fn dead_letter_count(conn: &Connection) -> Result<u64, ViewError> {
    let count: i64 = conn
        .prepare_cached("SELECT count(*) FROM dead_letters")
        .and_then(|mut s| s.query_row([], |row| row.get(0)))
        .map_err(store_error)?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// The documents of `table` whose `column` is one of `keys` (those that exist, in no particular
/// order): one statement for them all.
pub(super) fn by_keys<T: DeserializeOwned>(
    conn: &Connection,
    table: &str,
    column: &str,
    keys: &[String],
) -> Result<Vec<T>, ViewError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut conditions = Conditions::default();
    conditions.one_of(column, keys);
    let sql = format!(
        "SELECT doc FROM {table} WHERE {}",
        conditions.clauses.join(" AND ")
    );
    let mut statement = conn.prepare(&sql).map_err(store_error)?;
    let rows = statement
        .query_map(params_from_iter(conditions.values.iter()), |row| {
            row.get::<_, String>(0)
        })
        .map_err(store_error)?;
    rows.map(|doc| parse_doc(&doc.map_err(store_error)?))
        .collect()
}

/// A reservation's document and its customer's contact details, in one query.
pub(super) fn reservation_with_guest(
    conn: &Connection,
    reservation_id: Uuid,
) -> Result<Option<(ReservationView, Option<CustomerView>)>, ViewError> {
    let row: Option<(String, Option<String>)> = conn
        .prepare_cached(
            "SELECT r.doc, c.doc FROM reservations r
             LEFT JOIN customers c ON c.customer_id = r.customer_id
             WHERE r.reservation_id = ?1",
        )
        .and_then(|mut s| {
            s.query_row([reservation_id.to_string()], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()
        })
        .map_err(store_error)?;
    let Some((reservation, guest)) = row else {
        return Ok(None);
    };
    let guest = guest.map(|doc| parse_doc(&doc)).transpose()?;
    Ok(Some((parse_doc(&reservation)?, guest)))
}
