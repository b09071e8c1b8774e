//! The inbox in MongoDB: collections `inbox` (entries, `_id` = the entry's `seq`), `inbox_tracked`
//! and `inbox_desks` (what the notifier remembers), beside the views in the same database, with the
//! notifier's checkpoint and dead letters in the shared `checkpoints` and `dead_letters` (under its
//! own id). Remembered documents are replaced only by a later position and entries only inserted,
//! so a replayed batch writes nothing new; a batch and its checkpoint are one transaction on a
//! replica set.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use futures::TryStreamExt;
use mongodb::bson::{doc, Document};
use mongodb::{Client, Database};
use uuid::Uuid;

use super::codec::{decode, encode, seq_of, to_i64, unavailable};
use super::read::page;
use super::write::{guarded, Writes};
use crate::inbox::rules::{project_inbox, InboxChanges, InboxSource};
use crate::inbox::{Desk, InboxEntry, InboxFilter, InboxStore, Tracked};
use crate::query::{decode_seq_cursor, encode_seq_cursor, CursorKind};
use crate::{AnyEvent, DeadLetter, Page, PageRequest, ProjectionTarget, ViewError, ViewEvent};

/// A batch needs one round (its events name every document it reads); more means a bug.
const MAX_ROUNDS: usize = 4;

/// The inbox in a MongoDB database.
#[derive(Debug, Clone)]
pub struct MongoInbox {
    client: Client,
    db: Database,
    transactional: bool,
}

impl MongoInbox {
    /// Connect to `url` and use database `db_name` (the views' database will do), creating the
    /// index the inbox's reads need.
    pub async fn connect(url: &str, db_name: &str) -> Result<Self, ViewError> {
        let (client, db, transactional) = super::open(url, db_name).await?;
        let index = mongodb::IndexModel::builder()
            .keys(doc! { "audience": 1, "recipient": 1, "_id": -1 })
            .build();
        db.collection::<Document>("inbox")
            .create_index(index)
            .await
            .map_err(unavailable)?;
        Ok(Self {
            client,
            db,
            transactional,
        })
    }
}

/// What a batch reads, fetched ahead of the (synchronous) projection; misses are recorded.
#[derive(Default)]
struct Prefetched {
    tracked: HashMap<Uuid, Option<Tracked>>,
    desks: HashMap<String, Option<Desk>>,
    missed_tracked: HashSet<Uuid>,
    missed_desks: HashSet<String>,
}

impl InboxSource for Prefetched {
    fn tracked(&mut self, reservation_id: Uuid) -> Result<Option<Tracked>, ViewError> {
        Ok(match self.tracked.get(&reservation_id) {
            Some(found) => found.clone(),
            None => {
                self.missed_tracked.insert(reservation_id);
                None
            }
        })
    }

    fn desk(&mut self, lodging_id: &str) -> Result<Option<Desk>, ViewError> {
        Ok(match self.desks.get(lodging_id) {
            Some(found) => found.clone(),
            None => {
                self.missed_desks.insert(lodging_id.to_string());
                None
            }
        })
    }
}

impl Prefetched {
    fn seeded(events: &[ViewEvent]) -> Self {
        let mut fetched = Self::default();
        for event in events {
            match &event.event {
                AnyEvent::Reservation { reservation_id, .. }
                | AnyEvent::Payment { reservation_id, .. } => {
                    fetched.missed_tracked.insert(*reservation_id);
                }
                AnyEvent::Lodging { lodging_id, event } => {
                    fetched.missed_desks.insert(lodging_id.clone());
                    if let Some(id) = event.reservation_id() {
                        fetched.missed_tracked.insert(id);
                    }
                }
                _ => {}
            }
        }
        fetched
    }

    async fn fetch(&mut self, db: &Database) -> Result<(), ViewError> {
        let ids: Vec<String> = self.missed_tracked.iter().map(Uuid::to_string).collect();
        for doc in all(db, "inbox_tracked", ids).await? {
            let tracked: Tracked = decode(doc)?;
            self.tracked.insert(tracked.reservation_id, Some(tracked));
        }
        for id in std::mem::take(&mut self.missed_tracked) {
            self.tracked.entry(id).or_insert(None);
        }
        let lodgings: Vec<String> = self.missed_desks.iter().cloned().collect();
        for doc in all(db, "inbox_desks", lodgings).await? {
            let desk: Desk = decode(doc)?;
            self.desks.insert(desk.lodging_id.clone(), Some(desk));
        }
        for id in std::mem::take(&mut self.missed_desks) {
            self.desks.entry(id).or_insert(None);
        }
        Ok(())
    }
}

async fn all(
    db: &Database,
    collection: &str,
    ids: Vec<String>,
) -> Result<Vec<Document>, ViewError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let found = db
        .collection::<Document>(collection)
        .find(doc! { "_id": { "$in": ids } })
        .await
        .map_err(unavailable)?;
    found.try_collect().await.map_err(unavailable)
}

async fn project(db: &Database, events: &[ViewEvent]) -> Result<InboxChanges, ViewError> {
    let mut fetched = Prefetched::seeded(events);
    for _ in 0..MAX_ROUNDS {
        fetched.fetch(db).await?;
        let outcome = project_inbox(&mut fetched, events);
        if fetched.missed_tracked.is_empty() && fetched.missed_desks.is_empty() {
            return outcome;
        }
    }
    Err(ViewError::Unavailable(format!(
        "inbox projection still missing documents after {MAX_ROUNDS} rounds"
    )))
}

async fn save(writes: &mut Writes, db: &Database, changes: &InboxChanges) -> Result<(), ViewError> {
    let tracked = db.collection::<Document>("inbox_tracked");
    for stay in &changes.tracked {
        let id = stay.reservation_id.to_string();
        let doc = encode(stay, id.clone(), None)?;
        writes
            .update(&tracked, id.into(), guarded(doc, stay.position))
            .await?;
    }
    let desks = db.collection::<Document>("inbox_desks");
    for desk in &changes.desks {
        let doc = encode(desk, desk.lodging_id.clone(), None)?;
        writes
            .update(
                &desks,
                desk.lodging_id.clone().into(),
                guarded(doc, desk.position),
            )
            .await?;
    }
    let inbox = db.collection::<Document>("inbox");
    for entry in &changes.entries {
        let seq = to_i64(entry.seq());
        let mut doc = encode(entry, seq, Some(entry.seq()))?;
        doc.remove("_id");
        writes
            .update(&inbox, seq.into(), doc! { "$setOnInsert": doc })
            .await?;
    }
    Ok(())
}

fn query(filter: &InboxFilter) -> Document {
    match filter {
        InboxFilter::Customer(customer_id) => {
            doc! { "audience": "customer", "recipient": customer_id }
        }
        InboxFilter::Lodgings(None) => doc! { "audience": "lodging" },
        InboxFilter::Lodgings(Some(lodgings)) => {
            doc! { "audience": "lodging", "recipient": { "$in": lodgings } }
        }
    }
}

#[async_trait]
impl ProjectionTarget for MongoInbox {
    async fn checkpoint(&self, projector_id: &str) -> Result<u64, ViewError> {
        super::read::checkpoint(&self.db, projector_id).await
    }

    async fn apply(&self, projector_id: &str, events: &[ViewEvent]) -> Result<(), ViewError> {
        let Some(last) = events.iter().map(|e| e.position).max() else {
            return Ok(());
        };
        let done = self.checkpoint(projector_id).await?;
        let start = events
            .iter()
            .position(|e| e.position > done)
            .unwrap_or(events.len());
        let changes = project(&self.db, &events[start..]).await?;
        let mut writes = Writes::begin(&self.client, self.transactional).await?;
        save(&mut writes, &self.db, &changes).await?;
        writes.move_checkpoint(&self.db, projector_id, last).await?;
        writes.commit().await
    }

    async fn record_dead_letter(
        &self,
        projector_id: &str,
        dead_letter: &DeadLetter,
    ) -> Result<(), ViewError> {
        Writes::park_past(
            &self.client,
            self.transactional,
            &self.db,
            projector_id,
            dead_letter,
        )
        .await
    }

    async fn dead_letter_count(&self) -> Result<u64, ViewError> {
        self.db
            .collection::<Document>("dead_letters")
            .count_documents(doc! { "projector_id": crate::inbox::NOTIFIER_ID })
            .await
            .map_err(unavailable)
    }

    async fn lodging_of(&self, reservation_id: Uuid) -> Result<Option<String>, ViewError> {
        let found: Option<Tracked> =
            super::read::one(&self.db, "inbox_tracked", &reservation_id.to_string()).await?;
        Ok(found.map(|t| t.lodging_id))
    }
}

#[async_trait]
impl InboxStore for MongoInbox {
    async fn entries(
        &self,
        filter: &InboxFilter,
        request: &PageRequest,
    ) -> Result<Page<InboxEntry>, ViewError> {
        let mut query = query(filter);
        if let Some(cursor) = &request.cursor {
            let seq = decode_seq_cursor(CursorKind::Inbox, cursor)?;
            query.insert("seq", doc! { "$lt": to_i64(seq) });
        }
        let limit = request.clamped_limit();
        page(&self.db, "inbox", query, doc! { "seq": -1 }, limit, |doc| {
            Ok(encode_seq_cursor(CursorKind::Inbox, seq_of(doc)?))
        })
        .await
    }

    async fn status_changes_after(
        &self,
        after: u64,
        through: u64,
        limit: usize,
    ) -> Result<Vec<InboxEntry>, ViewError> {
        let found = self
            .db
            .collection::<Document>("inbox")
            .find(doc! {
                "_id": { "$gt": to_i64(after), "$lte": to_i64(through) },
                "audience": "customer",
            })
            .sort(doc! { "_id": 1 })
            .limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .await
            .map_err(unavailable)?;
        let docs: Vec<Document> = found.try_collect().await.map_err(unavailable)?;
        docs.into_iter().map(decode).collect()
    }
}
