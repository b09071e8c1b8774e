//! Tests of the saga's settlement rows: a completed stay schedules its one payout of what was paid,
//! sends it, retries it on deferrals (an open circuit's refusal uses up no attempt), fails it once
//! the attempts are used up, and sends it again when the platform admin asks.

use super::*;
use crate::payout::{PayoutCommand, PayoutEvent};

use PayoutEvent as PO;

fn stay_completed() -> SagaInput {
    I::Reservation(RE::ReservationCompleted {
        completed_by: "check-out".to_string(),
    })
}

fn scheduled() -> SagaInput {
    I::Payout(PO::PayoutScheduled {
        reservation_id: rid(),
        lodging_id: "lodging-1".to_string(),
        host_id: "host-1".to_string(),
        gross: 300,
        fee_bps: 1_000,
        fee: 30,
        net: 270,
        currency: "EUR".to_string(),
    })
}

fn payout_deferred(attempt: u32) -> SagaInput {
    I::Payout(PO::PayoutDeferred {
        reason: "503".to_string(),
        attempt,
        retry_at: retry_at(attempt),
    })
}

fn pay_out(attempt: u32) -> SagaAction {
    SagaAction::PayOut { attempt }
}

/// Completed, its payout scheduled and sent once (attempt 1 under way).
fn paying_out() -> Vec<SagaInput> {
    then(confirmed(), [stay_completed(), scheduled()])
}

#[test]
fn a_completed_stay_schedules_its_payout_of_what_was_paid() {
    let state = given::<Saga>(run(&confirmed()))
        .when(trigger(1, stay_completed()))
        .then([
            handled(1, stay_completed(), vec![schedule_payout()]).cancelling(TimerKind::CheckOut)
        ]);
    assert_eq!(state.payout, PayoutProgress::Requested);
}

#[test]
fn a_stay_completed_by_its_timer_schedules_its_payout_when_the_completion_is_seen() {
    let fired = I::Timer(TimerKind::CheckOut);
    let given_fired = run(&then(confirmed(), [fired]));
    given::<Saga>(given_fired)
        .when(trigger(1, stay_completed()))
        .then([handled(1, stay_completed(), vec![schedule_payout()])]);
}

#[test]
fn a_refunded_or_never_paid_stay_is_never_paid_out() {
    // A zero-total stay is paid (0); a stay whose payment was refunded has nothing to pay out.
    let refunded_first = then(confirmed(), [refunded()]);
    given::<Saga>(run(&refunded_first))
        .when(trigger(1, stay_completed()))
        .then([handled(1, stay_completed(), vec![]).cancelling(TimerKind::CheckOut)]);
    given::<Saga>(run(&awaiting_approval()))
        .when(trigger(1, stay_completed()))
        .then([handled(1, stay_completed(), vec![])]);
}

#[test]
fn a_second_completion_schedules_nothing_more() {
    let again = I::Reservation(RE::ReservationCompleted {
        completed_by: "admin-1".to_string(),
    });
    given::<Saga>(run(&then(confirmed(), [stay_completed()])))
        .when(trigger(1, again.clone()))
        .then([handled(1, again, vec![])]);
}

#[test]
fn a_scheduled_payout_is_sent() {
    given::<Saga>(run(&then(confirmed(), [stay_completed()])))
        .when(trigger(1, scheduled()))
        .then([handled(1, scheduled(), vec![pay_out(1)])]);
}

#[test]
fn a_deferred_payout_is_retried_when_its_timer_fires() {
    let state = given::<Saga>(run(&paying_out()))
        .when(trigger(1, payout_deferred(1)))
        .then([handled(1, payout_deferred(1), vec![]).arming(TimerKind::PayoutRetry, retry_at(1))]);
    assert_eq!(
        (state.payout, state.payout_attempts),
        (PayoutProgress::Deferred, 1)
    );
    let fired = I::Timer(TimerKind::PayoutRetry);
    Given::<Saga>::with_state(state)
        .when(trigger(2, fired.clone()))
        .then([handled(2, fired, vec![pay_out(2)])]);
}

#[test]
fn an_open_circuit_uses_up_no_payout_attempt() {
    // Attempts used up but for the last; the circuit then refuses again and again (attempt stays 2).
    let history = then(paying_out(), [payout_deferred(1), payout_deferred(2)]);
    let mut state = state_after(&history);
    for n in 1..=5 {
        let refused = payout_deferred(2);
        state = Given::<Saga>::with_state(state)
            .when(trigger(n, refused.clone()))
            .then([handled(n, refused, vec![]).arming(TimerKind::PayoutRetry, retry_at(2))]);
    }
    assert_eq!(state.payout_attempts, 2);
}

#[test]
fn a_payout_fails_once_its_attempts_are_used_up() {
    // policy(): three attempts.
    let history = then(paying_out(), [payout_deferred(1), payout_deferred(2)]);
    let state = given::<Saga>(run(&history))
        .when(trigger(1, payout_deferred(3)))
        .then([
            handled(
                1,
                payout_deferred(3),
                vec![SagaAction::Payout(PayoutCommand::Fail {
                    reason: "payout attempts exhausted (3 answered by the gateway); the platform admin may retry it".to_string(),
                })],
            ).cancelling(TimerKind::PayoutRetry),
        ]);
    assert!(state.timers.is_empty());
}

#[test]
fn the_platform_admin_s_retry_sends_it_again_with_a_fresh_round_of_attempts() {
    let failed = I::Payout(PO::PayoutFailed {
        reason: "exhausted".to_string(),
    });
    let retry = I::Payout(PO::PayoutRetryRequested {
        requested_by: "platform".to_string(),
    });
    let history = then(
        paying_out(),
        [
            payout_deferred(1),
            payout_deferred(2),
            payout_deferred(3),
            failed,
        ],
    );
    let state = given::<Saga>(run(&history))
        .when(trigger(1, retry.clone()))
        .then([handled(1, retry, vec![pay_out(4)])]);
    assert_eq!(state.payout_round_start, 3);
    // The fourth attempt deferred is the first of the new round: retried, not failed.
    Given::<Saga>::with_state(state)
        .when(trigger(2, payout_deferred(4)))
        .then([handled(2, payout_deferred(4), vec![]).arming(TimerKind::PayoutRetry, retry_at(4))]);
}

#[test]
fn a_sent_payout_cancels_its_retry_and_a_late_timer_sends_nothing() {
    let sent = I::Payout(PO::PayoutSent {
        gateway_ref: "po_1".to_string(),
    });
    let state = given::<Saga>(run(&then(paying_out(), [payout_deferred(1)])))
        .when(trigger(1, sent.clone()))
        .then([handled(1, sent, vec![]).cancelling(TimerKind::PayoutRetry)]);
    assert_eq!(state.payout, PayoutProgress::Sent);
    let late = I::Timer(TimerKind::PayoutRetry);
    Given::<Saga>::with_state(state)
        .when(trigger(2, late.clone()))
        .then([handled(2, late, vec![])]);
}

#[test]
fn payout_actions_and_inputs_round_trip() {
    let record = handled(
        1,
        scheduled(),
        vec![
            schedule_payout(),
            pay_out(2),
            SagaAction::Payout(PayoutCommand::Fail {
                reason: "no".to_string(),
            }),
        ],
    );
    assert_round_trip(&record);
}
