//! R7: a repeated POST with the same Idempotency-Key gives the first answer (status, body, Location)
//! and writes nothing new, also from another instance with nothing in memory; the same key with a
//! different body is 422.

mod common;

use common::{day, Answer, TestApp};
use http_edge::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn assert_same(first: &Answer, again: &Answer) {
    assert_eq!(again.status, first.status, "{:?}", again.body);
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("location"), first.header("location"));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
}

/// Send `body` to `path` with `key` on `app`, then again on `app` and on a fresh sibling instance:
/// both repeats give the first answer and write nothing.
async fn repeat_everywhere(
    app: &TestApp,
    path: &str,
    token: &str,
    key: &str,
    body: Value,
) -> Answer {
    let first = app.post_keyed(path, token, key, body.clone()).await;
    assert!(first.status.is_success(), "{path}: {:?}", first.body);
    assert!(first.header("idempotent-replayed").is_none());
    let head = app.head().await;
    assert_same(
        &first,
        &app.post_keyed(path, token, key, body.clone()).await,
    );
    let fresh = app.sibling().await;
    assert_same(&first, &fresh.post_keyed(path, token, key, body).await);
    assert_eq!(app.head().await, head, "{path}: a repeat wrote something");
    first
}

#[tokio::test]
async fn repeated_reservation_requests_give_the_first_answer() {
    let app = TestApp::start().await;
    app.lodging("l-1", 1).await;
    let body = json!({"lodging_id": "l-1", "check_in": day(3), "check_out": day(5), "guests": 2});
    let customer = app.customer("c-1");
    let first = repeat_everywhere(&app, "/reservations", &customer, "order-1", body.clone()).await;
    let id = first.body["id"].as_str().expect("id");
    assert_eq!(app.stream(&format!("reservation-{id}")).await.len(), 1);

    let head = app.head().await;
    let changed =
        json!({"lodging_id": "l-1", "check_in": day(3), "check_out": day(6), "guests": 2});
    app.post_keyed("/reservations", &customer, "order-1", changed.clone())
        .await
        .problem(422);
    app.sibling()
        .await
        .post_keyed("/reservations", &customer, "order-1", changed)
        .await
        .problem(422);
    assert_eq!(app.head().await, head);

    let other = app
        .post_keyed("/reservations", &app.customer("c-2"), "order-1", body)
        .await;
    assert_eq!(other.status, StatusCode::ACCEPTED);
    assert_ne!(
        other.body["id"], first.body["id"],
        "keys are scoped to the customer"
    );
}

#[tokio::test]
async fn concurrent_repeats_record_one_reservation() {
    let app = TestApp::start().await;
    app.lodging("l-1", 1).await;
    let body = json!({"lodging_id": "l-1", "check_in": day(3), "check_out": day(5), "guests": 2});
    let customer = app.customer("c-1");
    let answers = futures::future::join_all(
        (0..8).map(|_| app.post_keyed("/reservations", &customer, "burst", body.clone())),
    )
    .await;
    let first = &answers[0];
    for answer in &answers {
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{:?}", answer.body);
        assert_eq!(answer.body, first.body);
    }
    let id = first.body["id"].as_str().expect("id");
    assert_eq!(app.stream(&format!("reservation-{id}")).await.len(), 1);
    assert_eq!(app.head().await, 2, "the lodging and one reservation");
}

#[tokio::test]
async fn repeated_cancel_and_decisions_give_the_first_answer() {
    let app = TestApp::start().await;
    app.lodging("l-1", 2).await;
    let customer = app.customer("c-1");
    let admin = app.token(Role::Admin, "a-1", &["l-1"]);

    let cancelled = app.reserve("c-1", "l-1", 3, 5).await;
    let path = format!("/reservations/{cancelled}/cancel");
    repeat_everywhere(&app, &path, &customer, "k-cancel", json!({"reason": "ill"})).await;
    let fresh = app.sibling().await;
    fresh
        .post_keyed(&path, &customer, "k-cancel", json!({"reason": "bored"}))
        .await
        .problem(422);

    let approved = app.reserve("c-1", "l-1", 3, 5).await;
    let path = format!("/management/requests/{approved}/approve");
    let first = repeat_everywhere(&app, &path, &admin, "k-decide", json!({})).await;
    assert_eq!(first.body["status"], "approved");
    let reject = format!("/management/requests/{approved}/reject");
    app.post_keyed(&reject, &admin, "k-decide", json!({"reason": "x"}))
        .await
        .problem(409);

    let rejected = app.reserve("c-1", "l-1", 3, 5).await;
    let path = format!("/management/requests/{rejected}/reject");
    repeat_everywhere(&app, &path, &admin, "k-reject", json!({"reason": "full"})).await;
    app.sibling()
        .await
        .post_keyed(&path, &admin, "k-reject", json!({"reason": "other"}))
        .await
        .problem(422);
}

#[tokio::test]
async fn repeated_lodging_registration_gives_the_first_answer() {
    let app = TestApp::start().await;
    let admin = app.platform_admin();
    let body = json!({"name": "Guesthouse", "nightly_rate": 70000, "rooms": 4});
    let first = repeat_everywhere(&app, "/lodgings", &admin, "reg-1", body).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let changed = json!({"name": "Guesthouse", "nightly_rate": 80000, "rooms": 4});
    app.post_keyed("/lodgings", &admin, "reg-1", changed.clone())
        .await
        .problem(422);
    app.sibling()
        .await
        .post_keyed("/lodgings", &admin, "reg-1", changed)
        .await
        .problem(422);
    let explicit =
        json!({"lodging_id": "other", "name": "Guesthouse", "nightly_rate": 70000, "rooms": 4});
    app.post_keyed("/lodgings", &admin, "reg-1", explicit)
        .await
        .problem(422);
    assert_eq!(app.head().await, 1);
}
