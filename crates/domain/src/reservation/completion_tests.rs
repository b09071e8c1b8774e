//! Given/when/then tests of the end of a stay: completed at check-out by the saga's timer, or by its
//! lodging's admin from check-in on (read where the lodging is); a completed stay is final. And the
//! request's time zone, recorded since version 3.

use super::*;
use crate::harness::{at, date, given};
use crate::DomainEvent;

type R = ReservationAggregate;

/// Two nights in Seoul from 2030-06-10.
fn requested() -> ReservationEvent {
    ReservationEvent::ReservationRequested(ReservationRequested {
        reservation_id: uuid::Uuid::from_u128(4),
        customer_id: "guest-1".to_string(),
        lodging_id: "hotel-1".to_string(),
        check_in: date(2030, 6, 10),
        check_out: date(2030, 6, 12),
        guests: 2,
        rooms: 1,
        nights: 2,
        total_amount: 240_000,
        currency: "KRW".to_string(),
        timezone: Tz::Asia__Seoul,
    })
}

fn confirmed() -> Vec<ReservationEvent> {
    vec![
        requested(),
        ReservationEvent::ReservationApproved {
            approved_by: "admin:hotel".to_string(),
        },
        ReservationEvent::ReservationConfirmed {
            payment_id: "pay-1".to_string(),
            amount: 240_000,
        },
    ]
}

fn complete(by: &str) -> ReservationCommand {
    ReservationCommand::Complete {
        completed_by: by.to_string(),
    }
}

fn completed(by: &str) -> ReservationEvent {
    ReservationEvent::ReservationCompleted {
        completed_by: by.to_string(),
    }
}

#[test]
fn its_admin_completes_a_confirmed_stay_from_check_in_where_the_lodging_is() {
    // 2030-06-09 15:00 UTC is midnight of the 10th in Seoul: check-in day there.
    let state = given::<R>(confirmed())
        .when(complete("admin:hotel"))
        .at(at(2030, 6, 9, 15))
        .then([completed("admin:hotel")]);
    assert_eq!(state.status, ReservationStatus::Completed);
    given::<R>(confirmed())
        .when(complete("admin:hotel"))
        .at(at(2030, 6, 9, 14))
        .then_err(ReservationError::NotCheckedIn {
            check_in: date(2030, 6, 10),
        });
}

#[test]
fn completing_again_is_a_no_op_and_only_a_confirmed_stay_completes() {
    let mut done = confirmed();
    done.push(completed("check-out"));
    given::<R>(done)
        .when(complete("admin:hotel"))
        .at(at(2030, 6, 12, 3))
        .then_nothing();
    given::<R>([requested()])
        .when(complete("check-out"))
        .at(at(2030, 6, 12, 3))
        .then_err(ReservationError::NotConfirmed(ReservationStatus::Requested));
    given::<R>([])
        .when(complete("check-out"))
        .then_err(ReservationError::NotFound);
}

#[test]
fn a_completed_stay_is_cancelled_by_no_one() {
    let mut done = confirmed();
    done.push(completed("check-out"));
    given::<R>(done.clone())
        .when(ReservationCommand::CancelAsAdmin {
            cancelled_by: "admin:hotel".to_string(),
            reason: "late".to_string(),
        })
        .at(at(2030, 6, 12, 4))
        .then_err(ReservationError::NotConfirmed(ReservationStatus::Completed));
    given::<R>(done)
        .when(ReservationCommand::Cancel {
            cancelled_by: "guest-1".to_string(),
            reason: "late".to_string(),
            timezone: Tz::Asia__Seoul,
        })
        .at(at(2030, 6, 12, 4))
        .then_err(ReservationError::AlreadyFinal(ReservationStatus::Completed));
}

#[test]
fn a_request_records_its_lodgings_time_zone_and_older_ones_read_as_the_wave_1_zone() {
    let event = requested();
    let mut v2 = event.payload();
    v2.as_object_mut().expect("object").remove("timezone");
    let decoded = ReservationEvent::decode("ReservationRequested", 2, &v2).expect("upcast");
    let ReservationEvent::ReservationRequested(details) = decoded else {
        panic!("a request");
    };
    assert_eq!(details.timezone, crate::WAVE1_TIMEZONE);
    assert!(ReservationEvent::decode("ReservationRequested", 3, &v2).is_err());
    assert_eq!(
        ReservationEvent::decode("ReservationRequested", 3, &event.payload()),
        Ok(event)
    );
}

#[test]
fn check_out_is_noon_of_the_last_day_where_the_lodging_is() {
    use chrono::TimeZone;
    let utc = |y, m, d, h| {
        chrono::Utc
            .with_ymd_and_hms(y, m, d, h, 0, 0)
            .single()
            .expect("instant")
    };
    assert_eq!(
        crate::check_out_moment(date(2030, 6, 12), Tz::Asia__Seoul),
        utc(2030, 6, 12, 3)
    );
    assert_eq!(
        crate::check_out_moment(date(2030, 6, 12), Tz::America__Los_Angeles),
        utc(2030, 6, 12, 19)
    );
}
