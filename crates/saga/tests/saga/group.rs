//! Saga runners as members of a consumer group ([`Source::Group`]): the group, not a shard, decides
//! which reservations each handles. Over the embedded log the group is `LocalGroups` (held in the
//! process); on EventStoreDB it is a persistent subscription, which passes the same conformance case
//! (crates/eventlog/tests/conformance.rs).

use std::sync::Arc;

use domain::lodging::ApprovalMode;
use eventlog::{ConsumerGroups, LocalGroups};
use saga::{PaymentGateway, SagaConfig, Source};

use crate::world::{eventually, fast_policy, Running, World};

fn member(world: &World, groups: &Arc<LocalGroups>, name: &str) -> Running {
    let config = SagaConfig {
        lanes: 2,
        ..SagaConfig::default()
    };
    let gateway: Arc<dyn PaymentGateway> = Arc::new(world.http_gateway());
    let source = Source::Group {
        groups: Arc::clone(groups) as Arc<dyn ConsumerGroups>,
        group: "saga".to_string(),
        member: name.to_string(),
    };
    world.start_from(
        fast_policy(),
        &format!("{name}.db"),
        gateway,
        config,
        source,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_group_members_split_the_reservations_and_handle_each_once() {
    let world = World::new().await;
    let groups = Arc::new(LocalGroups::new(Arc::clone(&world.log)));
    let first = member(&world, &groups, "member-a");
    let second = member(&world, &groups, "member-b");
    let lodging = world.register_lodging(20, ApprovalMode::Instant).await;
    let mut reservations = Vec::new();
    for _ in 0..8 {
        reservations.push(world.request_stay(&lodging).await);
    }
    for rid in &reservations {
        world.wait_for_status(*rid, "confirmed").await;
    }
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
    let mut reservations = Vec::new();
    for _ in 0..6 {
        reservations.push(world.request_stay(&lodging).await);
    }
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
    for rid in &reservations {
        world.wait_for_status(*rid, "confirmed").await;
    }
    let b = second.status.snapshot();
    second.stop().await;
    assert_eq!(
        b.charges_completed, 6,
        "the member that stayed did them all"
    );
    world.assert_handled_once(&reservations).await;
}
