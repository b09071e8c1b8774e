//! Property tests of the domain's invariants over any sequence of commands.
//!
//! (a) No night of a lodging is ever booked beyond its rooms, whatever mix of requests (of 1..3
//!     rooms), grants, denials, withdrawals, room changes and closes arrives (and `booked` always
//!     equals what the granted-and-not-withdrawn requests add up to, recomputed independently from
//!     the events).
//! (b) For each aggregate, decide-then-evolve never panics on any command sequence, a rejected
//!     command leaves the state as it was, and commands replayed by the saga are no-ops.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{NaiveDate, TimeDelta, TimeZone, Utc};
use domain::lodging::{
    ApprovalMode, LodgingAggregate, LodgingApproval, LodgingChanges, LodgingCommand, LodgingError,
    LodgingEvent, LodgingProfile, RequestStatus,
};
use domain::payment::{PaymentAggregate, PaymentCommand, PaymentEvent, PaymentStatus};
use domain::reservation::{
    LodgingTerms, ReservationAggregate, ReservationCommand, ReservationError, ReservationEvent,
    ReservationRequested,
};
use domain::saga::{
    ReservationSaga, SagaAction, SagaEvent, SagaInput, SagaPolicy, SagaState, SagaTrigger,
    TimerKind,
};
use domain::{Aggregate, ReservationId, Stay, Timestamp};
use proptest::prelude::*;
use uuid::Uuid;

fn base_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2030, 6, 10).expect("valid date")
}

fn now0() -> Timestamp {
    Utc.with_ymd_and_hms(2030, 6, 1, 10, 0, 0)
        .single()
        .expect("valid instant")
}

fn rid(n: u8) -> ReservationId {
    Uuid::from_u128(u128::from(n) + 1)
}

/// A stay of 1..3 rooms in a 12-day window; zero-night (and so empty) stays are included on purpose.
fn stay() -> impl Strategy<Value = Stay> {
    (0_i64..10, 0_i64..5, 1_u32..4, 1_u32..=3).prop_map(|(start, nights, guests, rooms)| {
        let check_in = base_day() + TimeDelta::days(start);
        Stay {
            check_in,
            check_out: check_in + TimeDelta::days(nights),
            guests,
            rooms,
        }
    })
}

// ---------------------------------------------------------------------------------------------
// (a) LodgingApproval: no night is ever overbooked
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum DeskOp {
    Request(u8, Stay),
    Grant(u8, Stay),
    Deny(u8, Stay),
    Withdraw(u8),
    /// The saga saw the request's payment complete (`pay_first`).
    Pay(u8),
    /// Its admin changes the lodging's rooms.
    Rooms(u32),
    Close,
}

/// The lodging every desk property runs on.
fn desk_profile(rooms: u32, approval_mode: ApprovalMode) -> LodgingProfile {
    LodgingProfile {
        fee_bps: 1_000,
        lodging_id: "l1".to_string(),
        name: "Inn".to_string(),
        nightly_rate: 100,
        currency: "EUR".to_string(),
        rooms,
        max_guests: 3,
        approval_mode,
        admin_id: "admin".to_string(),
        timezone: domain::Tz::UTC,
    }
}

fn desk_op() -> impl Strategy<Value = DeskOp> {
    prop_oneof![
        (0_u8..8, stay()).prop_map(|(n, s)| DeskOp::Request(n, s)),
        (0_u8..8, stay()).prop_map(|(n, s)| DeskOp::Grant(n, s)),
        (0_u8..8, stay()).prop_map(|(n, s)| DeskOp::Deny(n, s)),
        (0_u8..8).prop_map(DeskOp::Withdraw),
        (0_u8..8).prop_map(DeskOp::Pay),
        (1_u32..=4).prop_map(DeskOp::Rooms),
        Just(DeskOp::Close),
    ]
}

fn desk_command(op: &DeskOp) -> LodgingCommand {
    match op {
        DeskOp::Request(n, stay) => LodgingCommand::RequestApproval {
            reservation_id: rid(*n),
            stay: *stay,
        },
        DeskOp::Grant(n, stay) => LodgingCommand::Grant {
            reservation_id: rid(*n),
            stay: *stay,
            granted_by: "admin".to_string(),
        },
        DeskOp::Deny(n, stay) => LodgingCommand::Deny {
            reservation_id: rid(*n),
            stay: *stay,
            reason: "no".to_string(),
            denied_by: "admin".to_string(),
        },
        DeskOp::Withdraw(n) => LodgingCommand::Withdraw {
            reservation_id: rid(*n),
            reason: "cancelled".to_string(),
        },
        DeskOp::Pay(n) => LodgingCommand::MarkPaid {
            reservation_id: rid(*n),
        },
        DeskOp::Rooms(rooms) => LodgingCommand::Update(LodgingChanges {
            rooms: Some(*rooms),
            updated_by: "admin".to_string(),
            ..LodgingChanges::default()
        }),
        DeskOp::Close => LodgingCommand::Close {
            reason: "season over".to_string(),
            closed_by: "admin".to_string(),
        },
    }
}

/// What the events say, kept independently of the aggregate's own state.
#[derive(Default)]
struct CalendarModel {
    /// The lodging's rooms, as registered and changed.
    rooms: u32,
    stays: BTreeMap<ReservationId, Stay>,
    decided: BTreeSet<ReservationId>,
    active: BTreeSet<ReservationId>,
    /// Pending `pay_first` requests holding their nights.
    holding: BTreeSet<ReservationId>,
    paid: BTreeSet<ReservationId>,
}

impl CalendarModel {
    fn apply(&mut self, event: &LodgingEvent) -> Result<(), TestCaseError> {
        match event {
            LodgingEvent::LodgingRegistered(profile) => self.rooms = profile.rooms,
            LodgingEvent::LodgingUpdated(changes) => {
                self.rooms = changes.rooms.unwrap_or(self.rooms);
            }
            LodgingEvent::ListingSubmitted(_)
            | LodgingEvent::ListingApproved { .. }
            | LodgingEvent::ListingRejected { .. }
            | LodgingEvent::LodgingClosed { .. } => {}
            LodgingEvent::ApprovalRequested {
                reservation_id,
                check_in,
                check_out,
                guests,
                rooms,
            } => {
                let stay = Stay {
                    check_in: *check_in,
                    check_out: *check_out,
                    guests: *guests,
                    rooms: *rooms,
                };
                prop_assert!(
                    self.stays.insert(*reservation_id, stay).is_none(),
                    "a request is recorded once"
                );
            }
            LodgingEvent::ApprovalGranted { reservation_id, .. } => {
                prop_assert!(self.stays.contains_key(reservation_id), "granted unknown");
                prop_assert!(self.decided.insert(*reservation_id), "decided twice");
                let held = self.holding.remove(reservation_id);
                prop_assert!(
                    !held || self.paid.contains(reservation_id),
                    "granted unpaid"
                );
                self.active.insert(*reservation_id);
            }
            LodgingEvent::ApprovalDenied { reservation_id, .. } => {
                prop_assert!(self.stays.contains_key(reservation_id), "denied unknown");
                prop_assert!(self.decided.insert(*reservation_id), "decided twice");
                self.holding.remove(reservation_id);
            }
            LodgingEvent::ApprovalWithdrawn { reservation_id, .. } => {
                prop_assert!(self.stays.contains_key(reservation_id), "withdrew unknown");
                self.decided.insert(*reservation_id);
                self.active.remove(reservation_id);
                self.holding.remove(reservation_id);
            }
            LodgingEvent::NightsHeld { reservation_id } => {
                prop_assert!(!self.decided.contains(reservation_id), "held a decided one");
                prop_assert!(self.holding.insert(*reservation_id), "held twice");
            }
            LodgingEvent::RequestPaid { reservation_id } => {
                prop_assert!(self.holding.contains(reservation_id), "paid but not held");
                prop_assert!(self.paid.insert(*reservation_id), "paid twice");
            }
        }
        Ok(())
    }

    /// Rooms taken per night by the granted-and-not-withdrawn stays.
    fn booked(&self) -> BTreeMap<NaiveDate, u32> {
        self.nights(&self.active)
    }

    /// Rooms held per night by pending `pay_first` requests.
    fn held(&self) -> BTreeMap<NaiveDate, u32> {
        self.nights(&self.holding)
    }

    /// Booked and held.
    fn taken(&self, night: NaiveDate) -> u32 {
        self.booked().get(&night).copied().unwrap_or(0)
            + self.held().get(&night).copied().unwrap_or(0)
    }

    fn nights(&self, ids: &BTreeSet<ReservationId>) -> BTreeMap<NaiveDate, u32> {
        let mut booked = BTreeMap::new();
        for id in ids {
            let stay = self.stays[id];
            let mut night = stay.check_in;
            while night < stay.check_out {
                *booked.entry(night).or_insert(0) += stay.rooms;
                night += TimeDelta::days(1);
            }
        }
        booked
    }
}

fn check_calendar(state: &LodgingApproval, model: &CalendarModel) -> Result<(), TestCaseError> {
    let rooms = model.rooms;
    prop_assert_eq!(state.profile.as_ref().map(|p| p.rooms), Some(rooms));
    for (night, count) in &state.booked {
        prop_assert!(
            (1..=rooms).contains(count),
            "{night}: {count} booked of {rooms}"
        );
    }
    let booked: BTreeMap<_, _> = state.booked.clone().into_iter().collect();
    prop_assert_eq!(&booked, &model.booked(), "booked vs. the events");
    let held: BTreeMap<_, _> = state.held.clone().into_iter().collect();
    prop_assert_eq!(&held, &model.held(), "held vs. the events");
    for (night, count) in &held {
        prop_assert!(
            model.taken(*night) <= rooms,
            "{night}: {count} held beyond {rooms}"
        );
    }
    let granted: BTreeSet<_> = state
        .requests
        .iter()
        .filter(|(_, r)| r.status == RequestStatus::Granted)
        .map(|(id, _)| *id)
        .collect();
    prop_assert_eq!(&granted, &model.active, "granted requests vs. the events");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_night_is_ever_booked_beyond_the_rooms(
        rooms in 1_u32..=3,
        mode in prop::sample::select(ApprovalMode::ALL.to_vec()),
        ops in prop::collection::vec(desk_op(), 1..60),
    ) {
        let profile = desk_profile(rooms, mode);
        let mut state = LodgingApproval::default();
        let mut model = CalendarModel::default();
        for event in LodgingAggregate::decide(&state, &LodgingCommand::Register(profile), now0())
            .map_err(|e| TestCaseError::fail(e.to_string()))?
        {
            model.apply(&event)?;
            state = LodgingAggregate::evolve(state, &event);
        }
        for op in &ops {
            let before = state.clone();
            // A paid request is never turned away for lack of room.
            let paid_pending = match op {
                DeskOp::Grant(n, _) => state.requests.get(&rid(*n)).is_some_and(|r| {
                    r.held && r.paid && r.status == RequestStatus::Pending
                }),
                _ => false,
            };
            let decided = LodgingAggregate::decide(&state, &desk_command(op), now0());
            prop_assert!(!paid_pending || decided.is_ok(), "a paid request turned away: {:?}", decided);
            match decided {
                Ok(events) => {
                    for event in &events {
                        model.apply(event)?;
                        state = LodgingAggregate::evolve(state, event);
                    }
                }
                Err(LodgingError::NoRoom { night }) => {
                    prop_assert_eq!(&state, &before);
                    let taken = model.taken(night);
                    let asked = match op {
                        DeskOp::Grant(n, stay) => state.requests.get(&rid(*n)).map_or(stay.rooms, |r| r.stay.rooms),
                        _ => 0,
                    };
                    prop_assert!(taken + asked > model.rooms, "NoRoom on {} with {} of {} taken, {} asked", night, taken, model.rooms, asked);
                }
                Err(LodgingError::WouldOverbook { night, booked }) => {
                    prop_assert_eq!(&state, &before);
                    prop_assert_eq!(model.taken(night), booked);
                    let DeskOp::Rooms(fewer) = op else {
                        return Err(TestCaseError::fail(format!("WouldOverbook for {op:?}")));
                    };
                    prop_assert!(booked > *fewer);
                }
                Err(LodgingError::WrongListingStatus { .. }) => {
                    // Only a closed lodging refuses changes here.
                    prop_assert_eq!(&state, &before);
                    prop_assert_eq!(state.status, domain::lodging::ListingStatus::Closed);
                }
                Err(LodgingError::AlreadyDecided { status }) => {
                    prop_assert_eq!(&state, &before);
                    prop_assert_ne!(status, RequestStatus::Pending);
                }
                Err(LodgingError::NotPaid) => {
                    // Only an unpaid held request, or one a pay-first desk has not seen.
                    prop_assert_eq!(&state, &before);
                    let n = match op {
                        DeskOp::Grant(n, _) | DeskOp::Deny(n, _) => rid(*n),
                        _ => return Err(TestCaseError::fail(format!("NotPaid for {op:?}"))),
                    };
                    let pay_first = state.profile.as_ref().map(|p| p.approval_mode) == Some(ApprovalMode::PayFirst);
                    let unpaid_hold = model.holding.contains(&n) && !model.paid.contains(&n);
                    prop_assert!(unpaid_hold || (pay_first && !model.stays.contains_key(&n)));
                }
                Err(other) => prop_assert!(false, "unexpected rejection {:?} of {:?}", other, op),
            }
            check_calendar(&state, &model)?;
        }
    }
}

/// The state with nothing but its value (what a snapshot keeps): compaction starts from scratch.
fn reloaded(state: &LodgingApproval) -> Result<LodgingApproval, TestCaseError> {
    let json = serde_json::to_value(state).map_err(|e| TestCaseError::fail(e.to_string()))?;
    serde_json::from_value(json).map_err(|e| TestCaseError::fail(e.to_string()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A desk compacted on every command, as the repository does, with the clock moving on (and
    /// sometimes back), decides and ends up exactly as one compacted from scratch each time: the
    /// skipped same-day compactions never keep anything a full one would drop.
    #[test]
    fn compacting_on_every_command_equals_compacting_from_scratch(
        rooms in 1_u32..=3,
        steps in prop::collection::vec((desk_op(), -1_i64..2, 0_u32..24), 1..80),
    ) {
        let registered = LodgingEvent::LodgingRegistered(desk_profile(rooms, ApprovalMode::Manual));
        let mut kept = LodgingAggregate::evolve(LodgingApproval::default(), &registered);
        let mut fresh = kept.clone();
        // The clock starts a few days before the stays' window and drifts through it.
        let mut day = base_day() - TimeDelta::days(3);
        for (op, drift, hour) in &steps {
            day += TimeDelta::days(*drift);
            let now = Utc.from_utc_datetime(&day.and_hms_opt(*hour, 0, 0).expect("valid time"));
            kept = LodgingAggregate::compact(kept, now);
            fresh = LodgingAggregate::compact(reloaded(&fresh)?, now);
            prop_assert_eq!(&kept, &fresh);
            let command = desk_command(op);
            let decided = LodgingAggregate::decide(&kept, &command, now);
            prop_assert_eq!(&decided, &LodgingAggregate::decide(&fresh, &command, now));
            for event in decided.unwrap_or_default() {
                kept = LodgingAggregate::evolve(kept, &event);
                fresh = LodgingAggregate::evolve(fresh, &event);
            }
        }
        let now = Utc.from_utc_datetime(&day.and_hms_opt(23, 0, 0).expect("valid time"));
        prop_assert_eq!(
            LodgingAggregate::compact(kept, now),
            LodgingAggregate::compact(reloaded(&fresh)?, now)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// (b) Reservation: random commands
// ---------------------------------------------------------------------------------------------

fn terms(max_guests: u32) -> LodgingTerms {
    LodgingTerms {
        lodging_id: "l1".to_string(),
        nightly_rate: 100,
        currency: "EUR".to_string(),
        max_guests,
        rooms: 3,
        timezone: domain::Tz::UTC,
    }
}

fn reservation_command() -> impl Strategy<Value = ReservationCommand> {
    let retry_at = (0_i64..4).prop_map(|h| now0() + TimeDelta::hours(h));
    prop_oneof![
        (stay(), -10_i64..40, 1_u32..3).prop_map(|(stay, extra, max_guests)| {
            let stay = Stay {
                check_out: stay.check_in + TimeDelta::days(extra),
                ..stay
            };
            ReservationCommand::Request {
                reservation_id: rid(0),
                customer_id: "c1".to_string(),
                lodging: terms(max_guests),
                stay,
            }
        }),
        Just(ReservationCommand::RecordApproval {
            approved_by: "admin".to_string()
        }),
        Just(ReservationCommand::Reject {
            reason: "no".to_string()
        }),
        retry_at.prop_map(|retry_at| ReservationCommand::RecordPaymentPending {
            reason: "overloaded".to_string(),
            retry_at,
        }),
        (0_i64..500).prop_map(|amount| ReservationCommand::Confirm {
            payment_id: "p1".to_string(),
            amount,
        }),
        Just(ReservationCommand::RecordPaymentFailure {
            reason: "declined".to_string()
        }),
        Just(ReservationCommand::Cancel {
            cancelled_by: "c1".to_string(),
            reason: "changed".to_string(),
            timezone: domain::Tz::UTC,
        }),
        Just(ReservationCommand::CancelAsAdmin {
            cancelled_by: "admin:host".to_string(),
            reason: "burst pipe".to_string(),
        }),
        (0_i64..500).prop_map(|amount| ReservationCommand::RecordRefund { amount }),
        Just(ReservationCommand::Expire),
    ]
}

/// Commands the saga sends, which it may send again after a crash.
fn sent_by_saga(command: &ReservationCommand) -> bool {
    !matches!(
        command,
        ReservationCommand::Cancel { .. } | ReservationCommand::CancelAsAdmin { .. }
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn reservation_decisions_never_panic_and_rejections_change_nothing(
        steps in prop::collection::vec((reservation_command(), 0_i64..20), 1..40),
    ) {
        let mut state = ReservationAggregate::fold(Default::default(), &[]);
        let mut ever_confirmed = false;
        for (command, hours) in &steps {
            let now = now0() + TimeDelta::hours(*hours * 12);
            let before = state.clone();
            match ReservationAggregate::decide(&state, command, now) {
                Ok(events) => {
                    state = ReservationAggregate::fold(state, &events);
                    ever_confirmed |= events.iter().any(|e| matches!(e, ReservationEvent::ReservationConfirmed { .. }));
                    if before.status.is_terminal() {
                        prop_assert_eq!(state.status, before.status, "a terminal status never changes");
                    }
                    if !events.is_empty() && sent_by_saga(command) {
                        let again = ReservationAggregate::decide(&state, command, now);
                        prop_assert_eq!(again, Ok(vec![]), "replayed {:?}", command);
                    }
                }
                Err(error) => {
                    prop_assert_eq!(&state, &before);
                    if let ReservationError::NotFound = error {
                        prop_assert!(state.details.is_none());
                    }
                }
            }
            if let Some(details) = &state.details {
                prop_assert!(is_valid_request(details), "{:?}", details);
            }
            prop_assert!(state.refund_due >= 0);
            if state.refund_due > 0 {
                prop_assert!(ever_confirmed, "a refund is due only for a confirmed stay");
                prop_assert_eq!(Some(state.refund_due), state.paid_amount);
            }
        }
    }
}

fn is_valid_request(details: &ReservationRequested) -> bool {
    (1..=30).contains(&details.nights)
        && details.check_out > details.check_in
        && (1..=3).contains(&details.rooms)
        && details.guests >= 1
        && details.guests <= 3 * details.rooms
        && details.total_amount == 100 * i64::from(details.nights) * i64::from(details.rooms)
}

// ---------------------------------------------------------------------------------------------
// (b) Payment: random commands
// ---------------------------------------------------------------------------------------------

fn payment_command() -> impl Strategy<Value = PaymentCommand> {
    prop_oneof![
        (-5_i64..500).prop_map(|amount| PaymentCommand::Request {
            reservation_id: rid(0),
            amount,
            currency: "EUR".to_string(),
        }),
        (0_i64..4).prop_map(|h| PaymentCommand::Defer {
            reason: "open circuit".to_string(),
            retry_at: now0() + TimeDelta::hours(h),
        }),
        (0_i64..4).prop_map(|h| PaymentCommand::DeferUncounted {
            reason: "open circuit".to_string(),
            retry_at: now0() + TimeDelta::hours(h),
        }),
        (0_u8..3).prop_map(|n| PaymentCommand::Complete {
            payment_id: format!("p{n}"),
            gateway_ref: format!("ch_{n}"),
            amount: 300,
        }),
        Just(PaymentCommand::Fail {
            reason: "declined".to_string()
        }),
        Just(PaymentCommand::Refund {
            amount: 300,
            gateway_ref: "re_1".to_string()
        }),
        Just(PaymentCommand::Void {
            reason: "cancelled".to_string()
        }),
        Just(PaymentCommand::RetryNow {
            requested_by: "admin".to_string()
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn payment_decisions_never_panic_and_rejections_change_nothing(
        commands in prop::collection::vec(payment_command(), 1..40),
    ) {
        let mut state = PaymentAggregate::fold(Default::default(), &[]);
        let mut charges = 0_u32;
        for command in &commands {
            let before = state.clone();
            match PaymentAggregate::decide(&state, command, now0()) {
                Ok(events) => {
                    charges += u32::try_from(events.iter().filter(|e| matches!(e, PaymentEvent::PaymentCompleted { .. })).count()).unwrap_or(u32::MAX);
                    state = PaymentAggregate::fold(state, &events);
                    let idempotent = !matches!(command, PaymentCommand::Defer { .. } | PaymentCommand::DeferUncounted { .. } | PaymentCommand::RetryNow { .. });
                    if !events.is_empty() && idempotent {
                        let again = PaymentAggregate::decide(&state, command, now0());
                        prop_assert_eq!(again, Ok(vec![]), "replayed {:?}", command);
                    }
                }
                Err(_) => prop_assert_eq!(&state, &before),
            }
            prop_assert!(charges <= 1, "a payment is charged at most once");
            prop_assert!(state.amount >= 0);
            if before.status == PaymentStatus::Refunded {
                prop_assert_eq!(state.status, PaymentStatus::Refunded, "a refund is final");
            }
            if before.status == PaymentStatus::Completed {
                prop_assert!(matches!(state.status, PaymentStatus::Completed | PaymentStatus::Refunded));
            }
            prop_assert_eq!(state.charge_ref.is_some(), charges == 1);
            prop_assert_eq!(state.refunded_amount.is_some(), state.status == PaymentStatus::Refunded);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// (b) Saga: random inputs
// ---------------------------------------------------------------------------------------------

fn requested_details() -> ReservationRequested {
    ReservationRequested {
        timezone: domain::WAVE1_TIMEZONE,
        rooms: 1,
        reservation_id: rid(0),
        customer_id: "c1".to_string(),
        lodging_id: "l1".to_string(),
        check_in: base_day(),
        check_out: base_day() + TimeDelta::days(2),
        guests: 1,
        nights: 2,
        total_amount: 200,
        currency: "EUR".to_string(),
    }
}

fn saga_input() -> impl Strategy<Value = SagaInput> {
    let reservation = prop_oneof![
        Just(ReservationEvent::ReservationRequested(requested_details())),
        Just(ReservationEvent::ReservationApproved {
            approved_by: "admin".to_string()
        }),
        Just(ReservationEvent::ReservationRejected {
            reason: "no".to_string()
        }),
        Just(ReservationEvent::ReservationConfirmed {
            payment_id: "p1".to_string(),
            amount: 200
        }),
        Just(ReservationEvent::ReservationPaymentFailed {
            reason: "declined".to_string()
        }),
        Just(ReservationEvent::ReservationCancelled {
            cancelled_by: "c1".to_string(),
            reason: "changed".to_string(),
            refund_due: 0
        }),
        Just(ReservationEvent::ReservationExpired {}),
    ];
    let lodging = prop_oneof![
        (0_u8..2).prop_map(|n| LodgingEvent::ApprovalGranted {
            reservation_id: rid(n),
            granted_by: "admin".to_string()
        }),
        (0_u8..2).prop_map(|n| LodgingEvent::ApprovalDenied {
            reason: "no".to_string(),
            reservation_id: rid(n),
            denied_by: "admin".to_string()
        }),
        Just(LodgingEvent::ApprovalWithdrawn {
            reservation_id: rid(0),
            reason: "cancelled".to_string()
        }),
    ];
    let payment = prop_oneof![
        Just(PaymentEvent::PaymentRequested {
            reservation_id: rid(0),
            amount: 200,
            currency: "EUR".to_string()
        }),
        (1_u32..5, 0_i64..100).prop_map(|(attempt, s)| PaymentEvent::PaymentDeferred {
            reason: "open".to_string(),
            attempt,
            retry_at: now0() + TimeDelta::seconds(s)
        }),
        Just(PaymentEvent::PaymentCompleted {
            payment_id: "p1".to_string(),
            gateway_ref: "ch_1".to_string(),
            amount: 200
        }),
        Just(PaymentEvent::PaymentFailed {
            reason: "declined".to_string()
        }),
        Just(PaymentEvent::PaymentRefunded {
            amount: 200,
            gateway_ref: "re_1".to_string()
        }),
        Just(PaymentEvent::PaymentVoided {
            reason: "cancelled".to_string()
        }),
        Just(PaymentEvent::PaymentRetryRequested {
            requested_by: "admin".to_string()
        }),
    ];
    prop_oneof![
        reservation.prop_map(SagaInput::Reservation),
        lodging.prop_map(SagaInput::Lodging),
        payment.prop_map(SagaInput::Payment),
        prop_oneof![
            Just(TimerKind::ApprovalDeadline),
            Just(TimerKind::PaymentRetry)
        ]
        .prop_map(SagaInput::Timer),
    ]
}

fn is_granted_for_us(input: &SagaInput) -> bool {
    matches!(input, SagaInput::Lodging(LodgingEvent::ApprovalGranted { reservation_id, .. }) if *reservation_id == rid(0))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn saga_decisions_never_panic_are_idempotent_and_track_timers(
        // Most sequences start with the reservation, as the log guarantees; some do not.
        starts in prop::bool::weighted(0.9),
        steps in prop::collection::vec((0_u8..24, saga_input()), 1..50),
    ) {
        let policy = SagaPolicy { max_payment_attempts: 3, ..SagaPolicy::default() };
        let mut state = SagaState::default();
        let mut timers: BTreeMap<TimerKind, Timestamp> = BTreeMap::new();
        let mut granted = false;
        let mut charges = 0_u32;
        let first = starts.then(|| (200, SagaInput::Reservation(ReservationEvent::ReservationRequested(requested_details()))));
        for (step, (n, input)) in first.into_iter().chain(steps).enumerate() {
            let now = now0() + TimeDelta::minutes(i64::try_from(step).unwrap_or(0));
            let trigger = SagaTrigger { trigger_id: Uuid::from_u128(u128::from(n)), input: input.clone(), policy };
            let Ok(events) = ReservationSaga::decide(&state, &trigger, now);
            if state.handled.contains_key(&trigger.trigger_id) {
                prop_assert!(events.is_empty(), "a trigger handled twice decides nothing");
                continue;
            }
            let [SagaEvent::SagaEventHandled { trigger_id, actions, cancelled, armed, .. }] = events.as_slice() else {
                return Err(TestCaseError::fail("one trigger, one record"));
            };
            prop_assert_eq!(*trigger_id, trigger.trigger_id);
            for action in actions {
                if let SagaAction::Charge { attempt, last_attempt, amount, .. } = action {
                    charges += 1;
                    prop_assert!(granted, "only an approved reservation is charged");
                    prop_assert!(!state.cancelled, "a cancelled reservation is not charged");
                    prop_assert_eq!(*attempt, charges);
                    prop_assert_eq!(*last_attempt, *attempt >= policy.max_payment_attempts);
                    prop_assert_eq!(*amount, 200);
                }
            }
            if let SagaInput::Timer(timer) = &input {
                timers.remove(timer);
            }
            for timer in cancelled {
                prop_assert!(state.timers.contains_key(timer), "only an armed timer is cancelled");
                timers.remove(timer);
            }
            for armed in armed {
                timers.insert(armed.timer, armed.due_at);
            }
            granted |= is_granted_for_us(&input) && state.stage == domain::saga::SagaStage::AwaitingApproval && !state.cancelled;
            // Only the gateway's answers count: a deferral of an open payment brings the count to the
            // payment's own (a charge the open circuit refused is not an attempt).
            if let SagaInput::Payment(PaymentEvent::PaymentDeferred { attempt, .. }) = &input {
                if matches!(state.payment, domain::saga::PaymentProgress::Requested | domain::saga::PaymentProgress::Deferred { .. }) {
                    charges = *attempt;
                }
            }
            state = ReservationSaga::fold(state, &events);
            prop_assert_eq!(&state.timers.to_map(), &timers);
            prop_assert_eq!(state.charge_attempts, charges);
            prop_assert!(state.handled.contains_key(&trigger.trigger_id));
            // Handled again right away: nothing.
            let Ok(again) = ReservationSaga::decide(&state, &trigger, now);
            prop_assert!(again.is_empty());
        }
    }
}
