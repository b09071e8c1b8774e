//! How reservation and payment events change the ReservationList and ManagementList documents.

use domain::payment::PaymentEvent;
use domain::reservation::{ReservationEvent, ReservationRequested};
use uuid::Uuid;

use super::{Projection, ViewSource};
use crate::{
    ApprovalStatus, PaymentStatus, PayoutStatus, RefundStatus, ReservationStatus, ReservationView,
    ViewError, ViewEvent,
};

/// The reason shown for a request nobody decided in time (as the Reservation aggregate words it).
const EXPIRED_REASON: &str = "approval deadline passed";

fn requested_view(event: &ViewEvent, details: &ReservationRequested) -> ReservationView {
    ReservationView {
        reservation_id: details.reservation_id,
        customer_id: details.customer_id.clone(),
        lodging_id: details.lodging_id.clone(),
        lodging_name: None,
        check_in: details.check_in,
        check_out: details.check_out,
        guests: details.guests,
        rooms: details.rooms,
        nights: details.nights,
        total_amount: details.total_amount,
        currency: details.currency.clone(),
        status: ReservationStatus::Requested,
        approval_status: ApprovalStatus::Pending,
        payment_status: PaymentStatus::None,
        refund_status: RefundStatus::None,
        payout_status: PayoutStatus::None,
        status_reason: None,
        requested_at: event.recorded_at,
        updated_at: event.recorded_at,
        position: event.position,
    }
}

/// Set the status and its reason.
fn settle(view: &mut ReservationView, status: ReservationStatus, reason: Option<&String>) {
    view.status = status;
    view.status_reason = reason.cloned();
}

/// A request that ends unconfirmed after its payment was taken (`pay_first`) is owed a refund.
fn owe_back(view: &mut ReservationView) {
    if view.payment_status == PaymentStatus::Completed && view.refund_status == RefundStatus::None {
        view.refund_status = RefundStatus::Pending;
    }
}

/// Move `current` to `next` if it is still `from`.
fn step(current: &mut ApprovalStatus, from: &[ApprovalStatus], next: ApprovalStatus) {
    if from.contains(current) {
        *current = next;
    }
}

impl<S: ViewSource> Projection<'_, S> {
    pub(super) fn on_reservation(
        &mut self,
        event: &ViewEvent,
        id: Uuid,
        inner: &ReservationEvent,
    ) -> Result<(), ViewError> {
        use ApprovalStatus as A;
        use ReservationEvent as E;
        use ReservationStatus as S;
        match inner {
            E::ReservationRequested(details) => return self.on_requested(event, id, details),
            E::ReservationApproved { .. } => self.update_reservation(event, id, |view| {
                view.status = S::Approved;
                step(&mut view.approval_status, &[A::Pending], A::Approved);
            })?,
            E::ReservationRejected { reason } => self.update_reservation(event, id, |view| {
                settle(view, S::Rejected, Some(reason));
                step(&mut view.approval_status, &[A::Pending], A::Rejected);
                owe_back(view);
            })?,
            E::ReservationPaid { .. } => {
                self.update_reservation(event, id, |v| settle(v, S::Paid, None))?
            }
            E::ReservationCompleted { .. } => {
                self.update_reservation(event, id, |v| settle(v, S::Completed, None))?;
                self.update_request(event, id, |request| {
                    step(&mut request.request_status, &[A::Approved], A::Completed);
                })?
            }
            E::ReservationPaymentPending { reason, .. } => {
                self.update_reservation(event, id, |v| settle(v, S::PaymentPending, Some(reason)))?
            }
            E::ReservationConfirmed { .. } => {
                self.update_reservation(event, id, |v| settle(v, S::Confirmed, None))?
            }
            E::ReservationPaymentFailed { reason } => {
                self.update_reservation(event, id, |v| settle(v, S::PaymentFailed, Some(reason)))?
            }
            E::ReservationCancelled {
                reason, refund_due, ..
            } => self.update_reservation(event, id, |view| {
                settle(view, S::Cancelled, Some(reason));
                if *refund_due > 0 && view.refund_status == RefundStatus::None {
                    view.refund_status = RefundStatus::Pending;
                }
            })?,
            E::ReservationRefunded { .. } => self.update_reservation(event, id, |view| {
                view.refund_status = RefundStatus::Refunded;
            })?,
            E::ReservationExpired {} => return self.on_expired(event, id),
        };
        Ok(())
    }

    fn on_requested(
        &mut self,
        event: &ViewEvent,
        id: Uuid,
        details: &ReservationRequested,
    ) -> Result<(), ViewError> {
        if details.reservation_id != id {
            return Err(ViewError::Unprocessable {
                position: event.position,
                reason: format!(
                    "ReservationRequested for {} in the stream of {id}",
                    details.reservation_id
                ),
            });
        }
        let mut view = requested_view(event, details);
        view.lodging_name = self.lodging(&details.lodging_id)?.map(|l| l.name.clone());
        if let Some(request) = self.request(id)? {
            view.payment_status = request.payment_status;
        }
        self.create_reservation(event, view)?;
        // The admin's desk lists the request from the moment the customer makes it, so admins see
        // (and may decide) it even while the saga has not forwarded it yet (fault isolation).
        if self.request(id)?.is_none() && self.lodging(&details.lodging_id)?.is_some() {
            self.on_approval_requested(event, &details.lodging_id, id, &details.stay())?;
        }
        // A request the lodging recorded first learns its customer now.
        self.update_request(event, id, |request| {
            if request.customer_id.is_empty() {
                request.customer_id.clone_from(&details.customer_id);
            }
        })?;
        Ok(())
    }

    fn on_expired(&mut self, event: &ViewEvent, id: Uuid) -> Result<(), ViewError> {
        use ApprovalStatus as A;
        self.update_reservation(event, id, |view| {
            view.status = ReservationStatus::Expired;
            view.status_reason = Some(EXPIRED_REASON.to_string());
            owe_back(view);
            step(
                &mut view.approval_status,
                &[A::Pending, A::Withdrawn],
                A::Expired,
            );
        })?;
        self.update_request(event, id, |request| {
            step(
                &mut request.request_status,
                &[A::Pending, A::Withdrawn],
                A::Expired,
            );
            if request.request_status == A::Expired {
                request.available = false;
            }
        })?;
        Ok(())
    }

    pub(super) fn on_payment(
        &mut self,
        event: &ViewEvent,
        id: Uuid,
        inner: &PaymentEvent,
    ) -> Result<(), ViewError> {
        use PaymentEvent as E;
        let status = match inner {
            E::PaymentRequested { .. } => PaymentStatus::Requested,
            E::PaymentDeferred { .. } => PaymentStatus::Pending,
            E::PaymentCompleted { .. } => PaymentStatus::Completed,
            E::PaymentFailed { .. } => PaymentStatus::Failed,
            E::PaymentRefunded { .. } => PaymentStatus::Refunded,
            E::PaymentVoided { .. } => PaymentStatus::Voided,
            E::PaymentRetryRequested { .. } => return Ok(()),
        };
        self.update_reservation(event, id, |view| {
            view.payment_status = status;
            if status == PaymentStatus::Refunded {
                view.refund_status = RefundStatus::Refunded;
            }
        })?;
        self.update_request(event, id, |request| request.payment_status = status)?;
        Ok(())
    }
}
