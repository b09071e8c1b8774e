//! Durable timers: the approval deadline, and timers surviving a restart.

use std::collections::BTreeMap;

use chrono::TimeDelta;
use domain::lodging::{ApprovalMode, RequestStatus};
use domain::saga::{SagaPolicy, TimerKind};
use saga::{BreakerPolicy, SagaConfig, TimerStore};

use crate::world::{eventually, fast_policy, Running, World};

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

/// A runner on `saga.db` that keeps in memory only the timers due within 600 ms, so that a deadline
/// of a few seconds starts out in the store alone.
fn start_near(world: &World, policy: SagaPolicy) -> Running {
    let config = SagaConfig {
        near: std::time::Duration::from_millis(600),
        ..SagaConfig::default()
    };
    let gateway = world.gateway(BreakerPolicy {
        failure_threshold: 1_000,
        cool_down: std::time::Duration::from_millis(100),
    });
    world.start_with(policy, "saga.db", gateway, config)
}

/// A deadline further ahead than the runner keeps timers in memory stays in the timer store until
/// it comes near, and then fires on time, also after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_kept_only_in_the_store_fires_once_it_comes_near() {
    let world = World::new().await;
    let runner = start_near(&world, deadline(2_500));
    let lodging = world.register_lodging(1, ApprovalMode::Manual).await;
    let first = world.request_stay(&lodging).await;
    eventually("the deadline to be armed", || async {
        (runner.status.snapshot().timers_armed == 1).then_some(())
    })
    .await;
    runner.stop().await;
    let restarted = start_near(&world, deadline(2_500));
    let second = world.request_stay(&lodging).await;

    for rid in [first, second] {
        let expired = world.wait_for_status(rid, "expired").await;
        assert_eq!(
            expired.status_reason.as_deref(),
            Some("approval deadline passed")
        );
    }
    eventually("both fired and none left", || async {
        let snapshot = restarted.status.snapshot();
        (snapshot.timers_armed == 0 && snapshot.timers_fired == 2).then_some(())
    })
    .await;
    restarted.stop().await;
    let store = saga::SqliteTimerStore::open(world.store_path("saga.db")).expect("store");
    assert!(store.load().await.expect("progress").timers.is_empty());
}

/// A far deadline is taken in and fires while other requests keep coming, each arming a deadline of
/// its own (timer changes waiting to be committed, which the take-in must not read past).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_far_deadline_fires_while_requests_keep_coming() {
    let world = World::new().await;
    let runner = start_near(&world, deadline(2_000));
    let lodging = world.register_lodging(1, ApprovalMode::Manual).await;
    let busy = world.register_lodging(1_000, ApprovalMode::Manual).await;
    let first = world.request_stay(&lodging).await;
    let started = std::time::Instant::now();
    let expired = std::sync::atomic::AtomicBool::new(false);
    let requests = std::sync::atomic::AtomicUsize::new(0);
    let requester = || async {
        while !expired.load(std::sync::atomic::Ordering::Relaxed)
            && started.elapsed() < std::time::Duration::from_secs(15)
        {
            world.request_stay(&busy).await;
            requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    };
    let watcher = async {
        while world.reservation(first).await.status.as_str() != "expired"
            && started.elapsed() < std::time::Duration::from_secs(15)
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        expired.store(true, std::sync::atomic::Ordering::Relaxed);
    };
    futures::join!(watcher, requester(), requester(), requester(), requester());
    let requests = requests.into_inner();
    assert_eq!(
        world.reservation(first).await.status.as_str(),
        "expired",
        "the deadline did not fire while {requests} requests kept coming"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    assert!(requests > 10, "requests came all along: {requests}");
    runner.stop().await;
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

/// A confirmed stay's check-out is a durable timer (noon of its last day where the lodging is):
/// stored, kept across a restart, and when it comes due the stay is completed. The test cannot wait
/// for a real check-out: it re-arms the timer at "now" where the saga keeps it (a `SagaTimerArmed` on
/// the saga's stream, as the saga itself writes it, and the same in the timer store).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_stay_is_completed_when_its_check_out_comes() {
    let world = World::new().await;
    let runner = world.start(fast_policy(), "saga.db");
    let lodging = world.register_lodging(1, ApprovalMode::Manual).await;
    // Checking in today where the lodging is (Seoul), out tomorrow.
    let today = domain::local_date(chrono::Utc::now(), domain::Tz::Asia__Seoul);
    let stay = domain::Stay {
        check_in: today,
        check_out: today + TimeDelta::days(1),
        guests: 2,
        rooms: 1,
    };
    let rid = uuid::Uuid::new_v4();
    let request = domain::reservation::ReservationCommand::Request {
        reservation_id: rid,
        customer_id: "customer-1".to_string(),
        lodging: domain::reservation::LodgingTerms {
            lodging_id: lodging.clone(),
            nightly_rate: 120_000,
            currency: "KRW".to_string(),
            max_guests: 4,
            rooms: 1,
            timezone: domain::Tz::Asia__Seoul,
        },
        stay,
    };
    world.reservation_command(rid, &request).await;
    eventually("the saga to forward the request", || async {
        world.lodging(&lodging).await.requests.get(&rid).map(|_| ())
    })
    .await;
    world.grant(&lodging, rid).await;
    world.wait_for_status(rid, "confirmed").await;
    eventually("the check-out to be armed", || async {
        (runner.status.snapshot().timers_armed == 1).then_some(())
    })
    .await;
    runner.stop().await;

    let store = saga::SqliteTimerStore::open(world.store_path("saga.db")).expect("store");
    let stored = store.load().await.expect("progress");
    let check_out = domain::check_out_moment(stay.check_out, domain::Tz::Asia__Seoul);
    assert_eq!(stored.timers.len(), 1, "{stored:?}");
    let armed = &stored.timers[0];
    assert_eq!(
        (armed.reservation_id, armed.kind, armed.due_at),
        (rid, TimerKind::CheckOut, check_out)
    );
    assert_eq!(
        world.saga(rid).await.timers.get(&TimerKind::CheckOut),
        Some(&check_out)
    );

    // The day has come (a whole second: the store keeps times to the millisecond).
    let now = chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 0);
    let stream = format!("saga-{rid}");
    let version = world
        .stream(&stream)
        .await
        .last()
        .expect("saga stream")
        .version;
    let rearmed = domain::saga::SagaEvent::SagaTimerArmed {
        timer: TimerKind::CheckOut,
        due_at: now,
    };
    let metadata = eventlog::EventMetadata {
        correlation_id: rid,
        causation_id: rid,
        actor: "test:clock".to_string(),
    };
    let event = eventlog::encode(&rearmed, uuid::Uuid::new_v4(), metadata);
    world
        .log
        .append(
            &stream,
            eventlog::ExpectedVersion::Exact(version),
            vec![event],
        )
        .await
        .expect("re-arm on the saga stream");
    store
        .commit(saga::ProgressUpdate {
            timers: vec![(rid, BTreeMap::from([(TimerKind::CheckOut, now)]))],
            ..saga::ProgressUpdate::default()
        })
        .await
        .expect("re-arm in the store");

    let restarted = world.start(fast_policy(), "saga.db");
    let completed = world.wait_for_status(rid, "completed").await;
    let details = completed.details.expect("details");
    assert_eq!(completed.paid_amount, Some(details.total_amount));
    eventually("the timer to be spent", || async {
        (restarted.status.snapshot().timers_armed == 0).then_some(())
    })
    .await;
    restarted.stop().await;
    let types = world.event_types(&format!("reservation-{rid}")).await;
    assert_eq!(
        types.last().map(String::as_str),
        Some("ReservationCompleted")
    );
}
