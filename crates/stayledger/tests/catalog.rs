//! The catalog lifecycle over real HTTP on a real `serve`: a host lists a lodging, the platform
//! admin reviews it, the host (its `admin_id`, with no `lodgings` claim) decides its requests,
//! changes it within what is booked, and closes it; stays of several rooms are counted as such.

mod common;

use std::time::Duration;

use common::{day, TestPlatform};
use http_edge::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(15);

fn listing(lodging_id: &str, rooms: u32) -> Value {
    json!({"lodging_id": lodging_id, "name": "Compact car", "nightly_rate": 40_000,
           "currency": "KRW", "rooms": rooms, "max_guests": 2, "timezone": "Asia/Seoul"})
}

fn stay(lodging_id: &str, offset: i64, nights: i64, rooms: u32) -> Value {
    json!({"lodging_id": lodging_id, "check_in": day(offset).to_string(),
           "check_out": day(offset + nights).to_string(), "guests": rooms, "rooms": rooms})
}

/// The catalog document once the views have reached `position`.
async fn lodging(t: &TestPlatform, id: &str, position: &Value) -> Value {
    let path = format!("/lodgings/{id}?min_position={position}&wait_ms=5000");
    let (status, doc) = t.get(&path, &t.auditor()).await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    doc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_lists_a_car_the_platform_approves_it_and_the_host_runs_it() {
    let t = TestPlatform::start().await;
    let host = t.token(Role::Admin, "company-7", &[]);
    let stranger = t.token(Role::Admin, "company-8", &[]);
    let root = t.platform_admin();

    let (status, body) = t.post("/listings", &host, listing("car-1", 3)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "pending_review");
    let doc = lodging(&t, "car-1", &body["position"]).await;
    assert_eq!(
        (&doc["status"], &doc["admin_id"], &doc["fee_bps"]),
        (&json!("pending_review"), &json!("company-7"), &json!(1_000))
    );

    // Not bookable under review; only the platform admin reviews.
    let customer = t.customer("driver-1");
    let (status, body) = t
        .post("/reservations", &customer, stay("car-1", 5, 2, 1))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["type"]
            .as_str()
            .unwrap_or("")
            .ends_with("lodging-not-active"),
        "{body}"
    );
    let (status, _) = t.post("/listings/car-1/approve", &host, json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = t
        .post("/listings/car-1/approve", &root, json!({"fee_bps": 1_500}))
        .await;
    assert_eq!(
        (status, &body["status"]),
        (StatusCode::ACCEPTED, &json!("active")),
        "{body}"
    );
    let (status, _) = t.post("/listings/car-1/approve", &root, json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "approved twice");
    let doc = lodging(&t, "car-1", &body["position"]).await;
    assert_eq!(
        (&doc["status"], &doc["fee_bps"]),
        (&json!("active"), &json!(1_500))
    );

    // Two of its three cars for two days: 2 x 2 x 40,000.
    let (status, body) = t
        .post("/reservations", &customer, stay("car-1", 5, 2, 2))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = body["id"].as_str().expect("id").to_string();
    let doc = t.wait_for(&id, "approval_status", "pending", WAIT).await;
    assert_eq!(
        (&doc["rooms"], &doc["total_amount"]),
        (&json!(2), &json!(160_000))
    );
    let approve = format!("/management/requests/{id}/approve");
    let (status, _) = t.post(&approve, &stranger, json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "not the host");
    let (status, body) = t.post(&approve, &host, json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "the host decides: {body}");
    t.wait_for(&id, "status", "confirmed", WAIT).await;
    // Two more cars do not fit on those days; one does.
    let (status, body) = t
        .post("/reservations", &customer, stay("car-1", 5, 1, 2))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let two = body["id"].as_str().expect("id").to_string();
    let (status, body) = t
        .post(
            &format!("/management/requests/{two}/approve"),
            &host,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // Fewer cars than are booked on a coming day is refused; as many is fine.
    let patch = |body: Value, token: String| {
        let t = &t;
        async move {
            t.call(Method::PATCH, "/lodgings/car-1", Some(&token), Some(body))
                .await
        }
    };
    let (status, body) = patch(json!({"rooms": 1}), host.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["type"]
            .as_str()
            .unwrap_or("")
            .ends_with("would-overbook"),
        "{body}"
    );
    let (status, _) = patch(json!({"rooms": 2}), stranger.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = patch(json!({"rooms": 2, "nightly_rate": 45_000}), host.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let doc = lodging(&t, "car-1", &body["position"]).await;
    assert_eq!(
        (&doc["rooms"], &doc["nightly_rate"]),
        (&json!(2), &json!(45_000))
    );
    let (status, body) = patch(json!({}), host.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Closed: no new request; what was booked stays.
    let (status, body) = t
        .post("/lodgings/car-1/close", &host, json!({"reason": "sold"}))
        .await;
    assert_eq!(
        (status, &body["status"]),
        (StatusCode::ACCEPTED, &json!("closed")),
        "{body}"
    );
    let doc = lodging(&t, "car-1", &body["position"]).await;
    assert_eq!(doc["status"], "closed");
    let (status, _) = t
        .post("/reservations", &customer, stay("car-1", 20, 1, 1))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, doc) = t.get(&format!("/reservations/{id}"), &customer).await;
    assert_eq!(
        (status, &doc["status"]),
        (StatusCode::OK, &json!("confirmed"))
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_listing_is_never_bookable_and_reviews_answer_for_what_exists() {
    let t = TestPlatform::start().await;
    let host = t.token(Role::Admin, "tutor-3", &[]);
    let root = t.platform_admin();
    let (status, body) = t.post("/listings", &host, listing("course-1", 10)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, body) = t
        .post(
            "/listings/course-1/reject",
            &root,
            json!({"reason": "no syllabus"}),
        )
        .await;
    assert_eq!(
        (status, &body["status"]),
        (StatusCode::ACCEPTED, &json!("rejected")),
        "{body}"
    );
    let (status, _) = t.post("/listings/course-1/approve", &root, json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let customer = t.customer("student-1");
    let (status, _) = t
        .post("/reservations", &customer, stay("course-1", 3, 1, 1))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = t.post("/listings/nowhere/approve", &root, json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = t.post("/listings/course-1/reject", &root, json!({})).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a reason is required: {body}"
    );
    // A listing names neither its admin nor its fee.
    let mut bad = listing("course-2", 1);
    bad["fee_bps"] = json!(0);
    let (status, body) = t.post("/listings", &host, bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = t
        .post("/listings", &t.customer("c"), listing("course-3", 1))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn its_admin_cancels_a_confirmed_stay_and_the_customer_is_refunded_in_full() {
    let t = TestPlatform::start().await;
    t.register_lodging("hanok", 1, "instant").await;
    let (id, _) = t.request("guest-1", "hanok", 3, 2).await;
    t.wait_for(&id, "status", "confirmed", WAIT).await;
    let cancel = format!("/management/requests/{id}/cancel");
    let reason = json!({"reason": "burst pipe"});
    let (status, _) = t
        .post(&cancel, &t.admin_of("elsewhere"), reason.clone())
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "not its admin");
    let (status, _) = t
        .post(&cancel, &t.customer("guest-1"), reason.clone())
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "customers withdraw on their own route"
    );
    let (status, body) = t.post(&cancel, &t.admin_of("hanok"), reason.clone()).await;
    assert_eq!(
        (status, &body["status"]),
        (StatusCode::ACCEPTED, &json!("cancelled")),
        "{body}"
    );
    let doc = t.wait_for(&id, "refund_status", "refunded", WAIT).await;
    assert_eq!(doc["status"], "cancelled");
    let (status, body) = t.post(&cancel, &t.admin_of("hanok"), reason).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let charges = t.sandbox_charges().await;
    let charge = charges
        .iter()
        .find(|c| c["idempotency_key"] == id.as_str())
        .expect("charged");
    assert_eq!(charge["refunded_amount"], 240_000, "{charge}");
    // Its nights are free again.
    let (status, _) = t
        .post(
            "/reservations",
            &t.customer("guest-2"),
            common::stay_body("hanok", 3, 2),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn its_admin_completes_a_stay_from_check_in_and_a_completed_stay_is_final() {
    let t = TestPlatform::start().await;
    t.register_lodging("hanok", 2, "instant").await;
    let (tonight, _) = t.request("guest-1", "hanok", 0, 1).await;
    let (later, _) = t.request("guest-2", "hanok", 3, 2).await;
    for id in [&tonight, &later] {
        t.wait_for(id, "status", "confirmed", WAIT).await;
    }
    let complete = |id: &str| format!("/management/requests/{id}/complete");
    let admin = t.admin_of("hanok");
    let (status, body) = t.post(&complete(&later), &admin, json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        body["type"], "urn:stayledger:problem:not-checked-in",
        "{body}"
    );
    let (status, _) = t
        .post(&complete(&tonight), &t.customer("guest-1"), json!({}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "its admin's to say");
    let (status, body) = t.post(&complete(&tonight), &admin, json!({})).await;
    assert_eq!(
        (status, &body["status"]),
        (StatusCode::ACCEPTED, &json!("completed")),
        "{body}"
    );
    let doc = t.wait_for(&tonight, "status", "completed", WAIT).await;
    assert_eq!(doc["refund_status"], "none");
    let desk = format!(
        "/management/requests?lodging_id=hanok&status=completed&min_position={}&wait_ms=5000",
        doc["position"]
    );
    let (status, page) = t.get(&desk, &admin).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(
        page["items"][0]["reservation_id"],
        tonight.as_str(),
        "{page}"
    );
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1), "{page}");
    // Again: nothing more happens; and it can no longer be cancelled by anyone.
    let (status, _) = t.post(&complete(&tonight), &admin, json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let reason = json!({"reason": "too late"});
    let cancel = format!("/management/requests/{tonight}/cancel");
    let (status, body) = t.post(&cancel, &admin, reason.clone()).await;
    assert_eq!(
        (status, &body["type"]),
        (
            StatusCode::CONFLICT,
            &json!("urn:stayledger:problem:not-confirmed")
        ),
        "{body}"
    );
    let withdraw = format!("/reservations/{tonight}/cancel");
    let (status, _) = t.post(&withdraw, &t.customer("guest-1"), reason).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, body) = t
        .get("/reservations?status=completed", &t.customer("guest-1"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let charges = t.sandbox_charges().await;
    let charge = charges
        .iter()
        .find(|c| c["idempotency_key"] == tonight.as_str())
        .expect("charged");
    assert_eq!(charge["refunded"], false, "kept: {charge}");
    t.stop().await;
}
