//! Given/when/then tests of a `pay_first` desk: a request holds its nights (or is denied before any
//! charge), its admin decides it only once paid, and a held night is never given to anyone else.

use super::*;

fn pay_first(rooms: u32) -> LodgingEvent {
    E::LodgingRegistered(profile(rooms, ApprovalMode::PayFirst))
}

fn held(n: u128) -> LodgingEvent {
    E::NightsHeld {
        reservation_id: rid(n),
    }
}

fn paid(n: u128) -> LodgingEvent {
    E::RequestPaid {
        reservation_id: rid(n),
    }
}

fn mark_paid(n: u128) -> LodgingCommand {
    C::MarkPaid {
        reservation_id: rid(n),
    }
}

#[test]
fn a_request_holds_its_nights_before_any_charge() {
    let state = given::<L>([pay_first(1)])
        .when(request_cmd(1, stay_a()))
        .then([requested(1, stay_a()), held(1)]);
    assert_eq!(state.held, nights(&[(10, 1), (11, 1), (12, 1)]));
    assert!(state.booked.is_empty(), "held is not booked");
    assert_eq!(state.first_full_night(&stay_b()), Some(date(2030, 6, 12)));
}

#[test]
fn a_request_that_finds_no_room_is_denied_at_once() {
    given::<L>([pay_first(1), requested(1, stay_a()), held(1)])
        .when(request_cmd(2, stay_b()))
        .then([
            requested(2, stay_b()),
            E::ApprovalDenied {
                reason: "no free room on 2030-06-12".to_string(),
                reservation_id: rid(2),
                denied_by: "pay_first".to_string(),
            },
        ]);
}

#[test]
fn its_admin_decides_only_paid_requests() {
    let unpaid = [pay_first(1), requested(1, stay_a()), held(1)];
    given::<L>(unpaid.clone())
        .when(grant_cmd(1, stay_a()))
        .then_err(LodgingError::NotPaid);
    given::<L>(unpaid)
        .when(deny_cmd(1, stay_a()))
        .then_err(LodgingError::NotPaid);
    // One the desk has not seen yet cannot have been paid either.
    given::<L>([pay_first(1)])
        .when(grant_cmd(9, stay_c()))
        .then_err(LodgingError::NotPaid);
}

#[test]
fn the_payment_is_recorded_once() {
    let state = given::<L>([pay_first(1), requested(1, stay_a()), held(1)])
        .when(mark_paid(1))
        .then([paid(1)]);
    assert!(state.requests[&rid(1)].paid);
    given::<L>([pay_first(1), requested(1, stay_a()), held(1), paid(1)])
        .when(mark_paid(1))
        .then_nothing();
    given::<L>([
        pay_first(1),
        requested(1, stay_a()),
        held(1),
        withdrawn(1, "expired"),
    ])
    .when(mark_paid(1))
    .then_nothing();
}

#[test]
fn a_paid_request_is_granted_on_the_rooms_it_holds() {
    let state = given::<L>([pay_first(1), requested(1, stay_a()), held(1), paid(1)])
        .when(grant_cmd(1, stay_a()))
        .then([granted(1)]);
    assert!(state.held.is_empty(), "the hold became a booking");
    assert_eq!(state.booked, nights(&[(10, 1), (11, 1), (12, 1)]));
}

#[test]
fn a_paid_request_denied_or_withdrawn_releases_its_nights() {
    let paid_history = [pay_first(1), requested(1, stay_a()), held(1), paid(1)];
    let state = given::<L>(paid_history.clone())
        .when(deny_cmd(1, stay_a()))
        .then([denied(1)]);
    assert!(state.held.is_empty() && state.booked.is_empty());
    let state = given::<L>(paid_history)
        .when(withdraw_cmd(1, "approval deadline passed"))
        .then([withdrawn(1, "approval deadline passed")]);
    assert!(state.held.is_empty() && state.booked.is_empty());
    assert_eq!(state.first_full_night(&stay_b()), None);
}

#[test]
fn a_held_night_is_given_to_no_one_else() {
    // The mode changed to manual after the hold: a manual request on a held night finds no room.
    let to_manual = E::LodgingUpdated(LodgingChanges {
        approval_mode: Some(ApprovalMode::Manual),
        ..LodgingChanges::default()
    });
    given::<L>([pay_first(1), requested(1, stay_a()), held(1), to_manual])
        .when(grant_cmd(2, stay_b()))
        .then_err(LodgingError::NoRoom {
            night: date(2030, 6, 12),
        });
    // Nor can the lodging shrink below what is held.
    let fewer = LodgingChanges {
        rooms: Some(1),
        ..LodgingChanges::default()
    };
    let one_held = [pay_first(2), requested(1, stay_a()), held(1)];
    given::<L>(one_held)
        .when(C::Update(fewer.clone()))
        .at(at(2030, 6, 1, 10))
        .then([E::LodgingUpdated(fewer.clone())]);
    let two_held = [
        pay_first(2),
        requested(1, stay_a()),
        held(1),
        requested(2, stay_b()),
        held(2),
    ];
    given::<L>(two_held)
        .when(C::Update(fewer))
        .at(at(2030, 6, 1, 10))
        .then_err(LodgingError::WouldOverbook {
            night: date(2030, 6, 12),
            booked: 2,
        });
}

#[test]
fn holds_end_with_their_nights() {
    let state = given::<L>([pay_first(3), requested(1, stay_a()), held(1)])
        .state()
        .clone();
    let compacted = L::compact(state, at(2030, 6, 12, 10));
    assert_eq!(compacted.held, nights(&[(12, 1)]));
    let compacted = L::compact(compacted, at(2030, 6, 14, 10));
    assert!(compacted.held.is_empty() && compacted.requests.is_empty());
}

#[test]
fn the_new_events_round_trip() {
    for event in [held(1), paid(1)] {
        assert_round_trip(&event);
    }
}
