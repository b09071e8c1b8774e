//! The saga table of docs/architecture.md as pure functions: [`react`] takes the saga's state and
//! one input (an event of the reservation, its lodging, its payment or its payout, or a timer) and
//! answers the commands to send and the timers to arm or cancel, one function per kind of input.

use crate::lodging::{LodgingCommand, LodgingEvent};
use crate::payment::{PaymentCommand, PaymentEvent};
use crate::reservation::{ReservationCommand, ReservationEvent, ReservationRequested};
use crate::Timestamp;

use super::money::{
    charge, charge_allowed, check_out, payment_request, refund, refund_completed, settle_payment,
};
use super::settlement::{react_payout, retry_payout, schedule_on_completion};
use super::{
    PaymentProgress, Reaction, SagaAction, SagaInput, SagaPolicy, SagaStage, SagaState, TimerKind,
    NO_CHARGE_REF,
};

/// The saga table of docs/architecture.md, as a pure function.
#[must_use]
pub fn react(
    state: &SagaState,
    input: &SagaInput,
    policy: &SagaPolicy,
    now: Timestamp,
) -> Reaction {
    let mut r = Reaction::default();
    let Some(reservation) = state.reservation.as_ref() else {
        if let SagaInput::Reservation(ReservationEvent::ReservationRequested(requested)) = input {
            r.actions.push(SagaAction::Lodging {
                lodging_id: requested.lodging_id.clone(),
                command: LodgingCommand::RequestApproval {
                    reservation_id: requested.reservation_id,
                    stay: requested.stay(),
                },
            });
            r.arm
                .push((TimerKind::ApprovalDeadline, now + policy.approval_deadline));
        }
        return r;
    };
    match input {
        SagaInput::Reservation(event) => on_reservation(state, reservation, event, &mut r),
        SagaInput::Lodging(event) => on_lodging(state, reservation, event, &mut r),
        SagaInput::Payment(event) => on_payment(state, reservation, input, event, policy, &mut r),
        SagaInput::Payout(event) => react_payout(state, event, policy, &mut r),
        SagaInput::Timer(kind) => on_timer(state, reservation, input, *kind, policy, &mut r),
    }
    r
}

/// A command to the reservation's lodging.
fn to_lodging(reservation: &ReservationRequested, command: LodgingCommand) -> SagaAction {
    SagaAction::Lodging {
        lodging_id: reservation.lodging_id.clone(),
        command,
    }
}

/// Withdraw the reservation from its lodging's desk and nights.
fn withdraw(reservation: &ReservationRequested, reason: &str) -> SagaAction {
    to_lodging(
        reservation,
        LodgingCommand::Withdraw {
            reservation_id: reservation.reservation_id,
            reason: reason.to_string(),
        },
    )
}

fn on_reservation(
    state: &SagaState,
    reservation: &ReservationRequested,
    event: &ReservationEvent,
    r: &mut Reaction,
) {
    match event {
        ReservationEvent::ReservationCancelled { .. } if !state.cancelled => {
            r.actions
                .push(withdraw(reservation, "reservation cancelled"));
            r.actions
                .extend(settle_payment(&state.payment, "reservation cancelled"));
            r.cancel.extend([
                TimerKind::ApprovalDeadline,
                TimerKind::PaymentRetry,
                TimerKind::CheckOut,
            ]);
        }
        // Completed (at check-out, or before it by its admin): the host is paid, and the timer has
        // nothing left to do.
        ReservationEvent::ReservationCompleted { .. } => {
            r.actions.extend(schedule_on_completion(state));
            r.cancel.push(TimerKind::CheckOut);
        }
        ReservationEvent::ReservationExpired {}
        | ReservationEvent::ReservationRejected { .. }
        | ReservationEvent::ReservationPaymentFailed { .. } => r
            .cancel
            .extend([TimerKind::ApprovalDeadline, TimerKind::PaymentRetry]),
        _ => {}
    }
}

/// The lodging's answers about this reservation (another reservation's change nothing).
fn on_lodging(
    state: &SagaState,
    reservation: &ReservationRequested,
    event: &LodgingEvent,
    r: &mut Reaction,
) {
    if event.reservation_id() != Some(reservation.reservation_id) || state.cancelled {
        return;
    }
    match (state.stage, event) {
        // `pay_first`: the nights are held, so the request is charged before its admin sees it.
        (SagaStage::AwaitingApproval, LodgingEvent::NightsHeld { .. }) => {
            r.actions.push(payment_request(reservation));
        }
        (SagaStage::Paid, LodgingEvent::ApprovalGranted { .. }) => {
            if let PaymentProgress::Completed { amount, .. } = &state.payment {
                r.actions
                    .push(SagaAction::Reservation(ReservationCommand::Confirm {
                        payment_id: state.payment_id.clone().unwrap_or_default(),
                        amount: *amount,
                    }));
                r.arm.push(check_out(reservation));
            }
            r.cancel.push(TimerKind::ApprovalDeadline);
        }
        (SagaStage::Paid, LodgingEvent::ApprovalDenied { reason, .. }) => {
            r.actions
                .push(SagaAction::Reservation(ReservationCommand::Reject {
                    reason: reason.clone(),
                }));
            r.actions.extend(refund_completed(&state.payment));
            r.cancel.push(TimerKind::ApprovalDeadline);
        }
        (SagaStage::AwaitingApproval, LodgingEvent::ApprovalGranted { granted_by, .. }) => {
            r.actions.push(SagaAction::Reservation(
                ReservationCommand::RecordApproval {
                    approved_by: granted_by.clone(),
                },
            ));
            r.actions.push(payment_request(reservation));
            r.cancel.push(TimerKind::ApprovalDeadline);
        }
        (SagaStage::AwaitingApproval, LodgingEvent::ApprovalDenied { reason, .. }) => {
            r.actions
                .push(SagaAction::Reservation(ReservationCommand::Reject {
                    reason: reason.clone(),
                }));
            r.cancel.push(TimerKind::ApprovalDeadline);
        }
        _ => {}
    }
}

fn on_payment(
    state: &SagaState,
    reservation: &ReservationRequested,
    input: &SagaInput,
    event: &PaymentEvent,
    policy: &SagaPolicy,
    r: &mut Reaction,
) {
    match event {
        // The payment was requested before the cancellation, but its `PaymentRequested` is seen after
        // it (so the cancellation had nothing to void yet): void it now, never charge it.
        PaymentEvent::PaymentRequested { .. }
            if state.has_ended() && state.payment == PaymentProgress::None =>
        {
            let reason = if state.cancelled {
                "reservation cancelled"
            } else {
                "reservation not confirmed"
            };
            r.actions.push(SagaAction::Payment(PaymentCommand::Void {
                reason: reason.to_string(),
            }));
        }
        // A zero total is settled without the gateway: nothing is ever charged (or refunded) for 0.
        PaymentEvent::PaymentRequested { .. }
            if reservation.total_amount == 0
                && !state.cancelled
                && charge_allowed(state, input) =>
        {
            r.actions
                .push(SagaAction::Payment(PaymentCommand::Complete {
                    payment_id: format!("{NO_CHARGE_REF}-{}", reservation.reservation_id),
                    gateway_ref: NO_CHARGE_REF.to_string(),
                    amount: 0,
                }));
        }
        PaymentEvent::PaymentRequested { .. } | PaymentEvent::PaymentRetryRequested { .. }
            if !state.cancelled && charge_allowed(state, input) =>
        {
            charge_next(state, reservation, policy, r);
        }
        PaymentEvent::PaymentDeferred {
            reason, retry_at, ..
        } if !state.has_ended() => {
            r.actions.push(SagaAction::Reservation(
                ReservationCommand::RecordPaymentPending {
                    reason: reason.clone(),
                    retry_at: *retry_at,
                },
            ));
            r.arm.push((TimerKind::PaymentRetry, *retry_at));
        }
        PaymentEvent::PaymentCompleted {
            payment_id,
            gateway_ref,
            amount,
        } => {
            if state.has_ended() {
                r.actions.push(refund(gateway_ref, *amount));
            } else if state.pay_first {
                // Paid: now (and only now) the request reaches its lodging's desk.
                r.actions
                    .push(SagaAction::Reservation(ReservationCommand::RecordPayment {
                        payment_id: payment_id.clone(),
                        amount: *amount,
                    }));
                r.actions.push(to_lodging(
                    reservation,
                    LodgingCommand::MarkPaid {
                        reservation_id: reservation.reservation_id,
                    },
                ));
            } else {
                r.actions
                    .push(SagaAction::Reservation(ReservationCommand::Confirm {
                        payment_id: payment_id.clone(),
                        amount: *amount,
                    }));
                r.arm.push(check_out(reservation));
            }
            r.cancel.push(TimerKind::PaymentRetry);
        }
        PaymentEvent::PaymentFailed { reason } => {
            r.actions.push(SagaAction::Reservation(
                ReservationCommand::RecordPaymentFailure {
                    reason: reason.clone(),
                },
            ));
            r.actions.push(withdraw(reservation, "payment failed"));
            r.cancel.push(TimerKind::PaymentRetry);
        }
        PaymentEvent::PaymentRefunded { amount, .. } => {
            r.actions
                .push(SagaAction::Reservation(ReservationCommand::RecordRefund {
                    amount: *amount,
                }));
        }
        _ => {}
    }
}

/// Charge (again): the next attempt, and the retry timer's current arming cancelled.
fn charge_next(
    state: &SagaState,
    reservation: &ReservationRequested,
    policy: &SagaPolicy,
    r: &mut Reaction,
) {
    r.actions
        .push(charge(reservation, state.charge_attempts + 1, policy));
    r.cancel.push(TimerKind::PaymentRetry);
}

fn on_timer(
    state: &SagaState,
    reservation: &ReservationRequested,
    input: &SagaInput,
    kind: TimerKind,
    policy: &SagaPolicy,
    r: &mut Reaction,
) {
    let awaiting_approval = state.stage == SagaStage::AwaitingApproval && !state.cancelled;
    match kind {
        TimerKind::PayoutRetry => r.actions.extend(retry_payout(state)),
        TimerKind::CheckOut if state.stage == SagaStage::Confirmed && !state.cancelled => {
            r.actions
                .push(SagaAction::Reservation(ReservationCommand::Complete {
                    completed_by: "check-out".to_string(),
                }));
        }
        // The attempts are used up and the lodging's admin did not retry while the request held its
        // nights: the payment fails (and the nights are released when the failure is seen).
        TimerKind::PaymentRetry
            if !state.cancelled
                && charge_allowed(state, input)
                && state.last_deferral_counted
                && state.charge_attempts >= policy.max_payment_attempts =>
        {
            r.actions.push(SagaAction::Payment(PaymentCommand::Fail {
                reason: format!(
                    "payment attempts exhausted ({} answered by the gateway) and not retried by the lodging's admin",
                    state.charge_attempts
                ),
            }));
            r.cancel.push(TimerKind::PaymentRetry);
        }
        TimerKind::PaymentRetry if !state.cancelled && charge_allowed(state, input) => {
            charge_next(state, reservation, policy, r);
        }
        TimerKind::ApprovalDeadline if awaiting_approval => {
            r.actions
                .push(withdraw(reservation, "approval deadline passed"));
            r.actions
                .push(SagaAction::Reservation(ReservationCommand::Expire));
        }
        // `pay_first`: not paid or not decided in time: released, expired, and what was taken
        // refunded (or the charge still under way voided).
        TimerKind::ApprovalDeadline
            if state.pay_first
                && !state.cancelled
                && matches!(state.stage, SagaStage::AwaitingPayment | SagaStage::Paid) =>
        {
            r.actions
                .push(withdraw(reservation, "approval deadline passed"));
            r.actions
                .push(SagaAction::Reservation(ReservationCommand::Expire));
            r.actions
                .extend(settle_payment(&state.payment, "approval deadline passed"));
            r.cancel.push(TimerKind::PaymentRetry);
        }
        _ => {}
    }
}
