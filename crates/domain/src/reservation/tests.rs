//! Given/when/then tests of every Reservation command path.

use super::*;
use crate::harness::{assert_round_trip, at, at_hm, date, default_now, given};
use crate::stay::MAX_NIGHTS;
use crate::DecodeError;
use crate::DomainEvent;

type R = ReservationAggregate;
use ReservationCommand as C;
use ReservationEvent as E;
use ReservationStatus as S;

fn id() -> ReservationId {
    uuid::Uuid::from_u128(0x5eed)
}

fn terms() -> LodgingTerms {
    LodgingTerms {
        lodging_id: "lodging-1".to_string(),
        nightly_rate: 100,
        currency: "EUR".to_string(),
        max_guests: 2,
        rooms: 3,
        timezone: Tz::UTC,
    }
}

/// Three nights from 2030-06-10, ten days after [`default_now`].
fn stay() -> Stay {
    Stay {
        rooms: 1,
        check_in: date(2030, 6, 10),
        check_out: date(2030, 6, 13),
        guests: 2,
    }
}

fn request_cmd(stay: Stay) -> ReservationCommand {
    C::Request {
        reservation_id: id(),
        customer_id: "customer-1".to_string(),
        lodging: terms(),
        stay,
    }
}

fn requested() -> ReservationEvent {
    E::ReservationRequested(ReservationRequested {
        timezone: Tz::UTC,
        rooms: 1,
        reservation_id: id(),
        customer_id: "customer-1".to_string(),
        lodging_id: "lodging-1".to_string(),
        check_in: date(2030, 6, 10),
        check_out: date(2030, 6, 13),
        guests: 2,
        nights: 3,
        total_amount: 300,
        currency: "EUR".to_string(),
    })
}

/// The details of [`requested`].
fn requested_details() -> ReservationRequested {
    match requested() {
        E::ReservationRequested(details) => details,
        _ => unreachable!("requested() is a ReservationRequested"),
    }
}

fn approved() -> ReservationEvent {
    E::ReservationApproved {
        approved_by: "admin-1".to_string(),
    }
}

fn pending(hour: u32) -> ReservationEvent {
    E::ReservationPaymentPending {
        reason: "gateway overloaded".to_string(),
        retry_at: at(2030, 6, 1, hour),
    }
}

fn confirmed() -> ReservationEvent {
    E::ReservationConfirmed {
        payment_id: "pay-1".to_string(),
        amount: 300,
    }
}

fn cancelled(refund_due: i64) -> ReservationEvent {
    E::ReservationCancelled {
        cancelled_by: "customer-1".to_string(),
        reason: "plans changed".to_string(),
        refund_due,
    }
}

fn cancel_cmd() -> ReservationCommand {
    cancel_in(Tz::UTC)
}

/// A cancel of a lodging in `timezone`.
fn cancel_in(timezone: Tz) -> ReservationCommand {
    C::Cancel {
        cancelled_by: "customer-1".to_string(),
        reason: "plans changed".to_string(),
        timezone,
    }
}

/// A request for a stay from 2030-06-09 (one night) at a lodging in `timezone`.
fn request_on_the_9th_in(timezone: Tz) -> ReservationCommand {
    C::Request {
        reservation_id: id(),
        customer_id: "customer-1".to_string(),
        lodging: LodgingTerms {
            timezone,
            ..terms()
        },
        stay: with_stay(date(2030, 6, 9), date(2030, 6, 10), 1),
    }
}

fn rejected() -> ReservationEvent {
    E::ReservationRejected {
        reason: "no room".to_string(),
    }
}

fn payment_failed() -> ReservationEvent {
    E::ReservationPaymentFailed {
        reason: "declined".to_string(),
    }
}

fn with_stay(check_in: NaiveDate, check_out: NaiveDate, guests: u32) -> Stay {
    Stay {
        rooms: 1,
        check_in,
        check_out,
        guests,
    }
}

// ---- Request ----

#[test]
fn request_records_the_stay_with_nights_and_total() {
    let state = given::<R>([]).when(request_cmd(stay())).then([requested()]);
    assert_eq!(state.status, S::Requested);
    assert_eq!(state.details.map(|d| d.total_amount), Some(300));
}

#[test]
fn request_replayed_with_the_same_details_is_a_no_op_even_after_check_in() {
    given::<R>([requested()])
        .when(request_cmd(stay()))
        .then_nothing();
    given::<R>([requested(), approved()])
        .when(request_cmd(stay()))
        .at(at(2030, 7, 1, 0))
        .then_nothing();
}

#[test]
fn request_with_other_details_for_an_existing_reservation_is_rejected() {
    let other = with_stay(date(2030, 6, 10), date(2030, 6, 12), 2);
    given::<R>([requested()])
        .when(request_cmd(other))
        .then_err(ReservationError::AlreadyRequested);
}

#[test]
fn request_with_check_out_not_after_check_in_is_rejected() {
    for check_out in [date(2030, 6, 10), date(2030, 6, 9)] {
        given::<R>([])
            .when(request_cmd(with_stay(date(2030, 6, 10), check_out, 1)))
            .then_err(ReservationError::InvalidStay(
                StayError::CheckOutNotAfterCheckIn {
                    check_in: date(2030, 6, 10),
                    check_out,
                },
            ));
    }
}

#[test]
fn request_of_more_than_thirty_nights_is_rejected_and_thirty_is_accepted() {
    let check_in = date(2030, 6, 10);
    let thirty = with_stay(check_in, date(2030, 7, 10), 1);
    assert_eq!(thirty.nights(), MAX_NIGHTS);
    let state = given::<R>([])
        .when(request_cmd(thirty))
        .then([E::ReservationRequested(ReservationRequested {
            timezone: Tz::UTC,
            rooms: 1,
            reservation_id: id(),
            customer_id: "customer-1".to_string(),
            lodging_id: "lodging-1".to_string(),
            check_in,
            check_out: date(2030, 7, 10),
            guests: 1,
            nights: 30,
            total_amount: 3000,
            currency: "EUR".to_string(),
        })]);
    assert_eq!(state.status, S::Requested);
    given::<R>([])
        .when(request_cmd(with_stay(check_in, date(2030, 7, 11), 1)))
        .then_err(ReservationError::InvalidStay(StayError::TooManyNights {
            nights: 31,
        }));
}

#[test]
fn request_in_the_past_is_rejected_and_today_is_accepted() {
    given::<R>([])
        .when(request_cmd(with_stay(
            date(2030, 5, 31),
            date(2030, 6, 2),
            1,
        )))
        .then_err(ReservationError::InvalidStay(StayError::InThePast {
            check_in: date(2030, 5, 31),
            today: date(2030, 6, 1),
        }));
    let state = given::<R>([])
        .when(request_cmd(with_stay(
            date(2030, 6, 1),
            date(2030, 6, 2),
            1,
        )))
        .at(at(2030, 6, 1, 23))
        .then([E::ReservationRequested(ReservationRequested {
            timezone: Tz::UTC,
            rooms: 1,
            reservation_id: id(),
            customer_id: "customer-1".to_string(),
            lodging_id: "lodging-1".to_string(),
            check_in: date(2030, 6, 1),
            check_out: date(2030, 6, 2),
            guests: 1,
            nights: 1,
            total_amount: 100,
            currency: "EUR".to_string(),
        })]);
    assert_eq!(state.status, S::Requested);
}

#[test]
fn request_reads_today_in_seoul_not_in_utc() {
    // 2030-06-09 17:13 UTC is 02:13 on the 10th in Seoul: the 9th is yesterday there.
    given::<R>([])
        .when(request_on_the_9th_in(Tz::Asia__Seoul))
        .at(at_hm(2030, 6, 9, 17, 13))
        .then_err(ReservationError::InvalidStay(StayError::InThePast {
            check_in: date(2030, 6, 9),
            today: date(2030, 6, 10),
        }));
    // 14:59 UTC is 23:59 on the 9th in Seoul: still today.
    let state = given::<R>([])
        .when(request_on_the_9th_in(Tz::Asia__Seoul))
        .at(at_hm(2030, 6, 9, 14, 59))
        .then([E::ReservationRequested(ReservationRequested {
            timezone: Tz::Asia__Seoul,
            check_in: date(2030, 6, 9),
            check_out: date(2030, 6, 10),
            guests: 1,
            nights: 1,
            total_amount: 100,
            ..requested_details()
        })]);
    assert_eq!(state.status, S::Requested);
    // 15:00 UTC is midnight of the 10th in Seoul.
    given::<R>([])
        .when(request_on_the_9th_in(Tz::Asia__Seoul))
        .at(at_hm(2030, 6, 9, 15, 0))
        .then_err(ReservationError::InvalidStay(StayError::InThePast {
            check_in: date(2030, 6, 9),
            today: date(2030, 6, 10),
        }));
}

#[test]
fn request_reads_today_west_of_utc_where_the_utc_date_is_already_tomorrow() {
    // 2030-06-10 06:59 UTC is 23:59 on the 9th in Los Angeles (UTC-7 in June): still today there.
    given::<R>([])
        .when(request_on_the_9th_in(Tz::America__Los_Angeles))
        .at(at_hm(2030, 6, 10, 6, 59))
        .then([E::ReservationRequested(ReservationRequested {
            timezone: Tz::America__Los_Angeles,
            check_in: date(2030, 6, 9),
            check_out: date(2030, 6, 10),
            guests: 1,
            nights: 1,
            total_amount: 100,
            ..requested_details()
        })]);
    given::<R>([])
        .when(request_on_the_9th_in(Tz::America__Los_Angeles))
        .at(at_hm(2030, 6, 10, 7, 0))
        .then_err(ReservationError::InvalidStay(StayError::InThePast {
            check_in: date(2030, 6, 9),
            today: date(2030, 6, 10),
        }));
}

#[test]
fn request_with_zero_guests_is_rejected() {
    given::<R>([])
        .when(request_cmd(with_stay(
            date(2030, 6, 10),
            date(2030, 6, 11),
            0,
        )))
        .then_err(ReservationError::InvalidStay(StayError::NoGuests));
}

#[test]
fn request_with_more_guests_than_a_room_takes_is_rejected() {
    given::<R>([])
        .when(request_cmd(with_stay(
            date(2030, 6, 10),
            date(2030, 6, 11),
            3,
        )))
        .then_err(ReservationError::InvalidStay(StayError::TooManyGuests {
            rooms: 1,
            guests: 3,
            max_guests: 2,
        }));
}

#[test]
fn request_whose_total_overflows_is_rejected() {
    let command = C::Request {
        reservation_id: id(),
        customer_id: "customer-1".to_string(),
        lodging: LodgingTerms {
            nightly_rate: i64::MAX,
            ..terms()
        },
        stay: stay(),
    };
    given::<R>([])
        .when(command)
        .then_err(ReservationError::AmountOverflow);
}

// ---- every other command needs an existing reservation ----

fn every_follow_up_command() -> Vec<ReservationCommand> {
    vec![
        C::RecordApproval {
            approved_by: "admin-1".to_string(),
        },
        C::Reject {
            reason: "no".to_string(),
        },
        C::RecordPaymentPending {
            reason: "overloaded".to_string(),
            retry_at: at(2030, 6, 1, 11),
        },
        C::Confirm {
            payment_id: "pay-1".to_string(),
            amount: 300,
        },
        C::RecordPaymentFailure {
            reason: "declined".to_string(),
        },
        cancel_cmd(),
        C::RecordRefund { amount: 300 },
        C::Expire,
    ]
}

#[test]
fn every_command_but_request_on_an_unknown_reservation_is_not_found() {
    for command in every_follow_up_command() {
        given::<R>([])
            .when(command)
            .then_err(ReservationError::NotFound);
    }
}

// ---- RecordApproval / Reject ----

#[test]
fn record_approval_approves_a_requested_reservation_once() {
    let state = given::<R>([requested()])
        .when(C::RecordApproval {
            approved_by: "admin-1".to_string(),
        })
        .then([approved()]);
    assert_eq!(state.status, S::Approved);
    given::<R>([requested(), approved()])
        .when(C::RecordApproval {
            approved_by: "admin-1".to_string(),
        })
        .then_nothing();
}

#[test]
fn record_approval_after_the_reservation_expired_or_was_cancelled_is_a_no_op() {
    for last in [E::ReservationExpired {}, cancelled(0), rejected()] {
        given::<R>([requested(), last])
            .when(C::RecordApproval {
                approved_by: "admin-1".to_string(),
            })
            .then_nothing();
    }
}

#[test]
fn reject_rejects_a_requested_reservation_once() {
    let state = given::<R>([requested()])
        .when(C::Reject {
            reason: "no room".to_string(),
        })
        .then([rejected()]);
    assert_eq!(state.status, S::Rejected);
    assert_eq!(state.status_reason.as_deref(), Some("no room"));
    given::<R>([requested(), rejected()])
        .when(C::Reject {
            reason: "no room".to_string(),
        })
        .then_nothing();
}

#[test]
fn reject_after_approval_is_a_no_op() {
    given::<R>([requested(), approved()])
        .when(C::Reject {
            reason: "late".to_string(),
        })
        .then_nothing();
}

// ---- RecordPaymentPending ----

#[test]
fn payment_pending_is_recorded_after_approval_and_for_each_new_retry() {
    let pending_cmd = |hour| C::RecordPaymentPending {
        reason: "gateway overloaded".to_string(),
        retry_at: at(2030, 6, 1, hour),
    };
    let state = given::<R>([requested(), approved()])
        .when(pending_cmd(11))
        .then([pending(11)]);
    assert_eq!(state.status, S::PaymentPending);
    assert_eq!(state.retry_at, Some(at(2030, 6, 1, 11)));
    given::<R>([requested(), approved(), pending(11)])
        .when(pending_cmd(11))
        .then_nothing();
    let state = given::<R>([requested(), approved(), pending(11)])
        .when(pending_cmd(12))
        .then([pending(12)]);
    assert_eq!(state.retry_at, Some(at(2030, 6, 1, 12)));
}

#[test]
fn payment_pending_after_confirmation_or_cancellation_is_a_no_op() {
    // (Before approval it is recorded: a `pay_first` request is charged first, see wave2_tests.)
    let command = C::RecordPaymentPending {
        reason: "late".to_string(),
        retry_at: at(2030, 6, 1, 11),
    };
    given::<R>([requested(), approved(), confirmed()])
        .when(command.clone())
        .then_nothing();
    given::<R>([requested(), approved(), cancelled(0)])
        .when(command)
        .then_nothing();
}

// ---- Confirm ----

#[test]
fn confirm_confirms_an_approved_or_pending_reservation() {
    let confirm = || C::Confirm {
        payment_id: "pay-1".to_string(),
        amount: 300,
    };
    let state = given::<R>([requested(), approved()])
        .when(confirm())
        .then([confirmed()]);
    assert_eq!(state.status, S::Confirmed);
    assert_eq!(state.paid_amount, Some(300));
    assert_eq!(state.payment_id.as_deref(), Some("pay-1"));
    let state = given::<R>([requested(), approved(), pending(11)])
        .when(confirm())
        .then([confirmed()]);
    assert_eq!((state.status, state.status_reason), (S::Confirmed, None));
}

#[test]
fn confirm_replayed_or_overtaken_is_a_no_op() {
    let confirm = || C::Confirm {
        payment_id: "pay-1".to_string(),
        amount: 300,
    };
    given::<R>([requested(), approved(), confirmed()])
        .when(confirm())
        .then_nothing();
    given::<R>([requested(), approved(), cancelled(0)])
        .when(confirm())
        .then_nothing();
    given::<R>([requested()]).when(confirm()).then_nothing();
}

// ---- RecordPaymentFailure ----

#[test]
fn payment_failure_is_recorded_once_after_approval_or_pending() {
    let fail = || C::RecordPaymentFailure {
        reason: "declined".to_string(),
    };
    for history in [
        vec![requested(), approved()],
        vec![requested(), approved(), pending(11)],
    ] {
        let state = given::<R>(history).when(fail()).then([payment_failed()]);
        assert_eq!(state.status, S::PaymentFailed);
        assert!(state.status.is_terminal());
    }
    given::<R>([requested(), approved(), payment_failed()])
        .when(fail())
        .then_nothing();
    given::<R>([requested(), approved(), confirmed()])
        .when(fail())
        .then_nothing();
}

// ---- Cancel ----

#[test]
fn cancel_before_payment_owes_no_refund() {
    for history in [
        vec![requested()],
        vec![requested(), approved()],
        vec![requested(), approved(), pending(11)],
    ] {
        let state = given::<R>(history).when(cancel_cmd()).then([cancelled(0)]);
        assert_eq!((state.status, state.refund_due), (S::Cancelled, 0));
    }
}

#[test]
fn cancel_of_a_confirmed_reservation_owes_the_paid_amount() {
    let state = given::<R>([requested(), approved(), confirmed()])
        .when(cancel_cmd())
        .at(at(2030, 6, 9, 23))
        .then([cancelled(300)]);
    assert_eq!(state.refund_due, 300);
}

#[test]
fn cancel_on_or_after_check_in_is_rejected() {
    for now in [at(2030, 6, 10, 0), at(2030, 6, 10, 23), at(2030, 6, 20, 12)] {
        given::<R>([requested(), approved(), confirmed()])
            .when(cancel_cmd())
            .at(now)
            .then_err(ReservationError::CheckedIn {
                check_in: date(2030, 6, 10),
            });
    }
}

#[test]
fn an_undecided_request_may_be_withdrawn_on_and_after_its_check_in_day() {
    for history in [
        vec![requested()],
        vec![requested(), approved()],
        vec![requested(), approved(), pending(11)],
    ] {
        for now in [at(2030, 6, 10, 0), at(2030, 6, 10, 23), at(2030, 6, 20, 12)] {
            let state = given::<R>(history.clone())
                .when(cancel_cmd())
                .at(now)
                .then([cancelled(0)]);
            assert_eq!((state.status, state.refund_due), (S::Cancelled, 0));
        }
    }
}

#[test]
fn a_confirmed_stay_in_seoul_may_be_cancelled_until_local_midnight_before_check_in() {
    let confirmed_stay = [requested(), approved(), confirmed()];
    // Check-in is the 10th; 2030-06-09 14:59 UTC is 23:59 on the 9th in Seoul.
    given::<R>(confirmed_stay.clone())
        .when(cancel_in(Tz::Asia__Seoul))
        .at(at_hm(2030, 6, 9, 14, 59))
        .then([cancelled(300)]);
    // 15:00 UTC is midnight of the 10th in Seoul (nine hours before the UTC date turns).
    for now in [at_hm(2030, 6, 9, 15, 0), at_hm(2030, 6, 9, 23, 59)] {
        given::<R>(confirmed_stay.clone())
            .when(cancel_in(Tz::Asia__Seoul))
            .at(now)
            .then_err(ReservationError::CheckedIn {
                check_in: date(2030, 6, 10),
            });
    }
}

#[test]
fn a_confirmed_stay_west_of_utc_may_be_cancelled_after_the_utc_date_turned() {
    let confirmed_stay = [requested(), approved(), confirmed()];
    // 2030-06-10 06:59 UTC is 23:59 on the 9th in Los Angeles: check-in (the 10th) is tomorrow.
    given::<R>(confirmed_stay.clone())
        .when(cancel_in(Tz::America__Los_Angeles))
        .at(at_hm(2030, 6, 10, 6, 59))
        .then([cancelled(300)]);
    given::<R>(confirmed_stay)
        .when(cancel_in(Tz::America__Los_Angeles))
        .at(at_hm(2030, 6, 10, 7, 0))
        .then_err(ReservationError::CheckedIn {
            check_in: date(2030, 6, 10),
        });
}

#[test]
fn cancel_in_a_terminal_state_is_rejected() {
    let cases = [
        (rejected(), S::Rejected),
        (E::ReservationExpired {}, S::Expired),
        (cancelled(0), S::Cancelled),
    ];
    for (last, status) in cases {
        given::<R>([requested(), last])
            .when(cancel_cmd())
            .then_err(ReservationError::AlreadyFinal(status));
    }
    given::<R>([requested(), approved(), payment_failed()])
        .when(cancel_cmd())
        .then_err(ReservationError::AlreadyFinal(S::PaymentFailed));
}

// ---- RecordRefund ----

#[test]
fn refund_of_a_cancelled_confirmed_reservation_is_recorded_once() {
    let history = [requested(), approved(), confirmed(), cancelled(300)];
    let state = given::<R>(history.clone())
        .when(C::RecordRefund { amount: 300 })
        .then([E::ReservationRefunded { amount: 300 }]);
    assert_eq!(state.refunded_amount, Some(300));
    let mut refunded = history.to_vec();
    refunded.push(E::ReservationRefunded { amount: 300 });
    given::<R>(refunded)
        .when(C::RecordRefund { amount: 300 })
        .then_nothing();
}

#[test]
fn refund_of_a_charge_that_landed_after_cancellation_is_recorded() {
    // Cancelled while the payment was in flight: nothing was due, but the charge went through and
    // the saga refunded it; the reservation must show the refund.
    given::<R>([requested(), approved(), cancelled(0)])
        .when(C::RecordRefund { amount: 300 })
        .then([E::ReservationRefunded { amount: 300 }]);
}

#[test]
fn refund_of_a_reservation_that_is_not_cancelled_is_a_no_op() {
    given::<R>([requested(), approved(), confirmed()])
        .when(C::RecordRefund { amount: 300 })
        .then_nothing();
}

// ---- Expire ----

#[test]
fn expire_expires_only_an_undecided_request() {
    let state = given::<R>([requested()])
        .when(C::Expire)
        .then([E::ReservationExpired {}]);
    assert_eq!(state.status, S::Expired);
    assert_eq!(
        state.status_reason.as_deref(),
        Some("approval deadline passed")
    );
    given::<R>([requested(), E::ReservationExpired {}])
        .when(C::Expire)
        .then_nothing();
    given::<R>([requested(), approved()])
        .when(C::Expire)
        .then_nothing();
    given::<R>([requested(), rejected()])
        .when(C::Expire)
        .then_nothing();
}

// ---- status and codec ----

#[test]
fn statuses_have_their_contract_names_and_terminality() {
    let all = [
        (S::Requested, "requested", false),
        (S::Approved, "approved", false),
        (S::PaymentPending, "payment_pending", false),
        (S::Confirmed, "confirmed", false),
        (S::Rejected, "rejected", true),
        (S::Cancelled, "cancelled", true),
        (S::Expired, "expired", true),
        (S::PaymentFailed, "payment_failed", true),
    ];
    for (status, name, terminal) in all {
        assert_eq!(status.as_str(), name);
        assert_eq!(status.is_terminal(), terminal, "{name}");
        assert_eq!(
            serde_json::to_value(status).ok(),
            Some(serde_json::json!(name))
        );
    }
}

#[test]
fn stream_name_is_prefixed() {
    assert_eq!(R::stream_name("abc"), "reservation-abc");
}

#[test]
fn every_reservation_event_round_trips() {
    let events = [
        requested(),
        approved(),
        rejected(),
        pending(11),
        confirmed(),
        payment_failed(),
        cancelled(300),
        E::ReservationRefunded { amount: 300 },
        E::ReservationExpired {},
    ];
    let types: std::collections::BTreeSet<_> = events.iter().map(DomainEvent::event_type).collect();
    assert_eq!(types.len(), 9, "one of each event type");
    for event in &events {
        assert_round_trip(event);
    }
}

#[test]
fn requested_payload_has_the_contract_fields() {
    let payload = requested().payload();
    for field in [
        "reservation_id",
        "customer_id",
        "lodging_id",
        "check_in",
        "check_out",
        "guests",
        "nights",
        "total_amount",
        "currency",
    ] {
        assert!(payload.get(field).is_some(), "missing {field}: {payload}");
    }
    assert_eq!(payload["check_in"], serde_json::json!("2030-06-10"));
}

#[test]
fn malformed_payload_is_rejected() {
    let error = E::decode(
        "ReservationConfirmed",
        E::current_version("ReservationConfirmed").expect("a type"),
        &serde_json::json!({ "payment_id": 7 }),
    );
    assert!(
        matches!(error, Err(DecodeError::Malformed { ref event_type, .. }) if event_type == "ReservationConfirmed"),
        "{error:?}"
    );
}

#[test]
fn default_now_is_before_the_test_stay() {
    assert!(default_now().date_naive() < stay().check_in);
}
