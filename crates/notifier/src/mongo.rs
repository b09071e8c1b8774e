//! The MongoDB webhook store (`mongodb` 3.x): owns the collections `webhooks` (subscriptions,
//! `_id` = id), `webhook_deliveries` (`_id` = `"{subscription_id}:{seq}"`, the delivery's fields
//! with `subscription_id`, `seq` as int64 and `state` as its name) and `webhook_cursor` (the
//! dispatcher's cursor, `{_id: "dispatcher", seq}`, moved only by `$max`; and the count of
//! subscriptions added, `{_id: "subscriptions", seq}`, which orders subscriptions made in the same
//! millisecond). Times are BSON datetimes (milliseconds).
//!
//! No write needs a transaction: deliveries are only inserted (a duplicate `_id` is the delivery
//! already queued, left as it is), then the cursor is moved, so a crash in between re-queues what
//! is already there; attempts and re-drives are single-document updates guarded by the state they
//! expect. A subscription removed while its deliveries are being queued is checked again after
//! the insert, and what was queued for it is deleted.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::bson::{self, doc, Bson, Document};
use mongodb::error::{Error, ErrorKind, WriteFailure};
use mongodb::options::ReturnDocument;
use mongodb::{Client, Collection, Database, IndexModel};
use readmodel::{decode_delivery_cursor, encode_delivery_cursor, Page, PageRequest, ViewError};
use uuid::Uuid;

use crate::model::{Delivery, DeliveryState, Owner, Redrive, Subscription};
use crate::store::WebhookStore;

const SUBSCRIPTIONS: &str = "webhooks";
const DELIVERIES: &str = "webhook_deliveries";
const CURSORS: &str = "webhook_cursor";
/// The dispatcher's cursor document in [`CURSORS`].
const DISPATCHER: &str = "dispatcher";
/// The count of subscriptions added, in [`CURSORS`].
const ADDED: &str = "subscriptions";
const DUPLICATE_KEY: i32 = 11000;
/// Upserts of one `_id` tried before giving up (racing upserts may meet a duplicate key once).
const ATTEMPTS: usize = 3;
const OPEN_STATES: [&str; 2] = ["pending", "retrying"];

/// Webhook subscriptions and deliveries in a MongoDB database. Clones share the connection pool.
#[derive(Debug, Clone)]
pub struct MongoWebhooks {
    subscriptions: Collection<Document>,
    deliveries: Collection<Document>,
    cursors: Collection<Document>,
}

impl MongoWebhooks {
    /// Connect to `url` and use database `db_name`, creating the indexes the queries need.
    pub async fn connect(url: &str, db_name: &str) -> Result<Self, ViewError> {
        let client = Client::with_uri_str(url).await.map_err(unavailable)?;
        let store = Self::new(&client.database(db_name));
        store.create_indexes().await?;
        Ok(store)
    }

    fn new(db: &Database) -> Self {
        Self {
            subscriptions: db.collection(SUBSCRIPTIONS),
            deliveries: db.collection(DELIVERIES),
            cursors: db.collection(CURSORS),
        }
    }

    async fn create_indexes(&self) -> Result<(), ViewError> {
        self.subscriptions
            .create_index(index(doc! { "created_at": 1, "added": 1 }))
            .await
            .map_err(unavailable)?;
        let wanted = [
            index(doc! { "subscription_id": 1, "seq": 1 }),
            index(doc! { "subscription_id": 1, "state": 1, "seq": 1 }),
            index(doc! { "subscription_id": 1, "delivery_id": 1 }),
        ];
        self.deliveries
            .create_indexes(wanted)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// The next number in the order subscriptions are added in.
    async fn next_added(&self) -> Result<i64, ViewError> {
        for _ in 0..ATTEMPTS {
            let counted = self
                .cursors
                .find_one_and_update(doc! { "_id": ADDED }, doc! { "$inc": { "seq": 1_i64 } })
                .upsert(true)
                .return_document(ReturnDocument::After)
                .await;
            match counted {
                Ok(Some(counter)) => return int(&counter, "seq"),
                Ok(None) => {}
                Err(error) if is_duplicate_key(&error) => {}
                Err(error) => return Err(unavailable(error)),
            }
        }
        Err(ViewError::Unavailable(
            "MongoDB: counting subscriptions kept racing".into(),
        ))
    }

    /// Which of the subscriptions of `ids` are kept.
    async fn kept(&self, ids: &HashSet<Uuid>) -> Result<HashSet<Uuid>, ViewError> {
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        let wanted: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        let found: Vec<Document> = self
            .subscriptions
            .find(doc! { "_id": { "$in": wanted } })
            .projection(doc! { "_id": 1 })
            .await
            .map_err(unavailable)?
            .try_collect()
            .await
            .map_err(unavailable)?;
        found.iter().map(|d| uuid(d, "_id")).collect()
    }

    /// Insert `docs`, leaving every one whose `_id` is there already as it is.
    async fn insert_absent(&self, docs: Vec<Document>) -> Result<(), ViewError> {
        if docs.is_empty() {
            return Ok(());
        }
        match self.deliveries.insert_many(docs).ordered(false).await {
            Ok(_) => Ok(()),
            Err(error) if only_duplicates(&error) => Ok(()),
            Err(error) => Err(unavailable(error)),
        }
    }

    /// Delete what was queued for subscriptions of `queued_for` removed meanwhile.
    async fn drop_orphans(&self, queued_for: &HashSet<Uuid>) -> Result<(), ViewError> {
        let still = self.kept(queued_for).await?;
        let gone: Vec<String> = queued_for.difference(&still).map(Uuid::to_string).collect();
        if gone.is_empty() {
            return Ok(());
        }
        self.deliveries
            .delete_many(doc! { "subscription_id": { "$in": gone } })
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn move_cursor(&self, cursor: u64) -> Result<(), ViewError> {
        for _ in 0..ATTEMPTS {
            let moved = self
                .cursors
                .update_one(
                    doc! { "_id": DISPATCHER },
                    doc! { "$max": { "seq": to_i64(cursor) } },
                )
                .upsert(true)
                .await;
            match moved {
                Ok(_) => return Ok(()),
                Err(error) if is_duplicate_key(&error) => {}
                Err(error) => return Err(unavailable(error)),
            }
        }
        Err(ViewError::Unavailable(
            "MongoDB: moving the dispatcher cursor kept racing".into(),
        ))
    }

    async fn find_deliveries(
        &self,
        filter: Document,
        sort: Document,
        limit: usize,
    ) -> Result<Vec<Delivery>, ViewError> {
        let found: Vec<Document> = self
            .deliveries
            .find(filter)
            .sort(sort)
            .limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .await
            .map_err(unavailable)?
            .try_collect()
            .await
            .map_err(unavailable)?;
        found.iter().map(decode_delivery).collect()
    }
}

#[async_trait]
impl WebhookStore for MongoWebhooks {
    async fn add_subscription(&self, subscription: &Subscription) -> Result<(), ViewError> {
        let added = self.next_added().await?;
        let stored = encode_subscription(subscription, added)?;
        self.subscriptions
            .insert_one(stored)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn subscriptions(&self) -> Result<Vec<Subscription>, ViewError> {
        let found: Vec<Document> = self
            .subscriptions
            .find(doc! {})
            .sort(doc! { "created_at": 1, "added": 1 })
            .await
            .map_err(unavailable)?
            .try_collect()
            .await
            .map_err(unavailable)?;
        found.iter().map(decode_subscription).collect()
    }

    async fn subscription(&self, id: Uuid) -> Result<Option<Subscription>, ViewError> {
        let found = self
            .subscriptions
            .find_one(doc! { "_id": id.to_string() })
            .await
            .map_err(unavailable)?;
        found.as_ref().map(decode_subscription).transpose()
    }

    async fn remove_subscription(&self, id: Uuid) -> Result<bool, ViewError> {
        let removed = self
            .subscriptions
            .delete_one(doc! { "_id": id.to_string() })
            .await
            .map_err(unavailable)?;
        // Always, so a retry after a failure here still drops them.
        self.deliveries
            .delete_many(doc! { "subscription_id": id.to_string() })
            .await
            .map_err(unavailable)?;
        Ok(removed.deleted_count > 0)
    }

    async fn cursor(&self) -> Result<u64, ViewError> {
        let found = self
            .cursors
            .find_one(doc! { "_id": DISPATCHER })
            .await
            .map_err(unavailable)?;
        found.map_or(Ok(0), |d| unsigned(&d, "seq"))
    }

    async fn enqueue(&self, deliveries: &[Delivery], cursor: u64) -> Result<(), ViewError> {
        let named: HashSet<Uuid> = deliveries.iter().map(|d| d.subscription_id).collect();
        let kept = self.kept(&named).await?;
        let docs: Vec<Document> = deliveries
            .iter()
            .filter(|d| kept.contains(&d.subscription_id))
            .map(encode_delivery)
            .collect();
        if !docs.is_empty() {
            self.insert_absent(docs).await?;
            self.drop_orphans(&kept).await?;
        }
        self.move_cursor(cursor).await
    }

    async fn open_deliveries(
        &self,
        subscription_id: Uuid,
        limit: usize,
    ) -> Result<Vec<Delivery>, ViewError> {
        if limit == 0 {
            // A find's limit 0 means no limit.
            return Ok(Vec::new());
        }
        let filter = doc! {
            "subscription_id": subscription_id.to_string(),
            "state": { "$in": OPEN_STATES.to_vec() },
        };
        self.find_deliveries(filter, doc! { "seq": 1 }, limit).await
    }

    async fn record_attempt(&self, delivery: &Delivery) -> Result<bool, ViewError> {
        let filter = doc! {
            "_id": key(delivery.subscription_id, delivery.seq),
            "state": { "$in": OPEN_STATES.to_vec() },
        };
        let saved = self
            .deliveries
            .update_one(filter, doc! { "$set": outcome(delivery) })
            .await
            .map_err(unavailable)?;
        Ok(saved.matched_count > 0)
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
            .transpose()?;
        let mut filter = doc! { "subscription_id": subscription_id.to_string() };
        if let Some(seq) = before {
            filter.insert("seq", doc! { "$lt": to_i64(seq) });
        }
        let limit = page.clamped_limit();
        let mut items = self
            .find_deliveries(filter, doc! { "seq": -1 }, limit + 1)
            .await?;
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|d| encode_delivery_cursor(d.seq))
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    async fn redrive(
        &self,
        subscription_id: Uuid,
        delivery_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Redrive, ViewError> {
        let which = doc! {
            "subscription_id": subscription_id.to_string(),
            "delivery_id": delivery_id.to_string(),
        };
        let mut parked = which.clone();
        parked.insert("state", DeliveryState::Parked.as_str());
        let queued = self
            .deliveries
            .find_one_and_update(parked, doc! { "$set": requeued(now) })
            .return_document(ReturnDocument::After)
            .await
            .map_err(unavailable)?;
        if let Some(found) = queued {
            return decode_delivery(&found).map(|d| Redrive::Queued(Box::new(d)));
        }
        let found = self.deliveries.find_one(which).await.map_err(unavailable)?;
        match found {
            Some(other) => Ok(Redrive::NotParked(state(&other)?)),
            None => Ok(Redrive::NotFound),
        }
    }
}

// ---- documents ----

fn index(keys: Document) -> IndexModel {
    IndexModel::builder().keys(keys).build()
}

/// A delivery's `_id`: one per subscription and inbox entry.
fn key(subscription_id: Uuid, seq: u64) -> String {
    format!("{subscription_id}:{seq}")
}

fn encode_subscription(s: &Subscription, added: i64) -> Result<Document, ViewError> {
    let owner = bson::to_bson(&s.owner)
        .map_err(|e| ViewError::Corrupt(format!("subscription owner to BSON: {e}")))?;
    Ok(doc! {
        "_id": s.id.to_string(),
        "owner": owner,
        "url": &s.url,
        "events": s.events.clone(),
        "sealed_secret": &s.sealed_secret,
        "from_position": to_i64(s.from_position),
        "created_at": time(s.created_at),
        "added": added,
    })
}

fn decode_subscription(d: &Document) -> Result<Subscription, ViewError> {
    let owner = d
        .get("owner")
        .ok_or_else(|| corrupt(d, "owner", "missing"))?;
    let owner: Owner =
        bson::from_bson(owner.clone()).map_err(|e| corrupt(d, "owner", &e.to_string()))?;
    let events = d
        .get_array("events")
        .map_err(|e| corrupt(d, "events", &e.to_string()))?
        .iter()
        .map(|e| e.as_str().map(str::to_owned))
        .collect::<Option<Vec<String>>>()
        .ok_or_else(|| corrupt(d, "events", "not all strings"))?;
    Ok(Subscription {
        id: uuid(d, "_id")?,
        owner,
        url: text(d, "url")?,
        events,
        sealed_secret: text(d, "sealed_secret")?,
        from_position: unsigned(d, "from_position")?,
        created_at: required_time(d, "created_at")?,
    })
}

fn encode_delivery(x: &Delivery) -> Document {
    let mut stored = doc! {
        "_id": key(x.subscription_id, x.seq),
        "subscription_id": x.subscription_id.to_string(),
        "seq": to_i64(x.seq),
        "delivery_id": x.delivery_id.to_string(),
        "event_id": x.event_id.to_string(),
        "event_type": &x.event_type,
        "reservation_id": x.reservation_id.to_string(),
        "position": to_i64(x.position),
        "body": &x.body,
        "queued_at": time(x.queued_at),
    };
    stored.extend(outcome(x));
    stored
}

/// What an attempt changes.
fn outcome(x: &Delivery) -> Document {
    doc! {
        "state": x.state.as_str(),
        "attempts": i64::from(x.attempts),
        "last_status_code": x.last_status_code.map(i32::from),
        "last_error": x.last_error.as_deref(),
        "first_attempt_at": x.first_attempt_at.map(time),
        "next_attempt_at": x.next_attempt_at.map(time),
        "settled_at": x.settled_at.map(time),
    }
}

/// What a re-drive changes: queued again, due at `now`; the last answer stays on record.
fn requeued(now: DateTime<Utc>) -> Document {
    doc! {
        "state": DeliveryState::Pending.as_str(),
        "attempts": 0_i64,
        "first_attempt_at": Bson::Null,
        "next_attempt_at": time(now),
        "settled_at": Bson::Null,
    }
}

fn decode_delivery(d: &Document) -> Result<Delivery, ViewError> {
    let attempts = int(d, "attempts")?;
    let code = match d.get("last_status_code") {
        None | Some(Bson::Null) => None,
        Some(_) => Some(
            u16::try_from(int(d, "last_status_code")?)
                .map_err(|e| corrupt(d, "last_status_code", &e.to_string()))?,
        ),
    };
    let last_error = match d.get("last_error") {
        None | Some(Bson::Null) => None,
        Some(_) => Some(text(d, "last_error")?),
    };
    Ok(Delivery {
        delivery_id: uuid(d, "delivery_id")?,
        subscription_id: uuid(d, "subscription_id")?,
        seq: unsigned(d, "seq")?,
        event_id: uuid(d, "event_id")?,
        event_type: text(d, "event_type")?,
        reservation_id: uuid(d, "reservation_id")?,
        position: unsigned(d, "position")?,
        body: text(d, "body")?,
        state: state(d)?,
        attempts: u32::try_from(attempts).map_err(|e| corrupt(d, "attempts", &e.to_string()))?,
        last_status_code: code,
        last_error,
        queued_at: required_time(d, "queued_at")?,
        first_attempt_at: optional_time(d, "first_attempt_at")?,
        next_attempt_at: optional_time(d, "next_attempt_at")?,
        settled_at: optional_time(d, "settled_at")?,
    })
}

fn state(d: &Document) -> Result<DeliveryState, ViewError> {
    use DeliveryState::{Delivered, Parked, Pending, Retrying};
    let name = d
        .get_str("state")
        .map_err(|e| corrupt(d, "state", &e.to_string()))?;
    [Pending, Retrying, Delivered, Parked]
        .into_iter()
        .find(|s| s.as_str() == name)
        .ok_or_else(|| corrupt(d, "state", &format!("unknown state {name:?}")))
}

// ---- fields ----

/// Positions and sequence numbers as BSON int64 (they stay far below `i64::MAX`).
fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn time(at: DateTime<Utc>) -> bson::DateTime {
    bson::DateTime::from_millis(at.timestamp_millis())
}

fn text(d: &Document, field: &str) -> Result<String, ViewError> {
    d.get_str(field)
        .map(str::to_owned)
        .map_err(|e| corrupt(d, field, &e.to_string()))
}

fn int(d: &Document, field: &str) -> Result<i64, ViewError> {
    match d.get(field) {
        Some(Bson::Int64(n)) => Ok(*n),
        Some(Bson::Int32(n)) => Ok(i64::from(*n)),
        other => Err(corrupt(d, field, &format!("not an integer: {other:?}"))),
    }
}

fn unsigned(d: &Document, field: &str) -> Result<u64, ViewError> {
    u64::try_from(int(d, field)?).map_err(|e| corrupt(d, field, &e.to_string()))
}

fn uuid(d: &Document, field: &str) -> Result<Uuid, ViewError> {
    let raw = d
        .get_str(field)
        .map_err(|e| corrupt(d, field, &e.to_string()))?;
    Uuid::parse_str(raw).map_err(|e| corrupt(d, field, &e.to_string()))
}

fn required_time(d: &Document, field: &str) -> Result<DateTime<Utc>, ViewError> {
    optional_time(d, field)?.ok_or_else(|| corrupt(d, field, "missing"))
}

fn optional_time(d: &Document, field: &str) -> Result<Option<DateTime<Utc>>, ViewError> {
    match d.get(field) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::DateTime(at)) => DateTime::from_timestamp_millis(at.timestamp_millis())
            .map(Some)
            .ok_or_else(|| corrupt(d, field, "out of range")),
        Some(other) => Err(corrupt(d, field, &format!("not a datetime: {other:?}"))),
    }
}

fn corrupt(d: &Document, field: &str, why: &str) -> ViewError {
    let id = d.get("_id").map_or_else(String::new, ToString::to_string);
    ViewError::Corrupt(format!("webhook document {id}: field {field}: {why}"))
}

// ---- driver errors ----

/// An `insert_many` that failed only on `_id`s already there.
fn only_duplicates(error: &Error) -> bool {
    match error.kind.as_ref() {
        ErrorKind::InsertMany(failure) => {
            failure.write_concern_error.is_none()
                && failure
                    .write_errors
                    .as_ref()
                    .is_some_and(|errors| errors.iter().all(|e| e.code == DUPLICATE_KEY))
        }
        _ => false,
    }
}

fn is_duplicate_key(error: &Error) -> bool {
    match error.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(failure)) => failure.code == DUPLICATE_KEY,
        ErrorKind::Command(failure) => failure.code == DUPLICATE_KEY,
        _ => false,
    }
}

/// Everything the driver reports is the store being unreachable or refusing: retryable.
fn unavailable(error: Error) -> ViewError {
    ViewError::Unavailable(format!("MongoDB: {error}"))
}
