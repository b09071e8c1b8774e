//! Saga runners as members of a consumer group ([`Source::Group`]): the group, not a shard, decides
//! which reservations each handles. Over the embedded log the group is `LocalGroups` (held in the
//! process); on EventStoreDB it is a persistent subscription, which passes the same conformance case
//! (crates/eventlog/tests/conformance.rs).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use domain::lodging::RequestStatus;
use domain::reservation::ReservationCommand;
use eventlog::{EventLog, GroupAcks, GroupDelivery, GroupMember, LogError, Position, Settlement};
use futures::StreamExt;
use tokio::sync::mpsc;
use uuid::Uuid;

use chrono::TimeDelta;
use domain::lodging::ApprovalMode;
use domain::saga::SagaPolicy;
use eventlog::{ConsumerGroups, LocalGroups};
use saga::{PaymentGateway, SagaConfig, Source};

use crate::world::{eventually, fast_policy, Running, World};

fn member(world: &World, groups: &Arc<LocalGroups>, name: &str) -> Running {
    let source = Source::Group {
        groups: Arc::clone(groups) as Arc<dyn ConsumerGroups>,
        group: "saga".to_string(),
        member: name.to_string(),
    };
    start(world, name, fast_policy(), source)
}

/// A runner with its timer store in `{name}.db`.
fn start(world: &World, name: &str, policy: SagaPolicy, source: Source) -> Running {
    let config = SagaConfig {
        lanes: 2,
        ..SagaConfig::default()
    };
    let gateway: Arc<dyn PaymentGateway> = Arc::new(world.http_gateway());
    world.start_from(policy, &format!("{name}.db"), gateway, config, source)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_group_members_split_the_reservations_and_handle_each_once() {
    let world = World::new().await;
    let groups = Arc::new(LocalGroups::new(Arc::clone(&world.log)));
    let first = member(&world, &groups, "member-a");
    let second = member(&world, &groups, "member-b");
    let lodging = world.register_lodging(20, ApprovalMode::Instant).await;
    let reservations = world.request_stays(&lodging, 8).await;
    world.wait_for_all(&reservations, "confirmed").await;
    eventually("every delivery acknowledged", || async {
        (groups.unsettled("saga") == 0).then_some(())
    })
    .await;
    let (a, b) = (first.status.snapshot(), second.status.snapshot());
    first.stop().await;
    second.stop().await;
    assert_eq!(a.charges_completed + b.charges_completed, 8);
    assert!(
        a.charges_completed > 0 && b.charges_completed > 0,
        "both members had a share: {} / {}",
        a.charges_completed,
        b.charges_completed
    );
    world.assert_handled_once(&reservations).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_member_leaves_the_other_finishes_its_reservations() {
    let world = World::new().await;
    let groups = Arc::new(LocalGroups::new(Arc::clone(&world.log)));
    let first = member(&world, &groups, "member-a");
    let second = member(&world, &groups, "member-b");
    let lodging = world.register_lodging(20, ApprovalMode::Manual).await;
    let reservations = world.request_stays(&lodging, 6).await;
    eventually("every request forwarded to the lodging", || async {
        let requests = world.lodging(&lodging).await.requests;
        reservations
            .iter()
            .all(|rid| requests.contains_key(rid))
            .then_some(())
    })
    .await;
    let a = first.status.snapshot();
    first.stop().await;
    assert!(a.checkpoint == 0, "a group member keeps no checkpoint");
    for rid in &reservations {
        world.grant(&lodging, *rid).await;
    }
    world.wait_for_all(&reservations, "confirmed").await;
    let b = second.status.snapshot();
    second.stop().await;
    assert_eq!(
        b.charges_completed, 6,
        "the member that stayed did them all"
    );
    world.assert_handled_once(&reservations).await;
}

/// A member stopped for good keeps the timers of its reservations in its store: no other member fires
/// them (the group hands out events, not timers). Draining it fires them and ends the runner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_leaving_for_good_is_drained_of_its_timers() {
    let world = World::new().await;
    let groups = Arc::new(LocalGroups::new(Arc::clone(&world.log)));
    let policy = SagaPolicy {
        approval_deadline: TimeDelta::milliseconds(1_500),
        ..fast_policy()
    };
    let in_group = |name: &str| Source::Group {
        groups: Arc::clone(&groups) as Arc<dyn ConsumerGroups>,
        group: "saga".to_string(),
        member: name.to_string(),
    };
    let first = start(&world, "member-a", policy, in_group("member-a"));
    let second = start(&world, "member-b", policy, in_group("member-b"));
    let lodging = world.register_lodging(20, ApprovalMode::Manual).await;
    let reservations = world.request_stays(&lodging, 6).await;
    let armed = |running: &Running| running.status.snapshot().timers_armed;
    eventually("every approval deadline armed", || async {
        (armed(&first) + armed(&second) == 6).then_some(())
    })
    .await;
    let held_by_first = usize::try_from(armed(&first)).expect("small");
    assert!((1..6).contains(&held_by_first), "both members hold some");
    first.stop().await;

    let expired = || async {
        let mut n = 0;
        for rid in &reservations {
            n += usize::from(world.reservation(*rid).await.status.as_str() == "expired");
        }
        n
    };
    eventually("the second member's requests to expire", || async {
        (expired().await == 6 - held_by_first).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        expired().await,
        6 - held_by_first,
        "nobody fires the timers of the member that left"
    );

    let draining = start(&world, "member-a", policy, Source::Drain);
    world.wait_for_all(&reservations, "expired").await;
    draining.ends_by_itself().await;
    second.stop().await;
}

/// A group of one member that hands out the log's events with the ones at `first` ahead of the rest,
/// as EventStoreDB may after a retry (a redelivered event overtaking a later one), and keeps the
/// acknowledgements. A stand-in for the server's ordering, not for the saga.
struct Overtaking {
    log: Arc<dyn EventLog>,
    first: Vec<Position>,
    acked: Arc<Mutex<Vec<Uuid>>>,
}

#[async_trait]
impl ConsumerGroups for Overtaking {
    async fn join(
        &self,
        _group: &str,
        _member: &str,
        after: Position,
    ) -> Result<GroupMember, LogError> {
        let events = self.log.read_all(after + 1, 10_000).await?;
        let (mut order, rest): (Vec<_>, Vec<_>) = events
            .into_iter()
            .partition(|e| self.first.contains(&e.position));
        order.extend(rest);
        let deliveries = futures::stream::iter(
            order
                .into_iter()
                .map(|event| Ok(GroupDelivery { event, retries: 1 })),
        )
        .chain(futures::stream::pending())
        .boxed();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let acked = Arc::clone(&self.acked);
        tokio::spawn(async move {
            while let Some(settlement) = rx.recv().await {
                if let Settlement::Ack(id) = settlement {
                    acked.lock().expect("acks").push(id);
                }
            }
        });
        Ok(GroupMember {
            deliveries,
            acks: GroupAcks::new(tx),
        })
    }
}

/// A cancel delivered before the request it cancels is held back until the request is handled, not
/// recorded as a no-op: the lodging's request ends withdrawn, not pending for a cancelled stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_overtaking_its_reservations_request_waits_for_it() {
    let world = World::new().await;
    let lodging = world.register_lodging(20, ApprovalMode::Manual).await;
    let rid = world.request_stay(&lodging).await;
    let cancel = ReservationCommand::Cancel {
        cancelled_by: "customer-1".to_string(),
        reason: "plans changed".to_string(),
        timezone: domain::WAVE1_TIMEZONE,
    };
    world.reservation_command(rid, &cancel).await;
    let events = world.stream(&format!("reservation-{rid}")).await;
    assert_eq!(events.len(), 2, "requested, then cancelled");
    let groups = Arc::new(Overtaking {
        log: Arc::clone(&world.log),
        first: vec![events[1].position],
        acked: Arc::new(Mutex::new(Vec::new())),
    });
    let source = Source::Group {
        groups: Arc::clone(&groups) as Arc<dyn ConsumerGroups>,
        group: "saga".to_string(),
        member: "member-a".to_string(),
    };
    let runner = start(&world, "member-a", fast_policy(), source);
    eventually("the request forwarded, then withdrawn", || async {
        let request = world.lodging(&lodging).await.requests.get(&rid).cloned();
        request
            .filter(|r| r.status == RequestStatus::Withdrawn)
            .map(|_| ())
    })
    .await;
    eventually("both events acknowledged", || async {
        let acked = groups.acked.lock().expect("acks").clone();
        events
            .iter()
            .all(|e| acked.contains(&e.event_id))
            .then_some(())
    })
    .await;
    runner.stop().await;
    assert_eq!(world.saga(rid).await.handled.len(), 2);
}
