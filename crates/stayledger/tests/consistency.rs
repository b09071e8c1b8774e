//! After a mixed run, every reservation ends in a settled state, every charge in the sandbox ledger
//! is for a reservation that ended confirmed or is refunded in full, and the live views equal a
//! rebuild of the views from position 0 of the log, document for document (`common/views.rs`).

#[path = "common/charges.rs"]
mod charges;
mod common;
#[path = "common/views.rs"]
mod views;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::TestPlatform;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Long enough that every decision below is taken before it (on a slow machine too); the undecided
/// manual requests expire after it.
const APPROVAL_DEADLINE: i64 = 10;
const SETTLED: [&str; 5] = [
    "confirmed",
    "rejected",
    "cancelled",
    "expired",
    "payment_failed",
];

/// Wait until `expected` reservations are listed, each in a settled state, the saga and the
/// projector have handled the whole log and nothing moves for 300 ms; returns the documents.
async fn settle(t: &TestPlatform, expected: usize) -> Vec<Value> {
    let timeout = Duration::from_secs(30 + APPROVAL_DEADLINE.unsigned_abs());
    let deadline = tokio::time::Instant::now() + timeout;
    let mut quiet_since = None;
    let mut last_head = 0;
    loop {
        let head = t.platform.log.head_position().await.expect("head");
        let saga = t.platform.saga.snapshot();
        let docs = views::all_documents(t.platform.views.as_ref())
            .await
            .reservations;
        let settled = docs.len() == expected
            && docs
                .iter()
                .all(|d| SETTLED.contains(&d["status"].as_str().unwrap_or_default()));
        let caught_up = t.platform.projector.applied_position() >= head
            && saga.checkpoint >= head
            && saga.in_flight == 0;
        if settled && caught_up && head == last_head {
            let since = *quiet_since.get_or_insert_with(tokio::time::Instant::now);
            if since.elapsed() > Duration::from_millis(300) {
                return docs;
            }
        } else {
            quiet_since = None;
        }
        last_head = head;
        assert!(
            tokio::time::Instant::now() < deadline,
            "never settled: head {head}, saga {saga:?}, {docs:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How the admin's decisions were answered.
#[derive(Default, Debug)]
struct Decisions {
    approved: usize,
    rejected: usize,
    conflicts: usize,
}

impl Decisions {
    /// 202, or 409 as the API documents it (no room on some night, or already decided).
    fn note(&mut self, what: &str, status: StatusCode, body: &Value) {
        match status {
            StatusCode::ACCEPTED if what == "approve" => self.approved += 1,
            StatusCode::ACCEPTED => self.rejected += 1,
            StatusCode::CONFLICT => self.conflicts += 1,
            _ => panic!("{what} answered {status}: {body}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_equal_a_rebuild_and_nothing_is_stuck() {
    let t = TestPlatform::start_with(|c| {
        c.policy.approval_deadline = chrono::TimeDelta::seconds(APPROVAL_DEADLINE);
    })
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
    let mut decisions = Decisions::default();
    for (id, lodging, i) in &ids {
        let admin = t.admin_of(lodging);
        match (lodging, i % 4) {
            (&"manual-1", 0) => {
                let (status, body) = t.approve(lodging, id).await;
                decisions.note("approve", status, &body);
            }
            (&"manual-1", 2) => {
                let path = format!("/management/requests/{id}/reject");
                let (status, body) = t.post(&path, &admin, json!({"reason": "no"})).await;
                decisions.note("reject", status, &body);
            }
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
    // Six approvals on two rooms, four of them sharing a night: some must get through, and every
    // rejection of a pending request does.
    assert!(decisions.approved >= 3, "{decisions:?}");
    assert_eq!(decisions.rejected, 6, "{decisions:?}");
    // Undecided manual requests expire after the deadline.
    let docs = settle(&t, ids.len()).await;

    let live =
        views::assert_equal_to_rebuild(Arc::clone(&t.platform.log), t.platform.views.as_ref())
            .await;
    assert_eq!(live.reservations, docs, "nothing moved after settling");
    for doc in &docs {
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
    assert_charges_confirmed_or_refunded(&t.sandbox_charges().await, &docs);
    t.stop().await;
}

/// Every charge in the ledger is for a reservation of the run, asked for once, and either the
/// reservation ended confirmed (charged its total, not refunded) or the charge is refunded in full;
/// every confirmed reservation is charged.
fn assert_charges_confirmed_or_refunded(charges: &[Value], docs: &[Value]) {
    let by_id: BTreeMap<&str, &Value> = docs
        .iter()
        .map(|d| (d["reservation_id"].as_str().unwrap_or_default(), d))
        .collect();
    let charged = charges::assert_charged_once(charges, by_id.keys().copied());
    for (id, charge) in &charged {
        let doc = by_id[id];
        let refunded_in_full =
            charge["refunded"] == true && charge["refunded_amount"] == charge["amount"];
        if doc["status"] == "confirmed" {
            assert_eq!(
                charge["refunded"], false,
                "a confirmed stay keeps its charge: {doc}"
            );
            assert_eq!(charge["amount"], doc["total_amount"], "{charge} {doc}");
        } else {
            assert!(
                refunded_in_full,
                "charged but not confirmed: {charge} {doc}"
            );
        }
    }
    let confirmed = docs.iter().filter(|d| d["status"] == "confirmed");
    for doc in confirmed {
        let id = doc["reservation_id"].as_str().unwrap_or_default();
        assert!(charged.contains_key(id), "confirmed but not charged: {doc}");
    }
    assert!(!charged.is_empty(), "the run charged something");
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
