//! The money path rules (ARCHITECTURE.md section 9, docs/decisions/0015) over real HTTP, with the
//! real sandbox gateway: an open circuit never uses up attempts, an exhausted payment can be
//! retried by its lodging's admin, and a stay is never free.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::TestPlatform;
use reqwest::StatusCode;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);
const NIGHTLY_RATE: i64 = 120_000;

/// The payment's events from the log: (type, payload).
async fn payment_events(t: &TestPlatform, reservation_id: &str) -> Vec<(String, Value)> {
    let stream = format!("payment-{reservation_id}");
    let recorded = t
        .platform
        .log
        .read_stream(&stream, 0, 100_000)
        .await
        .expect("read the payment stream");
    recorded
        .into_iter()
        .map(|e| (e.event_type, e.data))
        .collect()
}

/// Deferrals of the payment so far, and the attempts it counted (the gateway's answers).
async fn deferrals(t: &TestPlatform, reservation_id: &str) -> (usize, u64) {
    let events = payment_events(t, reservation_id).await;
    let mut count = 0;
    let mut counted = 0;
    for (event_type, data) in &events {
        if event_type == "PaymentDeferred" {
            count += 1;
            counted = data["attempt"].as_u64().expect("attempt");
        }
    }
    (count, counted)
}

/// Every sandbox charge belongs to a known reservation, each reservation is charged exactly once,
/// for its total, not refunded, and the gateway saw no request for it beyond the attempts the
/// payment counted plus the one that charged.
async fn assert_each_charged_once(t: &TestPlatform, ids: &[String], nights: i64) {
    let charges = t.sandbox_charges().await;
    let known: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
    for charge in &charges {
        let key = charge["idempotency_key"].as_str().unwrap_or_default();
        assert!(
            known.contains(key),
            "a charge for no known reservation: {charge}"
        );
    }
    for id in ids {
        let theirs: Vec<&Value> = charges
            .iter()
            .filter(|c| c["idempotency_key"] == id.as_str())
            .collect();
        assert_eq!(theirs.len(), 1, "{id} charged once: {charges:?}");
        let charge = theirs[0];
        assert_eq!(charge["amount"], NIGHTLY_RATE * nights, "{charge}");
        assert_eq!(charge["refunded"], false, "{charge}");
        let (_, counted) = deferrals(t, id).await;
        assert_eq!(
            charge["attempts"],
            counted + 1,
            "{id}: the gateway saw each counted attempt and the charge, nothing more: {charge}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_longer_than_the_retry_schedule_confirms_every_reservation_charged_once() {
    // Five attempts 100 ms apart, doubling: the whole schedule is over in about two seconds. The
    // circuit opens after three failures and lets a probe through every three seconds.
    let max_attempts = 5;
    let t = TestPlatform::start_with(|config| {
        config.policy.max_payment_attempts = max_attempts;
        config.breaker.failure_threshold = 3;
        config.breaker.cool_down = Duration::from_secs(3);
    })
    .await;
    t.register_lodging("harbor", 5, "instant").await;
    t.set_overloaded(true).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(t.request(&format!("cust-{i}"), "harbor", 15 + i, 1).await.0);
    }
    // Overloaded until every payment has been deferred more often than it has attempts: the open
    // circuit kept deferring them, and none ran out.
    let deadline = tokio::time::Instant::now() + WAIT;
    for id in &ids {
        loop {
            let (count, counted) = deferrals(&t, id).await;
            if count > usize::try_from(max_attempts).expect("small") + 1 {
                assert!(
                    counted < u64::from(max_attempts),
                    "{id}: {counted} attempts counted"
                );
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{id}: deferred {count} times only; payment: {:?}",
                payment_events(&t, id).await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    for id in &ids {
        let doc = t.wait_for(id, "status", "payment_pending", WAIT).await;
        assert_eq!(doc["payment_status"], "pending", "{doc}");
    }
    t.set_overloaded(false).await;
    for id in &ids {
        t.wait_for(id, "status", "confirmed", WAIT).await;
    }
    assert_each_charged_once(&t, &ids, 1).await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_payment_is_retried_by_its_admin_and_confirms() {
    // The circuit never opens here: every attempt is an answer of the (overloaded) gateway.
    let t = TestPlatform::start_with(|config| {
        config.policy.max_payment_attempts = 2;
        config.breaker.failure_threshold = 1_000;
    })
    .await;
    t.register_lodging("cove", 1, "instant").await;
    t.set_overloaded(true).await;
    let (id, _) = t.request("cust-1", "cove", 20, 2).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while deferrals(&t, &id).await.1 < 2 {
        assert!(tokio::time::Instant::now() < deadline, "never exhausted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Exhausted, and still holding its nights: another request for them is refused.
    loop {
        let doc = t.wait_for(&id, "status", "payment_pending", WAIT).await;
        let reason = doc["status_reason"].as_str().unwrap_or_default();
        if reason.contains("attempts exhausted") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{doc}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (other, _) = t.request("cust-2", "cove", 20, 2).await;
    t.wait_for(&other, "status", "rejected", WAIT).await;

    t.set_overloaded(false).await;
    let retry = format!("/payments/{id}/retry");
    let (status, body) = t.post(&retry, &t.admin_of("cove"), json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    t.wait_for(&id, "status", "confirmed", WAIT).await;
    assert_each_charged_once(&t, std::slice::from_ref(&id), 2).await;
    // Settled: nothing more to retry.
    let (status, body) = t.post(&retry, &t.admin_of("cove"), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nightly_rate_of_zero_is_refused_naming_the_field() {
    let t = TestPlatform::start().await;
    let (status, body) = t
        .post(
            "/lodgings",
            &t.platform_admin(),
            json!({"lodging_id": "free", "name": "Free Inn", "nightly_rate": 0,
                   "currency": "KRW", "rooms": 1, "max_guests": 2, "approval_mode": "instant"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["field"], "nightly_rate", "{body}");
    let (status, _) = t.get("/lodgings/free", &t.platform_admin()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing registered");
    assert!(t.sandbox_charges().await.is_empty());
    t.stop().await;
}
