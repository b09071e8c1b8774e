//! How lodging events change the catalog (listing lifecycle included), the calendar, the
//! ManagementList (including `available`) and the approval status of the ReservationList.
//!
//! `pay_first`: a request whose nights the desk holds is `held` in the ReservationList (its rooms
//! counted as held in the calendar) and reaches the ManagementList only once paid.

use chrono::NaiveDate;
use domain::lodging::{ApprovalMode, ListingStatus, LodgingChanges, LodgingEvent, LodgingProfile};
use domain::Stay;
use uuid::Uuid;

use super::{Projection, ViewSource};
use crate::{
    ApprovalStatus, LodgingView, ManagementView, PaymentStatus, ReservationStatus, ReservationView,
    ViewError, ViewEvent,
};

fn catalog_entry(
    event: &ViewEvent,
    profile: &LodgingProfile,
    status: ListingStatus,
) -> LodgingView {
    LodgingView {
        lodging_id: profile.lodging_id.clone(),
        name: profile.name.clone(),
        nightly_rate: profile.nightly_rate,
        currency: profile.currency.clone(),
        rooms: profile.rooms,
        max_guests: profile.max_guests,
        approval_mode: profile.approval_mode,
        admin_id: profile.admin_id.clone(),
        timezone: profile.timezone,
        fee_bps: profile.fee_bps,
        status,
        max_request_rooms: 1,
        position: event.position,
    }
}

/// The catalog entry with `changes` made (the ReservationList keeps the name it was requested under).
fn apply_changes(view: &mut LodgingView, changes: &LodgingChanges) {
    if let Some(name) = &changes.name {
        view.name.clone_from(name);
    }
    view.nightly_rate = changes.nightly_rate.unwrap_or(view.nightly_rate);
    view.rooms = changes.rooms.unwrap_or(view.rooms);
    view.max_guests = changes.max_guests.unwrap_or(view.max_guests);
    view.approval_mode = changes.approval_mode.unwrap_or(view.approval_mode);
    view.timezone = changes.timezone.unwrap_or(view.timezone);
}

fn stay_of(request: &ManagementView) -> Stay {
    Stay {
        check_in: request.check_in,
        check_out: request.check_out,
        guests: request.guests,
        rooms: request.rooms,
    }
}

fn reserved_stay(view: &ReservationView) -> Stay {
    Stay {
        check_in: view.check_in,
        check_out: view.check_out,
        guests: view.guests,
        rooms: view.rooms,
    }
}

/// Booked and held deltas for [`Projection::book`].
const BOOK: (i64, i64) = (1, 0);
const UNBOOK: (i64, i64) = (-1, 0);
const HOLD: (i64, i64) = (0, 1);
const UNHOLD: (i64, i64) = (0, -1);
const HELD_TO_BOOKED: (i64, i64) = (1, -1);

impl<S: ViewSource> Projection<'_, S> {
    pub(super) fn on_lodging(
        &mut self,
        event: &ViewEvent,
        lodging_id: &str,
        inner: &LodgingEvent,
    ) -> Result<(), ViewError> {
        use LodgingEvent as E;
        match inner {
            E::LodgingRegistered(profile) => {
                self.on_registered(event, lodging_id, profile, ListingStatus::Active)
            }
            E::ListingSubmitted(profile) => {
                self.on_registered(event, lodging_id, profile, ListingStatus::PendingReview)
            }
            E::ListingApproved { fee_bps, .. } => {
                self.update_lodging(event, lodging_id, |view| {
                    view.status = ListingStatus::Active;
                    view.fee_bps = *fee_bps;
                })?;
                Ok(())
            }
            E::ListingRejected { .. } => {
                self.listing_status(event, lodging_id, ListingStatus::Rejected)
            }
            E::LodgingClosed { .. } => {
                self.listing_status(event, lodging_id, ListingStatus::Closed)
            }
            E::LodgingUpdated(changes) => {
                let changed = self.update_lodging(event, lodging_id, |view| {
                    apply_changes(view, changes);
                })?;
                if changed && changes.rooms.is_some() {
                    // Every night's free rooms moved: any pending request may fit or not now.
                    self.refresh_available(event, lodging_id, NaiveDate::MIN, NaiveDate::MAX)?;
                }
                Ok(())
            }
            E::ApprovalRequested {
                reservation_id,
                check_in,
                check_out,
                guests,
                rooms,
            } => {
                let stay = Stay {
                    check_in: *check_in,
                    check_out: *check_out,
                    guests: *guests,
                    rooms: *rooms,
                };
                self.on_approval_requested(event, lodging_id, *reservation_id, &stay)
            }
            E::ApprovalGranted {
                reservation_id,
                granted_by,
            } => self.on_granted(event, *reservation_id, granted_by),
            E::ApprovalDenied {
                reservation_id,
                denied_by,
                ..
            } => self.on_denied(event, *reservation_id, denied_by),
            E::ApprovalWithdrawn { reservation_id, .. } => {
                self.on_withdrawn(event, *reservation_id)
            }
            E::NightsHeld { reservation_id } => self.on_held(event, *reservation_id),
            E::RequestPaid { reservation_id } => self.on_paid(event, *reservation_id),
        }
    }

    /// The reservation's view if its request holds nights at the desk (`pay_first`, undecided).
    fn held(&mut self, reservation_id: Uuid) -> Result<Option<ReservationView>, ViewError> {
        Ok(self
            .reservation(reservation_id)?
            .filter(|view| view.approval_status == ApprovalStatus::Held)
            .cloned())
    }

    /// Move a held request's rooms by `deltas` and re-examine `available` where that matters.
    fn move_held(
        &mut self,
        event: &ViewEvent,
        view: &ReservationView,
        deltas: (i64, i64),
    ) -> Result<(), ViewError> {
        let stay = reserved_stay(view);
        match self.book(event, &view.lodging_id, &stay, deltas)? {
            Some((from, to)) => self.refresh_available(event, &view.lodging_id, from, to),
            None => Ok(()),
        }
    }

    fn on_held(&mut self, event: &ViewEvent, reservation_id: Uuid) -> Result<(), ViewError> {
        let Some(view) = self.reservation(reservation_id)?.cloned() else {
            return Ok(());
        };
        let held = self.update_reservation(event, reservation_id, |view| {
            if view.approval_status == ApprovalStatus::Pending {
                view.approval_status = ApprovalStatus::Held;
            }
        })?;
        if held {
            self.move_held(event, &view, HOLD)?;
        }
        Ok(())
    }

    /// A held request is paid: now it reaches its lodging's desk (its rooms are its own).
    fn on_paid(&mut self, event: &ViewEvent, reservation_id: Uuid) -> Result<(), ViewError> {
        let Some(view) = self.held(reservation_id)? else {
            return Ok(());
        };
        if self.request(reservation_id)?.is_some() {
            return Ok(());
        }
        let mut request = pending_request(
            event,
            &view.lodging_id,
            reservation_id,
            &reserved_stay(&view),
        );
        request.customer_id = view.customer_id;
        request.payment_status = view.payment_status;
        request.available = true;
        request.requested_at = view.requested_at;
        self.create_request(event, request)?;
        Ok(())
    }

    fn on_registered(
        &mut self,
        event: &ViewEvent,
        lodging_id: &str,
        profile: &LodgingProfile,
        status: ListingStatus,
    ) -> Result<(), ViewError> {
        if profile.lodging_id != lodging_id {
            return Err(ViewError::Unprocessable {
                position: event.position,
                reason: format!(
                    "LodgingRegistered for {:?} in the stream of {lodging_id:?}",
                    profile.lodging_id
                ),
            });
        }
        if self.create_lodging(catalog_entry(event, profile, status))? {
            self.refresh_available(event, lodging_id, NaiveDate::MIN, NaiveDate::MAX)?;
        }
        Ok(())
    }

    pub(super) fn on_approval_requested(
        &mut self,
        event: &ViewEvent,
        lodging_id: &str,
        reservation_id: Uuid,
        stay: &Stay,
    ) -> Result<(), ViewError> {
        let (customer_id, payment_status) = match self.reservation(reservation_id)? {
            Some(view) => (view.customer_id.clone(), view.payment_status),
            None => (String::new(), PaymentStatus::None),
        };
        let lodging = self.lodging(lodging_id)?;
        let pay_first = lodging.is_some_and(|l| l.approval_mode == ApprovalMode::PayFirst);
        if stay.rooms > 1 {
            self.update_lodging(event, lodging_id, |view| {
                view.max_request_rooms = view.max_request_rooms.max(stay.rooms);
            })?;
        }
        if pay_first {
            return Ok(()); // it reaches the desk once paid (`on_paid`)
        }
        let mut request = pending_request(event, lodging_id, reservation_id, stay);
        request.customer_id = customer_id;
        request.payment_status = payment_status;
        request.available = self.fits(lodging_id, stay)?;
        self.create_request(event, request)?;
        Ok(())
    }

    fn on_granted(
        &mut self,
        event: &ViewEvent,
        reservation_id: Uuid,
        granted_by: &str,
    ) -> Result<(), ViewError> {
        use ApprovalStatus as A;
        let held = self.held(reservation_id)?;
        let granted = self.update_request(event, reservation_id, |request| {
            if matches!(request.request_status, A::Pending | A::Expired) {
                request.request_status = A::Approved;
                request.available = true;
                request.decided_at = Some(event.recorded_at);
                request.decided_by = Some(granted_by.to_string());
            }
        })?;
        self.update_reservation(event, reservation_id, |view| {
            view.approval_status = A::Approved;
        })?;
        if let Some(view) = held {
            self.move_held(event, &view, HELD_TO_BOOKED)?;
        } else if granted {
            self.rebook(event, reservation_id, BOOK)?;
        }
        Ok(())
    }

    fn on_denied(
        &mut self,
        event: &ViewEvent,
        reservation_id: Uuid,
        denied_by: &str,
    ) -> Result<(), ViewError> {
        use ApprovalStatus as A;
        let held = self.held(reservation_id)?;
        self.update_request(event, reservation_id, |request| {
            if matches!(request.request_status, A::Pending | A::Expired) {
                request.request_status = A::Rejected;
                request.available = false;
                request.decided_at = Some(event.recorded_at);
                request.decided_by = Some(denied_by.to_string());
            }
        })?;
        self.update_reservation(event, reservation_id, |view| {
            view.approval_status = A::Rejected;
        })?;
        if let Some(view) = held {
            self.move_held(event, &view, UNHOLD)?;
        }
        Ok(())
    }

    fn on_withdrawn(&mut self, event: &ViewEvent, reservation_id: Uuid) -> Result<(), ViewError> {
        use ApprovalStatus as A;
        let expired = self
            .reservation(reservation_id)?
            .is_some_and(|view| view.status == ReservationStatus::Expired);
        let outcome = if expired { A::Expired } else { A::Withdrawn };
        let held = self.held(reservation_id)?;
        let booked_rooms = self
            .request(reservation_id)?
            .is_some_and(|request| request.request_status == A::Approved);
        let withdrawn = self.update_request(event, reservation_id, |request| {
            if matches!(request.request_status, A::Pending | A::Approved) {
                request.request_status = outcome;
                request.available = false;
            }
        })?;
        self.update_reservation(event, reservation_id, |view| {
            if matches!(view.approval_status, A::Pending | A::Held | A::Approved) {
                view.approval_status = outcome;
            }
        })?;
        if let Some(view) = held {
            self.move_held(event, &view, UNHOLD)?;
        } else if withdrawn && booked_rooms {
            self.rebook(event, reservation_id, UNBOOK)?;
        }
        Ok(())
    }

    fn listing_status(
        &mut self,
        event: &ViewEvent,
        lodging_id: &str,
        status: ListingStatus,
    ) -> Result<(), ViewError> {
        self.update_lodging(event, lodging_id, |view| view.status = status)?;
        Ok(())
    }

    /// Book ([`BOOK`]) or release ([`UNBOOK`]) the nights of a request, then recompute
    /// `available` of the pending requests on the nights where that can change (see `book`).
    fn rebook(
        &mut self,
        event: &ViewEvent,
        reservation_id: Uuid,
        deltas: (i64, i64),
    ) -> Result<(), ViewError> {
        let Some(request) = self.request(reservation_id)? else {
            return Ok(());
        };
        let (lodging_id, stay) = (request.lodging_id.clone(), stay_of(request));
        match self.book(event, &lodging_id, &stay, deltas)? {
            Some((from, to)) => self.refresh_available(event, &lodging_id, from, to),
            None => Ok(()),
        }
    }

    /// Recompute `available` of the pending requests of `lodging_id` overlapping `from..to`.
    fn refresh_available(
        &mut self,
        event: &ViewEvent,
        lodging_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<(), ViewError> {
        for id in self.pending_overlapping(lodging_id, from, to)? {
            // A pending request already paid is a held `pay_first` one (elsewhere a payment is
            // only asked after approval): its rooms are its own, it stays available.
            let Some(stay) = self
                .request(id)?
                .filter(|r| r.payment_status != PaymentStatus::Completed)
                .map(stay_of)
            else {
                continue;
            };
            let available = self.fits(lodging_id, &stay)?;
            self.update_request(event, id, |request| request.available = available)?;
        }
        Ok(())
    }
}

/// A pending request on the desk, before what only its caller knows (customer, payment, fit).
fn pending_request(
    event: &ViewEvent,
    lodging_id: &str,
    reservation_id: Uuid,
    stay: &Stay,
) -> ManagementView {
    ManagementView {
        reservation_id,
        lodging_id: lodging_id.to_string(),
        customer_id: String::new(),
        check_in: stay.check_in,
        check_out: stay.check_out,
        guests: stay.guests,
        rooms: stay.rooms,
        request_status: ApprovalStatus::Pending,
        available: false,
        payment_status: PaymentStatus::None,
        requested_at: event.recorded_at,
        decided_at: None,
        decided_by: None,
        position: event.position,
    }
}
