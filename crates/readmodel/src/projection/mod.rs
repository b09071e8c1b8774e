//! The pure projection shared by every store adapter: given read access to the current documents
//! ([`ViewSource`]), apply events in log order and return the documents that changed ([`Changes`]).
//! Adapters only load and save documents, so every store builds the same views, and a rebuild in
//! any batch size builds them byte for byte as live projection did.
//!
//! Exactly-once in effect: every document (and every calendar night) remembers the position of the
//! last event that changed it, and an event at or before that position leaves it alone.

mod customer;
mod lodging;
mod payout;
mod reservation;
mod versions;
mod working_set;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    AnyEvent, CustomerView, LodgingView, ManagementView, PayoutView, ReservationView, ViewError,
    ViewEvent,
};

pub use versions::{reservation_of, reservation_versions};
pub use working_set::Projection;

/// A list document as stored: the view plus the sort key of its list (the log position of the
/// event that created it), which never changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored<T> {
    pub seq: u64,
    pub view: T,
}

/// Rooms booked (granted and not withdrawn) and held (by pending `pay_first` requests) on one
/// night of one lodging.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarNight {
    pub lodging_id: String,
    pub night: NaiveDate,
    pub booked: u32,
    #[serde(default)]
    pub held: u32,
    /// Position of the last event that changed it (0 = never booked).
    pub position: u64,
}

impl CalendarNight {
    /// Rooms not free: booked or held.
    #[must_use]
    pub fn taken(&self) -> u32 {
        self.booked.saturating_add(self.held)
    }
}

/// Read access to the current documents. Adapters implement it over their store (inside the write
/// transaction where there is one); the projection caches what it reads, so each key is read once.
pub trait ViewSource {
    fn reservation(&mut self, id: Uuid) -> Result<Option<Stored<ReservationView>>, ViewError>;
    fn request(&mut self, id: Uuid) -> Result<Option<Stored<ManagementView>>, ViewError>;
    fn payout(&mut self, id: Uuid) -> Result<Option<Stored<PayoutView>>, ViewError>;
    fn lodging(&mut self, lodging_id: &str) -> Result<Option<LodgingView>, ViewError>;
    fn customer(&mut self, customer_id: &str) -> Result<Option<CustomerView>, ViewError>;
    /// The stored nights of `lodging_id` in `from..to` (nights never booked may be absent).
    fn calendar(
        &mut self,
        lodging_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<CalendarNight>, ViewError>;
    /// The stored requests of `lodging_id` whose `request_status` is pending and whose `check_in`
    /// is in `first..=last` (both in years 0..=9999, so their `YYYY-MM-DD` text sorts as they do).
    fn pending_requests(
        &mut self,
        lodging_id: &str,
        first: NaiveDate,
        last: NaiveDate,
    ) -> Result<Vec<Stored<ManagementView>>, ViewError>;
}

/// The documents a batch changed, to be saved by the adapter (together with the checkpoint).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub reservations: Vec<Stored<ReservationView>>,
    pub requests: Vec<Stored<ManagementView>>,
    pub lodgings: Vec<LodgingView>,
    pub calendar: Vec<CalendarNight>,
    pub payouts: Vec<Stored<PayoutView>>,
    pub customers: Vec<CustomerView>,
}

impl Changes {
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.reservations.is_empty()
            && self.requests.is_empty()
            && self.lodgings.is_empty()
            && self.calendar.is_empty()
            && self.payouts.is_empty()
            && self.customers.is_empty()
    }
}

/// Apply `events` (in log order) over `source` and return what changed.
pub fn project<S: ViewSource>(source: &mut S, events: &[ViewEvent]) -> Result<Changes, ViewError> {
    let mut projection = Projection::new(source);
    for event in events {
        projection.apply(event)?;
    }
    Ok(projection.into_changes())
}

impl<S: ViewSource> Projection<'_, S> {
    /// Apply one event to every document it concerns.
    pub fn apply(&mut self, event: &ViewEvent) -> Result<(), ViewError> {
        match &event.event {
            AnyEvent::Reservation {
                reservation_id,
                event: inner,
            } => self.on_reservation(event, *reservation_id, inner),
            AnyEvent::Lodging {
                lodging_id,
                event: inner,
            } => self.on_lodging(event, lodging_id, inner),
            AnyEvent::Payment {
                reservation_id,
                event: inner,
            } => self.on_payment(event, *reservation_id, inner),
            AnyEvent::Payout {
                reservation_id,
                event: inner,
            } => self.on_payout(event, *reservation_id, inner),
            AnyEvent::Customer {
                customer_id,
                event: inner,
            } => self.on_customer(event, customer_id, inner),
            AnyEvent::Saga | AnyEvent::Other => Ok(()),
        }
    }
}
