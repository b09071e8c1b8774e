//! Every version of a ReservationList document, event by event. The projector folds a batch's
//! changes of a document into one write, so the views hold its last version only; the live
//! streams send each version. They derive the versions here, from the last one they knew, with the
//! very projection the views are built with, over a source that holds only those documents and
//! the lodgings: a reservation's document reads nothing else (its desk request, the calendar and
//! the payouts change beside it, never into it). `tests/versions.rs` holds every derived version
//! to the document a projection event by event makes.

use std::collections::HashMap;

use chrono::NaiveDate;
use uuid::Uuid;

use super::{CalendarNight, Projection, Stored, ViewSource};
use crate::{
    AnyEvent, CustomerView, LodgingView, ManagementView, PayoutView, ReservationView, ViewError,
    ViewEvent,
};

/// The reservation whose ReservationList document `event` may change (`None`: none).
#[must_use]
pub fn reservation_of(event: &AnyEvent) -> Option<Uuid> {
    match event {
        AnyEvent::Reservation { reservation_id, .. }
        | AnyEvent::Payment { reservation_id, .. }
        | AnyEvent::Payout { reservation_id, .. } => Some(*reservation_id),
        AnyEvent::Lodging { event, .. } => event.reservation_id(),
        AnyEvent::Customer { .. } | AnyEvent::Saga | AnyEvent::Other => None,
    }
}

/// What a derivation reads: the versions known so far, and the lodgings (a new reservation's
/// document takes its lodging's name). Nothing else exists for it.
struct Known<'a> {
    reservations: &'a HashMap<Uuid, ReservationView>,
    lodgings: &'a HashMap<String, LodgingView>,
}

impl ViewSource for Known<'_> {
    fn reservation(&mut self, id: Uuid) -> Result<Option<Stored<ReservationView>>, ViewError> {
        Ok(self.reservations.get(&id).map(|view| Stored {
            seq: 0,
            view: view.clone(),
        }))
    }
    fn request(&mut self, _: Uuid) -> Result<Option<Stored<ManagementView>>, ViewError> {
        Ok(None)
    }
    fn payout(&mut self, _: Uuid) -> Result<Option<Stored<PayoutView>>, ViewError> {
        Ok(None)
    }
    fn lodging(&mut self, lodging_id: &str) -> Result<Option<LodgingView>, ViewError> {
        Ok(self.lodgings.get(lodging_id).cloned())
    }
    fn customer(&mut self, _: &str) -> Result<Option<CustomerView>, ViewError> {
        Ok(None)
    }
    fn calendar(
        &mut self,
        _: &str,
        _: NaiveDate,
        _: NaiveDate,
    ) -> Result<Vec<CalendarNight>, ViewError> {
        Ok(Vec::new())
    }
    fn pending_requests(
        &mut self,
        _: &str,
        _: NaiveDate,
        _: NaiveDate,
    ) -> Result<Vec<Stored<ManagementView>>, ViewError> {
        Ok(Vec::new())
    }
}

/// The versions `events` (in log order) make of the ReservationList documents in `known` (each
/// at its last version before `events`) and of those `events` create: one per event that changed
/// a document, in log order, each stamped with its event's position. `known` is left at each
/// document's last version. `lodgings` must hold the lodging of each reservation `events` create
/// (else its `lodging_name` is `None`, as for a lodging the views do not have).
pub fn reservation_versions(
    known: &mut HashMap<Uuid, ReservationView>,
    lodgings: &HashMap<String, LodgingView>,
    events: &[ViewEvent],
) -> Result<Vec<ReservationView>, ViewError> {
    let mut versions = Vec::new();
    {
        let mut source = Known {
            reservations: known,
            lodgings,
        };
        let mut projection = Projection::new(&mut source);
        for event in events {
            let Some(id) = reservation_of(&event.event) else {
                continue;
            };
            projection.apply(event)?;
            if let Some(view) = projection.cached_reservation(id) {
                if view.position == event.position {
                    versions.push(view.clone());
                }
            }
        }
    }
    for version in &versions {
        known.insert(version.reservation_id, version.clone());
    }
    Ok(versions)
}
