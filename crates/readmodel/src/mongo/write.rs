//! Saving a batch to MongoDB: every document is replaced only if the stored one reflects an earlier
//! position (so replays are no-ops), inside a transaction where the deployment has them.

use mongodb::bson::{doc, Bson, Document};
use mongodb::options::UpdateModifications;
use mongodb::{Client, ClientSession, Collection, Database};

use super::codec::{encode, to_i64, unavailable};
use crate::projection::Changes;
use crate::{DeadLetter, ViewError};

/// `$replaceWith` the new document unless the stored one is at `position` or later. `$literal`
/// keeps user text that starts with `$` from being read as an expression.
pub(super) fn guarded(new_doc: Document, position: u64) -> Vec<Document> {
    vec![doc! {
        "$replaceWith": {
            "$cond": [
                { "$lt": [{ "$ifNull": ["$position", -1_i64] }, to_i64(position)] },
                { "$literal": new_doc },
                "$$ROOT",
            ]
        }
    }]
}

/// The id of a calendar night: the night is fixed-length at the end, so ids never collide.
pub(super) fn night_id(lodging_id: &str, night: &str) -> String {
    format!("{lodging_id}/{night}")
}

/// A unit of writes: a transaction on a replica set, plain writes guarded by position elsewhere.
pub(super) struct Writes {
    session: Option<ClientSession>,
}

impl Writes {
    pub(super) async fn begin(client: &Client, transactional: bool) -> Result<Self, ViewError> {
        if !transactional {
            return Ok(Self { session: None });
        }
        let mut session = client.start_session().await.map_err(unavailable)?;
        session.start_transaction().await.map_err(unavailable)?;
        Ok(Self {
            session: Some(session),
        })
    }

    pub(super) async fn update(
        &mut self,
        collection: &Collection<Document>,
        id: Bson,
        update: impl Into<UpdateModifications>,
    ) -> Result<(), ViewError> {
        let action = collection
            .update_one(doc! { "_id": id }, update)
            .upsert(true);
        match self.session.as_mut() {
            Some(session) => action.session(session).await,
            None => action.await,
        }
        .map(|_| ())
        .map_err(unavailable)
    }

    /// Save every changed document.
    pub(super) async fn save(&mut self, db: &Database, changes: &Changes) -> Result<(), ViewError> {
        let reservations = db.collection::<Document>("reservations");
        for stored in &changes.reservations {
            let id = stored.view.reservation_id.to_string();
            let doc = encode(&stored.view, id.clone(), Some(stored.seq))?;
            self.update(&reservations, id.into(), guarded(doc, stored.view.position))
                .await?;
        }
        let requests = db.collection::<Document>("requests");
        for stored in &changes.requests {
            let id = stored.view.reservation_id.to_string();
            let doc = encode(&stored.view, id.clone(), Some(stored.seq))?;
            self.update(&requests, id.into(), guarded(doc, stored.view.position))
                .await?;
        }
        let lodgings = db.collection::<Document>("lodgings");
        for view in &changes.lodgings {
            let doc = encode(view, view.lodging_id.clone(), None)?;
            self.update(
                &lodgings,
                view.lodging_id.clone().into(),
                guarded(doc, view.position),
            )
            .await?;
        }
        let payouts = db.collection::<Document>("payouts");
        for stored in &changes.payouts {
            let id = stored.view.reservation_id.to_string();
            let doc = encode(&stored.view, id.clone(), Some(stored.seq))?;
            self.update(&payouts, id.into(), guarded(doc, stored.view.position))
                .await?;
        }
        let customers = db.collection::<Document>("customers");
        for view in &changes.customers {
            let doc = encode(view, view.customer_id.clone(), None)?;
            self.update(
                &customers,
                view.customer_id.clone().into(),
                guarded(doc, view.position),
            )
            .await?;
        }
        let calendar = db.collection::<Document>("calendar");
        for night in &changes.calendar {
            let id = night_id(&night.lodging_id, &night.night.to_string());
            let doc = encode(night, id.clone(), None)?;
            self.update(&calendar, id.into(), guarded(doc, night.position))
                .await?;
        }
        Ok(())
    }

    /// Move the checkpoint of `projector_id` forward to `position` (never back).
    pub(super) async fn move_checkpoint(
        &mut self,
        db: &Database,
        projector_id: &str,
        position: u64,
    ) -> Result<(), ViewError> {
        let update = vec![doc! {
            "$set": { "position": { "$max": [{ "$ifNull": ["$position", 0_i64] }, to_i64(position)] } }
        }];
        let checkpoints = db.collection::<Document>("checkpoints");
        self.update(&checkpoints, projector_id.into(), update).await
    }

    /// Park a dead letter (idempotent).
    pub(super) async fn park(
        &mut self,
        db: &Database,
        projector_id: &str,
        dead: &DeadLetter,
    ) -> Result<(), ViewError> {
        let fields = doc! {
            "projector_id": projector_id,
            "position": to_i64(dead.position),
            "event_id": dead.event_id.to_string(),
            "stream": &dead.stream,
            "event_type": &dead.event_type,
            "error": &dead.error,
        };
        let id = format!("{projector_id}:{}", dead.position);
        let dead_letters = db.collection::<Document>("dead_letters");
        self.update(&dead_letters, id.into(), doc! { "$setOnInsert": fields })
            .await
    }

    /// Park `dead` and move the checkpoint of `projector_id` past it, as one unit of writes.
    pub(super) async fn park_past(
        client: &Client,
        transactional: bool,
        db: &Database,
        projector_id: &str,
        dead: &DeadLetter,
    ) -> Result<(), ViewError> {
        let mut writes = Self::begin(client, transactional).await?;
        writes.park(db, projector_id, dead).await?;
        writes
            .move_checkpoint(db, projector_id, dead.position)
            .await?;
        writes.commit().await
    }

    pub(super) async fn commit(self) -> Result<(), ViewError> {
        if let Some(mut session) = self.session {
            session.commit_transaction().await.map_err(unavailable)?;
        }
        Ok(())
    }
}
