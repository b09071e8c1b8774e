//! Request a stay and cancel it (customers, their own reservations only).
//!
//! An unknown lodging answers 422 with `errors: [{field: "lodging_id"}]`: the route exists, the body
//! names something that does not.

use domain::lodging::ListingStatus;
use domain::reservation::{LodgingTerms, ReservationAggregate, ReservationCommand};
use domain::{Aggregate, ReservationId};
use http_edge::FieldError;
use uuid::Uuid;

use super::{replay, Accepted, Cause, CommandServices, Invocation, Permitted};
use crate::error::CommandError;
use crate::idempotency;
use crate::input::{CancelReservation, RequestReservation};
use crate::store::{answer, execute};

impl CommandServices {
    /// Record a customer's request for a stay. Always accepted when valid, whatever the state of
    /// approval or payment: those follow asynchronously.
    pub async fn request_reservation(
        &self,
        caller: &Permitted<RequestReservation>,
        input: RequestReservation,
    ) -> Result<Accepted, CommandError> {
        let invocation = caller.invocation();
        let reservation_id = match &invocation.idempotency_key {
            Some(key) => idempotency::reservation_id(&invocation.principal.sub, key),
            None => Uuid::now_v7(),
        };
        self.idempotent(invocation, "request-reservation", &input, |cause| {
            self.request_once(invocation, reservation_id, &input, cause)
        })
        .await
    }

    async fn request_once(
        &self,
        invocation: &Invocation,
        reservation_id: ReservationId,
        input: &RequestReservation,
        cause: Cause,
    ) -> Result<Accepted, CommandError> {
        let command = ReservationCommand::Request {
            reservation_id,
            customer_id: invocation.principal.sub.clone(),
            lodging: self.terms(&input.lodging_id).await?,
            stay: input.stay,
        };
        let id = reservation_id.to_string();
        let ctx = self.context(invocation, reservation_id, cause);
        let reservations = &self.store.reservations;
        let executed = if invocation.idempotency_key.is_some() {
            // Possibly a repeat: read the stream first, so a repeat is told from a first request.
            execute(reservations, &id, &command, &ctx).await?
        } else {
            // A new v7 id: the command opens its stream, so it is decided without reading it.
            answer(reservations.execute_new(&id, &command, &ctx).await)?
        };
        let written = executed.events.len() as u64;
        match executed.outcome {
            // Our events opened the stream, so the outcome's position is our last event's.
            Some(outcome) if written > 0 && outcome.last_version + 1 == written => {
                Ok(Accepted::new(id, "requested", outcome.position))
            }
            // A repeat (same key, same stay): answer with the first request's position.
            _ => {
                let stream = ReservationAggregate::stream_name(&id);
                let first = self.store.log.read_stream(&stream, 0, 1).await?;
                let position = first.first().map_or(0, |e| e.position);
                Ok(Accepted::new(id, "requested", position).replayed())
            }
        }
    }

    /// The terms of an active lodging; 422 naming `lodging_id` if there is none, 409 if it is not
    /// active (under review, rejected or closed).
    async fn terms(&self, lodging_id: &str) -> Result<LodgingTerms, CommandError> {
        let Some(listing) = self.catalog.listing(lodging_id).await? else {
            let detail = format!("no lodging {lodging_id}");
            let field = FieldError::new("lodging_id", "no such lodging");
            return Err(CommandError::rejected(
                "unknown-lodging",
                detail,
                vec![field],
            ));
        };
        if listing.status != ListingStatus::Active {
            return Err(CommandError::wrong_state(
                "lodging-not-active",
                format!(
                    "lodging {lodging_id} is {} and takes no new request",
                    listing.status.as_str()
                ),
            ));
        }
        let profile = &listing.profile;
        Ok(LodgingTerms {
            lodging_id: profile.lodging_id.clone(),
            nightly_rate: profile.nightly_rate,
            currency: profile.currency.clone(),
            max_guests: profile.max_guests,
            rooms: profile.rooms,
            timezone: profile.timezone,
        })
    }

    /// Withdraw a request not yet confirmed (at any time) or cancel a confirmed stay before
    /// check-in in the lodging's time zone; 409 if it is terminal or checked in.
    pub async fn cancel_reservation(
        &self,
        caller: &Permitted<CancelReservation>,
        reservation_id: ReservationId,
        input: CancelReservation,
    ) -> Result<Accepted, CommandError> {
        let invocation = caller.invocation();
        let operation = format!("cancel:{reservation_id}");
        self.idempotent(invocation, &operation, &input, |cause| {
            self.cancel_once(invocation, reservation_id, &input, cause)
        })
        .await
    }

    async fn cancel_once(
        &self,
        invocation: &Invocation,
        reservation_id: ReservationId,
        input: &CancelReservation,
        cause: Cause,
    ) -> Result<Accepted, CommandError> {
        let reservation = self.store.reservation(reservation_id).await?;
        let owner = reservation.details.as_ref().map(|d| d.customer_id.as_str());
        if owner != Some(invocation.principal.sub.as_str()) {
            return Err(CommandError::Forbidden(format!(
                "reservation {reservation_id} is not yours"
            )));
        }
        let lodging_id = reservation.details.as_ref().map(|d| d.lodging_id.as_str());
        let timezone = match lodging_id {
            Some(lodging_id) => self
                .catalog
                .listing(lodging_id)
                .await?
                .map(|l| l.profile.timezone),
            None => None,
        };
        let command = ReservationCommand::Cancel {
            cancelled_by: invocation.principal.actor(),
            reason: input.reason.clone(),
            // A reservation of a lodging that was never registered (the saga rejects it): today
            // is read where lodgings are by default.
            timezone: timezone.unwrap_or(self.default_timezone),
        };
        self.cancel_with(invocation, reservation_id, &command, &input.reason, cause)
            .await
    }

    /// Run a cancel `command` (the customer's or the lodging admin's) with `reason`; if the stay is
    /// cancelled already, answer as this request's first attempt did, if it was the one.
    pub(super) async fn cancel_with(
        &self,
        invocation: &Invocation,
        reservation_id: ReservationId,
        command: &ReservationCommand,
        reason: &str,
        cause: Cause,
    ) -> Result<Accepted, CommandError> {
        let id = reservation_id.to_string();
        let ctx = self.context(invocation, reservation_id, cause);
        match execute(&self.store.reservations, &id, command, &ctx).await {
            Ok(executed) => {
                let position = executed.outcome.map_or(0, |o| o.position);
                Ok(Accepted::new(id, "cancelled", position))
            }
            Err(error @ CommandError::WrongState { .. }) => {
                let stream = ReservationAggregate::stream_name(&id);
                let written = self.written_by(&stream, cause).await?;
                let replayed = replay(&written, (&id, "cancelled"), |event| {
                    event.event_type == "ReservationCancelled" && event.data["reason"] == reason
                })?;
                replayed.ok_or(error)
            }
            Err(error) => Err(error),
        }
    }
}
