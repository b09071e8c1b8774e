//! Crashes, redelivery, refunds during an outage, and two runners splitting the work.

use std::sync::Arc;

use chrono::Utc;
use domain::lodging::ApprovalMode;
use domain::payment::PaymentStatus;
use domain::reservation::ReservationCommand;
use domain::saga::{ReservationSaga, SagaEvent, SagaInput, SagaTrigger, TimerKind};
use domain::DomainEvent;
use eventlog::{CommandContext, Repository};
use saga::{PaymentGateway, SagaConfig, Shard, TimerStore};
use serde_json::json;

use crate::world::{eventually, fast_policy, World};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_recorded_before_a_crash_is_acted_on_exactly_once() {
    let world = World::new().await;
    let lodging = world.register_lodging(1, ApprovalMode::Manual).await;
    let rid = world.request_stay(&lodging).await;
    let requested = world.stream(&format!("reservation-{rid}")).await.remove(0);
    let input = domain::reservation::ReservationEvent::decode(
        &requested.event_type,
        requested.schema_version,
        &requested.data,
    )
    .expect("decodes");
    // The saga recorded its decision, then "crashed" before sending anything.
    let trigger = SagaTrigger {
        trigger_id: requested.event_id,
        input: SagaInput::Reservation(input),
        policy: fast_policy(),
    };
    let ctx = CommandContext {
        correlation_id: rid,
        causation_id: requested.event_id,
        actor: "saga".to_string(),
        now: Utc::now(),
    };
    Repository::<ReservationSaga>::new(Arc::clone(&world.log))
        .with_snapshots(world.log.snapshots())
        .execute(&rid.to_string(), &trigger, &ctx)
        .await
        .expect("recorded");
    assert!(world.lodging(&lodging).await.requests.is_empty());
    // A charge also reached the gateway before the crash (same idempotency key the saga uses).
    let early = world
        .http_gateway()
        .charge(&rid.to_string(), 100_000, "KRW")
        .await
        .expect("charged");

    let runner = world.start(fast_policy(), "saga.db");
    eventually("the recorded action to be sent", || async {
        world.lodging(&lodging).await.requests.get(&rid).map(|_| ())
    })
    .await;
    world.grant(&lodging, rid).await;
    world.wait_for_status(rid, "confirmed").await;
    runner.stop().await;

    let lodging_events = world.event_types(&format!("lodging-{lodging}")).await;
    let forwarded = lodging_events
        .iter()
        .filter(|t| *t == "ApprovalRequested")
        .count();
    assert_eq!(forwarded, 1, "{lodging_events:?}");
    let saga = world.saga(rid).await;
    assert!(saga.handled.contains_key(&requested.event_id));
    let saga_events: Vec<SagaEvent> = world
        .stream(&format!("saga-{rid}"))
        .await
        .iter()
        .map(|e| SagaEvent::decode(&e.event_type, e.schema_version, &e.data).expect("decodes"))
        .collect();
    let armed: Vec<TimerKind> = saga_events
        .iter()
        .flat_map(|event| match event {
            SagaEvent::SagaEventHandled { armed, .. } => armed.iter().map(|a| a.timer).collect(),
            _ => vec![],
        })
        .collect();
    assert_eq!(
        armed,
        [TimerKind::ApprovalDeadline, TimerKind::CheckOut],
        "the trigger was not decided twice: {saga_events:?}"
    );
    let charges = world.charges_for(rid).await;
    assert_eq!(charges.len(), 1, "{charges:?}");
    assert_eq!(charges[0].attempts, 2);
    let payment = world.payment(rid).await;
    assert_eq!(
        payment.charge_ref.as_deref(),
        Some(early.charge_ref.as_str())
    );
}

/// A payment's request opens its stream, so the saga decides it without reading the stream. Sent
/// again (a fresh store makes the saga handle the whole log again, as after a crash), its event is
/// found by its id: the stream is read, nothing is added, and the charge that follows sees the
/// payment completed and is not sent to the gateway again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_request_sent_again_adds_nothing_and_charges_once() {
    let world = World::new().await;
    let runner = world.start(fast_policy(), "saga.db");
    let lodging = world.register_lodging(1, ApprovalMode::Manual).await;
    let rid = world.request_stay(&lodging).await;
    eventually("the request to reach the lodging", || async {
        world.lodging(&lodging).await.requests.get(&rid).map(|_| ())
    })
    .await;
    world.grant(&lodging, rid).await;
    world.wait_for_status(rid, "confirmed").await;
    world.settle(&runner).await;
    runner.stop().await;
    let payment_stream = format!("payment-{rid}");
    let ids = |events: Vec<eventlog::RecordedEvent>| -> Vec<uuid::Uuid> {
        events.iter().map(|e| e.event_id).collect()
    };
    let before = ids(world.stream(&payment_stream).await);
    assert_eq!(
        world.event_types(&payment_stream).await,
        ["PaymentRequested", "PaymentCompleted"]
    );
    let head = world.head().await;

    let again = world.start(fast_policy(), "rewound.db");
    eventually("the rewound saga to catch up", || async {
        (again.status.checkpoint() >= head).then_some(())
    })
    .await;
    again.stop().await;
    assert_eq!(ids(world.stream(&payment_stream).await), before);
    assert_eq!(world.head().await, head, "no new event anywhere");
    assert_eq!(world.payment(rid).await.status, PaymentStatus::Completed);
    let charges = world.charges_for(rid).await;
    assert_eq!(charges.len(), 1, "{charges:?}");
    assert_eq!(charges[0].attempts, 1, "the gateway was not called again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivered_events_change_nothing() {
    let world = World::new().await;
    let runner = world.start(fast_policy(), "saga.db");
    let lodging = world.register_lodging(2, ApprovalMode::Instant).await;
    let confirmed = world.request_stay(&lodging).await;
    world.wait_for_status(confirmed, "confirmed").await;
    world.settle(&runner).await;
    runner.stop().await;
    let head = world.head().await;

    // Rewind: a fresh store makes the runner see every event again.
    let again = world.start(fast_policy(), "rewound.db");
    eventually("the rewound runner to catch up", || async {
        (again.status.checkpoint() >= head).then_some(())
    })
    .await;
    again.stop().await;
    assert_eq!(world.head().await, head, "no new event anywhere");
    assert_eq!(
        world.charges_for(confirmed).await[0].attempts,
        1,
        "the gateway was not called again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_waits_durably_for_the_gateway_across_a_restart() {
    let world = World::new().await;
    let runner = world.start(fast_policy(), "saga.db");
    let lodging = world.register_lodging(1, ApprovalMode::Instant).await;
    let rid = world.request_stay(&lodging).await;
    world.wait_for_status(rid, "confirmed").await;

    world.configure_sandbox(json!({"overloaded": true})).await;
    let cancel = ReservationCommand::Cancel {
        cancelled_by: "customer-1".to_string(),
        reason: "ill".to_string(),
        timezone: domain::WAVE1_TIMEZONE,
    };
    world.reservation_command(rid, &cancel).await;
    eventually("the refund to wait for the gateway", || async {
        (runner.status.snapshot().refunds_pending == 1).then_some(())
    })
    .await;
    runner.stop().await;
    let store = saga::SqliteTimerStore::open(world.store_path("saga.db")).expect("store");
    let waiting = store.load().await.expect("progress").refunds;
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].reservation_id, rid);
    assert!(waiting[0].last_error.contains("503"), "{waiting:?}");
    assert_eq!(world.payment(rid).await.status, PaymentStatus::Completed);

    world.configure_sandbox(json!({"overloaded": false})).await;
    let restarted = world.start(fast_policy(), "saga.db");
    let refunded = eventually("the refund to go through", || async {
        world.reservation(rid).await.refunded_amount
    })
    .await;
    assert_eq!(refunded, 100_000);
    eventually("the refund retry to be settled", || async {
        (restarted.status.snapshot().refunds_pending == 0).then_some(())
    })
    .await;
    restarted.stop().await;
    assert!(store.load().await.expect("progress").refunds.is_empty());
    let charges = world.charges_for(rid).await;
    assert!(charges[0].refunded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_split_the_reservations_and_never_both_handle_one() {
    let world = World::new().await;
    let start = |index, store: &str| {
        let config = SagaConfig {
            shard: Shard::new(index, 2).expect("valid shard"),
            lanes: 2,
            ..SagaConfig::default()
        };
        let gateway: Arc<dyn PaymentGateway> = Arc::new(world.http_gateway());
        world.start_with(fast_policy(), store, gateway, config)
    };
    let first = start(0, "shard-0.db");
    let second = start(1, "shard-1.db");
    let lodging = world.register_lodging(20, ApprovalMode::Instant).await;
    let reservations = world.request_stays(&lodging, 8).await;
    world.wait_for_all(&reservations, "confirmed").await;
    let (a, b) = (first.status.snapshot(), second.status.snapshot());
    first.stop().await;
    second.stop().await;
    assert_eq!(a.charges_completed + b.charges_completed, 8);
    world.assert_handled_once(&reservations).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voided_payment_is_not_charged_when_the_log_is_handled_again() {
    let world = World::new().await;
    world.configure_sandbox(json!({"overloaded": true})).await;
    let runner = world.start(fast_policy(), "saga.db");
    let lodging = world.register_lodging(1, ApprovalMode::Instant).await;
    let rid = world.request_stay(&lodging).await;
    world.wait_for_status(rid, "payment_pending").await;
    let cancel = ReservationCommand::Cancel {
        cancelled_by: "customer-1".to_string(),
        reason: "found another place".to_string(),
        timezone: domain::WAVE1_TIMEZONE,
    };
    world.reservation_command(rid, &cancel).await;
    eventually("the payment to be voided", || async {
        (world.payment(rid).await.status == PaymentStatus::Voided).then_some(())
    })
    .await;
    world.settle(&runner).await;
    eventually("the retry timer to be disarmed", || async {
        (runner.status.snapshot().timers_armed == 0).then_some(())
    })
    .await;
    runner.stop().await;
    let head = world.head().await;

    // The gateway is back, and a runner with an empty store sends every recorded action again:
    // the deferred charges already have an outcome, so none of them reaches the gateway.
    world.configure_sandbox(json!({"overloaded": false})).await;
    let replay = world.start(fast_policy(), "replay.db");
    eventually("the replay to catch up", || async {
        (replay.status.checkpoint() >= head).then_some(())
    })
    .await;
    replay.stop().await;
    assert!(world.charges_for(rid).await.is_empty());
    assert_eq!(world.head().await, head);
    assert_eq!(world.payment(rid).await.status, PaymentStatus::Voided);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_saga_reports_its_armed_timers_and_checkpoint_before_any_new_event() {
    let world = World::new().await;
    let lodging = world.register_lodging(1, ApprovalMode::Manual).await;
    let ids = [
        world.request_stay(&lodging).await,
        world.request_stay(&lodging).await,
    ];
    let first = world.start(fast_policy(), "saga.db");
    world.settle(&first).await;
    let armed = first.status.snapshot();
    assert!(armed.timers_armed >= 2, "{armed:?}");
    first.stop().await;

    // Nothing new is written: the restarted runner shows what it loaded from its store.
    let again = world.start(fast_policy(), "saga.db");
    let loaded = eventually("the loaded agenda to show", || async {
        let now = again.status.snapshot();
        (now.timers_armed > 0).then_some(now)
    })
    .await;
    assert_eq!(loaded.timers_armed, armed.timers_armed, "{ids:?}");
    assert!(
        loaded.checkpoint >= armed.checkpoint,
        "{loaded:?} {armed:?}"
    );
    again.stop().await;
}
