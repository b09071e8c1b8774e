//! The lodging admin's commands: approve or reject a request, retry a deferred payment, cancel a
//! confirmed stay (refunded in full).
//!
//! The reservation is loaded first: it names the lodging (whose admin may decide) and carries the
//! stay, so an admin may decide before the saga has forwarded the request. It is taken as this
//! process last saw it, unread if it keeps it (`Store::reservation`): the lodging and the stay never
//! change, and a status behind the log only sends the decision on to the desk, which refuses what
//! was decided already.

use domain::lodging::{LodgingAggregate, LodgingCommand};
use domain::payment::{PaymentAggregate, PaymentCommand};
use domain::reservation::{ReservationCommand, ReservationRequested, ReservationStatus};
use domain::{Aggregate, ReservationId};
use eventlog::RecordedEvent;

use super::{replay, Accepted, Cause, CommandServices, Invocation, Permitted};
use crate::error::CommandError;
use crate::input::{ApproveRequest, CancelStay, CompleteStay, RejectRequest, RetryPayment};
use crate::store::execute;

/// What the admin decided.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Decision {
    Approve,
    Reject(String),
}

impl Decision {
    fn status(&self) -> &'static str {
        match self {
            Self::Approve => "approved",
            Self::Reject(_) => "rejected",
        }
    }

    /// Whether `event` is what this decision writes about `reservation_id`.
    fn wrote(&self, event: &RecordedEvent, reservation_id: ReservationId) -> bool {
        let about = event.data["reservation_id"] == reservation_id.to_string().as_str();
        match self {
            Self::Approve => about && event.event_type == "ApprovalGranted",
            Self::Reject(reason) => {
                about
                    && event.event_type == "ApprovalDenied"
                    && event.data["reason"] == reason.as_str()
            }
        }
    }
}

impl CommandServices {
    /// Grant a request if every night of its stay has a free room; 409 naming the first full night.
    pub async fn approve_request(
        &self,
        caller: &Permitted<ApproveRequest>,
        reservation_id: ReservationId,
    ) -> Result<Accepted, CommandError> {
        let invocation = caller.invocation();
        let operation = format!("approve:{reservation_id}");
        self.idempotent(invocation, &operation, &ApproveRequest, |cause| {
            self.decide_once(invocation, reservation_id, Decision::Approve, cause)
        })
        .await
    }

    /// Deny a request; 409 if it was already decided.
    pub async fn reject_request(
        &self,
        caller: &Permitted<RejectRequest>,
        reservation_id: ReservationId,
        input: RejectRequest,
    ) -> Result<Accepted, CommandError> {
        let invocation = caller.invocation();
        let operation = format!("reject:{reservation_id}");
        self.idempotent(invocation, &operation, &input, |cause| {
            self.decide_once(
                invocation,
                reservation_id,
                Decision::Reject(input.reason.clone()),
                cause,
            )
        })
        .await
    }

    /// The reservation's request, if `invocation`'s admin manages its lodging.
    async fn managed_request(
        &self,
        invocation: &Invocation,
        reservation_id: ReservationId,
    ) -> Result<(ReservationRequested, ReservationStatus), CommandError> {
        let reservation = self.store.reservation(reservation_id).await?;
        let details = reservation
            .details
            .ok_or_else(|| CommandError::NotFound(format!("no reservation {reservation_id}")))?;
        self.admin_of(invocation, &details.lodging_id).await?;
        Ok((details, reservation.status))
    }

    async fn decide_once(
        &self,
        invocation: &Invocation,
        reservation_id: ReservationId,
        decision: Decision,
        cause: Cause,
    ) -> Result<Accepted, CommandError> {
        let (details, status) = self.managed_request(invocation, reservation_id).await?;
        // The desk has the last word: a `pay_first` request still paying (payment_pending) is
        // 409 not-paid there, a manual one already granted is 409 already-decided.
        let undecided = matches!(
            status,
            ReservationStatus::Requested
                | ReservationStatus::PaymentPending
                | ReservationStatus::Paid
        );
        let result = if undecided {
            self.decide(invocation, &details, &decision, cause).await
        } else {
            Err(CommandError::wrong_state(
                "already-decided",
                format!("reservation is already {}", status.as_str()),
            ))
        };
        match result {
            Err(error @ CommandError::WrongState { .. }) if cause.keyed => {
                // Decided already: by this very request's first attempt?
                let stream = LodgingAggregate::stream_name(&details.lodging_id);
                let written = self.written_by(&stream, cause).await?;
                let id = reservation_id.to_string();
                let replayed = replay(&written, (&id, decision.status()), |e| {
                    decision.wrote(e, reservation_id)
                })?;
                replayed.ok_or(error)
            }
            other => other,
        }
    }

    async fn decide(
        &self,
        invocation: &Invocation,
        details: &ReservationRequested,
        decision: &Decision,
        cause: Cause,
    ) -> Result<Accepted, CommandError> {
        let reservation_id = details.reservation_id;
        let actor = invocation.principal.actor();
        let command = match decision {
            Decision::Approve => LodgingCommand::Grant {
                reservation_id,
                stay: details.stay(),
                granted_by: actor,
            },
            Decision::Reject(reason) => LodgingCommand::Deny {
                reservation_id,
                stay: details.stay(),
                reason: reason.clone(),
                denied_by: actor,
            },
        };
        let ctx = self.context(invocation, reservation_id, cause);
        let lodgings = &self.store.lodgings;
        let executed = execute(lodgings, &details.lodging_id, &command, &ctx).await?;
        let position = executed.outcome.map_or(0, |o| o.position);
        Ok(Accepted::new(reservation_id, decision.status(), position))
    }

    /// Cancel a confirmed stay of the admin's lodging (on or after check-in too); the saga refunds
    /// what was paid. 409 unless it is confirmed.
    pub async fn cancel_stay(
        &self,
        caller: &Permitted<CancelStay>,
        reservation_id: ReservationId,
        input: CancelStay,
    ) -> Result<Accepted, CommandError> {
        let invocation = caller.invocation();
        let operation = format!("cancel-stay:{reservation_id}");
        let reason = input.reason.clone();
        self.idempotent(invocation, &operation, &input, |cause| async move {
            self.managed_request(invocation, reservation_id).await?;
            let command = ReservationCommand::CancelAsAdmin {
                cancelled_by: invocation.principal.actor(),
                reason: reason.clone(),
            };
            self.cancel_with(invocation, reservation_id, &command, &reason, cause)
                .await
        })
        .await
    }

    /// Complete a confirmed stay of the admin's lodging on or after its check-in day (at check-out
    /// the saga completes it); 409 unless confirmed (`not-confirmed`) and checked in
    /// (`not-checked-in`). Completing a completed stay again changes nothing.
    pub async fn complete_stay(
        &self,
        caller: &Permitted<CompleteStay>,
        reservation_id: ReservationId,
    ) -> Result<Accepted, CommandError> {
        let invocation = caller.invocation();
        let operation = format!("complete-stay:{reservation_id}");
        self.idempotent(invocation, &operation, &CompleteStay, |cause| async move {
            self.managed_request(invocation, reservation_id).await?;
            let command = ReservationCommand::Complete {
                completed_by: invocation.principal.actor(),
            };
            let id = reservation_id.to_string();
            let ctx = self.context(invocation, reservation_id, cause);
            let executed = execute(&self.store.reservations, &id, &command, &ctx).await?;
            let position = executed.outcome.map_or(0, |o| o.position);
            Ok(Accepted::new(id, "completed", position))
        })
        .await
    }

    /// Ask for a deferred payment to be charged now; 409 unless the payment is deferred.
    pub async fn retry_payment(
        &self,
        caller: &Permitted<RetryPayment>,
        reservation_id: ReservationId,
    ) -> Result<Accepted, CommandError> {
        let invocation = caller.invocation();
        let operation = format!("retry-payment:{reservation_id}");
        self.idempotent(invocation, &operation, &RetryPayment, |cause| {
            self.retry_once(invocation, reservation_id, cause)
        })
        .await
    }

    async fn retry_once(
        &self,
        invocation: &Invocation,
        reservation_id: ReservationId,
        cause: Cause,
    ) -> Result<Accepted, CommandError> {
        self.managed_request(invocation, reservation_id).await?;
        let id = reservation_id.to_string();
        // The payment stays deferred after a retry request, so look for this request's first
        // attempt before deciding again.
        let written = self
            .written_by(&PaymentAggregate::stream_name(&id), cause)
            .await?;
        let earlier = replay(&written, (&id, "retry_requested"), |e| {
            e.event_type == "PaymentRetryRequested"
        })?;
        if let Some(answer) = earlier {
            return Ok(answer);
        }
        let command = PaymentCommand::RetryNow {
            requested_by: invocation.principal.actor(),
        };
        let ctx = self.context(invocation, reservation_id, cause);
        let executed = execute(&self.store.payments, &id, &command, &ctx).await?;
        let position = executed.outcome.map_or(0, |o| o.position);
        Ok(Accepted::new(id, "retry_requested", position))
    }
}
