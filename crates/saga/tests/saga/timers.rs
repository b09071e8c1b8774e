//! Durable timers: the approval deadline, and timers surviving a restart.

use chrono::TimeDelta;
use domain::lodging::{ApprovalMode, RequestStatus};
use domain::saga::{SagaPolicy, TimerKind};
use saga::TimerStore;

use crate::world::{eventually, fast_policy, World};

fn deadline(ms: i64) -> SagaPolicy {
    SagaPolicy {
        approval_deadline: TimeDelta::milliseconds(ms),
        ..fast_policy()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecided_request_expires_at_the_deadline() {
    let world = World::new().await;
    let runner = world.start(deadline(300), "saga.db");
    let lodging = world.register_lodging(1, ApprovalMode::Manual).await;
    let rid = world.request_stay(&lodging).await;

    let expired = world.wait_for_status(rid, "expired").await;
    assert_eq!(
        expired.status_reason.as_deref(),
        Some("approval deadline passed")
    );
    let withdrawn = eventually("the approval to be withdrawn", || async {
        let state = world.lodging(&lodging).await;
        let status = state.requests.get(&rid).map(|r| r.status);
        (status == Some(RequestStatus::Withdrawn)).then_some(())
    })
    .await;
    assert_eq!(withdrawn, ());
    assert!(world.charges().await.is_empty());
    eventually("the fired timer to be gone", || async {
        let snapshot = runner.status.snapshot();
        (snapshot.timers_armed == 0 && snapshot.timers_fired == 1).then_some(())
    })
    .await;
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_armed_deadline_fires_after_a_restart() {
    let world = World::new().await;
    let runner = world.start(deadline(1_500), "saga.db");
    let lodging = world.register_lodging(1, ApprovalMode::Manual).await;
    let rid = world.request_stay(&lodging).await;
    eventually("the deadline to be armed", || async {
        (runner.status.snapshot().timers_armed == 1).then_some(())
    })
    .await;
    runner.stop().await;

    let store = saga::SqliteTimerStore::open(world.store_path("saga.db")).expect("store");
    let stored = store.load().await.expect("progress");
    assert_eq!(stored.timers.len(), 1, "{stored:?}");
    assert_eq!(
        (stored.timers[0].reservation_id, stored.timers[0].kind),
        (rid, TimerKind::ApprovalDeadline)
    );
    assert!(stored.checkpoint > 0);
    assert_eq!(world.reservation(rid).await.status.as_str(), "requested");

    let restarted = world.start(deadline(1_500), "saga.db");
    world.wait_for_status(rid, "expired").await;
    eventually("the timer to be spent", || async {
        (restarted.status.snapshot().timers_armed == 0).then_some(())
    })
    .await;
    restarted.stop().await;
    assert!(store.load().await.expect("progress").timers.is_empty());
}

/// A saga restarting behind the log must not fire a deadline before it has read an approval
/// recorded ahead of that deadline (the admin got a 202: the stay must not end expired).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_waits_until_the_log_is_read_up_to_it() {
    let world = World::new().await;
    let runner = world.start(deadline(1_500), "saga.db");
    let lodging = world.register_lodging(1, ApprovalMode::Manual).await;
    let rid = world.request_stay(&lodging).await;
    eventually("the deadline to be armed", || async {
        (runner.status.snapshot().timers_armed == 1).then_some(())
    })
    .await;
    runner.stop().await;
    // Many other reservations, then the approval, all before the deadline: catching up takes pages.
    let other = world.register_lodging(1_000, ApprovalMode::Manual).await;
    for _ in 0..700 {
        world.request_stay(&other).await;
    }
    world.grant(&lodging, rid).await;
    tokio::time::sleep(std::time::Duration::from_millis(1_600)).await;

    let restarted = world.start(deadline(1_500), "saga.db");
    let confirmed = world.wait_for_status(rid, "confirmed").await;
    assert_eq!(confirmed.status.as_str(), "confirmed");
    restarted.stop().await;
}
