//! Given/when/then tests of every Payment command path.

use std::collections::BTreeSet;

use super::*;
use crate::harness::{assert_round_trip, at, given};
use crate::DomainEvent;

type P = PaymentAggregate;
use PaymentCommand as C;
use PaymentEvent as E;
use PaymentStatus as S;

fn rid() -> ReservationId {
    uuid::Uuid::from_u128(42)
}

fn request_cmd(amount: i64) -> PaymentCommand {
    C::Request {
        reservation_id: rid(),
        amount,
        currency: "EUR".to_string(),
    }
}

fn requested() -> PaymentEvent {
    E::PaymentRequested {
        reservation_id: rid(),
        amount: 300,
        currency: "EUR".to_string(),
    }
}

fn defer_cmd(hour: u32) -> PaymentCommand {
    C::Defer {
        reason: "circuit open".to_string(),
        retry_at: at(2030, 6, 1, hour),
    }
}

fn deferred(attempt: u32, hour: u32) -> PaymentEvent {
    E::PaymentDeferred {
        reason: "circuit open".to_string(),
        attempt,
        retry_at: at(2030, 6, 1, hour),
    }
}

fn complete_cmd() -> PaymentCommand {
    C::Complete {
        payment_id: "pay-1".to_string(),
        gateway_ref: "ch_1".to_string(),
        amount: 300,
    }
}

fn completed() -> PaymentEvent {
    E::PaymentCompleted {
        payment_id: "pay-1".to_string(),
        gateway_ref: "ch_1".to_string(),
        amount: 300,
    }
}

fn fail_cmd() -> PaymentCommand {
    C::Fail {
        reason: "declined".to_string(),
    }
}

fn failed() -> PaymentEvent {
    E::PaymentFailed {
        reason: "declined".to_string(),
    }
}

fn refund_cmd() -> PaymentCommand {
    C::Refund {
        amount: 300,
        gateway_ref: "re_1".to_string(),
    }
}

fn refunded() -> PaymentEvent {
    E::PaymentRefunded {
        amount: 300,
        gateway_ref: "re_1".to_string(),
    }
}

fn void_cmd() -> PaymentCommand {
    C::Void {
        reason: "reservation cancelled".to_string(),
    }
}

fn voided() -> PaymentEvent {
    E::PaymentVoided {
        reason: "reservation cancelled".to_string(),
    }
}

fn retry_cmd() -> PaymentCommand {
    C::RetryNow {
        requested_by: "admin-1".to_string(),
    }
}

fn retry_requested() -> PaymentEvent {
    E::PaymentRetryRequested {
        requested_by: "admin-1".to_string(),
    }
}

/// Histories ending in each status after `None`.
fn open_histories() -> [Vec<PaymentEvent>; 2] {
    [vec![requested()], vec![requested(), deferred(1, 11)]]
}

fn closed_histories() -> [(Vec<PaymentEvent>, PaymentStatus); 4] {
    [
        (vec![requested(), completed()], S::Completed),
        (vec![requested(), failed()], S::Failed),
        (vec![requested(), completed(), refunded()], S::Refunded),
        (vec![requested(), voided()], S::Voided),
    ]
}

// ---- Request ----

#[test]
fn request_opens_the_payment() {
    let state = given::<P>([]).when(request_cmd(300)).then([requested()]);
    assert_eq!(state.status, S::Requested);
    assert_eq!(
        (state.reservation_id, state.amount, state.currency.as_str()),
        (Some(rid()), 300, "EUR")
    );
}

#[test]
fn request_of_a_free_stay_is_accepted() {
    given::<P>([])
        .when(request_cmd(0))
        .then([E::PaymentRequested {
            reservation_id: rid(),
            amount: 0,
            currency: "EUR".to_string(),
        }]);
}

#[test]
fn request_of_a_negative_amount_is_rejected() {
    given::<P>([])
        .when(request_cmd(-1))
        .then_err(PaymentError::NegativeAmount);
}

#[test]
fn request_replayed_in_any_later_status_is_a_no_op() {
    for history in open_histories() {
        given::<P>(history).when(request_cmd(300)).then_nothing();
    }
    for (history, _) in closed_histories() {
        given::<P>(history).when(request_cmd(300)).then_nothing();
    }
}

#[test]
fn every_other_command_before_a_request_is_rejected() {
    for command in [
        defer_cmd(11),
        complete_cmd(),
        fail_cmd(),
        refund_cmd(),
        void_cmd(),
        retry_cmd(),
    ] {
        given::<P>([])
            .when(command)
            .then_err(PaymentError::NotRequested);
    }
}

// ---- Defer ----

#[test]
fn defer_counts_attempts_and_keeps_the_retry_time() {
    let state = given::<P>([requested()])
        .when(defer_cmd(11))
        .then([deferred(1, 11)]);
    assert_eq!(
        (state.status, state.attempts, state.retry_at),
        (S::Deferred, 1, Some(at(2030, 6, 1, 11)))
    );
    let state = given::<P>([requested(), deferred(1, 11)])
        .when(defer_cmd(12))
        .then([deferred(2, 12)]);
    assert_eq!(state.attempts, 2);
}

#[test]
fn defer_of_a_closed_payment_is_a_no_op() {
    for (history, _) in closed_histories() {
        given::<P>(history.clone())
            .when(defer_cmd(11))
            .then_nothing();
        given::<P>(history)
            .when(defer_uncounted_cmd(11))
            .then_nothing();
    }
}

fn defer_uncounted_cmd(hour: u32) -> PaymentCommand {
    C::DeferUncounted {
        reason: "circuit open".to_string(),
        retry_at: at(2030, 6, 1, hour),
    }
}

#[test]
fn an_open_circuit_defers_without_using_up_an_attempt() {
    // Refused by the open circuit before the gateway ever answered: still no attempt used.
    let state = given::<P>([requested()])
        .when(defer_uncounted_cmd(11))
        .then([deferred(0, 11)]);
    assert_eq!(
        (state.status, state.attempts, state.retry_at),
        (S::Deferred, 0, Some(at(2030, 6, 1, 11)))
    );
    // After two answered attempts, any number of open-circuit deferrals keep the count at two.
    let mut history = vec![requested(), deferred(1, 11), deferred(2, 12)];
    for hour in 13..20 {
        let state = given::<P>(history.clone())
            .when(defer_uncounted_cmd(hour))
            .then([deferred(2, hour)]);
        assert_eq!(state.attempts, 2);
        history.push(deferred(2, hour));
    }
    // The next answered error is the third attempt.
    given::<P>(history)
        .when(defer_cmd(21))
        .then([deferred(3, 21)]);
}

// ---- Complete ----

#[test]
fn complete_records_the_charge_of_an_open_payment() {
    for history in open_histories() {
        let state = given::<P>(history).when(complete_cmd()).then([completed()]);
        assert_eq!(state.status, S::Completed);
        assert_eq!(state.payment_id.as_deref(), Some("pay-1"));
        assert_eq!(state.charge_ref.as_deref(), Some("ch_1"));
        assert_eq!(state.retry_at, None);
    }
}

#[test]
fn complete_after_a_void_is_still_recorded_so_it_can_be_refunded() {
    let state = given::<P>([requested(), voided()])
        .when(complete_cmd())
        .then([completed()]);
    assert_eq!(state.status, S::Completed);
}

#[test]
fn complete_replayed_or_after_failure_or_refund_is_a_no_op() {
    for history in [
        vec![requested(), completed()],
        vec![requested(), failed()],
        vec![requested(), completed(), refunded()],
    ] {
        given::<P>(history).when(complete_cmd()).then_nothing();
    }
}

// ---- Fail ----

#[test]
fn fail_closes_an_open_payment() {
    for history in open_histories() {
        let state = given::<P>(history).when(fail_cmd()).then([failed()]);
        assert_eq!(state.status, S::Failed);
    }
}

#[test]
fn fail_of_a_closed_payment_is_a_no_op() {
    for (history, _) in closed_histories() {
        given::<P>(history).when(fail_cmd()).then_nothing();
    }
}

// ---- Refund ----

#[test]
fn refund_of_a_completed_payment_is_recorded_once() {
    let state = given::<P>([requested(), completed()])
        .when(refund_cmd())
        .then([refunded()]);
    assert_eq!(
        (state.status, state.refunded_amount),
        (S::Refunded, Some(300))
    );
    given::<P>([requested(), completed(), refunded()])
        .when(refund_cmd())
        .then_nothing();
}

#[test]
fn refund_of_a_payment_never_taken_is_a_no_op() {
    for history in open_histories() {
        given::<P>(history).when(refund_cmd()).then_nothing();
    }
    for history in [vec![requested(), failed()], vec![requested(), voided()]] {
        given::<P>(history).when(refund_cmd()).then_nothing();
    }
}

// ---- Void ----

#[test]
fn void_closes_an_open_payment() {
    for history in open_histories() {
        let state = given::<P>(history).when(void_cmd()).then([voided()]);
        assert_eq!(state.status, S::Voided);
    }
}

#[test]
fn void_of_a_closed_payment_is_a_no_op() {
    for (history, _) in closed_histories() {
        given::<P>(history).when(void_cmd()).then_nothing();
    }
}

// ---- RetryNow ----

#[test]
fn retry_now_of_a_deferred_payment_clears_the_retry_time() {
    let state = given::<P>([requested(), deferred(1, 11)])
        .when(retry_cmd())
        .then([retry_requested()]);
    assert_eq!((state.status, state.retry_at), (S::Deferred, None));
    // Asked again before the gateway answered: one attempt at a time.
    given::<P>([requested(), deferred(1, 11), retry_requested()])
        .when(retry_cmd())
        .then_err(PaymentError::RetryUnderWay);
    // Deferred again after that attempt: an admin may ask again.
    given::<P>([
        requested(),
        deferred(1, 11),
        retry_requested(),
        deferred(2, 12),
    ])
    .when(retry_cmd())
    .then([retry_requested()]);
}

#[test]
fn retry_now_of_a_payment_that_is_not_deferred_is_rejected() {
    given::<P>([requested()])
        .when(retry_cmd())
        .then_err(PaymentError::NotDeferred);
    for (history, _) in closed_histories() {
        given::<P>(history)
            .when(retry_cmd())
            .then_err(PaymentError::NotDeferred);
    }
}

// ---- evolve and codec ----

#[test]
fn every_history_folds_to_its_status() {
    for (history, status) in closed_histories() {
        assert_eq!(P::fold(Payment::default(), &history).status, status);
    }
    assert_eq!(Payment::default().status, S::None);
}

#[test]
fn stream_name_is_prefixed() {
    assert_eq!(P::stream_name("r1"), "payment-r1");
}

#[test]
fn every_payment_event_round_trips() {
    let events = [
        requested(),
        deferred(3, 11),
        completed(),
        failed(),
        refunded(),
        voided(),
        retry_requested(),
    ];
    let types: BTreeSet<_> = events.iter().map(DomainEvent::event_type).collect();
    assert_eq!(types.len(), 7, "one of each event type");
    for event in &events {
        assert_round_trip(event);
    }
}
