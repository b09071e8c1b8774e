//! What a projector applies the log to: a checkpointed target that takes decoded events in log
//! order, exactly-once in effect, and parks what it cannot take. The views ([`Views`], over any
//! [`ViewStore`]) are one; the inbox is another, with its own checkpoint and documents.

use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use crate::{DeadLetter, ViewError, ViewEvent, ViewStore};

/// The projector's port: where a consumer of the log keeps what it built and how far it got.
#[async_trait]
pub trait ProjectionTarget: Send + Sync + 'static {
    /// The position of the last event `projector_id` applied or parked (0 = nothing yet).
    async fn checkpoint(&self, projector_id: &str) -> Result<u64, ViewError>;

    /// Apply `events` (in log order) and move the checkpoint of `projector_id` to the last position
    /// of the batch, atomically where the store allows; events at or before it are skipped.
    async fn apply(&self, projector_id: &str, events: &[ViewEvent]) -> Result<(), ViewError>;

    /// [`Self::apply`] of a shared batch (see [`ViewStore::apply_shared`]).
    async fn apply_shared(
        &self,
        projector_id: &str,
        events: Arc<[ViewEvent]>,
    ) -> Result<(), ViewError> {
        self.apply(projector_id, &events).await
    }

    /// Park an event `projector_id` cannot handle, and move its checkpoint past it.
    async fn record_dead_letter(
        &self,
        projector_id: &str,
        dead_letter: &DeadLetter,
    ) -> Result<(), ViewError>;

    /// A rebuild into this target, empty, begins (see [`ViewStore::begin_bulk_load`]).
    async fn begin_bulk_load(&self) -> Result<(), ViewError> {
        Ok(())
    }

    /// The rebuild has caught up (see [`ViewStore::end_bulk_load`]).
    async fn end_bulk_load(&self) -> Result<(), ViewError> {
        Ok(())
    }

    /// How many events are parked.
    async fn dead_letter_count(&self) -> Result<u64, ViewError>;

    /// The lodging of reservation `reservation_id` as this target knows it (`None`: it has no
    /// document of it): how a sharded projector learns who owns a reservation's later events.
    async fn lodging_of(&self, reservation_id: Uuid) -> Result<Option<String>, ViewError>;
}

/// The views as a projection target.
#[derive(Clone)]
pub struct Views(pub Arc<dyn ViewStore>);

#[async_trait]
impl ProjectionTarget for Views {
    async fn checkpoint(&self, projector_id: &str) -> Result<u64, ViewError> {
        self.0.checkpoint(projector_id).await
    }

    async fn apply(&self, projector_id: &str, events: &[ViewEvent]) -> Result<(), ViewError> {
        self.0.apply(projector_id, events).await
    }

    async fn apply_shared(
        &self,
        projector_id: &str,
        events: Arc<[ViewEvent]>,
    ) -> Result<(), ViewError> {
        self.0.apply_shared(projector_id, events).await
    }

    async fn record_dead_letter(
        &self,
        projector_id: &str,
        dead_letter: &DeadLetter,
    ) -> Result<(), ViewError> {
        self.0.record_dead_letter(projector_id, dead_letter).await
    }

    async fn dead_letter_count(&self) -> Result<u64, ViewError> {
        self.0.dead_letter_count().await
    }

    async fn begin_bulk_load(&self) -> Result<(), ViewError> {
        self.0.begin_bulk_load().await
    }

    async fn end_bulk_load(&self) -> Result<(), ViewError> {
        self.0.end_bulk_load().await
    }

    async fn lodging_of(&self, reservation_id: Uuid) -> Result<Option<String>, ViewError> {
        if let Some(view) = self.0.reservation(reservation_id).await? {
            return Ok(Some(view.lodging_id));
        }
        Ok(self
            .0
            .request(reservation_id)
            .await?
            .map(|view| view.lodging_id))
    }
}
