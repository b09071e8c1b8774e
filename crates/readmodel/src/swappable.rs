//! A view store whose backing store can be replaced while it serves: `replay` rebuilds the views
//! into a fresh store while the old one keeps answering, then the process swaps to the new one.

use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use uuid::Uuid;

use crate::projection::CalendarNight;
use crate::{
    CustomerView, DeadLetter, LodgingFilter, LodgingView, ManagementView, Page, PageRequest,
    PayoutFilter, PayoutTotals, PayoutView, RequestFilter, ReservationFilter, ReservationStatus,
    ReservationView, ViewError, ViewStore,
};
use chrono::NaiveDate;

/// Delegates every call to the store it currently holds.
pub struct SwappableViewStore {
    current: RwLock<Arc<dyn ViewStore>>,
}

impl SwappableViewStore {
    #[must_use]
    pub fn new(store: Arc<dyn ViewStore>) -> Self {
        Self {
            current: RwLock::new(store),
        }
    }

    /// The store calls go to now.
    #[must_use]
    pub fn current(&self) -> Arc<dyn ViewStore> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Route every later call to `store`; returns the one it replaces.
    pub fn swap(&self, store: Arc<dyn ViewStore>) -> Arc<dyn ViewStore> {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        std::mem::replace(&mut *current, store)
    }
}

#[async_trait]
impl ViewStore for SwappableViewStore {
    async fn checkpoint(&self, projector_id: &str) -> Result<u64, ViewError> {
        self.current().checkpoint(projector_id).await
    }
    async fn apply(
        &self,
        projector_id: &str,
        events: &[crate::ViewEvent],
    ) -> Result<(), ViewError> {
        self.current().apply(projector_id, events).await
    }
    async fn apply_shared(
        &self,
        projector_id: &str,
        events: Arc<[crate::ViewEvent]>,
    ) -> Result<(), ViewError> {
        self.current().apply_shared(projector_id, events).await
    }
    async fn reservation(&self, id: Uuid) -> Result<Option<ReservationView>, ViewError> {
        self.current().reservation(id).await
    }
    async fn reservations(
        &self,
        filter: &ReservationFilter,
        page: &PageRequest,
    ) -> Result<Page<ReservationView>, ViewError> {
        self.current().reservations(filter, page).await
    }
    async fn request(&self, id: Uuid) -> Result<Option<ManagementView>, ViewError> {
        self.current().request(id).await
    }
    async fn requests(
        &self,
        filter: &RequestFilter,
        page: &PageRequest,
    ) -> Result<Page<ManagementView>, ViewError> {
        self.current().requests(filter, page).await
    }
    async fn lodging(&self, lodging_id: &str) -> Result<Option<LodgingView>, ViewError> {
        self.current().lodging(lodging_id).await
    }
    async fn lodgings(
        &self,
        filter: &LodgingFilter,
        page: &PageRequest,
    ) -> Result<Page<LodgingView>, ViewError> {
        self.current().lodgings(filter, page).await
    }

    async fn calendar(
        &self,
        lodging_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<CalendarNight>, ViewError> {
        self.current().calendar(lodging_id, from, to).await
    }
    async fn payouts(
        &self,
        filter: &PayoutFilter,
        page: &PageRequest,
    ) -> Result<Page<PayoutView>, ViewError> {
        self.current().payouts(filter, page).await
    }
    async fn payout_summary(&self, filter: &PayoutFilter) -> Result<Vec<PayoutTotals>, ViewError> {
        self.current().payout_summary(filter).await
    }
    async fn reservation_with_guest(
        &self,
        reservation_id: Uuid,
    ) -> Result<Option<(ReservationView, Option<CustomerView>)>, ViewError> {
        self.current().reservation_with_guest(reservation_id).await
    }

    async fn reservations_by_id(&self, ids: &[Uuid]) -> Result<Vec<ReservationView>, ViewError> {
        self.current().reservations_by_id(ids).await
    }

    async fn customers(&self, customer_ids: &[String]) -> Result<Vec<CustomerView>, ViewError> {
        self.current().customers(customer_ids).await
    }

    async fn record_dead_letter(
        &self,
        projector_id: &str,
        letter: &DeadLetter,
    ) -> Result<(), ViewError> {
        self.current()
            .record_dead_letter(projector_id, letter)
            .await
    }
    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, ViewError> {
        self.current().dead_letters().await
    }
    async fn dead_letter_count(&self) -> Result<u64, ViewError> {
        self.current().dead_letter_count().await
    }
    async fn ping(&self) -> Result<(), ViewError> {
        self.current().ping().await
    }
    async fn count_reservations(&self, status: ReservationStatus) -> Result<u64, ViewError> {
        self.current().count_reservations(status).await
    }
}
