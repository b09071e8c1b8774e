//! Whole reservation flows: the saga's decisions wired to the three aggregates in memory, the way
//! the `saga` crate runs them (every event appended is fed back to the saga in log order; every
//! action is executed in order), with a scripted payment gateway.

use std::collections::VecDeque;

use chrono::{NaiveDate, TimeZone, Utc};
use domain::lodging::{
    ApprovalMode, LodgingAggregate, LodgingApproval, LodgingCommand, LodgingError, LodgingEvent,
    LodgingProfile, RequestStatus,
};
use domain::payment::{Payment, PaymentAggregate, PaymentCommand, PaymentEvent, PaymentStatus};
use domain::reservation::{
    LodgingTerms, Reservation, ReservationAggregate, ReservationCommand, ReservationStatus,
};
use domain::saga::{
    reservation_fallback, retry_delay, ReservationSaga, SagaAction, SagaInput, SagaPolicy,
    SagaState, SagaTrigger, TimerKind,
};
use domain::{Aggregate, ReservationId, Stay, Timestamp};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Gateway {
    Charges,
    /// The gateway answers with an error (an attempt).
    Overloaded,
    /// The circuit breaker is open: the gateway is not called (no attempt).
    CircuitOpen,
    Declines,
    /// The charge is taken but its answer is held back until [`World::release_held_charge`].
    Slow,
}

struct World {
    now: Timestamp,
    policy: SagaPolicy,
    reservation_id: ReservationId,
    reservation: Reservation,
    lodging: LodgingApproval,
    lodging_events: Vec<LodgingEvent>,
    payment: Payment,
    payment_events: Vec<PaymentEvent>,
    saga: SagaState,
    log: VecDeque<SagaInput>,
    triggers: u128,
    gateway: VecDeque<Gateway>,
    held_charge: bool,
}

fn stay() -> Stay {
    Stay {
        rooms: 1,
        check_in: NaiveDate::from_ymd_opt(2030, 6, 10).expect("date"),
        check_out: NaiveDate::from_ymd_opt(2030, 6, 12).expect("date"),
        guests: 2,
    }
}

fn profile(mode: ApprovalMode) -> LodgingProfile {
    LodgingProfile {
        fee_bps: 1_000,
        lodging_id: "l1".to_string(),
        name: "Inn".to_string(),
        nightly_rate: 150,
        currency: "EUR".to_string(),
        rooms: 1,
        max_guests: 2,
        approval_mode: mode,
        admin_id: "admin".to_string(),
        timezone: domain::Tz::UTC,
    }
}

impl World {
    fn new(mode: Option<ApprovalMode>, gateway: &[Gateway]) -> Self {
        let mut world = Self {
            now: Utc
                .with_ymd_and_hms(2030, 6, 1, 10, 0, 0)
                .single()
                .expect("instant"),
            policy: SagaPolicy {
                max_payment_attempts: 3,
                ..SagaPolicy::default()
            },
            reservation_id: Uuid::from_u128(7),
            reservation: Reservation::default(),
            lodging: LodgingApproval::default(),
            lodging_events: Vec::new(),
            payment: Payment::default(),
            payment_events: Vec::new(),
            saga: SagaState::default(),
            log: VecDeque::new(),
            triggers: 0,
            gateway: gateway.iter().copied().collect(),
            held_charge: false,
        };
        if let Some(mode) = mode {
            world
                .lodging(LodgingCommand::Register(profile(mode)))
                .expect("valid profile");
            world.log.clear();
        }
        world
    }

    fn reserve(&mut self) {
        let command = ReservationCommand::Request {
            reservation_id: self.reservation_id,
            customer_id: "c1".to_string(),
            lodging: LodgingTerms {
                lodging_id: "l1".to_string(),
                nightly_rate: 150,
                currency: "EUR".to_string(),
                max_guests: 2,
                rooms: 2,
                timezone: domain::Tz::UTC,
            },
            stay: stay(),
        };
        self.reservation(&command);
    }

    fn reservation(&mut self, command: &ReservationCommand) {
        let events = ReservationAggregate::decide(&self.reservation, command, self.now)
            .unwrap_or_else(|e| panic!("{command:?}: {e}"));
        self.reservation = ReservationAggregate::fold(self.reservation.clone(), &events);
        self.log
            .extend(events.into_iter().map(SagaInput::Reservation));
    }

    fn lodging(&mut self, command: LodgingCommand) -> Result<(), LodgingError> {
        let events = LodgingAggregate::decide(&self.lodging, &command, self.now)?;
        self.lodging = LodgingAggregate::fold(self.lodging.clone(), &events);
        self.lodging_events.extend(events.iter().cloned());
        self.log.extend(events.into_iter().map(SagaInput::Lodging));
        Ok(())
    }

    fn payment(&mut self, command: &PaymentCommand) {
        let events = PaymentAggregate::decide(&self.payment, command, self.now)
            .unwrap_or_else(|e| panic!("{command:?}: {e}"));
        self.payment = PaymentAggregate::fold(self.payment.clone(), &events);
        self.payment_events.extend(events.iter().cloned());
        self.log.extend(events.into_iter().map(SagaInput::Payment));
    }

    fn admin_grants(&mut self) -> Result<(), LodgingError> {
        self.lodging(LodgingCommand::Grant {
            reservation_id: self.reservation_id,
            stay: stay(),
            granted_by: "admin".to_string(),
        })
    }

    fn execute(&mut self, action: SagaAction) {
        match action {
            SagaAction::Reservation(command) => self.reservation(&command),
            SagaAction::Lodging { command, .. } => match self.lodging(command) {
                Ok(()) => {}
                // The runner's rule: an unknown lodging rejects the reservation.
                Err(error) => {
                    let fallback =
                        reservation_fallback(&error).unwrap_or_else(|| panic!("lodging: {error}"));
                    self.reservation(&fallback);
                }
            },
            SagaAction::Payment(command) => self.payment(&command),
            SagaAction::Charge {
                amount,
                attempt,
                last_attempt,
                ..
            } => {
                assert_eq!(amount, 300);
                self.charge(attempt, last_attempt);
            }
            SagaAction::RefundCharge { charge_ref, amount } => {
                assert_eq!(Some(&charge_ref), self.payment.charge_ref.as_ref());
                self.payment(&PaymentCommand::Refund {
                    amount,
                    gateway_ref: format!("re-{charge_ref}"),
                });
            }
        }
    }

    fn charge(&mut self, attempt: u32, last_attempt: bool) {
        let complete = PaymentCommand::Complete {
            payment_id: "p1".to_string(),
            gateway_ref: "ch-1".to_string(),
            amount: 300,
        };
        match self.gateway.pop_front().unwrap_or(Gateway::Charges) {
            Gateway::Charges => self.payment(&complete),
            Gateway::Declines => self.payment(&PaymentCommand::Fail {
                reason: "declined".to_string(),
            }),
            // As the payment worker does: the last attempt waits for the admin's retry until the
            // approval deadline has passed once more.
            Gateway::Overloaded if last_attempt => self.payment(&PaymentCommand::Defer {
                reason: "gateway unavailable, attempts exhausted".to_string(),
                retry_at: self.now + self.policy.approval_deadline,
            }),
            Gateway::Overloaded => self.payment(&PaymentCommand::Defer {
                reason: "gateway unavailable".to_string(),
                retry_at: self.now + retry_delay(self.policy.retry_base, attempt),
            }),
            Gateway::CircuitOpen => self.payment(&PaymentCommand::DeferUncounted {
                reason: "circuit open".to_string(),
                retry_at: self.now + retry_delay(self.policy.retry_base, attempt),
            }),
            Gateway::Slow => self.held_charge = true,
        }
    }

    fn release_held_charge(&mut self) {
        assert!(std::mem::take(&mut self.held_charge), "a charge was held");
        self.payment(&PaymentCommand::Complete {
            payment_id: "p1".to_string(),
            gateway_ref: "ch-1".to_string(),
            amount: 300,
        });
    }

    /// The saga handles one input: its decisions are recorded, and the actions to send returned.
    fn handle(&mut self, input: SagaInput) -> Vec<SagaAction> {
        self.triggers += 1;
        let trigger = SagaTrigger {
            trigger_id: Uuid::from_u128(self.triggers),
            input,
            policy: self.policy,
        };
        let Ok(events) = ReservationSaga::decide(&self.saga, &trigger, self.now);
        self.saga = ReservationSaga::fold(self.saga.clone(), &events);
        self.saga.handled[&trigger.trigger_id].clone()
    }

    /// Feed every event appended so far to the saga, and execute its actions, until quiet.
    fn settle(&mut self) {
        while let Some(input) = self.log.pop_front() {
            for action in self.handle(input) {
                self.execute(action);
            }
        }
    }

    /// The timer fires when due; its trigger is then handled like any other.
    fn fire(&mut self, timer: TimerKind) {
        let due = self.saga.timers[&timer];
        self.now = self.now.max(due);
        self.log.push_back(SagaInput::Timer(timer));
        self.settle();
    }

    /// The one timer of a confirmed stay: its check-out.
    fn only_check_out_armed(&self) -> bool {
        self.saga.timers.keys().eq([TimerKind::CheckOut].iter())
    }

    fn status(&self) -> ReservationStatus {
        self.reservation.status
    }

    fn completed_charges(&self) -> usize {
        self.payment_events
            .iter()
            .filter(|e| matches!(e, PaymentEvent::PaymentCompleted { .. }))
            .count()
    }

    fn cancel(&mut self) {
        self.reservation(&ReservationCommand::Cancel {
            cancelled_by: "c1".to_string(),
            reason: "changed plans".to_string(),
            timezone: domain::Tz::UTC,
        });
    }
}

#[test]
fn manual_approval_then_payment_confirms() {
    let mut world = World::new(Some(ApprovalMode::Manual), &[]);
    world.reserve();
    world.settle();
    assert_eq!(world.status(), ReservationStatus::Requested);
    assert!(world.saga.timers.contains_key(&TimerKind::ApprovalDeadline));
    world.admin_grants().expect("room free");
    world.settle();
    assert_eq!(world.status(), ReservationStatus::Confirmed);
    assert_eq!(world.reservation.paid_amount, Some(300));
    assert_eq!(world.payment.status, PaymentStatus::Completed);
    assert_eq!(world.completed_charges(), 1);
    assert_eq!(world.lodging.booked.len(), 2);
    assert!(world.only_check_out_armed());
    // At check-out (noon on its last day where the lodging is) the stay is completed.
    world.fire(TimerKind::CheckOut);
    assert_eq!(world.status(), ReservationStatus::Completed);
    assert_eq!(
        world.now,
        Utc.with_ymd_and_hms(2030, 6, 12, 12, 0, 0)
            .single()
            .expect("noon UTC")
    );
    assert!(world.saga.timers.is_empty());
}

#[test]
fn instant_lodging_confirms_without_an_admin() {
    let mut world = World::new(Some(ApprovalMode::Instant), &[]);
    world.reserve();
    world.settle();
    assert_eq!(world.status(), ReservationStatus::Confirmed);
    assert_eq!(world.completed_charges(), 1);
}

#[test]
fn admin_granting_before_the_saga_forwards_ends_the_same_way() {
    let mut world = World::new(Some(ApprovalMode::Manual), &[]);
    world.reserve();
    world.admin_grants().expect("room free");
    world.settle();
    assert_eq!(world.status(), ReservationStatus::Confirmed);
    let requests = world
        .lodging_events
        .iter()
        .filter(|e| matches!(e, LodgingEvent::ApprovalRequested { .. }))
        .count();
    assert_eq!(requests, 1, "the saga's later forward was a no-op");
}

#[test]
fn overloaded_gateway_defers_then_confirms_charging_once() {
    let mut world = World::new(
        Some(ApprovalMode::Instant),
        &[Gateway::Overloaded, Gateway::Overloaded],
    );
    world.reserve();
    world.settle();
    assert_eq!(world.status(), ReservationStatus::PaymentPending);
    world.fire(TimerKind::PaymentRetry);
    assert_eq!(world.status(), ReservationStatus::PaymentPending);
    assert_eq!(world.payment.attempts, 2);
    world.fire(TimerKind::PaymentRetry);
    assert_eq!(world.status(), ReservationStatus::Confirmed);
    assert_eq!(world.completed_charges(), 1);
    assert_eq!(world.saga.charge_attempts, 3);
    assert!(world.only_check_out_armed());
}

#[test]
fn attempts_exhausted_hold_the_nights_for_the_admin_then_fail_and_free_the_rooms() {
    let mut world = World::new(Some(ApprovalMode::Instant), &[Gateway::Overloaded; 3]);
    world.reserve();
    world.settle();
    world.fire(TimerKind::PaymentRetry);
    world.fire(TimerKind::PaymentRetry);
    // Exhausted: the request still holds its nights while its admin may retry.
    assert_eq!(world.status(), ReservationStatus::PaymentPending);
    assert_eq!(world.payment.status, PaymentStatus::Deferred);
    assert_eq!(world.lodging.booked.len(), 2);
    assert_eq!(
        world.saga.timers[&TimerKind::PaymentRetry],
        world.now + world.policy.approval_deadline
    );
    // Not retried in time: the payment fails.
    world.fire(TimerKind::PaymentRetry);
    assert_eq!(world.status(), ReservationStatus::PaymentFailed);
    assert_eq!(world.payment.status, PaymentStatus::Failed);
    assert!(world.lodging.booked.is_empty());
    assert!(world.saga.is_finished());
}

#[test]
fn an_open_circuit_never_uses_up_the_attempts() {
    // Longer than the whole schedule (3 attempts), the circuit is open; then the gateway charges.
    let mut gateway = vec![Gateway::Overloaded];
    gateway.extend([Gateway::CircuitOpen; 12]);
    let mut world = World::new(Some(ApprovalMode::Instant), &gateway);
    world.reserve();
    world.settle();
    for _ in 0..12 {
        world.fire(TimerKind::PaymentRetry);
        assert_eq!(world.status(), ReservationStatus::PaymentPending);
        assert_eq!(
            world.payment.attempts, 1,
            "only the gateway's answer counted"
        );
    }
    world.fire(TimerKind::PaymentRetry);
    assert_eq!(world.status(), ReservationStatus::Confirmed);
    assert_eq!(world.completed_charges(), 1);
    assert_eq!(world.lodging.booked.len(), 2);
}

#[test]
fn an_exhausted_payment_retried_by_its_admin_confirms() {
    let mut world = World::new(Some(ApprovalMode::Instant), &[Gateway::Overloaded; 3]);
    world.reserve();
    world.settle();
    world.fire(TimerKind::PaymentRetry);
    world.fire(TimerKind::PaymentRetry);
    assert_eq!(world.payment.attempts, 3);
    world.payment(&PaymentCommand::RetryNow {
        requested_by: "admin-1".to_string(),
    });
    world.settle();
    assert_eq!(world.status(), ReservationStatus::Confirmed);
    assert_eq!(world.completed_charges(), 1);
    assert!(
        world.only_check_out_armed(),
        "the wait for the admin is over"
    );
}

#[test]
fn an_exhausted_payment_retried_into_an_open_circuit_keeps_waiting() {
    let mut world = World::new(
        Some(ApprovalMode::Instant),
        &[
            Gateway::Overloaded,
            Gateway::Overloaded,
            Gateway::Overloaded,
            Gateway::CircuitOpen,
        ],
    );
    world.reserve();
    world.settle();
    world.fire(TimerKind::PaymentRetry);
    world.fire(TimerKind::PaymentRetry);
    world.payment(&PaymentCommand::RetryNow {
        requested_by: "admin-1".to_string(),
    });
    world.settle();
    // The admin's retry met the open circuit: it is tried again soon, not failed.
    assert_eq!(world.status(), ReservationStatus::PaymentPending);
    world.fire(TimerKind::PaymentRetry);
    assert_eq!(world.status(), ReservationStatus::Confirmed);
    assert_eq!(world.completed_charges(), 1);
}

#[test]
fn declined_payment_fails_and_frees_the_rooms() {
    let mut world = World::new(Some(ApprovalMode::Instant), &[Gateway::Declines]);
    world.reserve();
    world.settle();
    assert_eq!(world.status(), ReservationStatus::PaymentFailed);
    assert!(world.lodging.booked.is_empty());
}

#[test]
fn cancelling_a_confirmed_stay_refunds_it_and_frees_the_rooms() {
    let mut world = World::new(Some(ApprovalMode::Instant), &[]);
    world.reserve();
    world.settle();
    world.cancel();
    world.settle();
    assert_eq!(world.status(), ReservationStatus::Cancelled);
    assert_eq!(world.reservation.refund_due, 300);
    assert_eq!(world.reservation.refunded_amount, Some(300));
    assert_eq!(world.payment.status, PaymentStatus::Refunded);
    assert!(world.lodging.booked.is_empty());
    assert!(world.saga.is_finished());
}

#[test]
fn cancelling_while_the_charge_is_in_flight_voids_then_refunds_the_late_charge() {
    let mut world = World::new(Some(ApprovalMode::Instant), &[Gateway::Slow]);
    world.reserve();
    world.settle();
    assert_eq!(world.status(), ReservationStatus::Approved);
    world.cancel();
    world.settle();
    assert_eq!(world.payment.status, PaymentStatus::Voided);
    assert_eq!(world.reservation.refund_due, 0);
    world.release_held_charge();
    world.settle();
    assert_eq!(world.payment.status, PaymentStatus::Refunded);
    assert_eq!(world.reservation.refunded_amount, Some(300));
    assert!(world.lodging.booked.is_empty());
}

#[test]
fn cancelling_before_the_saga_sees_the_payment_request_voids_it() {
    let mut world = World::new(Some(ApprovalMode::Manual), &[]);
    world.reserve();
    world.settle();
    world.admin_grants().expect("room free");
    // The saga handles the grant; the customer cancels between its two actions, so the
    // cancellation is in the log before the PaymentRequested event.
    let granted = world.log.pop_front().expect("grant in the log");
    let actions = world.handle(granted);
    assert_eq!(actions.len(), 2, "record approval, request payment");
    let mut actions = actions.into_iter();
    world.execute(actions.next().expect("record approval"));
    world.cancel();
    world.execute(actions.next().expect("request payment"));
    world.settle();
    assert_eq!(world.status(), ReservationStatus::Cancelled);
    assert_eq!(world.payment.status, PaymentStatus::Voided);
    assert_eq!(world.completed_charges(), 0);
    assert!(world.lodging.booked.is_empty());
}

#[test]
fn undecided_request_expires_and_a_late_grant_is_refused() {
    let mut world = World::new(Some(ApprovalMode::Manual), &[]);
    world.reserve();
    world.settle();
    world.fire(TimerKind::ApprovalDeadline);
    assert_eq!(world.status(), ReservationStatus::Expired);
    assert_eq!(
        world.lodging.requests[&world.reservation_id].status,
        RequestStatus::Withdrawn
    );
    assert_eq!(
        world.admin_grants(),
        Err(LodgingError::AlreadyDecided {
            status: RequestStatus::Withdrawn
        })
    );
    assert_eq!(world.payment.status, PaymentStatus::None);
}

#[test]
fn reservation_at_an_unknown_lodging_is_rejected() {
    let mut world = World::new(None, &[]);
    world.reserve();
    world.settle();
    assert_eq!(world.status(), ReservationStatus::Rejected);
    assert!(world.saga.timers.is_empty());
    assert_eq!(world.payment.status, PaymentStatus::None);
}

#[test]
fn a_second_reservation_for_the_last_room_is_denied_on_an_instant_lodging() {
    let mut first = World::new(Some(ApprovalMode::Instant), &[]);
    first.reserve();
    first.settle();
    let mut second = World::new(None, &[]);
    second.reservation_id = Uuid::from_u128(8);
    second.lodging = first.lodging.clone();
    second.reserve();
    second.settle();
    assert_eq!(second.status(), ReservationStatus::Rejected);
    assert_eq!(
        second.reservation.status_reason.as_deref(),
        Some("no free room on 2030-06-10")
    );
}
