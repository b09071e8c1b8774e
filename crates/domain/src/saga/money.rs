//! The saga's money rows: when a charge may be sent, what a charge, a refund or a void looks like,
//! the durable check-out timer of a confirmed stay, and what the saga learns from the payment's
//! events. `react` and `observe` (`super`) call these.

use super::{PaymentProgress, SagaAction, SagaInput, SagaPolicy, SagaStage, SagaState, TimerKind};
use crate::payment::{PaymentCommand, PaymentEvent};
use crate::reservation::ReservationRequested;
use crate::Timestamp;

/// A charge is sent once per request, once per retry timer, once per admin retry, while unpaid,
/// and only for a reservation whose approval the saga has seen (only an approved request is charged).
pub(super) fn charge_allowed(state: &SagaState, input: &SagaInput) -> bool {
    if state.stage != SagaStage::AwaitingPayment {
        return false;
    }
    match (&state.payment, input) {
        // `state` is the state before this input is observed: the payment is still `None` when its
        // `PaymentRequested` is handled for the first time.
        (
            PaymentProgress::None | PaymentProgress::Requested,
            SagaInput::Payment(PaymentEvent::PaymentRequested { .. }),
        ) => state.charge_attempts == 0,
        (PaymentProgress::Deferred { .. }, SagaInput::Timer(TimerKind::PaymentRetry)) => {
            state.timers.contains_key(&TimerKind::PaymentRetry)
        }
        (
            PaymentProgress::Deferred { .. },
            SagaInput::Payment(PaymentEvent::PaymentRetryRequested { .. }),
        ) => true,
        _ => false,
    }
}

/// The durable timer that completes a confirmed stay at its check-out, where the lodging is.
pub(super) fn check_out(reservation: &ReservationRequested) -> (TimerKind, Timestamp) {
    let due = crate::check_out_moment(reservation.check_out, reservation.timezone);
    (TimerKind::CheckOut, due)
}

pub(super) fn payment_request(reservation: &ReservationRequested) -> SagaAction {
    SagaAction::Payment(PaymentCommand::Request {
        reservation_id: reservation.reservation_id,
        amount: reservation.total_amount,
        currency: reservation.currency.clone(),
    })
}

/// The payment of a request that ends unconfirmed: refunded if taken, voided if under way.
pub(super) fn settle_payment(payment: &PaymentProgress, reason: &str) -> Option<SagaAction> {
    match payment {
        PaymentProgress::Completed { .. } => refund_completed(payment),
        PaymentProgress::Requested | PaymentProgress::Deferred { .. } => {
            Some(SagaAction::Payment(PaymentCommand::Void {
                reason: reason.to_string(),
            }))
        }
        _ => None,
    }
}

/// Refund a completed payment (nothing otherwise).
pub(super) fn refund_completed(payment: &PaymentProgress) -> Option<SagaAction> {
    match payment {
        PaymentProgress::Completed { charge_ref, amount } => Some(refund(charge_ref, *amount)),
        _ => None,
    }
}

/// The charge reference of a payment settled without the gateway (a zero total).
pub const NO_CHARGE_REF: &str = "no-charge";

/// Refund a completed charge; a zero amount (never charged) is recorded as refunded without the gateway.
pub(super) fn refund(charge_ref: &str, amount: i64) -> SagaAction {
    if amount == 0 {
        return SagaAction::Payment(PaymentCommand::Refund {
            amount: 0,
            gateway_ref: NO_CHARGE_REF.to_string(),
        });
    }
    SagaAction::RefundCharge {
        charge_ref: charge_ref.to_string(),
        amount,
    }
}

pub(super) fn charge(
    reservation: &ReservationRequested,
    attempt: u32,
    policy: &SagaPolicy,
) -> SagaAction {
    SagaAction::Charge {
        idempotency_key: reservation.reservation_id.to_string(),
        amount: reservation.total_amount,
        currency: reservation.currency.clone(),
        attempt,
        last_attempt: attempt >= policy.max_payment_attempts,
    }
}

pub(super) fn observe_payment(mut state: SagaState, event: &PaymentEvent) -> SagaState {
    match event {
        PaymentEvent::PaymentRequested { .. } if state.payment == PaymentProgress::None => {
            state.payment = PaymentProgress::Requested;
        }
        PaymentEvent::PaymentDeferred { attempt, .. }
            if matches!(
                state.payment,
                PaymentProgress::Requested | PaymentProgress::Deferred { .. }
            ) =>
        {
            // The payment counts a deferral as an attempt only when the gateway answered it.
            let counted_before = match state.payment {
                PaymentProgress::Deferred { attempt } => attempt,
                _ => 0,
            };
            state.last_deferral_counted = *attempt > counted_before;
            state.payment = PaymentProgress::Deferred { attempt: *attempt };
            // Only the gateway's answers count: a charge the open circuit refused is not an attempt,
            // so the payment's own count (not the charges sent) is what the next charge follows.
            state.charge_attempts = *attempt;
        }
        PaymentEvent::PaymentCompleted {
            payment_id,
            gateway_ref,
            amount,
        } => {
            state.payment = PaymentProgress::Completed {
                charge_ref: gateway_ref.clone(),
                amount: *amount,
            };
            state.payment_id = Some(payment_id.clone());
            if state.stage == SagaStage::AwaitingPayment {
                state.stage = if state.pay_first {
                    SagaStage::Paid
                } else {
                    SagaStage::Confirmed
                };
            }
        }
        PaymentEvent::PaymentFailed { .. } => {
            state.payment = PaymentProgress::Failed;
            if state.stage == SagaStage::AwaitingPayment {
                state.stage = SagaStage::PaymentFailed;
            }
        }
        PaymentEvent::PaymentRefunded { .. } => state.payment = PaymentProgress::Refunded,
        PaymentEvent::PaymentVoided { .. }
            if !matches!(
                state.payment,
                PaymentProgress::Completed { .. } | PaymentProgress::Refunded
            ) =>
        {
            state.payment = PaymentProgress::Voided;
        }
        _ => {}
    }
    state
}
