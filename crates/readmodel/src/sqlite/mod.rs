//! The embedded SQLite view store (default).

use std::path::Path;

use async_trait::async_trait;
use uuid::Uuid;

use crate::{
    DeadLetter, LodgingView, ManagementView, Page, PageRequest, RequestFilter, ReservationFilter,
    ReservationView, ViewError, ViewEvent, ViewStore,
};

/// Views in one SQLite file (WAL): a writer connection and reader connections.
pub struct SqliteViewStore {
    _private: (),
}

fn pending() -> ViewError {
    ViewError::Unavailable("SQLite view store is being built".into())
}

impl SqliteViewStore {
    /// Open (or create) the view store at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ViewError> {
        let _ = path.as_ref();
        Err(pending())
    }
}

#[async_trait]
impl ViewStore for SqliteViewStore {
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
