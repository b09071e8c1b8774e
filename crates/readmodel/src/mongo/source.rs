//! The projection's view of a MongoDB store: documents fetched ahead of the (synchronous, pure)
//! projection. A run that asks for something not fetched records the miss; the misses are fetched
//! and the batch is projected again, until a run misses nothing.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use futures::TryStreamExt;
use mongodb::bson::{doc, Document};
use mongodb::{Collection, Database};
use uuid::Uuid;

use super::codec::{decode, decode_stored, unavailable};
use crate::projection::{project, CalendarNight, Changes, Stored, ViewSource};
use crate::{
    AnyEvent, CustomerView, LodgingView, ManagementView, PayoutView, ReservationView, ViewError,
    ViewEvent,
};

/// A batch needs at most a few rounds (ids, then stays, then calendars); more means a bug.
const MAX_ROUNDS: usize = 8;

type Range = (String, NaiveDate, NaiveDate);

#[derive(Default)]
struct Misses {
    reservations: HashSet<Uuid>,
    requests: HashSet<Uuid>,
    payouts: HashSet<Uuid>,
    lodgings: HashSet<String>,
    customers: HashSet<String>,
    calendar: HashSet<Range>,
    pending: HashSet<Range>,
}

impl Misses {
    fn is_empty(&self) -> bool {
        self.reservations.is_empty()
            && self.requests.is_empty()
            && self.payouts.is_empty()
            && self.lodgings.is_empty()
            && self.customers.is_empty()
            && self.calendar.is_empty()
            && self.pending.is_empty()
    }
}

/// Documents fetched for one batch.
#[derive(Default)]
struct Prefetched {
    reservations: HashMap<Uuid, Option<Stored<ReservationView>>>,
    requests: HashMap<Uuid, Option<Stored<ManagementView>>>,
    payouts: HashMap<Uuid, Option<Stored<PayoutView>>>,
    lodgings: HashMap<String, Option<LodgingView>>,
    customers: HashMap<String, Option<CustomerView>>,
    calendar: HashMap<Range, Vec<CalendarNight>>,
    /// Pending requests by lodging and check-in range (inclusive).
    pending: HashMap<Range, Vec<Stored<ManagementView>>>,
    misses: Misses,
}

fn cached<K: std::hash::Hash + Eq + Clone, V: Clone>(
    map: &HashMap<K, V>,
    misses: &mut HashSet<K>,
    key: &K,
    absent: V,
) -> V {
    map.get(key).cloned().unwrap_or_else(|| {
        misses.insert(key.clone());
        absent
    })
}

impl ViewSource for Prefetched {
    fn reservation(&mut self, id: Uuid) -> Result<Option<Stored<ReservationView>>, ViewError> {
        Ok(cached(
            &self.reservations,
            &mut self.misses.reservations,
            &id,
            None,
        ))
    }
    fn request(&mut self, id: Uuid) -> Result<Option<Stored<ManagementView>>, ViewError> {
        Ok(cached(&self.requests, &mut self.misses.requests, &id, None))
    }
    fn payout(&mut self, id: Uuid) -> Result<Option<Stored<PayoutView>>, ViewError> {
        Ok(cached(&self.payouts, &mut self.misses.payouts, &id, None))
    }
    fn lodging(&mut self, lodging_id: &str) -> Result<Option<LodgingView>, ViewError> {
        let key = lodging_id.to_string();
        Ok(cached(
            &self.lodgings,
            &mut self.misses.lodgings,
            &key,
            None,
        ))
    }
    fn customer(&mut self, customer_id: &str) -> Result<Option<CustomerView>, ViewError> {
        let key = customer_id.to_string();
        Ok(cached(
            &self.customers,
            &mut self.misses.customers,
            &key,
            None,
        ))
    }
    fn calendar(
        &mut self,
        lodging_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<CalendarNight>, ViewError> {
        let key = (lodging_id.to_string(), from, to);
        Ok(cached(
            &self.calendar,
            &mut self.misses.calendar,
            &key,
            Vec::new(),
        ))
    }
    fn pending_requests(
        &mut self,
        lodging_id: &str,
        first: NaiveDate,
        last: NaiveDate,
    ) -> Result<Vec<Stored<ManagementView>>, ViewError> {
        let key = (lodging_id.to_string(), first, last);
        Ok(cached(
            &self.pending,
            &mut self.misses.pending,
            &key,
            Vec::new(),
        ))
    }
}

async fn all(
    collection: &Collection<Document>,
    filter: Document,
) -> Result<Vec<Document>, ViewError> {
    let cursor = collection.find(filter).await.map_err(unavailable)?;
    cursor.try_collect().await.map_err(unavailable)
}

/// Fetch the documents with `_id` in `ids`; absent ones are recorded as `None`.
async fn by_ids<K, T>(
    collection: &Collection<Document>,
    ids: HashSet<K>,
    key_of: impl Fn(&T) -> K,
    into: &mut HashMap<K, Option<T>>,
    decode_doc: impl Fn(Document) -> Result<T, ViewError>,
) -> Result<(), ViewError>
where
    K: std::hash::Hash + Eq + ToString,
{
    if ids.is_empty() {
        return Ok(());
    }
    let keys: Vec<String> = ids.iter().map(ToString::to_string).collect();
    for doc in all(collection, doc! { "_id": { "$in": keys } }).await? {
        let view = decode_doc(doc)?;
        into.insert(key_of(&view), Some(view));
    }
    for id in ids {
        into.entry(id).or_insert(None);
    }
    Ok(())
}

impl Prefetched {
    /// Start with the ids the events name, so the first round already has most documents.
    fn seeded(events: &[ViewEvent]) -> Self {
        let mut fetched = Self::default();
        for event in events {
            match &event.event {
                AnyEvent::Reservation { reservation_id, .. }
                | AnyEvent::Payment { reservation_id, .. } => {
                    fetched.misses.reservations.insert(*reservation_id);
                    fetched.misses.requests.insert(*reservation_id);
                }
                AnyEvent::Lodging { lodging_id, event } => {
                    fetched.misses.lodgings.insert(lodging_id.clone());
                    if let Some(id) = event.reservation_id() {
                        fetched.misses.reservations.insert(id);
                        fetched.misses.requests.insert(id);
                    }
                }
                AnyEvent::Payout { reservation_id, .. } => {
                    fetched.misses.reservations.insert(*reservation_id);
                    fetched.misses.payouts.insert(*reservation_id);
                }
                AnyEvent::Customer { customer_id, .. } => {
                    fetched.misses.customers.insert(customer_id.clone());
                }
                AnyEvent::Saga | AnyEvent::Other => {}
            }
        }
        fetched
    }

    async fn fetch_misses(&mut self, db: &Database) -> Result<(), ViewError> {
        let misses = std::mem::take(&mut self.misses);
        let reservations = db.collection::<Document>("reservations");
        let reservation_id = |s: &Stored<ReservationView>| s.view.reservation_id;
        by_ids(
            &reservations,
            misses.reservations,
            reservation_id,
            &mut self.reservations,
            decode_stored,
        )
        .await?;
        let requests = db.collection::<Document>("requests");
        let request_id = |s: &Stored<ManagementView>| s.view.reservation_id;
        by_ids(
            &requests,
            misses.requests,
            request_id,
            &mut self.requests,
            decode_stored,
        )
        .await?;
        let payouts = db.collection::<Document>("payouts");
        let payout_id = |s: &Stored<PayoutView>| s.view.reservation_id;
        by_ids(
            &payouts,
            misses.payouts,
            payout_id,
            &mut self.payouts,
            decode_stored,
        )
        .await?;
        let lodgings = db.collection::<Document>("lodgings");
        let lodging_id = |l: &LodgingView| l.lodging_id.clone();
        by_ids(
            &lodgings,
            misses.lodgings,
            lodging_id,
            &mut self.lodgings,
            decode,
        )
        .await?;
        let customers = db.collection::<Document>("customers");
        let customer_id = |c: &CustomerView| c.customer_id.clone();
        by_ids(
            &customers,
            misses.customers,
            customer_id,
            &mut self.customers,
            decode,
        )
        .await?;
        self.fetch_calendars(db, misses.calendar, misses.pending)
            .await
    }

    /// Calendar nights by range, and the pending requests checking in within some ranges.
    async fn fetch_calendars(
        &mut self,
        db: &Database,
        ranges: HashSet<Range>,
        pending: HashSet<Range>,
    ) -> Result<(), ViewError> {
        let calendar = db.collection::<Document>("calendar");
        for range in ranges {
            let (lodging_id, from, to) = &range;
            let nights = doc! { "$gte": from.to_string(), "$lt": to.to_string() };
            let found = all(
                &calendar,
                doc! { "lodging_id": lodging_id, "night": nights },
            )
            .await?;
            let nights = found.into_iter().map(decode).collect::<Result<_, _>>()?;
            self.calendar.insert(range, nights);
        }
        let requests = db.collection::<Document>("requests");
        for range in pending {
            let (lodging_id, first, last) = &range;
            let check_in = doc! { "$gte": first.to_string(), "$lte": last.to_string() };
            let filter = doc! { "lodging_id": lodging_id, "request_status": "pending", "check_in": check_in };
            let found = all(&requests, filter).await?;
            let stored = found
                .into_iter()
                .map(decode_stored)
                .collect::<Result<_, _>>()?;
            self.pending.insert(range, stored);
        }
        Ok(())
    }
}

/// Project `events` over the documents of `db`, fetching what the projection reads.
pub(super) async fn project_batch(
    db: &Database,
    events: &[ViewEvent],
) -> Result<Changes, ViewError> {
    let mut fetched = Prefetched::seeded(events);
    for _ in 0..MAX_ROUNDS {
        fetched.fetch_misses(db).await?;
        let outcome = project(&mut fetched, events);
        if fetched.misses.is_empty() {
            return outcome;
        }
    }
    Err(ViewError::Unavailable(format!(
        "projection still missing documents after {MAX_ROUNDS} rounds"
    )))
}
