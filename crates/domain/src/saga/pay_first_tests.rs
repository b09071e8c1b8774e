//! Tests of the saga's `pay_first` rows: the desk held the nights, so the request is charged
//! first; once paid it reaches the desk; approve -> confirmed, reject -> refunded, deadline ->
//! refunded (or the charge under way voided); no room -> rejected before any charge.

use super::*;

fn held() -> SagaInput {
    I::Lodging(LE::NightsHeld {
        reservation_id: rid(),
    })
}

fn request_payment() -> SagaAction {
    SagaAction::Payment(PaymentCommand::Request {
        reservation_id: rid(),
        amount: 300,
        currency: "EUR".to_string(),
    })
}

/// Held and charging.
fn holding() -> Vec<SagaInput> {
    vec![requested(), held(), payment_requested()]
}

/// Paid, awaiting the lodging's decision.
fn paid() -> Vec<SagaInput> {
    then(holding(), [completed()])
}

fn on_deadline(settle: SagaAction) -> Vec<SagaAction> {
    vec![
        withdraw("approval deadline passed"),
        SagaAction::Reservation(ReservationCommand::Expire),
        settle,
    ]
}

#[test]
fn held_nights_request_the_payment_and_keep_the_deadline() {
    let state = given::<Saga>(run(&awaiting_approval()))
        .when(trigger(1, held()))
        .then([handled(1, held(), vec![request_payment()])]);
    assert!(state.pay_first);
    assert_eq!(state.stage, SagaStage::AwaitingPayment);
    assert!(state.timers.contains_key(&TimerKind::ApprovalDeadline));
}

#[test]
fn the_request_is_charged_once_like_any_other() {
    given::<Saga>(run(&[requested(), held()]))
        .when(trigger(1, payment_requested()))
        .then([handled(1, payment_requested(), vec![charge(1, false)])]);
}

#[test]
fn a_completed_payment_records_it_and_puts_the_request_on_the_desk() {
    let state = given::<Saga>(run(&holding()))
        .when(trigger(1, completed()))
        .then([handled(
            1,
            completed(),
            vec![
                SagaAction::Reservation(ReservationCommand::RecordPayment {
                    payment_id: "pay-1".to_string(),
                    amount: 300,
                }),
                lodging(LodgingCommand::MarkPaid {
                    reservation_id: rid(),
                }),
            ],
        )]);
    assert_eq!(state.stage, SagaStage::Paid);
    assert!(!state.is_finished());
}

#[test]
fn approval_of_a_paid_request_confirms_it() {
    let state = given::<Saga>(run(&paid()))
        .when(trigger(1, granted()))
        .then([handled(
            1,
            granted(),
            vec![SagaAction::Reservation(ReservationCommand::Confirm {
                payment_id: "pay-1".to_string(),
                amount: 300,
            })],
        )
        .cancelling(TimerKind::ApprovalDeadline)
        .arming_check_out()]);
    assert_eq!(state.stage, SagaStage::Confirmed);
}

#[test]
fn rejection_of_a_paid_request_refunds_it() {
    let state = given::<Saga>(run(&paid()))
        .when(trigger(1, denied()))
        .then([handled(
            1,
            denied(),
            vec![
                SagaAction::Reservation(ReservationCommand::Reject {
                    reason: "renovation".to_string(),
                }),
                refund_charge(),
            ],
        )
        .cancelling(TimerKind::ApprovalDeadline)]);
    assert_eq!(state.stage, SagaStage::Rejected);
    assert!(!state.is_finished(), "the refund is still to come");
    let refunded_state = Saga::fold(state, &run_from(&paid_then_denied(), refunded()));
    assert!(refunded_state.is_finished());
}

fn paid_then_denied() -> Vec<SagaInput> {
    then(paid(), [denied()])
}

/// The saga's events after `inputs` and then `last`, replayed from the start.
fn run_from(inputs: &[SagaInput], last: SagaInput) -> Vec<SagaEvent> {
    let all = then(inputs.to_vec(), [last]);
    let full = run(&all);
    let before = run(inputs).len();
    full[before..].to_vec()
}

#[test]
fn a_paid_request_undecided_at_the_deadline_expires_and_is_refunded() {
    let deadline = I::Timer(TimerKind::ApprovalDeadline);
    let state = given::<Saga>(run(&paid()))
        .when(trigger(1, deadline.clone()))
        .then([handled(1, deadline, on_deadline(refund_charge()))]);
    assert_eq!(state.stage, SagaStage::Expired);
}

#[test]
fn a_request_still_charging_at_the_deadline_expires_and_its_charge_is_voided_or_refunded() {
    let deadline = I::Timer(TimerKind::ApprovalDeadline);
    let retrying = then(holding(), [deferred(1)]);
    let state = given::<Saga>(run(&retrying))
        .when(trigger(1, deadline.clone()))
        .then([handled(
            1,
            deadline.clone(),
            on_deadline(SagaAction::Payment(PaymentCommand::Void {
                reason: "approval deadline passed".to_string(),
            })),
        )
        .cancelling(TimerKind::PaymentRetry)]);
    assert_eq!(state.stage, SagaStage::Expired);
    // The charge under way lands after all: it is refunded, never kept.
    given::<Saga>(run(&then(retrying, [deadline])))
        .when(trigger(2, completed()))
        .then([handled(2, completed(), vec![refund_charge()])]);
}

#[test]
fn a_request_with_no_room_is_rejected_and_never_charged() {
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
    assert!(!state.pay_first && state.payment == PaymentProgress::None);
    // A hold seen after the denial (it cannot follow one on the desk) charges nothing.
    given::<Saga>(run(&[requested(), denied()]))
        .when(trigger(2, held()))
        .then([handled(2, held(), vec![])]);
}

#[test]
fn a_paid_request_withdrawn_by_its_customer_is_refunded() {
    let state = given::<Saga>(run(&paid()))
        .when(trigger(1, cancelled(300)))
        .then([handled(
            1,
            cancelled(300),
            vec![withdraw("reservation cancelled"), refund_charge()],
        )
        .cancelling(TimerKind::ApprovalDeadline)]);
    assert!(state.cancelled);
}

#[test]
fn the_desk_and_reservation_echoes_are_not_triggers() {
    for echo in [
        I::Lodging(LE::RequestPaid {
            reservation_id: rid(),
        }),
        I::Reservation(RE::ReservationPaid {
            payment_id: "pay-1".to_string(),
            amount: 300,
        }),
    ] {
        assert!(!concerns(&echo), "{echo:?}");
        let before = state_after(&paid());
        let after = Saga::fold(before.clone(), &run_from(&paid(), echo.clone()));
        assert_eq!(
            (after.stage, after.payment.clone()),
            (before.stage, before.payment)
        );
    }
    assert!(concerns(&held()));
}

// ---- The end of a stay (any mode): the check-out timer ----

fn confirmed_stay() -> Vec<SagaInput> {
    then(paid(), [granted()])
}

#[test]
fn at_check_out_a_confirmed_stay_is_completed() {
    let check_out = I::Timer(TimerKind::CheckOut);
    let state = given::<Saga>(run(&confirmed_stay()))
        .when(trigger(1, check_out.clone()))
        .then([handled(
            1,
            check_out,
            vec![SagaAction::Reservation(ReservationCommand::Complete {
                completed_by: "check-out".to_string(),
            })],
        )]);
    assert_eq!(state.stage, SagaStage::Completed);
    assert!(state.timers.is_empty());
}

#[test]
fn completed_early_by_its_admin_the_timer_is_cancelled_and_fires_for_nothing() {
    let early = I::Reservation(RE::ReservationCompleted {
        completed_by: "admin-1".to_string(),
    });
    let state = given::<Saga>(run(&confirmed_stay()))
        .when(trigger(1, early.clone()))
        .then([handled(1, early, vec![schedule_payout()]).cancelling(TimerKind::CheckOut)]);
    assert_eq!(state.stage, SagaStage::Completed);
    let late = I::Timer(TimerKind::CheckOut);
    Given::<Saga>::with_state(state)
        .when(trigger(2, late.clone()))
        .then([handled(2, late, vec![])]);
}

#[test]
fn a_saga_record_of_a_request_before_time_zones_reads_as_the_wave_1_zone() {
    let record = handled(1, requested(), vec![]);
    let mut v2 = record.payload();
    v2["input"]["reservation"]["data"]
        .as_object_mut()
        .expect("the request's payload")
        .remove("timezone");
    let decoded = SagaEvent::decode("SagaEventHandled", 2, &v2).expect("upcast");
    assert_eq!(decoded, record, "details() is in the wave-1 zone");
}
