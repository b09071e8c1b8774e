//! Every command route's happy path and its documented refusals, over real HTTP and a real log.

mod common;

use common::{day, TestApp};
use eventlog::{EventMetadata, ExpectedVersion, NewEvent};
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn registering_a_lodging_answers_201_with_location_and_position() {
    let app = TestApp::start().await;
    let answer = app.lodging("hanok-1", 2).await;
    assert_eq!(answer.body["id"], "hanok-1");
    assert_eq!(answer.body["status"], "registered");
    assert_eq!(answer.header("location"), Some("/lodgings/hanok-1"));
    assert_eq!(answer.body["position"], app.head().await);
    let events = app.stream("lodging-hanok-1").await;
    assert_eq!(events[0].event_type, "LodgingRegistered");
    assert_eq!(events[0].data["currency"], "KRW");
    assert_eq!(events[0].data["admin_id"], "root");
    assert_eq!(events[0].metadata.actor, "admin:root");

    let again = app
        .post(
            "/lodgings",
            &app.platform_admin(),
            json!({"lodging_id": "hanok-1", "name": "x", "nightly_rate": 1, "rooms": 1}),
        )
        .await;
    assert_eq!(
        again.problem(409)["type"],
        "urn:stayledger:problem:lodging-exists"
    );

    let generated = app
        .post(
            "/lodgings",
            &app.platform_admin(),
            json!({"name": "Cafe", "nightly_rate": 5000, "rooms": 9, "approval_mode": "instant"}),
        )
        .await;
    assert_eq!(generated.status, StatusCode::CREATED);
    let id = generated.body["id"].as_str().expect("generated id");
    assert!(Uuid::parse_str(id).is_ok());
}

#[tokio::test]
async fn submitting_a_listing_answers_202_with_location_and_position() {
    let app = TestApp::start().await;
    let host = app.token(http_edge::Role::Admin, "company-7", &[]);
    let body = json!({"lodging_id": "car-1", "name": "Compact car", "nightly_rate": 40_000,
                      "currency": "KRW", "rooms": 3, "max_guests": 2, "timezone": "Asia/Seoul"});
    let answer = app.post("/listings", &host, body).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    assert_eq!(answer.body["status"], "pending_review");
    assert_eq!(answer.header("location"), Some("/lodgings/car-1"));
    assert_eq!(answer.body["position"], app.head().await);
}

#[tokio::test]
async fn requesting_a_stay_records_it_with_metadata() {
    let app = TestApp::start().await;
    app.lodging("l-1", 1).await;
    let body = json!({"lodging_id": "l-1", "check_in": day(10), "check_out": day(13), "guests": 2});
    let answer = app.post("/reservations", &app.customer("c-1"), body).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    let id = answer.body["id"].as_str().expect("id");
    assert_eq!(answer.body["status"], "requested");
    assert_eq!(
        answer.header("location"),
        Some(format!("/reservations/{id}").as_str())
    );
    assert_eq!(answer.body["position"], app.head().await);

    let events = app.stream(&format!("reservation-{id}")).await;
    assert_eq!(events.len(), 1);
    let requested = &events[0];
    assert_eq!(requested.event_type, "ReservationRequested");
    assert_eq!(requested.data["nights"], 3);
    assert_eq!(requested.data["total_amount"], 300_000);
    assert_eq!(requested.data["customer_id"], "c-1");
    assert_eq!(requested.metadata.correlation_id.to_string(), id);
    assert_eq!(requested.metadata.actor, "customer:c-1");
    assert_ne!(
        requested.metadata.causation_id,
        requested.metadata.correlation_id
    );
}

/// Reservation ids are time-ordered (UUID v7), so the indexes keyed by them (the log's streams, the
/// views' reservation ids) grow at their end instead of touching a random page per reservation.
#[tokio::test]
async fn reservation_ids_are_time_ordered() {
    let app = TestApp::start().await;
    app.lodging("l-1", 1).await;
    let mut ids = Vec::new();
    for nights in 1..=3 {
        let body = json!({"lodging_id": "l-1", "check_in": day(10), "check_out": day(10 + nights), "guests": 1});
        let answer = app.post("/reservations", &app.customer("c-1"), body).await;
        assert_eq!(answer.status, StatusCode::ACCEPTED);
        let id = Uuid::parse_str(answer.body["id"].as_str().expect("id")).expect("uuid");
        assert_eq!(id.get_version(), Some(uuid::Version::SortRand), "{id}");
        ids.push(id);
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
}

#[tokio::test]
async fn business_rules_answer_422_and_write_nothing() {
    let app = TestApp::start().await;
    app.lodging("l-1", 1).await;
    let head = app.head().await;
    let customer = app.customer("c-1");
    let cases = [
        (
            json!({"lodging_id": "nowhere", "check_in": day(3), "check_out": day(4), "guests": 1}),
            "lodging_id",
        ),
        (
            json!({"lodging_id": "l-1", "check_in": day(5), "check_out": day(5), "guests": 1}),
            "check_out",
        ),
        (
            json!({"lodging_id": "l-1", "check_in": day(5), "check_out": day(45), "guests": 1}),
            "check_out",
        ),
        (
            json!({"lodging_id": "l-1", "check_in": day(-2), "check_out": day(1), "guests": 1}),
            "check_in",
        ),
        (
            json!({"lodging_id": "l-1", "check_in": day(3), "check_out": day(4), "guests": 5}),
            "guests",
        ),
    ];
    for (body, field) in cases {
        let answer = app.post("/reservations", &customer, body.clone()).await;
        let problem = answer.problem(422);
        assert_eq!(problem["errors"][0]["field"], field, "{body}");
    }
    assert_eq!(app.head().await, head, "a refused request writes nothing");
}

#[tokio::test]
async fn cancel_is_accepted_once_then_409() {
    let app = TestApp::start().await;
    app.lodging("l-1", 1).await;
    let id = app.reserve("c-1", "l-1", 5, 7).await;
    let path = format!("/reservations/{id}/cancel");
    let answer = app
        .post(
            &path,
            &app.customer("c-1"),
            json!({"reason": "plans changed"}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{:?}", answer.body);
    assert_eq!(
        (answer.body["id"].as_str(), answer.body["status"].as_str()),
        (Some(id.as_str()), Some("cancelled"))
    );
    assert_eq!(answer.body["position"], app.head().await);
    let events = app.stream(&format!("reservation-{id}")).await;
    assert_eq!(events[1].data["reason"], "plans changed");
    assert_eq!(events[1].data["cancelled_by"], "customer:c-1");

    let again = app.post(&path, &app.customer("c-1"), json!({})).await;
    again.problem(409);
    let unknown = app
        .post(
            &format!("/reservations/{}/cancel", Uuid::new_v4()),
            &app.customer("c-1"),
            json!({}),
        )
        .await;
    unknown.problem(404);
    app.post(
        "/reservations/not-a-uuid/cancel",
        &app.customer("c-1"),
        json!({}),
    )
    .await
    .problem(404);
}

#[tokio::test]
async fn approve_grants_the_stay_and_a_second_decision_is_409() {
    let app = TestApp::start().await;
    app.lodging("l-1", 1).await;
    let id = app.reserve("c-1", "l-1", 5, 7).await;
    let admin = app.token(http_edge::Role::Admin, "a-1", &["l-1"]);
    let answer = app
        .post(
            &format!("/management/requests/{id}/approve"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{:?}", answer.body);
    assert_eq!(answer.body["status"], "approved");
    assert_eq!(answer.body["position"], app.head().await);
    let lodging = app.stream("lodging-l-1").await;
    let types: Vec<&str> = lodging.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        ["LodgingRegistered", "ApprovalRequested", "ApprovalGranted"]
    );
    assert_eq!(lodging[2].metadata.correlation_id.to_string(), id);
    assert_eq!(lodging[2].data["granted_by"], "admin:a-1");

    let again = app
        .post(
            &format!("/management/requests/{id}/approve"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(
        again.problem(409)["type"],
        "urn:stayledger:problem:already-decided"
    );
    let reject = app
        .post(
            &format!("/management/requests/{id}/reject"),
            &admin,
            json!({"reason": "late"}),
        )
        .await;
    reject.problem(409);
}

#[tokio::test]
async fn approve_without_room_names_the_full_night() {
    let app = TestApp::start().await;
    app.lodging("l-1", 1).await;
    let admin = app.token(http_edge::Role::Admin, "a-1", &["l-1"]);
    let first = app.reserve("c-1", "l-1", 5, 8).await;
    let overlapping = app.reserve("c-2", "l-1", 7, 9).await;
    let ok = app
        .post(
            &format!("/management/requests/{first}/approve"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::ACCEPTED);
    let full = app
        .post(
            &format!("/management/requests/{overlapping}/approve"),
            &admin,
            json!({}),
        )
        .await;
    let problem = full.problem(409);
    assert_eq!(problem["type"], "urn:stayledger:problem:no-room");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains(&day(7)),
        "{problem}"
    );
}

#[tokio::test]
async fn reject_records_the_reason() {
    let app = TestApp::start().await;
    app.lodging("l-1", 1).await;
    let id = app.reserve("c-1", "l-1", 5, 7).await;
    let admin = app.token(http_edge::Role::Admin, "a-1", &["l-1"]);
    let path = format!("/management/requests/{id}/reject");
    app.post(&path, &admin, json!({})).await.problem(400);
    let answer = app
        .post(&path, &admin, json!({"reason": "renovation"}))
        .await;
    assert_eq!(
        (answer.status, answer.body["status"].as_str()),
        (StatusCode::ACCEPTED, Some("rejected"))
    );
    let lodging = app.stream("lodging-l-1").await;
    assert_eq!(
        lodging.last().map(|e| e.data["reason"].clone()),
        Some(json!("renovation"))
    );
}

/// Append a payment's events as the saga and payment worker would.
async fn payment_events(app: &TestApp, reservation: &str, types: &[(&str, serde_json::Value)]) {
    let id = Uuid::parse_str(reservation).expect("uuid");
    let events = types
        .iter()
        .map(|(event_type, data)| NewEvent {
            event_id: Uuid::new_v4(),
            event_type: (*event_type).to_string(),
            schema_version: 1,
            data: data.clone().into(),
            metadata: EventMetadata {
                correlation_id: id,
                causation_id: Uuid::new_v4(),
                actor: "payment-worker".to_string(),
            },
        })
        .collect();
    let stream = format!("payment-{reservation}");
    app.log
        .append(&stream, ExpectedVersion::Any, events)
        .await
        .expect("append");
}

#[tokio::test]
async fn payment_retry_needs_a_deferred_payment() {
    let app = TestApp::start().await;
    app.lodging("l-1", 1).await;
    let id = app.reserve("c-1", "l-1", 5, 7).await;
    let admin = app.token(http_edge::Role::Admin, "a-1", &["l-1"]);
    let path = format!("/payments/{id}/retry");
    app.post(&path, &admin, json!({})).await.problem(409);

    let requested = json!({"reservation_id": id, "amount": 200_000, "currency": "KRW"});
    let deferred =
        json!({"reason": "gateway overloaded", "attempt": 1, "retry_at": "2030-01-01T00:00:00Z"});
    payment_events(
        &app,
        &id,
        &[
            ("PaymentRequested", requested),
            ("PaymentDeferred", deferred),
        ],
    )
    .await;
    let answer = app.post(&path, &admin, json!({})).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{:?}", answer.body);
    assert_eq!(answer.body["status"], "retry_requested");
    let payment = app.stream(&format!("payment-{id}")).await;
    assert_eq!(
        payment.last().map(|e| e.event_type.as_str()),
        Some("PaymentRetryRequested")
    );
    assert_eq!(answer.body["position"], app.head().await);

    let completed = json!({"payment_id": "p-1", "gateway_ref": "ch-1", "amount": 200_000});
    payment_events(&app, &id, &[("PaymentCompleted", completed)]).await;
    app.post(&path, &admin, json!({})).await.problem(409);
}
