//! The business flow end to end: request -> approval -> payment -> confirmed, and its failures.

use domain::lodging::{ApprovalMode, RequestStatus};
use domain::payment::PaymentStatus;
use domain::reservation::ReservationCommand;
use domain::saga::{SagaStage, TimerKind};
use serde_json::json;

use crate::world::{eventually, fast_policy, World, NIGHTLY_RATE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_request_is_charged_once_and_confirmed() {
    let world = World::new().await;
    let runner = world.start(fast_policy(), "saga.db");
    let lodging = world.register_lodging(1, ApprovalMode::Manual).await;
    let rid = world.request_stay(&lodging).await;

    eventually("the saga to forward the request", || async {
        world
            .lodging(&lodging)
            .await
            .requests
            .get(&rid)
            .map(|r| r.status)
    })
    .await;
    assert!(
        world.charges().await.is_empty(),
        "nothing is charged before approval"
    );
    world.grant(&lodging, rid).await;

    let confirmed = world.wait_for_status(rid, "confirmed").await;
    assert_eq!(confirmed.paid_amount, Some(2 * NIGHTLY_RATE));
    let charges = world.charges_for(rid).await;
    assert_eq!(charges.len(), 1, "{charges:?}");
    assert_eq!(
        (charges[0].amount, charges[0].attempts),
        (2 * NIGHTLY_RATE, 1)
    );
    let payment = world.payment(rid).await;
    assert_eq!(payment.status, PaymentStatus::Completed);
    assert_eq!(
        payment.charge_ref.as_deref(),
        Some(charges[0].charge_ref.as_str())
    );

    let saga = world.saga(rid).await;
    assert_eq!(saga.stage, SagaStage::Confirmed);
    assert!(
        saga.timers.keys().eq([TimerKind::CheckOut].iter()),
        "the approval deadline is disarmed, the check-out armed: {:?}",
        saga.timers
    );
    eventually("the deadline to leave the timer store", || async {
        (runner.status.snapshot().timers_armed == 1).then_some(())
    })
    .await;
    let saga_events = world.stream(&format!("saga-{rid}")).await;
    assert!(saga_events.iter().all(|e| e.metadata.actor == "saga"));
    let reservation_events = world.stream(&format!("reservation-{rid}")).await;
    let confirm = reservation_events.last().expect("confirmation");
    assert_eq!(confirm.event_type, "ReservationConfirmed");
    assert_eq!(
        confirm.metadata.correlation_id, rid,
        "the correlation id is carried along"
    );
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_payment_fails_the_reservation_and_frees_the_rooms() {
    let world = World::new().await;
    world.configure_sandbox(json!({"decline_rate": 1.0})).await;
    let runner = world.start(fast_policy(), "saga.db");
    let lodging = world.register_lodging(1, ApprovalMode::Manual).await;
    let rid = world.request_stay(&lodging).await;
    world.grant(&lodging, rid).await;

    let failed = world.wait_for_status(rid, "payment_failed").await;
    assert!(failed
        .status_reason
        .unwrap_or_default()
        .contains("declined"));
    let withdrawn = eventually("the approval to be withdrawn", || async {
        let lodging = world.lodging(&lodging).await;
        let status = lodging.requests.get(&rid).map(|r| r.status);
        (status == Some(RequestStatus::Withdrawn)).then_some(lodging)
    })
    .await;
    assert!(
        withdrawn.booked.is_empty(),
        "rooms are free again: {:?}",
        withdrawn.booked
    );
    assert!(world.charges_for(rid).await.is_empty());
    assert_eq!(world.payment(rid).await.status, PaymentStatus::Failed);
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_lodging_rejects_the_reservation_and_parks_the_request() {
    let world = World::new().await;
    let runner = world.start(fast_policy(), "saga.db");
    let rid = world.request_stay("nowhere").await;

    let rejected = world.wait_for_status(rid, "rejected").await;
    assert_eq!(rejected.status_reason.as_deref(), Some("unknown lodging"));
    let store = saga::SqliteTimerStore::open(world.store_path("saga.db")).expect("store");
    let parked = eventually("the rejected action to be parked", || async {
        let parked = saga::TimerStore::parked(&store, 10).await.expect("parked");
        (!parked.is_empty()).then_some(parked)
    })
    .await;
    assert_eq!(parked[0].reservation_id, Some(rid));
    assert!(parked[0].error.contains("unknown lodging"), "{parked:?}");
    assert_eq!(runner.status.snapshot().actions_parked, 1);
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_stay_is_refunded_exactly_once_even_when_handled_again() {
    let world = World::new().await;
    let runner = world.start(fast_policy(), "saga.db");
    let lodging = world.register_lodging(1, ApprovalMode::Instant).await;
    let rid = world.request_stay(&lodging).await;
    world.wait_for_status(rid, "confirmed").await;

    let cancel = ReservationCommand::Cancel {
        cancelled_by: "customer-1".to_string(),
        reason: "plans changed".to_string(),
        timezone: domain::WAVE1_TIMEZONE,
    };
    world.reservation_command(rid, &cancel).await;
    let refunded = eventually("the refund to be recorded", || async {
        let r = world.reservation(rid).await;
        r.refunded_amount.map(|_| r)
    })
    .await;
    assert_eq!(refunded.refunded_amount, Some(2 * NIGHTLY_RATE));
    assert_eq!(world.payment(rid).await.status, PaymentStatus::Refunded);
    let lodging_state = world.lodging(&lodging).await;
    assert_eq!(
        lodging_state.requests[&rid].status,
        RequestStatus::Withdrawn
    );
    world.settle(&runner).await;
    runner.stop().await;
    let head = world.head().await;

    // A second runner with an empty store handles the whole log again, as after losing the store.
    let replay = world.start(fast_policy(), "replay.db");
    eventually("the replay to reach the head", || async {
        (replay.status.checkpoint() >= head).then_some(())
    })
    .await;
    replay.stop().await;
    assert_eq!(
        world.head().await,
        head,
        "handling the same events again writes nothing"
    );
    let charges = world.charges_for(rid).await;
    assert_eq!(charges.len(), 1);
    assert!(charges[0].refunded);
    assert_eq!(charges[0].refunded_amount, 2 * NIGHTLY_RATE);
    assert_eq!(
        (charges[0].attempts, charges[0].refund_attempts),
        (1, 1),
        "{charges:?}"
    );
    let payment_events = world.event_types(&format!("payment-{rid}")).await;
    let refunds = payment_events
        .iter()
        .filter(|t| *t == "PaymentRefunded")
        .count();
    assert_eq!(refunds, 1, "{payment_events:?}");
}
