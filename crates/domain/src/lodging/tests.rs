//! Given/when/then tests of every LodgingApproval command path.

use std::collections::BTreeSet;

use super::*;
use crate::harness::{assert_round_trip, at, at_hm, date, given, Given};
use crate::DomainEvent;

type L = LodgingAggregate;
use LodgingCommand as C;
use LodgingEvent as E;

fn rid(n: u128) -> ReservationId {
    uuid::Uuid::from_u128(n)
}

fn profile(rooms: u32, approval_mode: ApprovalMode) -> LodgingProfile {
    LodgingProfile {
        fee_bps: 1_000,
        lodging_id: "lodging-1".to_string(),
        name: "Harbour Inn".to_string(),
        nightly_rate: 100,
        currency: "EUR".to_string(),
        rooms,
        max_guests: 2,
        approval_mode,
        admin_id: "admin-1".to_string(),
        timezone: Tz::UTC,
    }
}

fn registered(rooms: u32) -> LodgingEvent {
    E::LodgingRegistered(profile(rooms, ApprovalMode::Manual))
}

fn instant(rooms: u32) -> LodgingEvent {
    E::LodgingRegistered(profile(rooms, ApprovalMode::Instant))
}

/// 2030-06-10 .. 2030-06-13 (three nights).
fn stay_a() -> Stay {
    Stay {
        rooms: 1,
        check_in: date(2030, 6, 10),
        check_out: date(2030, 6, 13),
        guests: 2,
    }
}

/// 2030-06-12 .. 2030-06-14: shares the night of the 12th with `stay_a`.
fn stay_b() -> Stay {
    Stay {
        rooms: 1,
        check_in: date(2030, 6, 12),
        check_out: date(2030, 6, 14),
        guests: 1,
    }
}

/// 2030-06-13 .. 2030-06-15: starts the day `stay_a` checks out.
fn stay_c() -> Stay {
    Stay {
        rooms: 1,
        check_in: date(2030, 6, 13),
        check_out: date(2030, 6, 15),
        guests: 1,
    }
}

fn requested(n: u128, stay: Stay) -> LodgingEvent {
    E::ApprovalRequested {
        reservation_id: rid(n),
        check_in: stay.check_in,
        check_out: stay.check_out,
        guests: stay.guests,
        rooms: stay.rooms,
    }
}

fn granted(n: u128) -> LodgingEvent {
    E::ApprovalGranted {
        reservation_id: rid(n),
        granted_by: "admin-1".to_string(),
    }
}

fn denied(n: u128) -> LodgingEvent {
    E::ApprovalDenied {
        reason: "renovation".to_string(),
        reservation_id: rid(n),
        denied_by: "admin-1".to_string(),
    }
}

fn withdrawn(n: u128, reason: &str) -> LodgingEvent {
    E::ApprovalWithdrawn {
        reservation_id: rid(n),
        reason: reason.to_string(),
    }
}

fn request_cmd(n: u128, stay: Stay) -> LodgingCommand {
    C::RequestApproval {
        reservation_id: rid(n),
        stay,
    }
}

fn grant_cmd(n: u128, stay: Stay) -> LodgingCommand {
    C::Grant {
        reservation_id: rid(n),
        stay,
        granted_by: "admin-1".to_string(),
    }
}

fn deny_cmd(n: u128, stay: Stay) -> LodgingCommand {
    C::Deny {
        reservation_id: rid(n),
        stay,
        reason: "renovation".to_string(),
        denied_by: "admin-1".to_string(),
    }
}

fn withdraw_cmd(n: u128, reason: &str) -> LodgingCommand {
    C::Withdraw {
        reservation_id: rid(n),
        reason: reason.to_string(),
    }
}

fn nights(entries: &[(u32, u32)]) -> imbl::OrdMap<NaiveDate, u32> {
    entries
        .iter()
        .map(|&(day, count)| (date(2030, 6, day), count))
        .collect()
}

// ---- Register ----

#[test]
fn register_records_the_profile() {
    let state = given::<L>([])
        .when(C::Register(profile(2, ApprovalMode::Manual)))
        .then([registered(2)]);
    assert_eq!(state.profile, Some(profile(2, ApprovalMode::Manual)));
}

#[test]
fn register_twice_is_rejected() {
    given::<L>([registered(2)])
        .when(C::Register(profile(2, ApprovalMode::Manual)))
        .then_err(LodgingError::AlreadyRegistered);
}

#[test]
fn register_with_an_invalid_profile_is_rejected() {
    let base = profile(2, ApprovalMode::Manual);
    let cases = [
        (
            LodgingProfile {
                lodging_id: " ".to_string(),
                ..base.clone()
            },
            ("lodging_id", "must not be empty"),
        ),
        (
            LodgingProfile {
                name: String::new(),
                ..base.clone()
            },
            ("name", "must not be empty"),
        ),
        (
            LodgingProfile {
                nightly_rate: -1,
                ..base.clone()
            },
            ("nightly_rate", "must be at least 1 (a stay is never free)"),
        ),
        (
            LodgingProfile {
                nightly_rate: 0,
                ..base.clone()
            },
            ("nightly_rate", "must be at least 1 (a stay is never free)"),
        ),
        (
            LodgingProfile {
                rooms: 0,
                ..base.clone()
            },
            ("rooms", "must be at least 1"),
        ),
        (
            LodgingProfile {
                max_guests: 0,
                ..base.clone()
            },
            ("max_guests", "must be at least 1"),
        ),
    ];
    for (invalid, (field, reason)) in cases {
        given::<L>([])
            .when(C::Register(invalid))
            .then_err(LodgingError::InvalidProfile {
                field,
                reason: reason.to_string(),
            });
    }
}

#[test]
fn every_desk_command_on_an_unregistered_lodging_is_rejected() {
    for command in [
        request_cmd(1, stay_a()),
        grant_cmd(1, stay_a()),
        deny_cmd(1, stay_a()),
        withdraw_cmd(1, "cancelled"),
    ] {
        given::<L>([])
            .when(command)
            .then_err(LodgingError::NotRegistered);
    }
}

// ---- RequestApproval ----

#[test]
fn request_on_a_manual_lodging_waits_for_the_admin() {
    let state = given::<L>([registered(1)])
        .when(request_cmd(1, stay_a()))
        .then([requested(1, stay_a())]);
    assert_eq!(
        state.requests.get(&rid(1)),
        Some(&ApprovalRequest {
            stay: stay_a(),
            status: RequestStatus::Pending,
            held: false,
            paid: false,
        })
    );
    assert!(state.booked.is_empty());
}

#[test]
fn request_of_a_known_reservation_is_a_no_op_whatever_its_status() {
    let histories = [
        vec![registered(1), requested(1, stay_a())],
        vec![registered(1), requested(1, stay_a()), granted(1)],
        vec![registered(1), requested(1, stay_a()), denied(1)],
        vec![
            registered(1),
            requested(1, stay_a()),
            granted(1),
            withdrawn(1, "cancelled"),
        ],
    ];
    for history in histories {
        given::<L>(history)
            .when(request_cmd(1, stay_a()))
            .then_nothing();
    }
}

#[test]
fn request_on_an_instant_lodging_with_room_is_granted_at_once() {
    let state = given::<L>([instant(1)])
        .when(request_cmd(1, stay_a()))
        .then([
            requested(1, stay_a()),
            E::ApprovalGranted {
                reservation_id: rid(1),
                granted_by: "instant".to_string(),
            },
        ]);
    assert_eq!(state.booked, nights(&[(10, 1), (11, 1), (12, 1)]));
    assert_eq!(state.requests[&rid(1)].status, RequestStatus::Granted);
}

#[test]
fn request_on_a_full_instant_lodging_is_denied_at_once() {
    let state = given::<L>([
        instant(1),
        requested(1, stay_a()),
        E::ApprovalGranted {
            reservation_id: rid(1),
            granted_by: "instant".to_string(),
        },
    ])
    .when(request_cmd(2, stay_b()))
    .then([
        requested(2, stay_b()),
        E::ApprovalDenied {
            reason: "no free room on 2030-06-12".to_string(),
            reservation_id: rid(2),
            denied_by: "instant".to_string(),
        },
    ]);
    assert_eq!(state.requests[&rid(2)].status, RequestStatus::Denied);
    assert_eq!(state.booked, nights(&[(10, 1), (11, 1), (12, 1)]));
}

// ---- Grant ----

#[test]
fn grant_of_a_pending_request_books_every_night() {
    let state = given::<L>([registered(1), requested(1, stay_a())])
        .when(grant_cmd(1, stay_a()))
        .then([granted(1)]);
    assert_eq!(state.booked, nights(&[(10, 1), (11, 1), (12, 1)]));
    assert_eq!(state.requests[&rid(1)].status, RequestStatus::Granted);
}

#[test]
fn admin_may_grant_before_the_saga_forwards_the_request() {
    let state = given::<L>([registered(1)])
        .when(grant_cmd(1, stay_a()))
        .then([requested(1, stay_a()), granted(1)]);
    assert_eq!(state.booked, nights(&[(10, 1), (11, 1), (12, 1)]));
    // The saga's forward arrives later: nothing more happens.
    Given::<L>::with_state(state)
        .when(request_cmd(1, stay_a()))
        .then_nothing();
}

#[test]
fn grant_uses_the_stay_already_requested() {
    let state = given::<L>([registered(1), requested(1, stay_a())])
        .when(grant_cmd(1, stay_c()))
        .then([granted(1)]);
    assert_eq!(state.booked, nights(&[(10, 1), (11, 1), (12, 1)]));
}

#[test]
fn grant_without_a_free_room_on_a_night_is_rejected() {
    let full = [
        registered(1),
        requested(1, stay_a()),
        granted(1),
        requested(2, stay_b()),
    ];
    given::<L>(full.clone())
        .when(grant_cmd(2, stay_b()))
        .then_err(LodgingError::NoRoom {
            night: date(2030, 6, 12),
        });
    // Also when the admin decides before the saga forwards the request.
    given::<L>(full)
        .when(grant_cmd(3, stay_b()))
        .then_err(LodgingError::NoRoom {
            night: date(2030, 6, 12),
        });
}

#[test]
fn grant_of_a_stay_starting_on_check_out_day_does_not_clash() {
    given::<L>([registered(1), requested(1, stay_a()), granted(1)])
        .when(grant_cmd(3, stay_c()))
        .then([requested(3, stay_c()), granted(3)]);
}

#[test]
fn grant_fills_every_room_then_refuses() {
    let state = given::<L>([
        registered(2),
        requested(1, stay_a()),
        granted(1),
        requested(2, stay_b()),
    ])
    .when(grant_cmd(2, stay_b()))
    .then([granted(2)]);
    assert_eq!(state.booked, nights(&[(10, 1), (11, 1), (12, 2), (13, 1)]));
    let third = Stay {
        rooms: 1,
        check_in: date(2030, 6, 11),
        check_out: date(2030, 6, 14),
        guests: 1,
    };
    Given::<L>::with_state(state)
        .when(grant_cmd(3, third))
        .then_err(LodgingError::NoRoom {
            night: date(2030, 6, 12),
        });
}

#[test]
fn grant_of_a_decided_request_is_rejected() {
    let cases = [
        (vec![granted(1)], RequestStatus::Granted),
        (vec![denied(1)], RequestStatus::Denied),
        (vec![withdrawn(1, "expired")], RequestStatus::Withdrawn),
    ];
    for (decided, status) in cases {
        let mut history = vec![registered(2), requested(1, stay_a())];
        history.extend(decided);
        given::<L>(history)
            .when(grant_cmd(1, stay_a()))
            .then_err(LodgingError::AlreadyDecided { status });
    }
}

// ---- Deny ----

#[test]
fn deny_of_a_pending_request_books_nothing() {
    let state = given::<L>([registered(1), requested(1, stay_a())])
        .when(deny_cmd(1, stay_a()))
        .then([denied(1)]);
    assert_eq!(state.requests[&rid(1)].status, RequestStatus::Denied);
    assert!(state.booked.is_empty());
}

#[test]
fn admin_may_deny_before_the_saga_forwards_the_request() {
    let state = given::<L>([registered(1)])
        .when(deny_cmd(1, stay_a()))
        .then([requested(1, stay_a()), denied(1)]);
    Given::<L>::with_state(state)
        .when(request_cmd(1, stay_a()))
        .then_nothing();
}

#[test]
fn deny_of_a_decided_request_is_rejected() {
    let cases = [
        (vec![granted(1)], RequestStatus::Granted),
        (vec![denied(1)], RequestStatus::Denied),
        (vec![withdrawn(1, "expired")], RequestStatus::Withdrawn),
    ];
    for (decided, status) in cases {
        let mut history = vec![registered(1), requested(1, stay_a())];
        history.extend(decided);
        given::<L>(history)
            .when(deny_cmd(1, stay_a()))
            .then_err(LodgingError::AlreadyDecided { status });
    }
}

// ---- Withdraw ----

#[test]
fn withdraw_of_a_granted_request_frees_its_rooms() {
    let state = given::<L>([
        registered(1),
        requested(1, stay_a()),
        granted(1),
        requested(2, stay_b()),
    ])
    .when(withdraw_cmd(1, "reservation cancelled"))
    .then([withdrawn(1, "reservation cancelled")]);
    assert!(state.booked.is_empty());
    assert_eq!(state.requests[&rid(1)].status, RequestStatus::Withdrawn);
    // The night is free again: the other request can now be granted.
    Given::<L>::with_state(state)
        .when(grant_cmd(2, stay_b()))
        .then([granted(2)]);
}

#[test]
fn withdraw_of_a_pending_request_closes_it() {
    let state = given::<L>([registered(1), requested(1, stay_a())])
        .when(withdraw_cmd(1, "approval deadline passed"))
        .then([withdrawn(1, "approval deadline passed")]);
    Given::<L>::with_state(state)
        .when(grant_cmd(1, stay_a()))
        .then_err(LodgingError::AlreadyDecided {
            status: RequestStatus::Withdrawn,
        });
}

#[test]
fn withdraw_replayed_or_of_a_denied_or_unknown_request_is_a_no_op() {
    let histories = [
        vec![registered(1)],
        vec![registered(1), requested(1, stay_a()), denied(1)],
        vec![
            registered(1),
            requested(1, stay_a()),
            granted(1),
            withdrawn(1, "payment failed"),
        ],
    ];
    for history in histories {
        given::<L>(history)
            .when(withdraw_cmd(1, "payment failed"))
            .then_nothing();
    }
}

#[test]
fn withdraw_frees_only_the_withdrawn_stay() {
    let state = given::<L>([
        registered(2),
        requested(1, stay_a()),
        granted(1),
        requested(2, stay_b()),
        granted(2),
    ])
    .when(withdraw_cmd(2, "cancelled"))
    .then([withdrawn(2, "cancelled")]);
    assert_eq!(state.booked, nights(&[(10, 1), (11, 1), (12, 1)]));
}

// ---- evolve, compact, helpers ----

#[test]
fn a_grant_event_seen_twice_books_once() {
    let state = given::<L>([
        registered(1),
        requested(1, stay_a()),
        granted(1),
        granted(1),
    ]);
    assert_eq!(state.state().booked, nights(&[(10, 1), (11, 1), (12, 1)]));
}

#[test]
fn compact_drops_past_nights_and_ended_requests() {
    let history = [
        registered(2),
        requested(1, stay_a()),
        granted(1),
        requested(2, stay_b()),
        granted(2),
        requested(3, stay_c()),
    ];
    let state = L::fold(LodgingApproval::default(), &history);
    // On the 13th: stay A has ended, B is in its last night, C starts.
    let compacted = L::compact(state, at(2030, 6, 13, 8));
    assert_eq!(compacted.booked, nights(&[(13, 1)]));
    let kept: BTreeSet<_> = compacted.requests.keys().copied().collect();
    assert_eq!(kept, BTreeSet::from([rid(2), rid(3)]));
    assert!(compacted.profile.is_some());
    // Decisions go on from the compacted state: two rooms on the 13th, one taken by B.
    let state = Given::<L>::with_state(compacted)
        .when(grant_cmd(3, stay_c()))
        .at(at(2030, 6, 13, 8))
        .then([granted(3)]);
    assert_eq!(state.booked, nights(&[(13, 2), (14, 1)]));
    // A withdrawal of the stay that was dropped is a no-op.
    Given::<L>::with_state(state)
        .when(withdraw_cmd(1, "late"))
        .then_nothing();
}

#[test]
fn compact_keeps_everything_still_ahead() {
    let history = [registered(1), requested(1, stay_a()), granted(1)];
    let state = L::fold(LodgingApproval::default(), &history);
    assert_eq!(L::compact(state.clone(), at(2030, 6, 1, 0)), state);
}

/// A one-room instant lodging in `zone` whose night of 2030-06-09 is booked.
fn booked_on_the_9th(zone: Tz) -> LodgingApproval {
    let night = Stay {
        rooms: 1,
        check_in: date(2030, 6, 9),
        check_out: date(2030, 6, 10),
        guests: 1,
    };
    let registered = E::LodgingRegistered(LodgingProfile {
        timezone: zone,
        ..profile(1, ApprovalMode::Instant)
    });
    L::fold(
        LodgingApproval::default(),
        &[registered, requested(1, night), granted(1)],
    )
}

#[test]
fn compact_keeps_tonight_west_of_utc_where_the_utc_date_is_already_tomorrow() {
    // 2030-06-10 03:00 UTC is 20:00 on the 9th in Los Angeles: tonight's room is still taken.
    let now = at(2030, 6, 10, 3);
    let compacted = L::compact(booked_on_the_9th(Tz::America__Los_Angeles), now);
    assert_eq!(compacted.booked, nights(&[(9, 1)]));
    let tonight = Stay {
        rooms: 1,
        check_in: date(2030, 6, 9),
        check_out: date(2030, 6, 10),
        guests: 1,
    };
    Given::<L>::with_state(compacted)
        .when(request_cmd(2, tonight))
        .at(now)
        .then([
            requested(2, tonight),
            E::ApprovalDenied {
                reason: "no free room on 2030-06-09".to_string(),
                reservation_id: rid(2),
                denied_by: "instant".to_string(),
            },
        ]);
}

#[test]
fn compact_drops_a_night_at_local_midnight_east_of_utc() {
    // 2030-06-09 14:59 UTC is 23:59 on the 9th in Seoul, 15:00 UTC is midnight of the 10th.
    let seoul = booked_on_the_9th(Tz::Asia__Seoul);
    let before = L::compact(seoul.clone(), at_hm(2030, 6, 9, 14, 59));
    assert_eq!(before.booked, nights(&[(9, 1)]));
    let after = L::compact(seoul, at_hm(2030, 6, 9, 15, 0));
    assert_eq!(after.booked, nights(&[]));
    assert!(after.requests.is_empty());
}

#[test]
fn a_lodging_registered_before_time_zones_reads_as_seoul() {
    let v2 = E::LodgingRegistered(LodgingProfile {
        timezone: Tz::America__Los_Angeles,
        ..profile(2, ApprovalMode::Manual)
    });
    let payload = v2.payload();
    assert_eq!(
        payload["timezone"],
        serde_json::json!("America/Los_Angeles")
    );
    let mut v1 = payload.clone();
    v1.as_object_mut().expect("object").remove("timezone");
    assert_eq!(
        LodgingEvent::decode("LodgingRegistered", 1, &v1),
        Ok(E::LodgingRegistered(LodgingProfile {
            timezone: Tz::Asia__Seoul,
            ..profile(2, ApprovalMode::Manual)
        }))
    );
    // Version 2 must name its zone, and a real one.
    assert!(LodgingEvent::decode("LodgingRegistered", 2, &v1).is_err());
    let mut unknown = payload;
    unknown["timezone"] = serde_json::json!("Mars/Olympus_Mons");
    assert!(LodgingEvent::decode("LodgingRegistered", 2, &unknown).is_err());
}

#[test]
fn first_full_night_finds_the_first_night_without_a_room() {
    let state = L::fold(
        LodgingApproval::default(),
        &[registered(1), requested(1, stay_b()), granted(1)],
    );
    assert_eq!(state.first_full_night(&stay_a()), Some(date(2030, 6, 12)));
    assert_eq!(
        state.first_full_night(&Stay {
            rooms: 1,
            check_in: date(2030, 6, 14),
            check_out: date(2030, 6, 20),
            guests: 1
        }),
        None
    );
}

#[test]
fn events_name_their_reservation() {
    assert_eq!(registered(1).reservation_id(), None);
    for event in [
        requested(7, stay_a()),
        granted(7),
        denied(7),
        withdrawn(7, "x"),
    ] {
        assert_eq!(event.reservation_id(), Some(rid(7)));
    }
}

#[test]
fn stream_name_is_prefixed() {
    assert_eq!(L::stream_name("lodging-1"), "lodging-lodging-1");
}

#[test]
fn every_lodging_event_round_trips() {
    let events = [
        registered(3),
        instant(1),
        requested(1, stay_a()),
        granted(1),
        denied(1),
        withdrawn(1, "reservation cancelled"),
    ];
    let types: BTreeSet<_> = events.iter().map(DomainEvent::event_type).collect();
    assert_eq!(types.len(), 5, "one of each event type");
    for event in &events {
        assert_round_trip(event);
    }
    assert_eq!(
        instant(1).payload()["approval_mode"],
        serde_json::json!("instant")
    );
}

#[test]
fn the_state_serializes_as_ordered_json_objects_as_snapshots_always_did() {
    let history = [
        registered(2),
        requested(2, stay_b()),
        requested(1, stay_a()),
        granted(1),
    ];
    let state = L::fold(LodgingApproval::default(), &history);
    let json = serde_json::to_value(&state).expect("serialize");
    let a = stay_a();
    let b = stay_b();
    let request = |stay: Stay, status: &str| serde_json::json!({"stay": serde_json::to_value(stay).expect("stay"), "status": status});
    let expected = serde_json::json!({
        "profile": serde_json::to_value(profile(2, ApprovalMode::Manual)).expect("profile"),
        "status": "active",
        "requests": {
            rid(1).to_string(): request(a, "granted"),
            rid(2).to_string(): request(b, "pending"),
        },
        "booked": {"2030-06-10": 1, "2030-06-11": 1, "2030-06-12": 1},
    });
    assert_eq!(json, expected);
    let keys: Vec<_> = json["requests"]
        .as_object()
        .expect("object")
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        keys,
        [rid(1).to_string(), rid(2).to_string()],
        "in key order"
    );
    let back: LodgingApproval = serde_json::from_value(json.clone()).expect("deserialize");
    assert_eq!(back, state);
    // A snapshot taken before listings had a status is of a registered, so active, lodging.
    let mut older = json;
    older.as_object_mut().expect("object").remove("status");
    let back: LodgingApproval = serde_json::from_value(older).expect("deserialize");
    assert_eq!(back, state);
}

#[path = "pay_first_tests.rs"]
mod pay_first;
