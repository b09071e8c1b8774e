//! Tests of the reservation saga: one per row of the saga table (docs/architecture.md), plus
//! idempotency, timers and the races between cancellation and payment.

use std::collections::BTreeSet;

use chrono::TimeDelta;

use super::*;
use crate::harness::{assert_round_trip, at, date, default_now, given, Given};
use crate::DomainEvent;

type Saga = ReservationSaga;
use LodgingEvent as LE;
use PaymentEvent as PE;
use ReservationEvent as RE;
use SagaInput as I;

fn rid() -> Uuid {
    Uuid::from_u128(0xabc)
}

fn policy() -> SagaPolicy {
    SagaPolicy {
        approval_deadline: TimeDelta::hours(24),
        retry_base: TimeDelta::seconds(2),
        max_payment_attempts: 3,
    }
}

fn details() -> ReservationRequested {
    ReservationRequested {
        timezone: crate::WAVE1_TIMEZONE,
        rooms: 1,
        reservation_id: rid(),
        customer_id: "customer-1".to_string(),
        lodging_id: "lodging-1".to_string(),
        check_in: date(2030, 6, 10),
        check_out: date(2030, 6, 13),
        guests: 2,
        nights: 3,
        total_amount: 300,
        currency: "EUR".to_string(),
    }
}

fn trigger(n: u128, input: SagaInput) -> SagaTrigger {
    SagaTrigger {
        trigger_id: Uuid::from_u128(n),
        input,
        policy: policy(),
    }
}

fn handled(n: u128, input: SagaInput, actions: Vec<SagaAction>) -> SagaEvent {
    SagaEvent::SagaEventHandled {
        trigger_id: Uuid::from_u128(n),
        input,
        actions,
        cancelled: vec![],
        armed: vec![],
    }
}

/// The timers a trigger's record cancels and arms (in the record itself since version 4).
trait RecordsTimers: Sized {
    fn arming(self, timer: TimerKind, due_at: Timestamp) -> Self;
    fn cancelling(self, timer: TimerKind) -> Self;
    /// The check-out timer of [`details`]: noon of 2030-06-13 in Seoul.
    fn arming_check_out(self) -> Self {
        self.arming(TimerKind::CheckOut, at(2030, 6, 13, 3))
    }
}

impl RecordsTimers for SagaEvent {
    fn arming(mut self, timer: TimerKind, due_at: Timestamp) -> Self {
        if let SagaEvent::SagaEventHandled { armed, .. } = &mut self {
            armed.push(TimerArmed { timer, due_at });
        }
        self
    }

    fn cancelling(mut self, timer: TimerKind) -> Self {
        if let SagaEvent::SagaEventHandled { cancelled, .. } = &mut self {
            cancelled.push(timer);
        }
        self
    }
}

/// Every timer armed, and every one cancelled, in `events`' records.
fn timers_in(events: &[SagaEvent]) -> (Vec<TimerArmed>, Vec<TimerKind>) {
    let (mut armed_all, mut cancelled_all) = (vec![], vec![]);
    for event in events {
        if let SagaEvent::SagaEventHandled {
            armed, cancelled, ..
        } = event
        {
            armed_all.extend(armed.iter().copied());
            cancelled_all.extend(cancelled.iter().copied());
        }
    }
    (armed_all, cancelled_all)
}

// ---- inputs ----

fn requested() -> SagaInput {
    I::Reservation(RE::ReservationRequested(details()))
}

fn granted() -> SagaInput {
    I::Lodging(LE::ApprovalGranted {
        reservation_id: rid(),
        granted_by: "admin-1".to_string(),
    })
}

fn denied() -> SagaInput {
    I::Lodging(LE::ApprovalDenied {
        reason: "renovation".to_string(),
        reservation_id: rid(),
        denied_by: "admin-1".to_string(),
    })
}

fn payment_requested() -> SagaInput {
    I::Payment(PE::PaymentRequested {
        reservation_id: rid(),
        amount: 300,
        currency: "EUR".to_string(),
    })
}

fn retry_at(attempt: u32) -> Timestamp {
    default_now() + retry_delay(policy().retry_base, attempt)
}

fn deferred(attempt: u32) -> SagaInput {
    I::Payment(PE::PaymentDeferred {
        reason: "circuit open".to_string(),
        attempt,
        retry_at: retry_at(attempt),
    })
}

fn completed() -> SagaInput {
    I::Payment(PE::PaymentCompleted {
        payment_id: "pay-1".to_string(),
        gateway_ref: "ch_1".to_string(),
        amount: 300,
    })
}

fn payment_failed() -> SagaInput {
    I::Payment(PE::PaymentFailed {
        reason: "declined".to_string(),
    })
}

fn voided() -> SagaInput {
    I::Payment(PE::PaymentVoided {
        reason: "reservation cancelled".to_string(),
    })
}

fn refunded() -> SagaInput {
    I::Payment(PE::PaymentRefunded {
        amount: 300,
        gateway_ref: "re_1".to_string(),
    })
}

fn cancelled(refund_due: i64) -> SagaInput {
    I::Reservation(RE::ReservationCancelled {
        cancelled_by: "customer-1".to_string(),
        reason: "plans changed".to_string(),
        refund_due,
    })
}

// ---- actions ----

fn lodging(command: LodgingCommand) -> SagaAction {
    SagaAction::Lodging {
        lodging_id: "lodging-1".to_string(),
        command,
    }
}

fn withdraw(reason: &str) -> SagaAction {
    lodging(LodgingCommand::Withdraw {
        reservation_id: rid(),
        reason: reason.to_string(),
    })
}

fn charge(attempt: u32, last_attempt: bool) -> SagaAction {
    SagaAction::Charge {
        idempotency_key: rid().to_string(),
        amount: 300,
        currency: "EUR".to_string(),
        attempt,
        last_attempt,
    }
}

/// Record the approval, then request the payment.
fn on_grant() -> Vec<SagaAction> {
    vec![
        SagaAction::Reservation(ReservationCommand::RecordApproval {
            approved_by: "admin-1".to_string(),
        }),
        SagaAction::Payment(PaymentCommand::Request {
            reservation_id: rid(),
            amount: 300,
            currency: "EUR".to_string(),
        }),
    ]
}

fn void() -> SagaAction {
    SagaAction::Payment(PaymentCommand::Void {
        reason: "reservation cancelled".to_string(),
    })
}

fn refund_charge() -> SagaAction {
    SagaAction::RefundCharge {
        charge_ref: "ch_1".to_string(),
        amount: 300,
    }
}

/// The payout of a completed stay of [`details`], paid in full.
fn schedule_payout() -> SagaAction {
    SagaAction::SchedulePayout {
        lodging_id: "lodging-1".to_string(),
        gross: 300,
        currency: "EUR".to_string(),
    }
}

// ---- histories: the saga's own decisions over earlier inputs ----

/// What the saga records after handling `inputs` in order (trigger ids 1000, 1001, ...).
fn run(inputs: &[SagaInput]) -> Vec<SagaEvent> {
    let mut state = SagaState::default();
    let mut history = Vec::new();
    for (n, input) in (1000..).zip(inputs) {
        let decided = Saga::decide(&state, &trigger(n, input.clone()), default_now())
            .unwrap_or_else(|never| match never {});
        state = Saga::fold(state, &decided);
        history.extend(decided);
    }
    history
}

fn awaiting_approval() -> Vec<SagaInput> {
    vec![requested()]
}

fn awaiting_payment() -> Vec<SagaInput> {
    vec![requested(), granted()]
}

fn charging() -> Vec<SagaInput> {
    vec![requested(), granted(), payment_requested()]
}

fn retrying() -> Vec<SagaInput> {
    vec![requested(), granted(), payment_requested(), deferred(1)]
}

fn confirmed() -> Vec<SagaInput> {
    vec![requested(), granted(), payment_requested(), completed()]
}

fn then(mut inputs: Vec<SagaInput>, more: impl IntoIterator<Item = SagaInput>) -> Vec<SagaInput> {
    inputs.extend(more);
    inputs
}

fn state_after(inputs: &[SagaInput]) -> SagaState {
    Saga::fold(SagaState::default(), &run(inputs))
}

// ---- ReservationRequested ----

#[test]
fn reservation_requested_asks_for_approval_and_arms_the_deadline() {
    let state = given::<Saga>([])
        .when(trigger(1, requested()))
        .then([handled(
            1,
            requested(),
            vec![lodging(LodgingCommand::RequestApproval {
                reservation_id: rid(),
                stay: details().stay(),
            })],
        )
        .arming(TimerKind::ApprovalDeadline, at(2030, 6, 2, 10))]);
    assert_eq!(state.stage, SagaStage::AwaitingApproval);
    assert_eq!(state.reservation, Some(details()));
    assert_eq!(
        state.timers.get(&TimerKind::ApprovalDeadline),
        Some(&at(2030, 6, 2, 10))
    );
    assert!(state.handled.contains_key(&Uuid::from_u128(1)));
}

#[test]
fn reservation_requested_seen_again_under_another_id_sends_nothing() {
    given::<Saga>(run(&awaiting_approval()))
        .when(trigger(1, requested()))
        .then([handled(1, requested(), vec![])]);
}

#[test]
fn inputs_before_the_reservation_is_known_are_recorded_and_ignored() {
    for input in [
        granted(),
        payment_requested(),
        I::Timer(TimerKind::ApprovalDeadline),
    ] {
        let state = given::<Saga>([])
            .when(trigger(1, input.clone()))
            .then([handled(1, input, vec![])]);
        assert_eq!(state.stage, SagaStage::NotStarted);
    }
}

#[test]
fn unknown_lodging_rejects_the_reservation() {
    assert_eq!(
        reservation_fallback(&LodgingError::NotRegistered),
        Some(ReservationCommand::Reject {
            reason: "unknown lodging".to_string()
        })
    );
    assert_eq!(
        reservation_fallback(&LodgingError::NoRoom {
            night: date(2030, 6, 10)
        }),
        None
    );
}

// ---- ApprovalGranted / ApprovalDenied ----

#[test]
fn approval_granted_records_it_requests_payment_and_cancels_the_deadline() {
    let state = given::<Saga>(run(&awaiting_approval()))
        .when(trigger(1, granted()))
        .then([handled(1, granted(), on_grant()).cancelling(TimerKind::ApprovalDeadline)]);
    assert_eq!(state.stage, SagaStage::AwaitingPayment);
    assert!(state.timers.is_empty());
}

#[test]
fn approval_granted_again_or_for_another_reservation_sends_nothing() {
    given::<Saga>(run(&awaiting_payment()))
        .when(trigger(1, granted()))
        .then([handled(1, granted(), vec![])]);
    let other = I::Lodging(LE::ApprovalGranted {
        reservation_id: Uuid::from_u128(0xdef),
        granted_by: "admin-1".to_string(),
    });
    let state = given::<Saga>(run(&awaiting_approval()))
        .when(trigger(1, other.clone()))
        .then([handled(1, other, vec![])]);
    assert!(state.timers.contains_key(&TimerKind::ApprovalDeadline));
    assert_eq!(state.stage, SagaStage::AwaitingApproval);
    // Our own grant still goes through afterwards.
    let state = Given::<Saga>::with_state(state)
        .when(trigger(2, granted()))
        .then([handled(2, granted(), on_grant()).cancelling(TimerKind::ApprovalDeadline)]);
    assert_eq!(state.stage, SagaStage::AwaitingPayment);
}

#[test]
fn payment_requested_before_the_approval_was_seen_charges_nothing() {
    given::<Saga>(run(&awaiting_approval()))
        .when(trigger(1, payment_requested()))
        .then([handled(1, payment_requested(), vec![])]);
    // After the request ended unconfirmed, a payment requested is voided, never left open.
    let void = SagaAction::Payment(PaymentCommand::Void {
        reason: "reservation not confirmed".to_string(),
    });
    given::<Saga>(run(&then(awaiting_approval(), [denied()])))
        .when(trigger(1, payment_requested()))
        .then([handled(1, payment_requested(), vec![void])]);
}

#[test]
fn approval_denied_rejects_the_reservation_and_cancels_the_deadline() {
    let state = given::<Saga>(run(&awaiting_approval()))
        .when(trigger(1, denied()))
        .then([handled(
            1,
            denied(),
            vec![SagaAction::Reservation(ReservationCommand::Reject {
                reason: "renovation".to_string(),
            })],
        )
        .cancelling(TimerKind::ApprovalDeadline)]);
    assert_eq!(state.stage, SagaStage::Rejected);
    assert!(state.is_finished());
}

#[test]
fn approval_denied_after_a_grant_sends_nothing() {
    given::<Saga>(run(&awaiting_payment()))
        .when(trigger(1, denied()))
        .then([handled(1, denied(), vec![])]);
}

// ---- PaymentRequested, deferral and retries ----

#[test]
fn payment_requested_charges_the_gateway_once() {
    let state = given::<Saga>(run(&awaiting_payment()))
        .when(trigger(1, payment_requested()))
        .then([handled(1, payment_requested(), vec![charge(1, false)])]);
    assert_eq!(state.payment, PaymentProgress::Requested);
    assert_eq!(state.charge_attempts, 1);
    given::<Saga>(run(&charging()))
        .when(trigger(1, payment_requested()))
        .then([handled(1, payment_requested(), vec![])]);
}

#[test]
fn payment_deferred_records_pending_and_arms_the_retry_timer() {
    let state = given::<Saga>(run(&charging()))
        .when(trigger(1, deferred(1)))
        .then([handled(
            1,
            deferred(1),
            vec![SagaAction::Reservation(
                ReservationCommand::RecordPaymentPending {
                    reason: "circuit open".to_string(),
                    retry_at: retry_at(1),
                },
            )],
        )
        .arming(TimerKind::PaymentRetry, retry_at(1))]);
    assert_eq!(state.payment, PaymentProgress::Deferred { attempt: 1 });
    assert_eq!(
        state.timers.get(&TimerKind::PaymentRetry),
        Some(&retry_at(1))
    );
}

#[test]
fn retry_timer_charges_again_with_the_next_attempt() {
    let timer = I::Timer(TimerKind::PaymentRetry);
    let state = given::<Saga>(run(&retrying()))
        .when(trigger(1, timer.clone()))
        .then([handled(1, timer, vec![charge(2, false)]).cancelling(TimerKind::PaymentRetry)]);
    assert_eq!(state.charge_attempts, 2);
    assert!(state.timers.is_empty());
}

#[test]
fn retry_timer_marks_the_last_attempt_at_the_maximum() {
    let timer = I::Timer(TimerKind::PaymentRetry);
    let history = then(retrying(), [timer.clone(), deferred(2)]);
    given::<Saga>(run(&history))
        .when(trigger(1, timer.clone()))
        .then([handled(1, timer, vec![charge(3, true)]).cancelling(TimerKind::PaymentRetry)]);
}

#[test]
fn retry_timer_that_is_no_longer_armed_charges_nothing() {
    let timer = I::Timer(TimerKind::PaymentRetry);
    // Fired already.
    given::<Saga>(run(&then(retrying(), [timer.clone()])))
        .when(trigger(1, timer.clone()))
        .then([handled(1, timer.clone(), vec![])]);
    // Never armed: the payment was not deferred.
    given::<Saga>(run(&charging()))
        .when(trigger(1, timer.clone()))
        .then([handled(1, timer, vec![])]);
}

#[test]
fn admin_retry_of_a_deferred_payment_charges_now_and_cancels_the_timer() {
    let retry = I::Payment(PE::PaymentRetryRequested {
        requested_by: "admin-1".to_string(),
    });
    let state = given::<Saga>(run(&retrying()))
        .when(trigger(1, retry.clone()))
        .then([handled(1, retry, vec![charge(2, false)]).cancelling(TimerKind::PaymentRetry)]);
    assert!(state.timers.is_empty());
}

#[test]
fn deferral_after_cancellation_records_nothing() {
    given::<Saga>(run(&then(charging(), [cancelled(0)])))
        .when(trigger(1, deferred(1)))
        .then([handled(1, deferred(1), vec![])]);
}

// ---- PaymentCompleted / PaymentFailed ----

#[test]
fn payment_completed_confirms_the_reservation() {
    let state = given::<Saga>(run(&charging()))
        .when(trigger(1, completed()))
        .then([handled(
            1,
            completed(),
            vec![SagaAction::Reservation(ReservationCommand::Confirm {
                payment_id: "pay-1".to_string(),
                amount: 300,
            })],
        )
        .arming_check_out()]);
    assert_eq!(state.stage, SagaStage::Confirmed);
    assert_eq!(
        state.payment,
        PaymentProgress::Completed {
            charge_ref: "ch_1".to_string(),
            amount: 300
        }
    );
}

#[test]
fn payment_completed_after_a_deferral_cancels_the_retry_timer() {
    let state = given::<Saga>(run(&retrying()))
        .when(trigger(1, completed()))
        .then([handled(
            1,
            completed(),
            vec![SagaAction::Reservation(ReservationCommand::Confirm {
                payment_id: "pay-1".to_string(),
                amount: 300,
            })],
        )
        .cancelling(TimerKind::PaymentRetry)
        .arming_check_out()]);
    assert_eq!(
        state.timers.keys().copied().collect::<Vec<_>>(),
        [TimerKind::CheckOut]
    );
}

#[test]
fn payment_failed_records_the_failure_and_frees_the_rooms() {
    let state = given::<Saga>(run(&retrying()))
        .when(trigger(1, payment_failed()))
        .then([handled(
            1,
            payment_failed(),
            vec![
                SagaAction::Reservation(ReservationCommand::RecordPaymentFailure {
                    reason: "declined".to_string(),
                }),
                withdraw("payment failed"),
            ],
        )
        .cancelling(TimerKind::PaymentRetry)]);
    assert_eq!(state.stage, SagaStage::PaymentFailed);
    assert!(state.is_finished());
}

// ---- ReservationCancelled at each stage ----

#[test]
fn cancellation_before_approval_only_withdraws() {
    let state = given::<Saga>(run(&awaiting_approval()))
        .when(trigger(1, cancelled(0)))
        .then([
            handled(1, cancelled(0), vec![withdraw("reservation cancelled")])
                .cancelling(TimerKind::ApprovalDeadline),
        ]);
    assert_eq!(state.stage, SagaStage::Cancelled);
    assert!(state.cancelled && state.is_finished() && state.timers.is_empty());
}

#[test]
fn cancellation_awaiting_payment_withdraws_and_voids() {
    given::<Saga>(run(&charging()))
        .when(trigger(1, cancelled(0)))
        .then([handled(
            1,
            cancelled(0),
            vec![withdraw("reservation cancelled"), void()],
        )]);
    let state = given::<Saga>(run(&retrying()))
        .when(trigger(1, cancelled(0)))
        .then([handled(
            1,
            cancelled(0),
            vec![withdraw("reservation cancelled"), void()],
        )
        .cancelling(TimerKind::PaymentRetry)]);
    assert!(state.timers.is_empty());
}

#[test]
fn cancellation_seen_before_payment_requested_voids_it_when_it_shows_up() {
    let state = given::<Saga>(run(&awaiting_payment()))
        .when(trigger(1, cancelled(0)))
        .then([handled(
            1,
            cancelled(0),
            vec![withdraw("reservation cancelled")],
        )]);
    let state = Given::<Saga>::with_state(state)
        .when(trigger(2, payment_requested()))
        .then([handled(2, payment_requested(), vec![void()])]);
    assert_eq!(
        state.charge_attempts, 0,
        "a cancelled reservation is never charged"
    );
    // Once voided, another sighting voids nothing more.
    let state = Saga::fold(state, &[handled(3, voided(), vec![])]);
    assert_eq!(state.payment, PaymentProgress::Voided);
    Given::<Saga>::with_state(state)
        .when(trigger(4, payment_requested()))
        .then([handled(4, payment_requested(), vec![])]);
}

#[test]
fn cancellation_of_a_confirmed_reservation_withdraws_and_refunds_the_charge() {
    let state = given::<Saga>(run(&confirmed()))
        .when(trigger(1, cancelled(300)))
        .then([handled(
            1,
            cancelled(300),
            vec![withdraw("reservation cancelled"), refund_charge()],
        )
        .cancelling(TimerKind::CheckOut)]);
    assert!(!state.is_finished(), "the refund is still to be recorded");
}

#[test]
fn cancellation_handled_twice_under_different_ids_acts_once() {
    given::<Saga>(run(&then(confirmed(), [cancelled(300)])))
        .when(trigger(1, cancelled(300)))
        .then([handled(1, cancelled(300), vec![])]);
}

#[test]
fn payment_completed_after_cancellation_is_refunded() {
    let history = then(charging(), [cancelled(0), voided()]);
    given::<Saga>(run(&history))
        .when(trigger(1, completed()))
        .then([handled(1, completed(), vec![refund_charge()])]);
}

#[test]
fn payment_refunded_is_recorded_on_the_reservation() {
    let history = then(confirmed(), [cancelled(300)]);
    let state = given::<Saga>(run(&history))
        .when(trigger(1, refunded()))
        .then([handled(
            1,
            refunded(),
            vec![SagaAction::Reservation(ReservationCommand::RecordRefund {
                amount: 300,
            })],
        )]);
    assert_eq!(state.payment, PaymentProgress::Refunded);
    assert!(state.is_finished());
}

#[test]
fn no_charge_after_cancellation() {
    let history = then(retrying(), [cancelled(0)]);
    let timer = I::Timer(TimerKind::PaymentRetry);
    given::<Saga>(run(&history))
        .when(trigger(1, timer.clone()))
        .then([handled(1, timer, vec![])]);
}

// ---- approval deadline ----

#[test]
fn approval_deadline_withdraws_and_expires_an_undecided_request() {
    let timer = I::Timer(TimerKind::ApprovalDeadline);
    let state = given::<Saga>(run(&awaiting_approval()))
        .when(trigger(1, timer.clone()))
        .at(at(2030, 6, 2, 10))
        .then([handled(
            1,
            timer,
            vec![
                withdraw("approval deadline passed"),
                SagaAction::Reservation(ReservationCommand::Expire),
            ],
        )]);
    assert_eq!(state.stage, SagaStage::Expired);
    assert!(
        state.timers.is_empty(),
        "the fired timer is no longer armed"
    );
    assert!(state.is_finished());
}

#[test]
fn approval_deadline_after_a_decision_or_cancellation_does_nothing() {
    let timer = I::Timer(TimerKind::ApprovalDeadline);
    for history in [
        awaiting_payment(),
        then(awaiting_approval(), [denied()]),
        then(awaiting_approval(), [cancelled(0)]),
        confirmed(),
    ] {
        let before = state_after(&history).stage;
        let state = given::<Saga>(run(&history))
            .when(trigger(1, timer.clone()))
            .then([handled(1, timer.clone(), vec![])]);
        assert_eq!(state.stage, before);
    }
}

#[test]
fn terminal_reservation_events_cancel_armed_timers() {
    let expired = I::Reservation(RE::ReservationExpired {});
    given::<Saga>(run(&awaiting_approval()))
        .when(trigger(1, expired.clone()))
        .then([handled(1, expired, vec![]).cancelling(TimerKind::ApprovalDeadline)]);
    let failed = I::Reservation(RE::ReservationPaymentFailed {
        reason: "declined".to_string(),
    });
    given::<Saga>(run(&retrying()))
        .when(trigger(1, failed.clone()))
        .then([handled(1, failed, vec![]).cancelling(TimerKind::PaymentRetry)]);
    let rejected = I::Reservation(RE::ReservationRejected {
        reason: "renovation".to_string(),
    });
    let state = given::<Saga>(run(&awaiting_approval()))
        .when(trigger(1, rejected.clone()))
        .then([handled(1, rejected, vec![]).cancelling(TimerKind::ApprovalDeadline)]);
    assert_eq!(state.stage, SagaStage::Rejected);
}

// ---- idempotency and the record ----

#[test]
fn a_trigger_handled_twice_decides_nothing() {
    let all = then(
        retrying(),
        [
            I::Timer(TimerKind::PaymentRetry),
            completed(),
            cancelled(300),
            refunded(),
        ],
    );
    let history = run(&all);
    for (n, input) in (1000..).zip(&all) {
        given::<Saga>(history.clone())
            .when(trigger(n, input.clone()))
            .then_nothing();
    }
}

#[test]
fn the_record_keeps_each_trigger_with_its_actions() {
    let state = state_after(&charging());
    assert_eq!(state.handled.len(), 3);
    assert_eq!(
        state.handled.get(&Uuid::from_u128(1002)),
        Some(&vec![charge(1, false)])
    );
}

#[test]
fn timers_armed_and_cancelled_are_recorded_in_state() {
    let armed = |timer, due_at| TimerArmed { timer, due_at };
    let (state, events) = run_from(SagaState::default(), &awaiting_approval());
    let deadline = armed(TimerKind::ApprovalDeadline, at(2030, 6, 2, 10));
    assert_eq!(timers_in(&events), (vec![deadline], vec![]));
    assert_eq!(
        state.timers.keys().copied().collect::<Vec<_>>(),
        [TimerKind::ApprovalDeadline]
    );
    let (state, events) = run_from(state, &[granted()]);
    assert_eq!(
        timers_in(&events),
        (vec![], vec![TimerKind::ApprovalDeadline])
    );
    assert!(state.timers.is_empty());
    let (state, events) = run_from(state, &[payment_requested(), deferred(1)]);
    let retry = armed(TimerKind::PaymentRetry, retry_at(1));
    assert_eq!(timers_in(&events), (vec![retry], vec![]));
    assert_eq!(
        state.timers.get(&TimerKind::PaymentRetry),
        Some(&retry_at(1))
    );
    let (state, events) = run_from(state, &[completed()]);
    assert_eq!(timers_in(&events).1, [TimerKind::PaymentRetry]);
    assert_eq!(
        state.timers.keys().copied().collect::<Vec<_>>(),
        [TimerKind::CheckOut]
    );
}

/// A stream written before version 4 records its timers as events of their own after each
/// trigger's record: they still arm and cancel, and the next trigger cancels what they armed.
#[test]
fn timers_recorded_as_events_of_their_own_still_count() {
    let deadline = at(2030, 6, 2, 10);
    let written_before = [
        handled(
            1,
            requested(),
            vec![lodging(LodgingCommand::RequestApproval {
                reservation_id: rid(),
                stay: details().stay(),
            })],
        ),
        SagaEvent::SagaTimerArmed {
            timer: TimerKind::ApprovalDeadline,
            due_at: deadline,
        },
    ];
    let given = given::<Saga>(written_before.clone());
    assert_eq!(
        given.state().timers.get(&TimerKind::ApprovalDeadline),
        Some(&deadline)
    );
    let state = given
        .when(trigger(2, granted()))
        .then([handled(2, granted(), on_grant()).cancelling(TimerKind::ApprovalDeadline)]);
    assert!(state.timers.is_empty());
    let mut cancelled_apart = written_before.to_vec();
    cancelled_apart.extend([
        handled(2, granted(), on_grant()),
        SagaEvent::SagaTimerCancelled {
            timer: TimerKind::ApprovalDeadline,
        },
    ]);
    assert_eq!(Saga::fold(SagaState::default(), &cancelled_apart), state);
}

/// Handle `inputs` from `state`, each under a fresh trigger id: the new state and what was recorded.
fn run_from(mut state: SagaState, inputs: &[SagaInput]) -> (SagaState, Vec<SagaEvent>) {
    let mut events = Vec::new();
    for input in inputs {
        let n = 2000 + state.handled.len() as u128;
        let decided = Saga::decide(&state, &trigger(n, input.clone()), default_now())
            .unwrap_or_else(|never| match never {});
        state = Saga::fold(state, &decided);
        events.extend(decided);
    }
    (state, events)
}

// ---- helpers, codec ----

#[test]
fn retry_delay_doubles_from_the_base_and_is_capped_at_an_hour() {
    let base = TimeDelta::seconds(2);
    assert_eq!(retry_delay(base, 0), TimeDelta::seconds(2));
    assert_eq!(retry_delay(base, 1), TimeDelta::seconds(2));
    assert_eq!(retry_delay(base, 2), TimeDelta::seconds(4));
    assert_eq!(retry_delay(base, 5), TimeDelta::seconds(32));
    assert_eq!(retry_delay(base, 20), TimeDelta::hours(1));
    assert_eq!(retry_delay(base, u32::MAX), TimeDelta::hours(1));
}

#[test]
fn default_policy_is_a_day_to_decide_and_eight_attempts() {
    let policy = SagaPolicy::default();
    assert_eq!(policy.approval_deadline, TimeDelta::hours(24));
    assert_eq!(policy.max_payment_attempts, 8);
}

#[test]
fn react_alone_gives_the_reaction_without_recording_it() {
    let state = state_after(&awaiting_approval());
    let reaction = react(&state, &granted(), &policy(), default_now());
    assert_eq!(reaction.cancel, [TimerKind::ApprovalDeadline]);
    assert!(reaction.arm.is_empty());
    assert_eq!(reaction.actions.len(), 2);
}

#[test]
fn stream_name_is_prefixed() {
    assert_eq!(Saga::stream_name("r1"), "saga-r1");
}

#[test]
fn every_saga_event_round_trips() {
    let events = run(&then(
        retrying(),
        [
            I::Timer(TimerKind::PaymentRetry),
            completed(),
            cancelled(300),
            refunded(),
        ],
    ));
    let types: BTreeSet<_> = events.iter().map(DomainEvent::event_type).collect();
    assert_eq!(types, BTreeSet::from(["SagaEventHandled"]));
    let (armed, cancelled) = timers_in(&events);
    assert!(!armed.is_empty() && !cancelled.is_empty(), "{events:?}");
    // The timers' own events, written before version 4, still read back.
    let written_before = [
        SagaEvent::SagaTimerArmed {
            timer: armed[0].timer,
            due_at: armed[0].due_at,
        },
        SagaEvent::SagaTimerCancelled {
            timer: cancelled[0],
        },
    ];
    for event in events.iter().chain(&written_before) {
        assert_round_trip(event);
    }
    let failed_flow = run(&then(charging(), [payment_failed()]));
    for event in &failed_flow {
        assert_round_trip(event);
    }
}

// ---- money path rules: only the gateway's answers use up attempts ----

fn exhausted() -> Vec<SagaInput> {
    // Three answered attempts (the policy's maximum): the last deferral waits for the admin.
    let timer = I::Timer(TimerKind::PaymentRetry);
    then(retrying(), [timer.clone(), deferred(2), timer, deferred(3)])
}

fn admin_retry() -> SagaInput {
    I::Payment(PE::PaymentRetryRequested {
        requested_by: "admin-1".to_string(),
    })
}

#[test]
fn an_open_circuit_deferral_does_not_use_up_an_attempt() {
    let timer = I::Timer(TimerKind::PaymentRetry);
    // Charged twice, but the second charge was refused by the open circuit: the payment still
    // counts one attempt (the deferral carries the payment's count, unchanged).
    let mut history = then(retrying(), [timer.clone(), deferred(1)]);
    for _ in 0..5 {
        history.extend([timer.clone(), deferred(1)]);
    }
    let state = state_after(&history);
    assert_eq!(state.charge_attempts, 1);
    assert!(!state.last_deferral_counted);
    given::<Saga>(run(&history))
        .when(trigger(1, timer.clone()))
        .then([handled(1, timer, vec![charge(2, false)]).cancelling(TimerKind::PaymentRetry)]);
}

#[test]
fn exhausted_attempts_wait_for_the_admin_then_fail_when_the_timer_fires() {
    let state = state_after(&exhausted());
    assert_eq!(state.stage, SagaStage::AwaitingPayment, "nights still held");
    assert!(state.last_deferral_counted);
    let timer = I::Timer(TimerKind::PaymentRetry);
    given::<Saga>(run(&exhausted()))
        .when(trigger(1, timer.clone()))
        .then([
            handled(
                1,
                timer,
                vec![SagaAction::Payment(PaymentCommand::Fail {
                    reason: "payment attempts exhausted (3 answered by the gateway) and not retried by the lodging's admin".to_string(),
                })],
            ).cancelling(TimerKind::PaymentRetry),
        ]);
}

#[test]
fn an_exhausted_payment_retried_by_the_admin_is_charged_once_more() {
    let state = given::<Saga>(run(&exhausted()))
        .when(trigger(1, admin_retry()))
        .then([
            handled(1, admin_retry(), vec![charge(4, true)]).cancelling(TimerKind::PaymentRetry)
        ]);
    assert!(state.timers.is_empty());
    // That retry met the open circuit: the next timer charges again instead of failing.
    let history = then(exhausted(), [admin_retry(), deferred(3)]);
    let timer = I::Timer(TimerKind::PaymentRetry);
    given::<Saga>(run(&history))
        .when(trigger(1, timer.clone()))
        .then([handled(1, timer, vec![charge(4, true)]).cancelling(TimerKind::PaymentRetry)]);
}

fn free_requested() -> SagaInput {
    I::Reservation(RE::ReservationRequested(ReservationRequested {
        total_amount: 0,
        ..details()
    }))
}

fn free_payment_requested() -> SagaInput {
    I::Payment(PE::PaymentRequested {
        reservation_id: rid(),
        amount: 0,
        currency: "EUR".to_string(),
    })
}

#[test]
fn a_zero_total_is_settled_without_the_gateway() {
    // A lodging registered with rate 0 before that was refused: its stays total 0.
    let settled = SagaAction::Payment(PaymentCommand::Complete {
        payment_id: format!("{NO_CHARGE_REF}-{}", rid()),
        gateway_ref: NO_CHARGE_REF.to_string(),
        amount: 0,
    });
    let state = given::<Saga>(run(&[free_requested(), granted()]))
        .when(trigger(1, free_payment_requested()))
        .then([handled(1, free_payment_requested(), vec![settled])]);
    assert_eq!(state.charge_attempts, 0, "nothing sent to the gateway");
    // Cancelled once confirmed: the refund of nothing is recorded, not sent to the gateway.
    let free_completed = I::Payment(PE::PaymentCompleted {
        payment_id: format!("{NO_CHARGE_REF}-{}", rid()),
        gateway_ref: NO_CHARGE_REF.to_string(),
        amount: 0,
    });
    let history = [
        free_requested(),
        granted(),
        free_payment_requested(),
        free_completed,
    ];
    given::<Saga>(run(&history))
        .when(trigger(1, cancelled(0)))
        .then([handled(
            1,
            cancelled(0),
            vec![
                withdraw("reservation cancelled"),
                SagaAction::Payment(PaymentCommand::Refund {
                    amount: 0,
                    gateway_ref: NO_CHARGE_REF.to_string(),
                }),
            ],
        )
        .cancelling(TimerKind::CheckOut)]);
}

#[path = "pay_first_tests.rs"]
mod pay_first;

#[path = "settlement_tests.rs"]
mod settlement;
