//! [`concerns`](super::concerns) must only leave out inputs that [`react`](super::react) ignores in
//! every stage (moved here from the saga runner, which asks `concerns` before recording an event).

use chrono::{NaiveDate, TimeDelta, Utc};
use uuid::Uuid;

use super::concerns as has_a_saga_row;
use crate::lodging::LodgingEvent;
use crate::payment::PaymentEvent;
use crate::reservation::{ReservationEvent, ReservationRequested};
use crate::saga::{ReservationSaga, SagaEvent, SagaInput, SagaPolicy, SagaState, SagaTrigger};
use crate::Aggregate;

fn requested(rid: Uuid) -> ReservationRequested {
    let check_in = NaiveDate::from_ymd_opt(2099, 5, 1).expect("valid date");
    ReservationRequested {
        timezone: crate::WAVE1_TIMEZONE,
        rooms: 1,
        reservation_id: rid,
        customer_id: "c".into(),
        lodging_id: "l".into(),
        check_in,
        check_out: check_in + TimeDelta::days(2),
        guests: 1,
        nights: 2,
        total_amount: 100,
        currency: "KRW".into(),
    }
}

fn handle(state: SagaState, n: u128, input: SagaInput) -> SagaState {
    let trigger = SagaTrigger {
        trigger_id: Uuid::from_u128(n),
        input,
        policy: SagaPolicy::default(),
    };
    let events = ReservationSaga::decide(&state, &trigger, Utc::now()).expect("saga decides");
    ReservationSaga::fold(state, &events)
}

/// The saga in each of its stages, along a flow that goes through all of them.
fn every_stage(rid: Uuid) -> Vec<SagaState> {
    let retry_at = Utc::now();
    let flow = [
        SagaInput::Reservation(ReservationEvent::ReservationRequested(requested(rid))),
        SagaInput::Lodging(LodgingEvent::ApprovalGranted {
            reservation_id: rid,
            granted_by: "a".into(),
        }),
        SagaInput::Payment(PaymentEvent::PaymentRequested {
            reservation_id: rid,
            amount: 100,
            currency: "KRW".into(),
        }),
        SagaInput::Payment(PaymentEvent::PaymentDeferred {
            reason: "503".into(),
            attempt: 1,
            retry_at,
        }),
        SagaInput::Payment(PaymentEvent::PaymentCompleted {
            payment_id: "p".into(),
            gateway_ref: "ch".into(),
            amount: 100,
        }),
        SagaInput::Reservation(ReservationEvent::ReservationCancelled {
            cancelled_by: "c".into(),
            reason: "r".into(),
            refund_due: 100,
        }),
        SagaInput::Payment(PaymentEvent::PaymentRefunded {
            amount: 100,
            gateway_ref: "re".into(),
        }),
    ];
    let mut states = vec![SagaState::default()];
    for (n, input) in (1..).zip(flow) {
        let next = handle(states.last().cloned().unwrap_or_default(), n, input);
        states.push(next);
    }
    states
}

#[test]
fn inputs_left_out_change_nothing_in_any_stage() {
    let rid = Uuid::from_u128(77);
    let left_out = [
        SagaInput::Reservation(ReservationEvent::ReservationApproved {
            approved_by: "a".into(),
        }),
        SagaInput::Reservation(ReservationEvent::ReservationPaymentPending {
            reason: "r".into(),
            retry_at: Utc::now(),
        }),
        SagaInput::Reservation(ReservationEvent::ReservationConfirmed {
            payment_id: "p".into(),
            amount: 100,
        }),
        SagaInput::Reservation(ReservationEvent::ReservationRefunded { amount: 100 }),
        SagaInput::Lodging(LodgingEvent::ApprovalRequested {
            rooms: 1,
            reservation_id: rid,
            check_in: requested(rid).check_in,
            check_out: requested(rid).check_out,
            guests: 1,
        }),
        SagaInput::Lodging(LodgingEvent::ApprovalWithdrawn {
            reservation_id: rid,
            reason: "r".into(),
        }),
    ];
    for input in left_out {
        assert!(!has_a_saga_row(&input), "{input:?}");
        for state in every_stage(rid) {
            let trigger = SagaTrigger {
                trigger_id: Uuid::from_u128(999),
                input: input.clone(),
                policy: SagaPolicy::default(),
            };
            let events = ReservationSaga::decide(&state, &trigger, Utc::now()).expect("decides");
            assert!(
                matches!(events.as_slice(), [SagaEvent::SagaEventHandled { actions, .. }] if actions.is_empty()),
                "{input:?} in {:?}: {events:?}",
                state.stage
            );
            let mut after = ReservationSaga::fold(state.clone(), &events);
            after.handled.remove(&trigger.trigger_id);
            assert_eq!(after, state, "{input:?} changes the saga state");
        }
    }
    let granted = SagaInput::Lodging(LodgingEvent::ApprovalGranted {
        reservation_id: rid,
        granted_by: "a".into(),
    });
    assert!(has_a_saga_row(&granted));
}
