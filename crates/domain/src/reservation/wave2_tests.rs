//! Given/when/then tests of the wave-2 rules of a reservation: stays of several rooms (the amount,
//! the limits, repeats after the lodging's rate changed) and a confirmed stay cancelled by its lodging.

use super::*;
use crate::harness::{date, given};
use crate::DomainEvent;

type R = ReservationAggregate;

fn terms(nightly_rate: i64) -> LodgingTerms {
    LodgingTerms {
        lodging_id: "cafe-1".to_string(),
        nightly_rate,
        currency: "KRW".to_string(),
        max_guests: 1,
        rooms: 20,
        timezone: Tz::Asia__Seoul,
    }
}

fn seats(rooms: u32, guests: u32) -> Stay {
    Stay {
        check_in: date(2030, 6, 10),
        check_out: date(2030, 6, 12),
        guests,
        rooms,
    }
}

fn request(nightly_rate: i64, stay: Stay) -> ReservationCommand {
    ReservationCommand::Request {
        reservation_id: uuid::Uuid::from_u128(3),
        customer_id: "student-1".to_string(),
        lodging: terms(nightly_rate),
        stay,
    }
}

fn requested(rooms: u32, total_amount: i64) -> ReservationEvent {
    ReservationEvent::ReservationRequested(ReservationRequested {
        timezone: crate::WAVE1_TIMEZONE,
        reservation_id: uuid::Uuid::from_u128(3),
        customer_id: "student-1".to_string(),
        lodging_id: "cafe-1".to_string(),
        check_in: date(2030, 6, 10),
        check_out: date(2030, 6, 12),
        guests: rooms,
        rooms,
        nights: 2,
        total_amount,
        currency: "KRW".to_string(),
    })
}

#[test]
fn the_amount_is_nights_times_rate_times_rooms() {
    let state = given::<R>([])
        .when(request(5_000, seats(3, 3)))
        .then([requested(3, 30_000)]);
    assert_eq!(state.details.map(|d| d.stay()), Some(seats(3, 3)));
}

#[test]
fn rooms_are_at_least_one_and_at_most_the_lodgings() {
    given::<R>([])
        .when(request(5_000, seats(0, 1)))
        .then_err(ReservationError::InvalidStay(StayError::NoRooms));
    given::<R>([])
        .when(request(5_000, seats(21, 21)))
        .then_err(ReservationError::InvalidStay(StayError::TooManyRooms {
            rooms: 21,
            available: 20,
        }));
}

#[test]
fn guests_are_counted_per_room() {
    given::<R>([])
        .when(request(5_000, seats(2, 3)))
        .then_err(ReservationError::InvalidStay(StayError::TooManyGuests {
            guests: 3,
            rooms: 2,
            max_guests: 1,
        }));
}

#[test]
fn a_repeat_after_a_rate_change_keeps_the_first_amount() {
    given::<R>([requested(2, 20_000)])
        .when(request(9_000, seats(2, 2)))
        .then_nothing();
    given::<R>([requested(2, 20_000)])
        .when(request(5_000, seats(3, 3)))
        .then_err(ReservationError::AlreadyRequested);
}

#[test]
fn a_request_recorded_before_rooms_reads_as_one_room() {
    let event = requested(1, 10_000);
    let mut v1 = event.payload();
    v1.as_object_mut().expect("object").remove("rooms");
    assert_eq!(
        ReservationEvent::decode("ReservationRequested", 1, &v1),
        Ok(event)
    );
    assert!(ReservationEvent::decode("ReservationRequested", 2, &v1).is_err());
}

// ---- Cancelled by the lodging's admin ----

fn confirmed_history() -> Vec<ReservationEvent> {
    vec![
        requested(2, 20_000),
        ReservationEvent::ReservationApproved {
            approved_by: "admin:host".to_string(),
        },
        ReservationEvent::ReservationConfirmed {
            payment_id: "pay-1".to_string(),
            amount: 20_000,
        },
    ]
}

fn admin_cancel() -> ReservationCommand {
    ReservationCommand::CancelAsAdmin {
        cancelled_by: "admin:host".to_string(),
        reason: "burst pipe".to_string(),
    }
}

#[test]
fn its_admin_cancels_a_confirmed_stay_after_check_in_too_with_a_full_refund() {
    let state = given::<R>(confirmed_history())
        .when(admin_cancel())
        .at(crate::harness::at(2030, 6, 11, 3))
        .then([ReservationEvent::ReservationCancelled {
            cancelled_by: "admin:host".to_string(),
            reason: "burst pipe".to_string(),
            refund_due: 20_000,
        }]);
    assert_eq!(state.status, ReservationStatus::Cancelled);
}

#[test]
fn its_admin_cancels_only_a_confirmed_stay() {
    given::<R>([requested(2, 20_000)])
        .when(admin_cancel())
        .then_err(ReservationError::NotConfirmed(ReservationStatus::Requested));
    let mut cancelled = confirmed_history();
    cancelled.push(ReservationEvent::ReservationCancelled {
        cancelled_by: "customer:student-1".to_string(),
        reason: "sick".to_string(),
        refund_due: 20_000,
    });
    given::<R>(cancelled)
        .when(admin_cancel())
        .then_err(ReservationError::NotConfirmed(ReservationStatus::Cancelled));
}

// ---- pay_first: charged before its lodging decides ----

fn paid() -> ReservationEvent {
    ReservationEvent::ReservationPaid {
        payment_id: "pay-1".to_string(),
        amount: 30_000,
    }
}

#[test]
fn a_request_is_paid_before_its_lodging_decides() {
    let pending = ReservationCommand::RecordPaymentPending {
        reason: "gateway overloaded".to_string(),
        retry_at: crate::harness::at(2030, 6, 1, 11),
    };
    given::<R>([requested(3, 30_000)]).when(pending).then([
        ReservationEvent::ReservationPaymentPending {
            reason: "gateway overloaded".to_string(),
            retry_at: crate::harness::at(2030, 6, 1, 11),
        },
    ]);
    let record = ReservationCommand::RecordPayment {
        payment_id: "pay-1".to_string(),
        amount: 30_000,
    };
    let state = given::<R>([requested(3, 30_000)])
        .when(record.clone())
        .then([paid()]);
    assert_eq!(state.status, ReservationStatus::Paid);
    assert_eq!(state.paid_amount, Some(30_000));
    given::<R>([requested(3, 30_000), paid()])
        .when(record)
        .then_nothing();
}

#[test]
fn a_paid_request_is_confirmed_rejected_or_expired_by_its_lodging() {
    let confirm = ReservationCommand::Confirm {
        payment_id: "pay-1".to_string(),
        amount: 30_000,
    };
    given::<R>([requested(3, 30_000), paid()])
        .when(confirm)
        .then([ReservationEvent::ReservationConfirmed {
            payment_id: "pay-1".to_string(),
            amount: 30_000,
        }]);
    let reject = ReservationCommand::Reject {
        reason: "closed for a wedding".to_string(),
    };
    given::<R>([requested(3, 30_000), paid()])
        .when(reject)
        .then([ReservationEvent::ReservationRejected {
            reason: "closed for a wedding".to_string(),
        }]);
    given::<R>([requested(3, 30_000), paid()])
        .when(ReservationCommand::Expire)
        .then([ReservationEvent::ReservationExpired {}]);
}

#[test]
fn a_paid_request_ended_unconfirmed_records_its_refund_once() {
    let refund = ReservationCommand::RecordRefund { amount: 30_000 };
    let rejected = ReservationEvent::ReservationRejected {
        reason: "closed".to_string(),
    };
    for ended in [rejected, ReservationEvent::ReservationExpired {}] {
        let history = [requested(3, 30_000), paid(), ended];
        given::<R>(history.clone())
            .when(refund.clone())
            .then([ReservationEvent::ReservationRefunded { amount: 30_000 }]);
        let mut refunded = history.to_vec();
        refunded.push(ReservationEvent::ReservationRefunded { amount: 30_000 });
        given::<R>(refunded).when(refund.clone()).then_nothing();
    }
}

#[test]
fn a_paid_request_withdrawn_by_its_customer_is_due_back_in_full() {
    given::<R>([requested(3, 30_000), paid()])
        .when(ReservationCommand::Cancel {
            cancelled_by: "student-1".to_string(),
            reason: "plans changed".to_string(),
            timezone: Tz::Asia__Seoul,
        })
        .at(crate::harness::at(2030, 6, 10, 3))
        .then([ReservationEvent::ReservationCancelled {
            cancelled_by: "student-1".to_string(),
            reason: "plans changed".to_string(),
            refund_due: 30_000,
        }]);
}
