//! The read side of stayledger: the views (ReservationList, ManagementList, lodging catalog,
//! payouts, customers' sealed contact details), the pure projection that builds them from decoded events, and the [`ViewStore`] port
//! with its adapters (embedded SQLite, the default; MongoDB).
//!
//! Owns: the view documents and their JSON shape, how events change them (`projection`, shared by
//! every adapter), how views, checkpoints and dead letters are stored and queried, and the one
//! conformance suite every adapter passes.
//! Must not: read or subscribe to the event log (the projector feeds it [`ViewEvent`]s), know about
//! HTTP, or read the wall clock into a document (a rebuild must equal live projection byte for byte).

pub mod conformance;
mod error;
mod event;
pub mod inbox;
mod mongo;
pub mod projection;
mod query;
mod sqlite;
mod swappable;
mod target;
mod views;

pub use error::ViewError;
pub use event::{AnyEvent, ViewEvent};
pub use mongo::MongoViewStore;
pub use query::{
    decode_delivery_cursor, encode_delivery_cursor, DeadLetter, LodgingFilter, Page, PageRequest,
    PayoutFilter, RequestFilter, ReservationFilter, MAX_PAGE,
};
pub use sqlite::SqliteViewStore;
pub use swappable::SwappableViewStore;
pub use target::{ProjectionTarget, Views};
pub use views::{
    parse_reservation_status, ApprovalMode, ApprovalStatus, CustomerView, ListingStatus,
    LodgingView, ManagementView, PaymentStatus, PayoutStatus, PayoutTotals, PayoutView,
    RefundStatus, ReservationStatus, ReservationView, RESERVATION_STATUSES,
};

use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDate;
use uuid::Uuid;

pub use projection::CalendarNight;

/// The view-store port. Every adapter passes [`conformance`].
///
/// Writes are exactly-once in effect: every document remembers the global position of the last
/// event that changed it and skips events at or before it, and the checkpoint moves with the views
/// (in the same transaction where the store allows).
#[async_trait]
pub trait ViewStore: Send + Sync + 'static {
    /// The position of the last event `projector_id` applied or parked (0 = nothing yet).
    async fn checkpoint(&self, projector_id: &str) -> Result<u64, ViewError>;

    /// Apply `events` (in log order) to the views and move the checkpoint of `projector_id` to the
    /// last position of the batch, atomically where the store allows. Events at or before the
    /// checkpoint are skipped, so replaying a batch is a no-op.
    async fn apply(&self, projector_id: &str, events: &[ViewEvent]) -> Result<(), ViewError>;

    /// [`Self::apply`] for a caller that can share the batch: a store that hands the events to
    /// another thread takes them without copying (a rebuild's pages are 32,768 events).
    async fn apply_shared(
        &self,
        projector_id: &str,
        events: Arc<[ViewEvent]>,
    ) -> Result<(), ViewError> {
        self.apply(projector_id, &events).await
    }

    /// A rebuild into this store, empty, begins: the store may put off until
    /// [`Self::end_bulk_load`] what is cheaper done once at the end (SQLite: the indexes only
    /// queries use). Default: nothing.
    async fn begin_bulk_load(&self) -> Result<(), ViewError> {
        Ok(())
    }

    /// The rebuild has caught up: whatever [`Self::begin_bulk_load`] put off is done, before the
    /// store serves a query. Also safe to call without a `begin_bulk_load` (nothing to do).
    async fn end_bulk_load(&self) -> Result<(), ViewError> {
        Ok(())
    }

    /// One reservation's ReservationList document.
    async fn reservation(&self, reservation_id: Uuid)
        -> Result<Option<ReservationView>, ViewError>;

    /// The ReservationList documents of those of `reservation_ids` that exist, in no particular
    /// order, read together where the store can (the live streams read a batch's at once). At
    /// most [`MAX_PAGE`] ids are asked for at once.
    async fn reservations_by_id(
        &self,
        reservation_ids: &[Uuid],
    ) -> Result<Vec<ReservationView>, ViewError>;

    /// One reservation's ReservationList document with its customer's contact details (sealed),
    /// if they have any: what `GET /reservations/{id}` shows, read together where the store can.
    async fn reservation_with_guest(
        &self,
        reservation_id: Uuid,
    ) -> Result<Option<(ReservationView, Option<CustomerView>)>, ViewError> {
        let Some(view) = self.reservation(reservation_id).await? else {
            return Ok(None);
        };
        let guest = self
            .customers(std::slice::from_ref(&view.customer_id))
            .await?
            .pop();
        Ok(Some((view, guest)))
    }

    /// ReservationList documents, newest request first.
    async fn reservations(
        &self,
        filter: &ReservationFilter,
        page: &PageRequest,
    ) -> Result<Page<ReservationView>, ViewError>;

    /// One approval request's ManagementList document.
    async fn request(&self, reservation_id: Uuid) -> Result<Option<ManagementView>, ViewError>;

    /// ManagementList documents, oldest request first.
    async fn requests(
        &self,
        filter: &RequestFilter,
        page: &PageRequest,
    ) -> Result<Page<ManagementView>, ViewError>;

    /// One lodging of the catalog.
    async fn lodging(&self, lodging_id: &str) -> Result<Option<LodgingView>, ViewError>;

    /// The catalog's lodgings that pass `filter`, by lodging id.
    async fn lodgings(
        &self,
        filter: &LodgingFilter,
        page: &PageRequest,
    ) -> Result<Page<LodgingView>, ViewError>;

    /// The calendar of `lodging_id`: rooms booked on its nights in `from..to`, by night (a night
    /// never booked may be absent, or present with 0).
    async fn calendar(
        &self,
        lodging_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<CalendarNight>, ViewError>;

    /// Payouts to hosts, newest scheduled first.
    async fn payouts(
        &self,
        filter: &PayoutFilter,
        page: &PageRequest,
    ) -> Result<Page<PayoutView>, ViewError>;

    /// The sums of the payouts that pass `filter`, one entry per currency, by currency.
    async fn payout_summary(&self, filter: &PayoutFilter) -> Result<Vec<PayoutTotals>, ViewError>;

    /// The contact details (sealed, as in the log) of those of `customer_ids` that have any, in
    /// no particular order. At most [`MAX_PAGE`] ids are asked for at once.
    async fn customers(&self, customer_ids: &[String]) -> Result<Vec<CustomerView>, ViewError>;

    /// Park an event `projector_id` cannot handle, and move its checkpoint past it.
    async fn record_dead_letter(
        &self,
        projector_id: &str,
        dead_letter: &DeadLetter,
    ) -> Result<(), ViewError>;

    /// Every parked event, in log order.
    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, ViewError>;

    /// How many events are parked.
    async fn dead_letter_count(&self) -> Result<u64, ViewError>;

    /// Readiness: the store answers.
    async fn ping(&self) -> Result<(), ViewError>;

    /// How many reservations are in `status` now (for the in-flight gauges of `/metrics`).
    async fn count_reservations(&self, status: ReservationStatus) -> Result<u64, ViewError>;
}
