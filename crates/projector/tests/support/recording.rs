//! The real SQLite view store, wrapped: records which projector applied (or parked) which view
//! events and how many transactions were committed, and can be unavailable for its first applies.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use readmodel::{
    AnyEvent, CustomerView, DeadLetter, LodgingFilter, LodgingView, ManagementView, Page,
    PageRequest, PayoutFilter, PayoutTotals, PayoutView, RequestFilter, ReservationFilter,
    ReservationView, SqliteViewStore, ViewError, ViewEvent, ViewStore,
};
use uuid::Uuid;

/// The view store, recording which projector applied (or parked) which view events.
pub struct Recording {
    pub inner: Arc<SqliteViewStore>,
    pub applied: Mutex<HashMap<String, Vec<u64>>>,
    /// `apply` calls that reached the store: one view-store transaction each.
    pub transactions: AtomicUsize,
    /// Applies still to fail (as an unavailable store) before the store works.
    failures: AtomicU32,
}

impl Recording {
    pub fn over(inner: Arc<SqliteViewStore>) -> Self {
        Self {
            inner,
            applied: Mutex::new(HashMap::new()),
            transactions: AtomicUsize::new(0),
            failures: AtomicU32::new(0),
        }
    }

    /// Unavailable for the first `applies` applies.
    pub fn failing(self, applies: u32) -> Self {
        self.failures.store(applies, Ordering::SeqCst);
        self
    }

    pub fn failures_left(&self) -> u32 {
        self.failures.load(Ordering::SeqCst)
    }

    pub fn transactions(&self) -> usize {
        self.transactions.load(Ordering::SeqCst)
    }

    pub fn positions(&self, projector_id: &str) -> Vec<u64> {
        let applied = self.applied.lock().expect("lock");
        applied.get(projector_id).cloned().unwrap_or_default()
    }

    fn record(&self, projector_id: &str, positions: impl IntoIterator<Item = u64>) {
        let mut applied = self.applied.lock().expect("lock");
        applied
            .entry(projector_id.to_string())
            .or_default()
            .extend(positions);
    }
}

pub fn changes_views(event: &ViewEvent) -> bool {
    matches!(
        event.event,
        AnyEvent::Reservation { .. }
            | AnyEvent::Lodging { .. }
            | AnyEvent::Payment { .. }
            | AnyEvent::Payout { .. }
    )
}

#[async_trait]
impl ViewStore for Recording {
    async fn checkpoint(&self, projector_id: &str) -> Result<u64, ViewError> {
        self.inner.checkpoint(projector_id).await
    }
    async fn apply(&self, projector_id: &str, events: &[ViewEvent]) -> Result<(), ViewError> {
        let fail = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if fail.is_ok() {
            return Err(ViewError::Unavailable("disk unplugged".into()));
        }
        let done = self.inner.checkpoint(projector_id).await?;
        self.inner.apply(projector_id, events).await?;
        self.transactions.fetch_add(1, Ordering::SeqCst);
        let fresh = events.iter().filter(|e| e.position > done);
        self.record(
            projector_id,
            fresh.filter(|e| changes_views(e)).map(|e| e.position),
        );
        Ok(())
    }
    async fn reservation(&self, id: Uuid) -> Result<Option<ReservationView>, ViewError> {
        self.inner.reservation(id).await
    }
    async fn reservations(
        &self,
        filter: &ReservationFilter,
        page: &PageRequest,
    ) -> Result<Page<ReservationView>, ViewError> {
        self.inner.reservations(filter, page).await
    }
    async fn request(&self, id: Uuid) -> Result<Option<ManagementView>, ViewError> {
        self.inner.request(id).await
    }
    async fn requests(
        &self,
        filter: &RequestFilter,
        page: &PageRequest,
    ) -> Result<Page<ManagementView>, ViewError> {
        self.inner.requests(filter, page).await
    }
    async fn lodging(&self, lodging_id: &str) -> Result<Option<LodgingView>, ViewError> {
        self.inner.lodging(lodging_id).await
    }
    async fn lodgings(
        &self,
        filter: &LodgingFilter,
        page: &PageRequest,
    ) -> Result<Page<LodgingView>, ViewError> {
        self.inner.lodgings(filter, page).await
    }
    async fn calendar(
        &self,
        lodging_id: &str,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> Result<Vec<readmodel::CalendarNight>, ViewError> {
        self.inner.calendar(lodging_id, from, to).await
    }
    async fn payouts(
        &self,
        filter: &PayoutFilter,
        page: &PageRequest,
    ) -> Result<Page<PayoutView>, ViewError> {
        self.inner.payouts(filter, page).await
    }
    async fn payout_summary(&self, filter: &PayoutFilter) -> Result<Vec<PayoutTotals>, ViewError> {
        self.inner.payout_summary(filter).await
    }
    async fn reservations_by_id(&self, ids: &[Uuid]) -> Result<Vec<ReservationView>, ViewError> {
        self.inner.reservations_by_id(ids).await
    }

    async fn customers(&self, customer_ids: &[String]) -> Result<Vec<CustomerView>, ViewError> {
        self.inner.customers(customer_ids).await
    }
    async fn record_dead_letter(
        &self,
        projector_id: &str,
        dead_letter: &DeadLetter,
    ) -> Result<(), ViewError> {
        self.inner
            .record_dead_letter(projector_id, dead_letter)
            .await?;
        self.record(projector_id, [dead_letter.position]);
        Ok(())
    }
    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, ViewError> {
        self.inner.dead_letters().await
    }
    async fn dead_letter_count(&self) -> Result<u64, ViewError> {
        self.inner.dead_letter_count().await
    }
    async fn ping(&self) -> Result<(), ViewError> {
        self.inner.ping().await
    }
    async fn count_reservations(
        &self,
        status: readmodel::ReservationStatus,
    ) -> Result<u64, ViewError> {
        self.inner.count_reservations(status).await
    }
}
