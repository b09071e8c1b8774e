//! The MongoDB view store.

use async_trait::async_trait;
use uuid::Uuid;

use crate::{
    DeadLetter, LodgingView, ManagementView, Page, PageRequest, RequestFilter, ReservationFilter,
    ReservationView, ViewError, ViewEvent, ViewStore,
};

/// Views in a MongoDB database.
pub struct MongoViewStore {
    _private: (),
}

fn pending() -> ViewError {
    ViewError::Unavailable("MongoDB view store is being built".into())
}

impl MongoViewStore {
    /// Connect to `url` and use database `db_name`, creating the indexes every query needs.
    pub async fn connect(url: &str, db_name: &str) -> Result<Self, ViewError> {
        let _ = (url, db_name);
        Err(pending())
    }
}

#[async_trait]
impl ViewStore for MongoViewStore {
    async fn checkpoint(&self, _projector_id: &str) -> Result<u64, ViewError> {
        Err(pending())
    }
    async fn apply(&self, _projector_id: &str, _events: &[ViewEvent]) -> Result<(), ViewError> {
        Err(pending())
    }
    async fn reservation(&self, _id: Uuid) -> Result<Option<ReservationView>, ViewError> {
        Err(pending())
    }
    async fn reservations(
        &self,
        _filter: &ReservationFilter,
        _page: &PageRequest,
    ) -> Result<Page<ReservationView>, ViewError> {
        Err(pending())
    }
    async fn request(&self, _id: Uuid) -> Result<Option<ManagementView>, ViewError> {
        Err(pending())
    }
    async fn requests(
        &self,
        _filter: &RequestFilter,
        _page: &PageRequest,
    ) -> Result<Page<ManagementView>, ViewError> {
        Err(pending())
    }
    async fn lodging(&self, _id: &str) -> Result<Option<LodgingView>, ViewError> {
        Err(pending())
    }
    async fn lodgings(&self, _page: &PageRequest) -> Result<Page<LodgingView>, ViewError> {
        Err(pending())
    }
    async fn record_dead_letter(&self, _p: &str, _d: &DeadLetter) -> Result<(), ViewError> {
        Err(pending())
    }
    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, ViewError> {
        Err(pending())
    }
    async fn dead_letter_count(&self) -> Result<u64, ViewError> {
        Err(pending())
    }
    async fn ping(&self) -> Result<(), ViewError> {
        Err(pending())
    }
}
