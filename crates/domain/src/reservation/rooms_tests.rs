//! Given/when/then tests of stays of several rooms: the amount, the limits, and repeats after the
//! lodging's rate changed.

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
