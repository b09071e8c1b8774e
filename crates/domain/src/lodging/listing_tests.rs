//! Given/when/then tests of the listing lifecycle: submit, review, update, close, and what the desk
//! does with requests to a lodging that is not active; rooms taken by multi-room stays.

use super::*;
use crate::harness::{at, date, given};
use crate::lodging::{LodgingAggregate, LodgingCommand, RequestStatus};
use crate::{DomainEvent, ReservationId, Stay};

type L = LodgingAggregate;
use LodgingCommand as C;
use LodgingEvent as E;

fn rid(n: u128) -> ReservationId {
    uuid::Uuid::from_u128(n)
}

fn host_profile(rooms: u32) -> LodgingProfile {
    LodgingProfile {
        lodging_id: "car-1".to_string(),
        name: "Compact car".to_string(),
        nightly_rate: 40_000,
        currency: "KRW".to_string(),
        rooms,
        max_guests: 4,
        approval_mode: ApprovalMode::Manual,
        admin_id: "company-7".to_string(),
        timezone: Tz::Asia__Seoul,
        fee_bps: PLATFORM_FEE_BPS_DEFAULT,
    }
}

fn submitted(rooms: u32) -> LodgingEvent {
    E::ListingSubmitted(host_profile(rooms))
}

fn approved(fee_bps: u32) -> LodgingEvent {
    E::ListingApproved {
        fee_bps,
        approved_by: "root".to_string(),
    }
}

fn closed() -> LodgingEvent {
    E::LodgingClosed {
        reason: "sold".to_string(),
        closed_by: "company-7".to_string(),
    }
}

/// 2030-06-10 .. 2030-06-12, `rooms` rooms.
fn stay(rooms: u32) -> Stay {
    Stay {
        check_in: date(2030, 6, 10),
        check_out: date(2030, 6, 12),
        guests: 1,
        rooms,
    }
}

fn requested(n: u128, rooms: u32) -> LodgingEvent {
    E::ApprovalRequested {
        reservation_id: rid(n),
        check_in: date(2030, 6, 10),
        check_out: date(2030, 6, 12),
        guests: 1,
        rooms,
    }
}

fn granted(n: u128) -> LodgingEvent {
    E::ApprovalGranted {
        reservation_id: rid(n),
        granted_by: "company-7".to_string(),
    }
}

fn changes() -> LodgingChanges {
    LodgingChanges {
        updated_by: "company-7".to_string(),
        ..LodgingChanges::default()
    }
}

// ---- Submit and review ----

#[test]
fn a_submitted_listing_awaits_review_then_is_active_with_its_fee() {
    let state = given::<L>([])
        .when(C::Submit(host_profile(2)))
        .then([submitted(2)]);
    assert_eq!(state.status, ListingStatus::PendingReview);
    let state = given::<L>([submitted(2)])
        .when(C::ApproveListing {
            fee_bps: 1_500,
            approved_by: "root".to_string(),
        })
        .then([approved(1_500)]);
    assert_eq!(state.status, ListingStatus::Active);
    assert_eq!(state.profile.map(|p| p.fee_bps), Some(1_500));
}

#[test]
fn a_rejected_listing_stays_rejected() {
    let state = given::<L>([submitted(2)])
        .when(C::RejectListing {
            reason: "photos missing".to_string(),
            rejected_by: "root".to_string(),
        })
        .then([E::ListingRejected {
            reason: "photos missing".to_string(),
            rejected_by: "root".to_string(),
        }]);
    assert_eq!(state.status, ListingStatus::Rejected);
}

#[test]
fn only_a_listing_under_review_is_approved_or_rejected() {
    let wrong = |status| LodgingError::WrongListingStatus {
        status,
        expected: "pending_review",
    };
    let approve = || C::ApproveListing {
        fee_bps: 0,
        approved_by: "root".to_string(),
    };
    given::<L>([submitted(2), approved(1_000)])
        .when(approve())
        .then_err(wrong(ListingStatus::Active));
    given::<L>([E::LodgingRegistered(host_profile(2))])
        .when(C::RejectListing {
            reason: "late".to_string(),
            rejected_by: "root".to_string(),
        })
        .then_err(wrong(ListingStatus::Active));
    given::<L>([submitted(2), closed()])
        .when(approve())
        .then_err(wrong(ListingStatus::Closed));
    given::<L>([])
        .when(approve())
        .then_err(LodgingError::NotRegistered);
}

#[test]
fn a_fee_above_the_whole_amount_is_refused() {
    given::<L>([submitted(2)])
        .when(C::ApproveListing {
            fee_bps: 10_001,
            approved_by: "root".to_string(),
        })
        .then_err(LodgingError::InvalidProfile {
            field: "fee_bps",
            reason: "must be at most 10000 (the whole amount)".to_string(),
        });
}

#[test]
fn a_lodging_that_is_not_active_denies_what_reaches_its_desk() {
    let rejected = E::ListingRejected {
        reason: "no".to_string(),
        rejected_by: "root".to_string(),
    };
    for (history, status) in [
        (vec![submitted(2)], "pending_review"),
        (vec![submitted(2), rejected], "rejected"),
    ] {
        let state = given::<L>(history)
            .when(C::RequestApproval {
                reservation_id: rid(1),
                stay: stay(1),
            })
            .then([
                requested(1, 1),
                E::ApprovalDenied {
                    reason: format!("the lodging is {status}"),
                    reservation_id: rid(1),
                    denied_by: "platform".to_string(),
                },
            ]);
        assert!(state.booked.is_empty());
    }
}

// ---- Update ----

#[test]
fn an_update_records_only_what_differs() {
    let asked = LodgingChanges {
        name: Some("Compact car".to_string()),
        nightly_rate: Some(45_000),
        approval_mode: Some(ApprovalMode::Instant),
        ..changes()
    };
    let state = given::<L>([submitted(2), approved(1_000)])
        .when(C::Update(asked))
        .then([E::LodgingUpdated(LodgingChanges {
            nightly_rate: Some(45_000),
            approval_mode: Some(ApprovalMode::Instant),
            ..changes()
        })]);
    let profile = state.profile.expect("profile");
    assert_eq!(profile.nightly_rate, 45_000);
    assert_eq!(profile.approval_mode, ApprovalMode::Instant);
    assert_eq!(profile.name, "Compact car");
    given::<L>([submitted(2)])
        .when(C::Update(LodgingChanges {
            rooms: Some(2),
            ..changes()
        }))
        .then_nothing();
}

#[test]
fn an_update_keeps_the_profile_rules() {
    given::<L>([submitted(2)])
        .when(C::Update(LodgingChanges {
            nightly_rate: Some(0),
            ..changes()
        }))
        .then_err(LodgingError::InvalidProfile {
            field: "nightly_rate",
            reason: "must be at least 1 (a stay is never free)".to_string(),
        });
}

#[test]
fn fewer_rooms_are_refused_while_a_future_night_has_more_booked() {
    let history = [
        submitted(3),
        approved(1_000),
        requested(1, 2),
        granted(1),
        requested(2, 1),
        granted(2),
    ];
    let two = || {
        C::Update(LodgingChanges {
            rooms: Some(2),
            ..changes()
        })
    };
    given::<L>(history.clone())
        .when(two())
        .at(at(2030, 6, 1, 9))
        .then_err(LodgingError::WouldOverbook {
            night: date(2030, 6, 10),
            booked: 3,
        });
    // Once those nights are past, the lodging may shrink.
    given::<L>(history.clone())
        .when(two())
        .at(at(2030, 6, 12, 9))
        .then([E::LodgingUpdated(LodgingChanges {
            rooms: Some(2),
            ..changes()
        })]);
    // Shrinking to what is booked is fine; more rooms always are.
    let three_booked_of_four = [E::LodgingUpdated(LodgingChanges {
        rooms: Some(4),
        ..changes()
    })];
    let state = given::<L>(history.clone())
        .when(C::Update(LodgingChanges {
            rooms: Some(4),
            ..changes()
        }))
        .at(at(2030, 6, 1, 9))
        .then(three_booked_of_four);
    assert_eq!(state.profile.map(|p| p.rooms), Some(4));
}

// ---- Close ----

#[test]
fn a_closed_lodging_honours_what_was_made_before_and_changes_no_more() {
    let history = [submitted(2), approved(1_000), requested(1, 1), closed()];
    let state = given::<L>(history.clone())
        .when(C::Grant {
            reservation_id: rid(1),
            stay: stay(1),
            granted_by: "company-7".to_string(),
        })
        .then([granted(1)]);
    assert_eq!(state.status, ListingStatus::Closed);
    assert_eq!(
        state.requests.get(&rid(1)).map(|r| r.status),
        Some(RequestStatus::Granted)
    );
    // A request made before the close and forwarded after it is still decided.
    given::<L>(history.clone())
        .when(C::RequestApproval {
            reservation_id: rid(2),
            stay: stay(1),
        })
        .then([requested(2, 1)]);
    given::<L>(history.clone())
        .when(C::Close {
            reason: "again".to_string(),
            closed_by: "company-7".to_string(),
        })
        .then_nothing();
    given::<L>(history)
        .when(C::Update(LodgingChanges {
            rooms: Some(1),
            ..changes()
        }))
        .then_err(LodgingError::WrongListingStatus {
            status: ListingStatus::Closed,
            expected: "pending_review or active",
        });
}

// ---- Rooms per stay ----

#[test]
fn a_stay_takes_its_rooms_on_every_night() {
    let history = [submitted(3), approved(1_000), requested(1, 2), granted(1)];
    given::<L>(history.clone())
        .when(C::Grant {
            reservation_id: rid(2),
            stay: stay(2),
            granted_by: "company-7".to_string(),
        })
        .then_err(LodgingError::NoRoom {
            night: date(2030, 6, 10),
        });
    let state = given::<L>(history)
        .when(C::Grant {
            reservation_id: rid(3),
            stay: stay(1),
            granted_by: "company-7".to_string(),
        })
        .then([requested(3, 1), granted(3)]);
    assert_eq!(state.booked.get(&date(2030, 6, 10)), Some(&3));
    assert_eq!(state.booked.get(&date(2030, 6, 11)), Some(&3));
}

#[test]
fn events_recorded_before_fees_and_rooms_read_with_their_defaults() {
    let registered = E::LodgingRegistered(host_profile(2));
    let mut v2 = registered.payload();
    v2.as_object_mut().expect("object").remove("fee_bps");
    assert_eq!(
        LodgingEvent::decode("LodgingRegistered", 2, &v2),
        Ok(registered)
    );
    assert!(LodgingEvent::decode("LodgingRegistered", 3, &v2).is_err());
    let mut v1 = requested(1, 1).payload();
    v1.as_object_mut().expect("object").remove("rooms");
    assert_eq!(
        LodgingEvent::decode("ApprovalRequested", 1, &v1),
        Ok(requested(1, 1))
    );
    assert!(LodgingEvent::decode("ApprovalRequested", 2, &v1).is_err());
    for event in [submitted(2), approved(700), closed(), requested(1, 3)] {
        crate::harness::assert_round_trip(&event);
    }
    let update = E::LodgingUpdated(LodgingChanges {
        timezone: Some(Tz::Europe__Paris),
        ..changes()
    });
    assert_eq!(
        update.payload(),
        serde_json::json!({"timezone": "Europe/Paris", "updated_by": "company-7"})
    );
    crate::harness::assert_round_trip(&update);
}
