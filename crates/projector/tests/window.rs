//! The projector's commit window, over a real SQLite event log and view store: events that arrive
//! within the window after a transaction began are gathered into the next one, while the first
//! event, and an event after a quiet spell, are applied at once.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use projector::{Projector, ProjectorStatus};
use readmodel::conformance::timeline::{day, Timeline};
use readmodel::{ViewEvent, ViewStore};
use support::recording::Recording;
use support::{quick_retry, Env, WAIT};
use tokio_util::sync::CancellationToken;

/// Long, so that "at once" and "gathered" cannot be mistaken for each other on a slow, busy
/// machine: what is applied at once takes under half of it, a gathered burst over half of it.
const WINDOW: Duration = Duration::from_secs(8);
/// Applied without waiting for the window: within half of it.
const AT_ONCE: Duration = Duration::from_secs(4);

async fn applied(status: &ProjectorStatus, position: u64) {
    let mut applied = status.subscribe();
    tokio::time::timeout(WAIT, applied.wait_for(|p| *p >= position))
        .await
        .expect("applied in time")
        .expect("projector running");
}

/// A lodging's registration, then `count` requests for it and their desk's events.
fn requests(count: u64) -> Vec<ViewEvent> {
    let mut t = Timeline::new();
    t.register("stay-1", 50);
    for i in 0..count {
        t.request("stay-1", &format!("c-{i}"), day(i % 5), 1);
    }
    t.events().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_within_the_window_is_one_transaction_and_a_lone_event_is_applied_at_once() {
    let env = Env::new();
    let store = Arc::new(Recording::over(env.views.clone()));
    let views: Arc<dyn ViewStore> = store.clone();
    let projector = Projector::new(env.log.clone(), views)
        .with_retry(quick_retry())
        .with_window(WINDOW);
    let status = projector.status();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(projector.run(shutdown.clone()));

    let events = requests(12);
    assert!(
        events.len() > 20,
        "a burst of requests and their desk's events"
    );

    // The first event: nothing to wait for.
    let first = Instant::now();
    let head = env.append_view_event(&events[0]).await;
    applied(&status, head).await;
    assert!(
        first.elapsed() < AT_ONCE,
        "the first event waited {:?}",
        first.elapsed()
    );

    // After a quiet spell longer than the window (a sleep is the spell itself: any delay only
    // makes it longer): at once, in a transaction of its own.
    tokio::time::sleep(WINDOW + Duration::from_millis(200)).await;
    let before = store.transactions();
    let lone = Instant::now();
    let head = env.append_view_event(&events[1]).await;
    applied(&status, head).await;
    assert!(
        lone.elapsed() < AT_ONCE,
        "a lone event waited {:?}",
        lone.elapsed()
    );
    assert_eq!(store.transactions(), before + 1);

    // A burst right after it (appended in far less than the window): gathered until the window
    // that began with the lone event's transaction is over, then applied in one transaction. The
    // lone event's own commit and the wait for it take some of the window, never half of it.
    let burst = Instant::now();
    let mut head = 0;
    for event in &events[2..] {
        head = env.append_view_event(event).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let appended = burst.elapsed();
    assert!(appended < AT_ONCE, "appending the burst took {appended:?}");
    applied(&status, head).await;
    let waited = burst.elapsed();
    assert!(
        waited >= WINDOW / 2,
        "the burst was applied after {waited:?}, not held for the window"
    );
    assert_eq!(
        store.transactions(),
        before + 2,
        "{} events in one transaction",
        events.len() - 2
    );

    shutdown.cancel();
    task.await.expect("joins").expect("stops cleanly");
}

/// A follower's own window (`Projector::with_follower_window`): while the projector, without a
/// window here, commits a burst as it comes, the follower joins what arrives within its window
/// since its last transaction into one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_joins_the_batches_of_its_window_into_one_transaction() {
    let env = Env::new();
    let views = Arc::new(Recording::over(env.views.clone()));
    let follower = Arc::new(Recording::over(env.fresh_views("follower.db")));
    let follower_status = ProjectorStatus::default();
    let as_views: Arc<dyn ViewStore> = views.clone();
    let as_follower: Arc<dyn ViewStore> = follower.clone();
    let projector = Projector::new(env.log.clone(), as_views)
        .with_retry(quick_retry())
        .with_window(Duration::ZERO)
        .with_follower(
            "follower",
            Arc::new(readmodel::Views(as_follower)),
            follower_status.clone(),
        )
        .with_follower_window(WINDOW);
    let status = projector.status();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(projector.run(shutdown.clone()));

    let events = requests(8);

    // The first event: at once, for both.
    let first = Instant::now();
    let head = env.append_view_event(&events[0]).await;
    applied(&status, head).await;
    applied(&follower_status, head).await;
    assert!(first.elapsed() < AT_ONCE, "waited {:?}", first.elapsed());
    let (views_before, follower_before) = (views.transactions(), follower.transactions());

    // A burst, an event every 10 ms: the projector applies it as it comes, the follower once its
    // window since the first event's transaction is over, in one transaction.
    let burst = Instant::now();
    let mut head = 0;
    for event in &events[1..] {
        head = env.append_view_event(event).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        burst.elapsed() < AT_ONCE,
        "appending took {:?}",
        burst.elapsed()
    );
    applied(&status, head).await;
    applied(&follower_status, head).await;
    assert!(
        burst.elapsed() >= WINDOW / 2,
        "the follower applied the burst after {:?}, not held for its window",
        burst.elapsed()
    );
    let projector_transactions = views.transactions() - views_before;
    assert!(
        projector_transactions >= 3,
        "the projector committed the burst as it came: {projector_transactions} transactions"
    );
    assert_eq!(
        follower.transactions() - follower_before,
        1,
        "the follower joined {} events into one transaction",
        events.len() - 1
    );
    assert_eq!(
        follower
            .inner
            .checkpoint("follower")
            .await
            .expect("checkpoint"),
        head
    );

    shutdown.cancel();
    task.await.expect("joins").expect("stops cleanly");
}
