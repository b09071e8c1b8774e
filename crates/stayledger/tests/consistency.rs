//! After a mixed run, every reservation ends in a settled state, and the live views equal a rebuild
//! of the views from position 0 of the log, document for document (`common/views.rs`).

mod common;
#[path = "common/views.rs"]
mod views;

use std::sync::Arc;
use std::time::Duration;

use common::TestPlatform;
use reqwest::StatusCode;
use serde_json::json;

/// Wait until the saga and the projector have handled the whole log and nothing moves for 300 ms.
async fn settle(t: &TestPlatform) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut quiet_since = None;
    let mut last_head = 0;
    loop {
        let head = t.platform.log.head_position().await.expect("head");
        let saga = t.platform.saga.snapshot();
        let caught_up = t.platform.projector.applied_position() >= head
            && saga.checkpoint >= head
            && saga.in_flight == 0;
        if caught_up && head == last_head {
            let since = *quiet_since.get_or_insert_with(tokio::time::Instant::now);
            if since.elapsed() > Duration::from_millis(300) {
                return;
            }
        } else {
            quiet_since = None;
        }
        last_head = head;
        assert!(
            tokio::time::Instant::now() < deadline,
            "never settled: head {head}, saga {saga:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_equal_a_rebuild_and_nothing_is_stuck() {
    let t =
        TestPlatform::start_with(|c| c.policy.approval_deadline = chrono::TimeDelta::seconds(2))
            .await;
    t.register_lodging("manual-1", 2, "manual").await;
    t.register_lodging("instant-1", 1, "instant").await;
    let mut ids = Vec::new();
    for i in 0..24_i64 {
        let lodging = if i % 2 == 0 { "manual-1" } else { "instant-1" };
        let (id, _) = t
            .request(&format!("c{}", i % 5), lodging, 5 + i % 6, 1 + i % 3)
            .await;
        ids.push((id, lodging, i));
    }
    for (id, lodging, i) in &ids {
        let admin = t.admin_of(lodging);
        match (lodging, i % 4) {
            (&"manual-1", 0) => drop(t.approve(lodging, id).await),
            (&"manual-1", 2) => drop(
                t.post(
                    &format!("/management/requests/{id}/reject"),
                    &admin,
                    json!({"reason": "no"}),
                )
                .await,
            ),
            _ => {}
        }
        if i % 5 == 1 {
            let customer = format!("c{}", i % 5);
            let (status, body) = t
                .post(
                    &format!("/reservations/{id}/cancel"),
                    &t.customer(&customer),
                    json!({}),
                )
                .await;
            assert!(
                status == StatusCode::ACCEPTED || status == StatusCode::CONFLICT,
                "{body}"
            );
        }
    }
    // Undecided manual requests expire after the 2 s deadline.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    settle(&t).await;

    let live =
        views::assert_equal_to_rebuild(Arc::clone(&t.platform.log), t.platform.views.as_ref())
            .await;
    assert_eq!(
        live.reservations.len(),
        ids.len(),
        "every reservation is listed"
    );
    for doc in &live.reservations {
        let status = doc["status"].as_str().unwrap_or_default();
        assert!(
            ["confirmed", "rejected", "cancelled", "expired"].contains(&status),
            "settled states only: {doc}"
        );
        if status == "cancelled"
            && doc["payment_status"] != "none"
            && doc["payment_status"] != "voided"
        {
            assert_eq!(
                doc["refund_status"], "refunded",
                "a taken payment is refunded: {doc}"
            );
        }
    }
    // Every charge that was taken is either confirmed or refunded; none twice.
    let charges = t.sandbox_charges().await;
    let mut keys: Vec<_> = charges
        .iter()
        .map(|c| {
            c["idempotency_key"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), charges.len(), "no reservation charged twice");
    t.stop().await;
}

/// Wait until the lodgings' repository of `serve` has taken `at_least` commands.
async fn wait_for_lodging_commands(t: &TestPlatform, at_least: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let stats = t.platform.repositories.lodgings.stats();
        if stats.commands >= at_least {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the lodgings' repository never took {at_least} commands: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// In `serve`, the saga's forward of a request and the admin's approval of it (command routes) write
/// the lodging's desk (`lodging-{id}`) through ONE repository: both show up in its counters, and
/// they never race each other's appends, even once the desk is long enough for its state to be
/// cached (64 events). With a repository per side, each side's cached desk went stale on every
/// write of the other, and the platform's handle would see only one side's commands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_saga_and_the_command_routes_write_a_lodging_through_one_repository() {
    const REQUESTS: u64 = 40;
    let t = TestPlatform::start().await;
    t.register_lodging("desk-1", 1_000, "manual").await;
    let mut taken = t.platform.repositories.lodgings.stats().commands;
    assert!(taken >= 1, "the registration went through it");
    for n in 0..REQUESTS {
        let offset = 10 + i64::try_from(n).expect("small");
        let (id, _) = t.request(&format!("guest-{n}"), "desk-1", offset, 1).await;
        // The saga forwards the request to the desk...
        taken += 1;
        wait_for_lodging_commands(&t, taken).await;
        // ...and the admin approves it through the command routes.
        let (status, body) = t.approve("desk-1", &id).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        taken += 1;
        wait_for_lodging_commands(&t, taken).await;
    }
    let desk = t
        .platform
        .log
        .read_stream("lodging-desk-1", 0, 1_000)
        .await
        .expect("desk");
    assert!(desk.len() > 64, "long enough to be cached: {}", desk.len());
    let stats = t.platform.repositories.lodgings.stats();
    assert_eq!(stats.conflicts, 0, "no append raced another: {stats:?}");
    assert!(
        stats.appends <= stats.commands,
        "every append carried this repository's commands: {stats:?}"
    );
    t.stop().await;
}
