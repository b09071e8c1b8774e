//! Payment retries: attempts running out, and an admin's "retry now".

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use domain::lodging::{ApprovalMode, RequestStatus};
use domain::payment::{PaymentAggregate, PaymentCommand, PaymentStatus};
use domain::saga::SagaPolicy;
use eventlog::{CommandContext, Repository};
use serde_json::json;
use uuid::Uuid;

use crate::world::{eventually, fast_policy, World};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_attempts_hold_the_nights_for_the_admin_then_fail() {
    let world = World::new().await;
    world.configure_sandbox(json!({"overloaded": true})).await;
    // The wait for the admin's retry lasts the approval deadline (instant lodging: approved at once).
    let policy = SagaPolicy {
        max_payment_attempts: 2,
        approval_deadline: TimeDelta::seconds(2),
        ..fast_policy()
    };
    let runner = world.start(policy, "saga.db");
    let lodging = world.register_lodging(1, ApprovalMode::Instant).await;
    let rid = world.request_stay(&lodging).await;

    let exhausted = eventually("the attempts to run out", || async {
        let payment = world.payment(rid).await;
        (payment.attempts == 2).then_some(payment)
    })
    .await;
    assert_eq!(exhausted.status, PaymentStatus::Deferred);
    // Still holding its nights while its admin may retry.
    let state = world.lodging(&lodging).await;
    assert_eq!(state.requests[&rid].status, RequestStatus::Granted);

    let failed = world.wait_for_status(rid, "payment_failed").await;
    let reason = failed.status_reason.unwrap_or_default();
    assert!(reason.contains("attempts exhausted"), "{reason}");
    let payment_events = world.event_types(&format!("payment-{rid}")).await;
    let deferred = payment_events
        .iter()
        .filter(|t| *t == "PaymentDeferred")
        .count();
    assert_eq!(
        deferred, 2,
        "two answered attempts, then the wait for the admin, then the failure: {payment_events:?}"
    );
    eventually("the rooms to be released", || async {
        let state = world.lodging(&lodging).await;
        (state.requests[&rid].status == RequestStatus::Withdrawn).then_some(())
    })
    .await;
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_retry_charges_a_deferred_payment_at_once() {
    let world = World::new().await;
    world.configure_sandbox(json!({"overloaded": true})).await;
    let policy = SagaPolicy {
        retry_base: TimeDelta::hours(1),
        ..fast_policy()
    };
    let runner = world.start(policy, "saga.db");
    let lodging = world.register_lodging(1, ApprovalMode::Instant).await;
    let rid = world.request_stay(&lodging).await;
    world.wait_for_status(rid, "payment_pending").await;
    assert_eq!(world.payment(rid).await.status, PaymentStatus::Deferred);

    world.configure_sandbox(json!({"overloaded": false})).await;
    let retry = PaymentCommand::RetryNow {
        requested_by: "admin-1".to_string(),
    };
    let ctx = CommandContext {
        correlation_id: rid,
        causation_id: Uuid::new_v4(),
        actor: "admin:admin-1".to_string(),
        now: Utc::now(),
    };
    Repository::<PaymentAggregate>::new(Arc::clone(&world.log))
        .with_snapshots(world.log.snapshots())
        .execute(&rid.to_string(), &retry, &ctx)
        .await
        .expect("retry accepted");
    world.wait_for_status(rid, "confirmed").await;
    let charges = world.charges_for(rid).await;
    assert_eq!((charges.len(), charges[0].attempts), (1, 2), "{charges:?}");
    eventually("the hour-long retry timer to be disarmed", || async {
        // What is left is the stay's check-out.
        (runner.status.snapshot().timers_armed == 1).then_some(())
    })
    .await;
    runner.stop().await;
}
