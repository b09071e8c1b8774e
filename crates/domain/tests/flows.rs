//! Whole reservation flows: the saga's decisions wired to the aggregates in memory, the way the
//! `saga` crate runs them ([`support::world::World`]), with a scripted payment gateway.

mod support;

use chrono::{TimeZone, Utc};
use domain::lodging::{ApprovalMode, LodgingError, LodgingEvent, RequestStatus};
use domain::payment::{PaymentCommand, PaymentStatus};
use domain::reservation::ReservationStatus;
use domain::saga::TimerKind;
use support::world::{Gateway, World};
use uuid::Uuid;

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
        *world
            .saga
            .timers
            .get(&TimerKind::PaymentRetry)
            .expect("the retry is armed"),
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
