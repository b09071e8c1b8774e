//! The query side of the MongoDB view store.

use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use mongodb::Database;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::codec::{decode, seq_of, to_i64, unavailable};
use crate::projection::CalendarNight;
use crate::query::{
    decode_cursor, decode_seq_cursor, encode_cursor, encode_seq_cursor, CursorKind,
};
use crate::{
    DeadLetter, ListingStatus, LodgingFilter, LodgingView, ManagementView, Page, PageRequest,
    PayoutFilter, PayoutTotals, PayoutView, RequestFilter, ReservationFilter, ReservationView,
    ViewError,
};
use chrono::NaiveDate;

pub(super) async fn one<T: DeserializeOwned>(
    db: &Database,
    collection: &str,
    id: &str,
) -> Result<Option<T>, ViewError> {
    let found = db
        .collection::<Document>(collection)
        .find_one(doc! { "_id": id })
        .await
        .map_err(unavailable)?;
    found.map(decode).transpose()
}

pub(super) async fn checkpoint(db: &Database, projector_id: &str) -> Result<u64, ViewError> {
    let found = db
        .collection::<Document>("checkpoints")
        .find_one(doc! { "_id": projector_id })
        .await
        .map_err(unavailable)?;
    let position = found.and_then(|d| d.get_i64("position").ok()).unwrap_or(0);
    Ok(u64::try_from(position).unwrap_or(0))
}

/// Run a list query sorted by `sort`; the cursor of a full page comes from its last document.
pub(super) async fn page<T: DeserializeOwned>(
    db: &Database,
    collection: &str,
    filter: Document,
    sort: Document,
    limit: usize,
    cursor: impl Fn(&Document) -> Result<String, ViewError>,
) -> Result<Page<T>, ViewError> {
    let found = db
        .collection::<Document>(collection)
        .find(filter)
        .sort(sort)
        .limit(i64::try_from(limit + 1).unwrap_or(i64::MAX))
        .await
        .map_err(unavailable)?;
    let mut docs: Vec<Document> = found.try_collect().await.map_err(unavailable)?;
    let next_cursor = if docs.len() > limit {
        docs.truncate(limit);
        docs.last().map(&cursor).transpose()?
    } else {
        None
    };
    let items = docs.into_iter().map(decode).collect::<Result<_, _>>()?;
    Ok(Page { items, next_cursor })
}

/// `text` as a regular expression that matches it literally.
fn regex_literal(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if !c.is_alphanumeric() && !c.is_whitespace() {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern
}

fn one_of(values: &[String]) -> Bson {
    Bson::Document(doc! { "$in": values.to_vec() })
}

pub(super) async fn reservations(
    db: &Database,
    filter: &ReservationFilter,
    request: &PageRequest,
) -> Result<Page<ReservationView>, ViewError> {
    let status = filter.parsed_status()?;
    let mut query = Document::new();
    if let Some(customer_id) = &filter.customer_id {
        query.insert("customer_id", customer_id);
    }
    if let Some(lodgings) = filter.lodgings() {
        query.insert("lodging_id", one_of(&lodgings));
    }
    if let Some(status) = status {
        query.insert("status", status.as_str());
    }
    // Dates are stored as `YYYY-MM-DD` strings, which order as the dates do.
    let mut check_in = Document::new();
    if let Some(from) = filter.check_in_from {
        check_in.insert("$gte", from.to_string());
    }
    if let Some(to) = filter.check_in_to {
        check_in.insert("$lte", to.to_string());
    }
    if !check_in.is_empty() {
        query.insert("check_in", check_in);
    }
    if let Some(cursor) = &request.cursor {
        let seq = decode_seq_cursor(CursorKind::Reservations, cursor)?;
        query.insert("seq", doc! { "$lt": to_i64(seq) });
    }
    let limit = request.clamped_limit();
    page(
        db,
        "reservations",
        query,
        doc! { "seq": -1 },
        limit,
        |doc| Ok(encode_seq_cursor(CursorKind::Reservations, seq_of(doc)?)),
    )
    .await
}

pub(super) async fn requests(
    db: &Database,
    filter: &RequestFilter,
    request: &PageRequest,
) -> Result<Page<ManagementView>, ViewError> {
    let status = filter.parsed_status()?;
    let mut query = Document::new();
    if let Some(lodgings) = filter.lodgings() {
        query.insert("lodging_id", one_of(&lodgings));
    }
    if let Some(status) = status {
        query.insert("request_status", status.as_str());
    }
    if let Some(cursor) = &request.cursor {
        let seq = decode_seq_cursor(CursorKind::Requests, cursor)?;
        query.insert("seq", doc! { "$gt": to_i64(seq) });
    }
    let limit = request.clamped_limit();
    page(db, "requests", query, doc! { "seq": 1 }, limit, |doc| {
        Ok(encode_seq_cursor(CursorKind::Requests, seq_of(doc)?))
    })
    .await
}

/// The query of a payout filter (its cursor aside).
fn payout_query(filter: &PayoutFilter) -> Result<Document, ViewError> {
    let status = filter.parsed_status()?;
    let mut query = Document::new();
    if let Some(lodgings) = filter.lodgings() {
        query.insert("lodging_id", one_of(&lodgings));
    }
    if let Some(host_id) = &filter.host_id {
        query.insert("host_id", host_id);
    }
    if let Some(status) = status {
        query.insert("status", status.as_str());
    }
    Ok(query)
}

pub(super) async fn payouts(
    db: &Database,
    filter: &PayoutFilter,
    request: &PageRequest,
) -> Result<Page<PayoutView>, ViewError> {
    let mut query = payout_query(filter)?;
    if let Some(cursor) = &request.cursor {
        let seq = decode_seq_cursor(CursorKind::Payouts, cursor)?;
        query.insert("seq", doc! { "$lt": to_i64(seq) });
    }
    let limit = request.clamped_limit();
    page(db, "payouts", query, doc! { "seq": -1 }, limit, |doc| {
        Ok(encode_seq_cursor(CursorKind::Payouts, seq_of(doc)?))
    })
    .await
}

/// A sum or count of the summary as an integer. MongoDB sums 64-bit integers to one, and to a
/// double only past their range: that is refused rather than rounded.
fn whole(group: &Document, field: &str) -> Result<i64, ViewError> {
    let out_of_range = || ViewError::Corrupt(format!("payout summary: {field} out of range"));
    match group.get(field) {
        Some(Bson::Int64(n)) => Ok(*n),
        Some(Bson::Int32(n)) => Ok(i64::from(*n)),
        _ => Err(out_of_range()),
    }
}

fn totals(group: &Document) -> Result<PayoutTotals, ViewError> {
    let currency = group
        .get_str("_id")
        .map_err(|e| ViewError::Corrupt(format!("payout summary without currency: {e}")))?;
    Ok(PayoutTotals {
        currency: currency.to_string(),
        count: u64::try_from(whole(group, "count")?).unwrap_or(0),
        gross: whole(group, "gross")?,
        fee: whole(group, "fee")?,
        net: whole(group, "net")?,
    })
}

pub(super) async fn payout_summary(
    db: &Database,
    filter: &PayoutFilter,
) -> Result<Vec<PayoutTotals>, ViewError> {
    let pipeline = [
        doc! { "$match": payout_query(filter)? },
        doc! { "$group": {
            "_id": "$currency",
            "count": { "$sum": 1_i64 },
            "gross": { "$sum": "$gross" },
            "fee": { "$sum": "$fee" },
            "net": { "$sum": "$net" },
        } },
        doc! { "$sort": { "_id": 1 } },
    ];
    let found = db
        .collection::<Document>("payouts")
        .aggregate(pipeline)
        .await
        .map_err(unavailable)?;
    let groups: Vec<Document> = found.try_collect().await.map_err(unavailable)?;
    groups.iter().map(totals).collect()
}

pub(super) async fn lodgings(
    db: &Database,
    filter: &LodgingFilter,
    request: &PageRequest,
) -> Result<Page<LodgingView>, ViewError> {
    let mut query = Document::new();
    if let Some(text) = &filter.name_contains {
        // A literal substring: every character escaped, case-insensitive.
        let pattern = regex_literal(text);
        query.insert("name", doc! { "$regex": pattern, "$options": "i" });
    }
    if let Some(mode) = filter.approval_mode {
        query.insert("approval_mode", mode.as_str());
    }
    if let Some(admin_id) = &filter.admin_id {
        query.insert("admin_id", admin_id);
    }
    match filter.status {
        // Documents stored before listings had a status were all active.
        Some(ListingStatus::Active) => {
            let others: Vec<&str> = ListingStatus::ALL
                .iter()
                .filter(|s| **s != ListingStatus::Active)
                .map(|s| s.as_str())
                .collect();
            query.insert("status", doc! { "$nin": others });
        }
        Some(status) => {
            query.insert("status", status.as_str());
        }
        None => {}
    }
    if let Some(cursor) = &request.cursor {
        let after = decode_cursor(CursorKind::Lodgings, cursor)?;
        query.insert("_id", doc! { "$gt": after });
    }
    let limit = request.clamped_limit();
    page(db, "lodgings", query, doc! { "_id": 1 }, limit, |doc| {
        let id = doc
            .get_str("_id")
            .map_err(|e| ViewError::Corrupt(format!("lodging without id: {e}")))?;
        Ok(encode_cursor(CursorKind::Lodgings, id))
    })
    .await
}

pub(super) async fn calendar(
    db: &Database,
    lodging_id: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<CalendarNight>, ViewError> {
    let nights = doc! { "$gte": from.to_string(), "$lt": to.to_string() };
    let found = db
        .collection::<Document>("calendar")
        .find(doc! { "lodging_id": lodging_id, "night": nights })
        .sort(doc! { "night": 1 })
        .await
        .map_err(unavailable)?;
    let docs: Vec<Document> = found.try_collect().await.map_err(unavailable)?;
    docs.into_iter().map(decode).collect()
}

fn dead_letter(doc: &Document) -> Result<DeadLetter, ViewError> {
    let corrupt = |e: mongodb::bson::document::ValueAccessError| {
        ViewError::Corrupt(format!("dead letter: {e}"))
    };
    let event_id = doc.get_str("event_id").map_err(corrupt)?;
    Ok(DeadLetter {
        position: u64::try_from(doc.get_i64("position").map_err(corrupt)?).unwrap_or(0),
        event_id: Uuid::parse_str(event_id)
            .map_err(|_| ViewError::Corrupt(format!("dead letter event id {event_id:?}")))?,
        stream: doc.get_str("stream").map_err(corrupt)?.to_string(),
        event_type: doc.get_str("event_type").map_err(corrupt)?.to_string(),
        error: doc.get_str("error").map_err(corrupt)?.to_string(),
    })
}

pub(super) async fn dead_letters(db: &Database) -> Result<Vec<DeadLetter>, ViewError> {
    let found = db
        .collection::<Document>("dead_letters")
        .find(doc! {})
        .sort(doc! { "position": 1, "projector_id": 1 })
        .await
        .map_err(unavailable)?;
    let docs: Vec<Document> = found.try_collect().await.map_err(unavailable)?;
    docs.iter().map(dead_letter).collect()
}

/// The documents of `collection` whose `_id` is one of `ids` (those that exist, in no particular
/// order): one query for them all.
pub(super) async fn by_ids<T: DeserializeOwned>(
    db: &Database,
    collection: &str,
    ids: &[String],
) -> Result<Vec<T>, ViewError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let found = db
        .collection::<Document>(collection)
        .find(doc! { "_id": { "$in": ids } })
        .await
        .map_err(unavailable)?;
    let docs: Vec<Document> = found.try_collect().await.map_err(unavailable)?;
    docs.into_iter().map(decode).collect()
}
