//! The projector over the real SQLite event log and SQLite view store.

mod support;

use std::sync::Arc;

use domain::reservation::{ReservationEvent, ReservationRequested};
use readmodel::conformance::{crowd, dump, history, payouts, timeline::day, timeline::Timeline};
use readmodel::{ApprovalStatus, PaymentStatus, RefundStatus, ReservationStatus, ViewStore};
use serde_json::json;
use support::recording::Recording;
use support::{Env, WAIT};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_projection_builds_the_views_of_a_whole_flow() {
    let env = Env::new();
    let running = env.start(env.views.clone());
    let (t, cast) = history();
    let head = env.append_all(t.events()).await;
    assert!(
        running.status.wait_for(head, WAIT).await,
        "the views reach the head"
    );

    let views = env.views.clone();
    let view = |id| {
        let views = views.clone();
        async move { views.reservation(id).await.expect("read").expect("exists") }
    };
    let confirmed = view(cast.confirmed).await;
    assert_eq!(
        (confirmed.status, confirmed.payment_status),
        (ReservationStatus::Confirmed, PaymentStatus::Completed)
    );
    assert_eq!(confirmed.lodging_name.as_deref(), Some("Stay seoul-1"));
    let cancelled = view(cast.cancelled).await;
    assert_eq!(
        (cancelled.status, cancelled.refund_status),
        (ReservationStatus::Cancelled, RefundStatus::Refunded)
    );
    assert_eq!(view(cast.expired).await.status, ReservationStatus::Expired);
    assert_eq!(
        view(cast.payment_pending).await.status,
        ReservationStatus::PaymentPending
    );
    let pending = env
        .views
        .request(cast.requested)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(
        (pending.request_status, pending.available),
        (ApprovalStatus::Pending, true)
    );

    assert_eq!(
        env.views
            .checkpoint(projector::PROJECTOR_ID)
            .await
            .expect("checkpoint"),
        head
    );
    assert_eq!(
        running.status.events_projected(),
        u64::try_from(t.events().len()).unwrap_or(0)
    );
    assert_eq!(
        (running.status.lag(), running.status.dead_letter_count()),
        (0, 0)
    );
    assert_eq!(running.status.last_error(), None);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_projector_reads_what_it_missed_and_nothing_twice() {
    let env = Env::new();
    let mut t = Timeline::new();
    t.register("jeju-1", 1);
    let first = t.request("jeju-1", "c-1", day(0), 2);
    t.grant("jeju-1", first);
    let before = t.events().len();
    let running = env.start(env.views.clone());
    let head = env.append_all(t.events()).await;
    assert!(running.status.wait_for(head, WAIT).await);
    running.stop().await;

    // While the projector is down: the stay is withdrawn and another one overlaps it.
    t.fail_payment("jeju-1", first);
    let second = t.request("jeju-1", "c-2", day(1), 1);
    let head = env.append_all(&t.events()[before..]).await;
    assert_eq!(
        env.views
            .checkpoint(projector::PROJECTOR_ID)
            .await
            .expect("checkpoint"),
        u64::try_from(before).unwrap_or(0)
    );

    let restarted = env.start(env.views.clone());
    assert!(
        restarted.status.wait_for(head, WAIT).await,
        "caught up after restart"
    );
    let missed = u64::try_from(t.events().len() - before).unwrap_or(0);
    assert_eq!(
        restarted.status.events_projected(),
        missed,
        "only the missed events"
    );
    let request = env
        .views
        .request(second)
        .await
        .expect("read")
        .expect("exists");
    assert!(
        request.available,
        "the withdrawn stay freed the room exactly once"
    );
    let failed = env
        .views
        .reservation(first)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(failed.status, ReservationStatus::PaymentFailed);
    restarted.stop().await;

    let rebuilt = env.fresh_views("rebuilt.db");
    projector::rebuild(env.log.clone(), rebuilt.clone(), |_, _| {})
        .await
        .expect("rebuild");
    assert_eq!(dump(&*rebuilt).await, dump(&*env.views).await);
}

/// A ReservationRequested naming another reservation than its stream: it decodes, but the views
/// refuse it.
fn forged_request() -> ReservationEvent {
    ReservationEvent::ReservationRequested(ReservationRequested {
        timezone: domain::WAVE1_TIMEZONE,
        rooms: 1,
        reservation_id: Uuid::from_u128(99),
        customer_id: "c-6".into(),
        lodging_id: "seoul-1".into(),
        check_in: day(0),
        check_out: day(1),
        guests: 1,
        nights: 1,
        total_amount: 1,
        currency: "KRW".into(),
    })
}

/// Append three poison events among good ones; returns their positions.
async fn append_poison(env: &Env) -> Vec<u64> {
    let unknown = env
        .append_raw(
            "reservation-x",
            "ReservationTeleported",
            json!({"to": "mars"}),
        )
        .await;
    let id = Uuid::from_u128(77);
    let malformed = env
        .append_raw(
            &format!("reservation-{id}"),
            "ReservationRejected",
            json!({"reason": 5}),
        )
        .await;
    let stream = format!("reservation-{}", Uuid::from_u128(78));
    let unprocessable = env.append(&stream, &forged_request()).await;
    vec![unknown, malformed, unprocessable]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_events_are_parked_and_projection_goes_on() {
    let env = Env::new();
    let (t, cast) = history();
    let half = t.events().len() / 2;
    env.append_all(&t.events()[..half]).await;
    let poison = append_poison(&env).await;
    let head = env.append_all(&t.events()[half..]).await;

    // Started after the appends: the poison events arrive inside catch-up batches.
    let running = env.start(env.views.clone());
    assert!(
        running.status.wait_for(head, WAIT).await,
        "the projection went past the poison"
    );
    let parked = env.views.dead_letters().await.expect("dead letters");
    let positions: Vec<u64> = parked.iter().map(|d| d.position).collect();
    assert_eq!(positions, poison);
    let types: Vec<&str> = parked.iter().map(|d| d.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "ReservationTeleported",
            "ReservationRejected",
            "ReservationRequested"
        ]
    );
    assert!(
        parked[0].error.contains("not a reservation id"),
        "{:?}",
        parked[0]
    );
    assert!(
        parked[2].error.contains("cannot be projected"),
        "{:?}",
        parked[2]
    );
    assert_eq!(running.status.dead_letter_count(), 3);
    assert_eq!(
        env.views
            .reservation(Uuid::from_u128(99))
            .await
            .expect("read"),
        None
    );
    let approved = env
        .views
        .reservation(cast.approved)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(
        approved.status,
        ReservationStatus::Approved,
        "events after the poison are applied"
    );

    // Live: another poison event and a good one after it.
    let late = env
        .append_raw("payment-late", "PaymentCompleted", json!({}))
        .await;
    let mut more = t.clone();
    let id = more.request("busan-2", "c-9", day(20), 1);
    let head = env.append_all(&more.events()[t.events().len()..]).await;
    assert!(running.status.wait_for(head, WAIT).await);
    assert!(env.views.reservation(id).await.expect("read").is_some());
    assert_eq!(env.views.dead_letter_count().await.expect("count"), 4);
    assert_eq!(
        env.views.dead_letters().await.expect("list")[3].position,
        late
    );
    running.stop().await;

    // A restarted projector counts the parked events it finds.
    let restarted = env.start(env.views.clone());
    assert!(restarted.status.wait_for(head, WAIT).await);
    assert_eq!(restarted.status.dead_letter_count(), 4);
    restarted.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_equals_the_live_views_byte_for_byte() {
    let env = Env::new();
    let running = env.start(env.views.clone());
    let (mut t, _) = history();
    let bookings = crowd(&mut t);
    payouts::pay_hosts(&mut t, &bookings);
    let half = t.events().len() / 2;
    env.append_all(&t.events()[..half]).await;
    append_poison(&env).await;
    let head = env.append_all(&t.events()[half..]).await;
    assert!(running.status.wait_for(head, WAIT).await);
    running.stop().await;

    let rebuilt = env.fresh_views("rebuilt.db");
    let reports = std::sync::Mutex::new(Vec::new());
    let last = projector::rebuild(env.log.clone(), rebuilt.clone(), |applied, of| {
        reports.lock().expect("reports").push((applied, of));
    })
    .await
    .expect("rebuild");
    assert_eq!(last, head);
    let reports = reports.into_inner().expect("reports");
    assert_eq!(reports.first(), Some(&(0, head)));
    assert_eq!(reports.last(), Some(&(head, head)));

    let live = dump(&*env.views).await;
    assert!(live.lines().count() > 60, "many documents");
    let paid = readmodel::PayoutFilter {
        status: Some("sent".into()),
        ..readmodel::PayoutFilter::default()
    };
    let sent = env
        .views
        .payouts(&paid, &readmodel::PageRequest::first(50))
        .await;
    assert!(
        !sent.expect("list payouts").items.is_empty(),
        "payouts from the log"
    );
    assert_eq!(dump(&*rebuilt).await, live);
    assert_eq!(
        rebuilt.dead_letters().await.expect("list"),
        env.views.dead_letters().await.expect("list")
    );
    assert_eq!(
        rebuilt
            .checkpoint(projector::PROJECTOR_ID)
            .await
            .expect("checkpoint"),
        head
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_store_is_waited_for_not_blamed_on_events() {
    let env = Env::new();
    // The real store, unavailable for its first 6 applies.
    let store = Arc::new(Recording::over(env.views.clone()).failing(6));
    let (t, cast) = history();
    let head = env.append_all(t.events()).await;
    let running = env.start(store.clone());
    assert!(
        running.status.wait_for(head, WAIT).await,
        "caught up once the store came back"
    );
    assert_eq!(store.failures_left(), 0, "every failure was retried");
    assert_eq!(
        env.views.dead_letter_count().await.expect("count"),
        0,
        "nothing parked"
    );
    assert_eq!(
        running.status.last_error(),
        None,
        "cleared by the next success"
    );
    assert!(env
        .views
        .reservation(cast.confirmed)
        .await
        .expect("read")
        .is_some());
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_that_fail_and_end_are_resumed_without_a_gap_or_a_repeat() {
    let env = Env::new();
    let (mut t, _) = history();
    crowd(&mut t);
    // Every subscription delivers 7 events, then a read error, then ends.
    let log = Arc::new(
        eventlog::conformance::FaultyLog::new(env.log.clone(), "unused").dropping_subscriptions(7),
    );
    let projector = projector::Projector::new(log.clone(), env.views.clone())
        .with_retry(support::quick_retry())
        .with_max_batch(3);
    let status = projector.status();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(projector.run(shutdown.clone()));
    let half = t.events().len() / 2;
    env.append_all(&t.events()[..half]).await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let head = env.append_all(&t.events()[half..]).await;
    assert!(
        status.wait_for(head, WAIT).await,
        "the views reach the head"
    );
    shutdown.cancel();
    task.await.expect("joins").expect("stops cleanly");

    let events = u64::try_from(t.events().len()).expect("count");
    assert_eq!(status.events_projected(), events, "each event applied once");
    assert!(
        u64::from(log.subscriptions()) >= events / 7,
        "every subscription ended after 7 events"
    );
    let rebuilt = env.fresh_views("rebuilt.db");
    projector::rebuild(env.log.clone(), rebuilt.clone(), |_, _| {})
        .await
        .expect("rebuild");
    assert_eq!(dump(&*env.views).await, dump(&*rebuilt).await);
}

/// A follower (`Projector::with_follower`) that starts behind the projector it follows: reading
/// starts at its checkpoint, the views skip what they have, and both end with the same documents
/// under their own checkpoints; new events reach both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_catches_up_from_its_own_checkpoint_and_then_follows() {
    let env = Env::new();
    let (mut t, _) = history();
    crowd(&mut t);
    let half = t.events().len() / 2;
    let first = env.append_all(&t.events()[..half]).await;
    let running = env.start(env.views.clone());
    assert!(running.status.wait_for(first, WAIT).await);
    running.stop().await;

    let second = env.fresh_views("second.db");
    let follower_status = projector::ProjectorStatus::default();
    let log: Arc<dyn eventlog::EventLog> = env.log.clone();
    let projector = projector::Projector::new(log, env.views.clone())
        .with_retry(support::quick_retry())
        .with_follower(
            "second",
            Arc::new(readmodel::Views(second.clone())),
            follower_status.clone(),
        );
    let status = projector.status();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(projector.run(shutdown.clone()));
    let head = env.append_all(&t.events()[half..]).await;
    assert!(status.wait_for(head, WAIT).await, "the views");
    assert!(follower_status.wait_for(head, WAIT).await, "the follower");
    shutdown.cancel();
    task.await.expect("joins").expect("stops cleanly");

    assert_eq!(second.checkpoint("second").await.expect("checkpoint"), head);
    assert_eq!(
        env.views
            .checkpoint(projector::PROJECTOR_ID)
            .await
            .expect("checkpoint"),
        head
    );
    let views = dump(&*env.views).await;
    assert!(views.lines().count() > 40);
    assert_eq!(
        dump(&*second).await,
        views,
        "the follower built the same documents"
    );
}
