//! The MongoDB view store (`mongodb` 3.x): one collection per view (`reservations`, `requests`,
//! `lodgings`, `payouts`, `customers`) plus `calendar`, `checkpoints` and `dead_letters`, with an index for
//! every query.
//! Documents are keyed by id and replaced only by a later position, so replays are no-ops; a batch
//! and its checkpoint are one transaction on a replica set, and rely on that guard elsewhere.

mod codec;
mod inbox;
mod read;
mod source;
mod write;

use async_trait::async_trait;
use mongodb::bson::{doc, Document};
use mongodb::options::IndexOptions;
use mongodb::{Client, Database, IndexModel};
use uuid::Uuid;

use self::codec::unavailable;
pub use self::inbox::MongoInbox;
use self::write::Writes;
use crate::projection::CalendarNight;
use crate::{
    CustomerView, DeadLetter, LodgingFilter, LodgingView, ManagementView, Page, PageRequest,
    PayoutFilter, PayoutTotals, PayoutView, RequestFilter, ReservationFilter, ReservationStatus,
    ReservationView, ViewError, ViewEvent, ViewStore,
};
use chrono::NaiveDate;

/// Views in a MongoDB database.
#[derive(Debug, Clone)]
pub struct MongoViewStore {
    client: Client,
    db: Database,
    transactional: bool,
}

fn index(keys: Document, unique: bool) -> IndexModel {
    IndexModel::builder()
        .keys(keys)
        .options(IndexOptions::builder().unique(unique).build())
        .build()
}

async fn create_indexes(db: &Database) -> Result<(), ViewError> {
    let wanted = [
        (
            "reservations",
            vec![
                index(doc! { "seq": 1 }, true),
                index(doc! { "customer_id": 1, "seq": -1 }, false),
                index(doc! { "lodging_id": 1, "seq": -1 }, false),
                index(doc! { "status": 1, "seq": -1 }, false),
                index(doc! { "lodging_id": 1, "check_in": 1 }, false),
            ],
        ),
        (
            "requests",
            vec![
                index(doc! { "seq": 1 }, true),
                index(doc! { "lodging_id": 1, "seq": 1 }, false),
                index(
                    doc! { "lodging_id": 1, "request_status": 1, "seq": 1 },
                    false,
                ),
                index(
                    doc! { "lodging_id": 1, "request_status": 1, "check_in": 1 },
                    false,
                ),
                index(doc! { "request_status": 1, "seq": 1 }, false),
            ],
        ),
        (
            "calendar",
            vec![index(doc! { "lodging_id": 1, "night": 1 }, true)],
        ),
        (
            "payouts",
            vec![
                index(doc! { "seq": 1 }, true),
                index(doc! { "lodging_id": 1, "seq": -1 }, false),
                index(doc! { "host_id": 1, "seq": -1 }, false),
                index(doc! { "status": 1, "seq": -1 }, false),
            ],
        ),
        ("dead_letters", vec![index(doc! { "position": 1 }, false)]),
    ];
    for (collection, models) in wanted {
        db.collection::<Document>(collection)
            .create_indexes(models)
            .await
            .map_err(unavailable)?;
    }
    Ok(())
}

/// Connect to `url`, use database `db_name`, and learn whether writes can be transactions (a
/// replica set: `setName`, or a sharded cluster: `isdbgrid`).
async fn open(url: &str, db_name: &str) -> Result<(Client, Database, bool), ViewError> {
    let client = Client::with_uri_str(url).await.map_err(unavailable)?;
    let db = client.database(db_name);
    let hello = db
        .run_command(doc! { "hello": 1 })
        .await
        .map_err(unavailable)?;
    let transactional = hello.contains_key("setName") || hello.get_str("msg") == Ok("isdbgrid");
    Ok((client, db, transactional))
}

impl MongoViewStore {
    /// Connect to `url` and use database `db_name`, creating the indexes every query needs.
    pub async fn connect(url: &str, db_name: &str) -> Result<Self, ViewError> {
        let (client, db, transactional) = open(url, db_name).await?;
        create_indexes(&db).await?;
        Ok(Self {
            client,
            db,
            transactional,
        })
    }

    /// Whether batches are written in transactions (a replica set or sharded cluster).
    #[must_use]
    pub fn is_transactional(&self) -> bool {
        self.transactional
    }

    /// Drop the whole database: every view, checkpoint and dead letter (tests, fresh rebuilds).
    pub async fn drop_database(&self) -> Result<(), ViewError> {
        self.db.drop().await.map_err(unavailable)
    }
}

#[async_trait]
impl ViewStore for MongoViewStore {
    async fn checkpoint(&self, projector_id: &str) -> Result<u64, ViewError> {
        read::checkpoint(&self.db, projector_id).await
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
        let changes = source::project_batch(&self.db, &events[start..]).await?;
        let mut writes = Writes::begin(&self.client, self.transactional).await?;
        writes.save(&self.db, &changes).await?;
        writes.move_checkpoint(&self.db, projector_id, last).await?;
        writes.commit().await
    }

    async fn reservation(&self, id: Uuid) -> Result<Option<ReservationView>, ViewError> {
        read::one(&self.db, "reservations", &id.to_string()).await
    }

    async fn reservations_by_id(&self, ids: &[Uuid]) -> Result<Vec<ReservationView>, ViewError> {
        let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        read::by_ids(&self.db, "reservations", &ids).await
    }

    async fn reservations(
        &self,
        filter: &ReservationFilter,
        page: &PageRequest,
    ) -> Result<Page<ReservationView>, ViewError> {
        read::reservations(&self.db, filter, page).await
    }

    async fn request(&self, id: Uuid) -> Result<Option<ManagementView>, ViewError> {
        read::one(&self.db, "requests", &id.to_string()).await
    }

    async fn requests(
        &self,
        filter: &RequestFilter,
        page: &PageRequest,
    ) -> Result<Page<ManagementView>, ViewError> {
        read::requests(&self.db, filter, page).await
    }

    async fn lodging(&self, lodging_id: &str) -> Result<Option<LodgingView>, ViewError> {
        read::one(&self.db, "lodgings", lodging_id).await
    }

    async fn lodgings(
        &self,
        filter: &LodgingFilter,
        page: &PageRequest,
    ) -> Result<Page<LodgingView>, ViewError> {
        read::lodgings(&self.db, filter, page).await
    }

    async fn calendar(
        &self,
        lodging_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<CalendarNight>, ViewError> {
        read::calendar(&self.db, lodging_id, from, to).await
    }

    async fn payouts(
        &self,
        filter: &PayoutFilter,
        page: &PageRequest,
    ) -> Result<Page<PayoutView>, ViewError> {
        read::payouts(&self.db, filter, page).await
    }

    async fn payout_summary(&self, filter: &PayoutFilter) -> Result<Vec<PayoutTotals>, ViewError> {
        read::payout_summary(&self.db, filter).await
    }

    async fn customers(&self, customer_ids: &[String]) -> Result<Vec<CustomerView>, ViewError> {
        read::by_ids(&self.db, "customers", customer_ids).await
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

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, ViewError> {
        read::dead_letters(&self.db).await
    }

    async fn dead_letter_count(&self) -> Result<u64, ViewError> {
        self.db
            .collection::<Document>("dead_letters")
            .count_documents(doc! {})
            .await
            .map_err(unavailable)
    }

    async fn count_reservations(&self, status: ReservationStatus) -> Result<u64, ViewError> {
        self.db
            .collection::<Document>("reservations")
            .count_documents(doc! { "status": status.as_str() })
            .await
            .map_err(unavailable)
    }

    async fn ping(&self) -> Result<(), ViewError> {
        self.db
            .run_command(doc! { "ping": 1 })
            .await
            .map(|_| ())
            .map_err(unavailable)
    }
}
