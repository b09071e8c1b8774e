//! The `pay_first` invariants over any interleaving, as a property test: many reservations on one
//! desk, the saga's decisions wired to the aggregates in memory the way the `saga` crate runs them
//! (every event fed back to its reservation's saga in log order, every action executed in order),
//! with charges whose answers (paid, declined, overloaded) arrive whenever the test says.
//!
//! - no charge is ever sent for a request that found no room (the desk held its nights first);
//! - every paid request ends confirmed, or refunded in full, once;
//! - a confirmed stay holds its rooms on the desk; no night is taken beyond the lodging's rooms.

use std::collections::{BTreeMap, VecDeque};

use chrono::{NaiveDate, TimeZone, Utc};
use domain::lodging::{
    ApprovalMode, LodgingAggregate, LodgingApproval, LodgingCommand, LodgingEvent, LodgingProfile,
    RequestStatus,
};
use domain::payment::{Payment, PaymentAggregate, PaymentCommand, PaymentEvent};
use domain::reservation::{
    LodgingTerms, Reservation, ReservationAggregate, ReservationCommand, ReservationStatus,
};
use domain::saga::{
    retry_delay, ReservationSaga, SagaAction, SagaInput, SagaPolicy, SagaState, SagaTrigger,
    TimerKind,
};
use domain::{Aggregate, ReservationId, Stay, Timestamp};
use proptest::prelude::*;
use uuid::Uuid;

const RATE: i64 = 100;

#[derive(Debug, Clone)]
enum Op {
    Request(usize, u32, u32, u32),
    /// The gateway answers the charge under way, if any.
    Answer(usize, Answer),
    Grant(usize),
    Deny(usize),
    Cancel(usize),
    /// The approval deadline fires, if armed.
    Deadline(usize),
    /// The payment retry timer fires, if armed.
    Retry(usize),
}

#[derive(Debug, Clone, Copy)]
enum Answer {
    Paid,
    Declined,
    Overloaded,
}

#[derive(Default)]
struct Booking {
    reservation: Reservation,
    payment: Payment,
    saga: SagaState,
    /// A charge sent and not answered yet: (attempt, last attempt).
    in_flight: Option<(u32, bool)>,
    held_ever: bool,
    charges_sent: u32,
    completed: i64,
    refunded: i64,
}

struct World {
    now: Timestamp,
    policy: SagaPolicy,
    desk: LodgingApproval,
    bookings: BTreeMap<usize, Booking>,
    log: VecDeque<(usize, SagaInput)>,
    triggers: u128,
}

fn rid(n: usize) -> ReservationId {
    Uuid::from_u128(n as u128 + 1)
}

fn index(id: ReservationId) -> usize {
    usize::try_from(id.as_u128() - 1).expect("small")
}

fn night(day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2030, 6, day).expect("date")
}

fn profile(rooms: u32) -> LodgingProfile {
    LodgingProfile {
        fee_bps: 1_000,
        lodging_id: "hotel".to_string(),
        name: "GotoHotel".to_string(),
        nightly_rate: RATE,
        currency: "KRW".to_string(),
        rooms,
        max_guests: 2,
        approval_mode: ApprovalMode::PayFirst,
        admin_id: "hotel-admin".to_string(),
        timezone: domain::Tz::UTC,
    }
}

impl World {
    fn new(rooms: u32) -> Self {
        let now = Utc
            .with_ymd_and_hms(2030, 6, 1, 9, 0, 0)
            .single()
            .expect("instant");
        let events = LodgingAggregate::decide(
            &LodgingApproval::default(),
            &LodgingCommand::Register(profile(rooms)),
            now,
        )
        .expect("valid");
        Self {
            now,
            policy: SagaPolicy {
                max_payment_attempts: 2,
                ..SagaPolicy::default()
            },
            desk: LodgingAggregate::fold(LodgingApproval::default(), &events),
            bookings: BTreeMap::new(),
            log: VecDeque::new(),
            triggers: 0,
        }
    }

    fn booking(&mut self, n: usize) -> &mut Booking {
        self.bookings.entry(n).or_default()
    }

    fn reservation(&mut self, n: usize, command: &ReservationCommand) -> bool {
        let now = self.now;
        let booking = self.booking(n);
        let Ok(events) = ReservationAggregate::decide(&booking.reservation, command, now) else {
            return false;
        };
        booking.reservation = ReservationAggregate::fold(booking.reservation.clone(), &events);
        self.log
            .extend(events.into_iter().map(|e| (n, SagaInput::Reservation(e))));
        true
    }

    fn lodging(&mut self, command: &LodgingCommand) {
        let Ok(events) = LodgingAggregate::decide(&self.desk, command, self.now) else {
            return; // an admin's refused decision, or a replay: nothing recorded
        };
        self.desk = LodgingAggregate::fold(self.desk.clone(), &events);
        for event in events {
            let n = index(event.reservation_id().expect("a request's event"));
            if matches!(event, LodgingEvent::NightsHeld { .. }) {
                self.booking(n).held_ever = true;
            }
            self.log.push_back((n, SagaInput::Lodging(event)));
        }
    }

    fn payment(&mut self, n: usize, command: &PaymentCommand) {
        let now = self.now;
        let booking = self.booking(n);
        let events = PaymentAggregate::decide(&booking.payment, command, now)
            .unwrap_or_else(|e| panic!("{command:?}: {e}"));
        booking.payment = PaymentAggregate::fold(booking.payment.clone(), &events);
        for event in &events {
            match event {
                PaymentEvent::PaymentCompleted { amount, .. } => booking.completed += amount,
                PaymentEvent::PaymentRefunded { amount, .. } => booking.refunded += amount,
                _ => {}
            }
        }
        self.log
            .extend(events.into_iter().map(|e| (n, SagaInput::Payment(e))));
    }

    fn execute(&mut self, n: usize, action: SagaAction) {
        match action {
            SagaAction::Reservation(command) => {
                self.reservation(n, &command);
            }
            SagaAction::Lodging { command, .. } => self.lodging(&command),
            SagaAction::Payment(command) => self.payment(n, &command),
            SagaAction::Charge {
                attempt,
                last_attempt,
                ..
            } => {
                let booking = self.booking(n);
                assert!(
                    booking.held_ever,
                    "reservation {n} charged without its nights held"
                );
                booking.charges_sent += 1;
                booking.in_flight = Some((attempt, last_attempt));
            }
            SagaAction::RefundCharge { charge_ref, amount } => {
                self.payment(
                    n,
                    &PaymentCommand::Refund {
                        amount,
                        gateway_ref: format!("re-{charge_ref}"),
                    },
                );
            }
            // A completed stay's payout: money out is tests/settlement.rs's; rooms and charges here.
            SagaAction::SchedulePayout { .. }
            | SagaAction::Payout(_)
            | SagaAction::PayOut { .. } => {}
        }
    }

    fn settle(&mut self) {
        while let Some((n, input)) = self.log.pop_front() {
            self.triggers += 1;
            let trigger = SagaTrigger {
                trigger_id: Uuid::from_u128(self.triggers),
                input,
                policy: self.policy,
            };
            let now = self.now;
            let booking = self.booking(n);
            let Ok(events) = ReservationSaga::decide(&booking.saga, &trigger, now);
            booking.saga = ReservationSaga::fold(booking.saga.clone(), &events);
            let actions = booking
                .saga
                .handled
                .get(&trigger.trigger_id)
                .cloned()
                .expect("the trigger was just handled");
            for action in actions {
                self.execute(n, action);
            }
        }
    }

    fn answer(&mut self, n: usize, answer: Answer) {
        let Some((attempt, last_attempt)) = self.booking(n).in_flight.take() else {
            return;
        };
        let command = match answer {
            Answer::Paid => PaymentCommand::Complete {
                payment_id: format!("pay-{n}"),
                gateway_ref: format!("ch-{n}"),
                amount: self.booking(n).payment.amount,
            },
            Answer::Declined => PaymentCommand::Fail {
                reason: "declined".to_string(),
            },
            // As the payment worker does: the last attempt waits until the deadline has passed once more.
            Answer::Overloaded => PaymentCommand::Defer {
                reason: "gateway unavailable".to_string(),
                retry_at: if last_attempt {
                    self.now + self.policy.approval_deadline
                } else {
                    self.now + retry_delay(self.policy.retry_base, attempt)
                },
            },
        };
        // A charge answered after its payment was voided still lands (and is refunded).
        let status = self.booking(n).payment.status;
        let open = matches!(
            status,
            domain::payment::PaymentStatus::Requested | domain::payment::PaymentStatus::Deferred
        );
        if open || matches!(answer, Answer::Paid) {
            self.payment(n, &command);
        }
    }

    fn fire(&mut self, n: usize, timer: TimerKind) {
        let Some(due) = self.booking(n).saga.timers.get(&timer).copied() else {
            return;
        };
        self.now = self.now.max(due);
        self.log.push_back((n, SagaInput::Timer(timer)));
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Request(n, first, nights, rooms) => {
                let stay = Stay {
                    check_in: night(10 + first),
                    check_out: night(10 + first + nights),
                    guests: rooms,
                    rooms,
                };
                let command = ReservationCommand::Request {
                    reservation_id: rid(n),
                    customer_id: format!("guest-{n}"),
                    lodging: LodgingTerms {
                        lodging_id: "hotel".to_string(),
                        nightly_rate: RATE,
                        currency: "KRW".to_string(),
                        max_guests: 2,
                        rooms: 3,
                        timezone: domain::Tz::UTC,
                    },
                    stay,
                };
                self.reservation(n, &command);
            }
            Op::Answer(n, answer) => self.answer(n, answer),
            Op::Grant(n) | Op::Deny(n) => {
                let Some(stay) = self
                    .booking(n)
                    .reservation
                    .details
                    .as_ref()
                    .map(|d| d.stay())
                else {
                    return;
                };
                let command = if matches!(op, Op::Grant(_)) {
                    LodgingCommand::Grant {
                        reservation_id: rid(n),
                        stay,
                        granted_by: "hotel-admin".to_string(),
                    }
                } else {
                    LodgingCommand::Deny {
                        reservation_id: rid(n),
                        stay,
                        reason: "full".to_string(),
                        denied_by: "hotel-admin".to_string(),
                    }
                };
                self.lodging(&command);
            }
            Op::Cancel(n) => {
                let command = ReservationCommand::Cancel {
                    cancelled_by: format!("guest-{n}"),
                    reason: "plans changed".to_string(),
                    timezone: domain::Tz::UTC,
                };
                self.reservation(n, &command);
            }
            Op::Deadline(n) => self.fire(n, TimerKind::ApprovalDeadline),
            Op::Retry(n) => self.fire(n, TimerKind::PaymentRetry),
        }
        self.settle();
    }

    /// Let everything run out: charges answered (paid), timers fired (check-outs too), until
    /// nothing is armed.
    fn run_out(&mut self) {
        for _ in 0..50 {
            let ids: Vec<usize> = self.bookings.keys().copied().collect();
            let mut busy = false;
            for n in ids {
                if self.booking(n).in_flight.is_some() {
                    busy = true;
                    self.answer(n, Answer::Paid);
                    self.settle();
                }
                for timer in [
                    TimerKind::PaymentRetry,
                    TimerKind::ApprovalDeadline,
                    TimerKind::CheckOut,
                ] {
                    if self.booking(n).saga.timers.contains_key(&timer) {
                        busy = true;
                        self.fire(n, timer);
                        self.settle();
                    }
                }
            }
            if !busy {
                return;
            }
        }
        panic!("the world never settled");
    }

    fn check_calendar(&self) -> Result<(), TestCaseError> {
        let rooms = self.desk.profile.as_ref().map_or(0, |p| p.rooms);
        for day in 10..20 {
            prop_assert!(
                self.desk.taken(night(day)) <= rooms,
                "{} taken of {rooms} on 2030-06-{day}",
                self.desk.taken(night(day))
            );
        }
        Ok(())
    }
}

fn op() -> impl Strategy<Value = Op> {
    let n = 0_usize..6;
    let answer = prop_oneof![
        Just(Answer::Paid),
        Just(Answer::Declined),
        Just(Answer::Overloaded)
    ];
    prop_oneof![
        3 => (n.clone(), 0_u32..4, 1_u32..4, 1_u32..=2).prop_map(|(n, f, k, r)| Op::Request(n, f, k, r)),
        3 => (n.clone(), answer).prop_map(|(n, a)| Op::Answer(n, a)),
        2 => n.clone().prop_map(Op::Grant),
        1 => n.clone().prop_map(Op::Deny),
        1 => n.clone().prop_map(Op::Cancel),
        1 => n.clone().prop_map(Op::Deadline),
        1 => n.prop_map(Op::Retry),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_pay_first_request_is_charged_only_with_room_and_ends_confirmed_or_refunded(
        rooms in 1_u32..=3,
        ops in prop::collection::vec(op(), 1..50),
    ) {
        let mut world = World::new(rooms);
        for op in &ops {
            world.apply(op);
            world.check_calendar()?;
        }
        world.run_out();
        world.check_calendar()?;
        let mut confirmed_rooms: BTreeMap<NaiveDate, u32> = BTreeMap::new();
        for (n, booking) in &world.bookings {
            let Some(details) = booking.reservation.details.as_ref() else { continue };
            let status = booking.reservation.status;
            prop_assert!(booking.in_flight.is_none() && booking.saga.timers.is_empty());
            if !booking.held_ever {
                prop_assert_eq!(booking.charges_sent, 0, "{} charged without room", n);
                prop_assert_eq!(status, ReservationStatus::Rejected, "{} found no room", n);
                continue;
            }
            // Charged at most once in effect: the gateway's charge is keyed by the reservation.
            prop_assert!(booking.completed == 0 || booking.completed == details.total_amount);
            match status {
                // Confirmed, then completed at check-out.
                ReservationStatus::Completed => {
                    prop_assert_eq!(booking.completed, details.total_amount, "{} confirmed unpaid", n);
                    prop_assert_eq!(booking.refunded, 0, "{} confirmed and refunded", n);
                    let request = &world.desk.requests[&rid(*n)];
                    prop_assert_eq!(request.status, RequestStatus::Granted);
                    for night in details.stay().each_night() {
                        *confirmed_rooms.entry(night).or_default() += details.rooms;
                    }
                }
                ReservationStatus::Rejected
                | ReservationStatus::Expired
                | ReservationStatus::Cancelled
                | ReservationStatus::PaymentFailed => {
                    prop_assert_eq!(booking.refunded, booking.completed, "{} ({:?}) kept money", n, status);
                    if booking.completed > 0 {
                        prop_assert_eq!(booking.reservation.refunded_amount, Some(booking.completed));
                    }
                }
                other => prop_assert!(false, "{} left {:?} after everything ran out", n, other),
            }
        }
        for (night, rooms_taken) in confirmed_rooms {
            prop_assert_eq!(world.desk.booked.get(&night).copied(), Some(rooms_taken));
        }
        prop_assert!(world.desk.held.is_empty(), "holds left: {:?}", world.desk.held);
    }
}
