//! The seed's scenario over real HTTP: `serve` on port 0 with a temp data dir, one test per line.

#[path = "common/charges.rs"]
mod charges;
mod common;

use std::time::Duration;

use common::{stay_body, TestPlatform};
use reqwest::{header, StatusCode};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_approve_pay_confirmed() {
    let t = TestPlatform::start().await;
    t.register_lodging("seaside", 2, "manual").await;
    let (id, _) = t.request("alice", "seaside", 10, 2).await;
    let (status, body) = t.approve("seaside", &id).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let doc = t.wait_for(&id, "status", "confirmed", WAIT).await;
    assert_eq!(doc["approval_status"], "approved");
    assert_eq!(doc["payment_status"], "completed");
    assert_eq!(doc["total_amount"], 240_000);
    assert_eq!(doc["nights"], 2);
    assert_eq!(doc["lodging_name"], "Lodging seaside");
    let charges = t.sandbox_charges().await;
    let charged = charges::assert_charged_once(&charges, [id.as_str()]);
    assert_eq!(charged.len(), 1, "{charges:?}");
    assert_eq!(charged[id.as_str()]["amount"], 240_000);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_rejects_a_request() {
    let t = TestPlatform::start().await;
    t.register_lodging("hilltop", 1, "manual").await;
    let (id, _) = t.request("bob", "hilltop", 5, 1).await;
    let (status, body) = t
        .post(
            &format!("/management/requests/{id}/reject"),
            &t.admin_of("hilltop"),
            json!({"reason": "closed for repairs"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let doc = t.wait_for(&id, "status", "rejected", WAIT).await;
    assert_eq!(doc["approval_status"], "rejected");
    assert_eq!(doc["payment_status"], "none");
    // Deciding again is a conflict.
    let (status, body) = t.approve("hilltop", &id).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(t.sandbox_charges().await.is_empty());
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_before_approval_releases_rooms_and_charges_nothing() {
    let t = TestPlatform::start().await;
    t.register_lodging("cabin", 1, "manual").await;
    let (first, _) = t.request("carol", "cabin", 7, 3).await;
    let (status, body) = t
        .post(
            &format!("/reservations/{first}/cancel"),
            &t.customer("carol"),
            json!({"reason": "plans changed"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let doc = t
        .wait_for(&first, "approval_status", "withdrawn", WAIT)
        .await;
    assert_eq!(doc["status"], "cancelled");
    // The same nights can now be granted to someone else.
    let (second, _) = t.request("dave", "cabin", 7, 3).await;
    let (status, body) = t.approve("cabin", &second).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    t.wait_for(&second, "status", "confirmed", WAIT).await;
    let charges = t.sandbox_charges().await;
    let charged = charges::assert_charged_once(&charges, [first.as_str(), second.as_str()]);
    assert_eq!(
        charged.keys().copied().collect::<Vec<_>>(),
        [second.as_str()],
        "only the second stay is charged: {charges:?}"
    );
    // A cancelled reservation cannot be cancelled again.
    let (status, _) = t
        .post(
            &format!("/reservations/{first}/cancel"),
            &t.customer("carol"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_after_payment_refunds_exactly_once() {
    let t = TestPlatform::start().await;
    t.register_lodging("lakeside", 3, "instant").await;
    let (id, _) = t.request("erin", "lakeside", 20, 2).await;
    t.wait_for(&id, "status", "confirmed", WAIT).await;
    let (status, body) = t
        .post(
            &format!("/reservations/{id}/cancel"),
            &t.customer("erin"),
            json!({"reason": "sick"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let doc = t.wait_for(&id, "refund_status", "refunded", WAIT).await;
    assert_eq!(doc["status"], "cancelled");
    assert_eq!(doc["payment_status"], "refunded");
    let charges = t.sandbox_charges().await;
    let charged = charges::assert_charged_once(&charges, [id.as_str()]);
    assert_eq!(charged.len(), 1, "{charges:?}");
    let charge = charged[id.as_str()];
    assert_eq!(charge["refunded"], true, "{charge}");
    assert_eq!(charge["refunded_amount"], 240_000, "{charge}");
    assert_eq!(
        charge["refund_attempts"], 1,
        "refund asked for once: {charge}"
    );
    // The refund is recorded exactly once in the payment stream.
    let (status, stream) = t
        .get(&format!("/audit/streams/payment-{id}"), &t.auditor())
        .await;
    assert_eq!(status, StatusCode::OK, "{stream}");
    let refunds = stream["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["event_type"] == "PaymentRefunded")
        .count();
    assert_eq!(refunds, 1, "{stream}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_sees_pending_requests_with_availability() {
    let t = TestPlatform::start().await;
    t.register_lodging("studio", 1, "manual").await;
    let (a, _) = t.request("fay", "studio", 3, 2).await;
    let (b, position) = t.request("gus", "studio", 4, 2).await; // overlaps a's second night
    let admin = t.admin_of("studio");
    // The admin's desk lists a request from the customer's request on: read-your-writes.
    let path =
        format!("/management/requests?lodging_id=studio&status=pending&min_position={position}");
    let (status, body) = t.get(&path, &admin).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let items = body["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{body}");
    assert_eq!(items[0]["reservation_id"], a.as_str(), "oldest first");
    assert!(items.iter().all(|i| i["available"] == true), "{body}");
    let (status, approved) = t.approve("studio", &a).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{approved}");
    let position = approved["position"].as_u64().expect("position");
    let (_, body) = t
        .get(
            &format!("/management/requests?lodging_id=studio&min_position={position}"),
            &admin,
        )
        .await;
    let b_doc = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["reservation_id"] == b.as_str())
        .cloned()
        .expect("b listed");
    assert_eq!(b_doc["available"], false, "b no longer fits: {body}");
    // Another lodging's admin sees none of it: asking for this lodging is refused (decision 0022),
    // and the unfiltered list holds only what they manage.
    let (status, body) = t
        .get(
            "/management/requests?lodging_id=studio",
            &t.admin_of("elsewhere"),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (_, other) = t
        .get("/management/requests", &t.admin_of("elsewhere"))
        .await;
    assert_eq!(other["items"].as_array().map(Vec::len), Some(0), "{other}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_polls_with_etag_and_min_position() {
    let t = TestPlatform::start().await;
    t.register_lodging("loft", 2, "manual").await;
    let (id, position) = t.request("hana", "loft", 9, 1).await;
    let url = format!("{}/reservations/{id}?min_position={position}", t.base);
    let token = t.customer("hana");
    let first = t
        .http
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .expect("get");
    assert_eq!(first.status(), StatusCode::OK);
    let etag = first.headers().get(header::ETAG).cloned().expect("etag");
    let doc: Value = first.json().await.expect("json");
    assert_eq!(doc["status"], "requested");
    assert!(doc["position"].as_u64().expect("position") >= position);
    let again = t
        .http
        .get(&url)
        .bearer_auth(&token)
        .header(header::IF_NONE_MATCH, etag.clone())
        .send()
        .await
        .expect("get");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    // After a change the ETag no longer matches.
    let (_, approved) = t.approve("loft", &id).await;
    let position = approved["position"].as_u64().expect("position");
    let url = format!("{}/reservations/{id}?min_position={position}", t.base);
    let changed = t
        .http
        .get(&url)
        .bearer_auth(&token)
        .header(header::IF_NONE_MATCH, etag)
        .send()
        .await
        .expect("get");
    assert_eq!(changed.status(), StatusCode::OK);
    // A position no write has reached yet waits like any other (API.md): 504 once `wait_ms` is over...
    let (status, body) = t
        .get(
            &format!("/reservations/{id}?min_position=999999999&wait_ms=200"),
            &token,
        )
        .await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert_eq!(
        body["type"].as_str().map(|t| t.ends_with("views-behind")),
        Some(true),
        "{body}"
    );
    // ...and 200 as soon as a later write gets there within the wait. Once the flow has settled, the
    // next position is one nobody has written yet.
    t.wait_for(&id, "status", "confirmed", WAIT).await;
    let (status, registered) = t
        .post(
            "/lodgings",
            &t.platform_admin(),
            json!({"lodging_id": "annex", "name": "Annex", "nightly_rate": 1000, "rooms": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    let head = registered["position"].as_u64().expect("position");
    let ahead = format!("/reservations/{id}?min_position={}&wait_ms=10000", head + 1);
    let waiting = {
        let (http, base, token) = (t.http.clone(), t.base.clone(), token.clone());
        tokio::spawn(async move {
            http.get(format!("{base}{ahead}"))
                .bearer_auth(token)
                .send()
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "a position beyond the head waits");
    t.request("olga", "loft", 40, 1).await;
    let reached = waiting.await.expect("join").expect("get");
    assert_eq!(reached.status(), StatusCode::OK);
    // Someone else's reservation is not visible to another customer: 403, not yours (decision 0022).
    let (status, body) = t
        .get(&format!("/reservations/{id}"), &t.customer("intruder"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecided_request_expires_after_the_deadline() {
    let t = TestPlatform::start_with(|c| {
        c.policy.approval_deadline = chrono::TimeDelta::milliseconds(400)
    })
    .await;
    t.register_lodging("remote", 1, "manual").await;
    let (id, _) = t.request("ivan", "remote", 12, 2).await;
    let doc = t.wait_for(&id, "status", "expired", WAIT).await;
    assert_eq!(doc["approval_status"], "expired");
    let (status, _) = t.approve("remote", &id).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "an expired request cannot be approved"
    );
    assert!(t.sandbox_charges().await.is_empty());
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overloaded_gateway_defers_then_confirms_charging_once() {
    let t = TestPlatform::start().await;
    t.register_lodging("harbor", 5, "instant").await;
    let admin = t.platform_admin();
    let (status, body) = t
        .call(
            reqwest::Method::PUT,
            "/sandbox/config",
            Some(&admin),
            Some(json!({"overloaded": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(t.request(&format!("cust-{i}"), "harbor", 15 + i, 1).await.0);
    }
    for id in &ids {
        let doc = t.wait_for(id, "status", "payment_pending", WAIT).await;
        assert_eq!(doc["payment_status"], "pending");
    }
    let (status, _) = t
        .call(
            reqwest::Method::PUT,
            "/sandbox/config",
            Some(&admin),
            Some(json!({"overloaded": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for id in &ids {
        t.wait_for(id, "status", "confirmed", Duration::from_secs(30))
            .await;
    }
    // The ledger counts the overloaded answers too: each key was asked for at least twice (once
    // refused, once charged), and no more often than the saga's attempts allow.
    let charges = t.sandbox_charges().await;
    let attempts = u64::from(domain::saga::SagaPolicy::default().max_payment_attempts);
    let charged =
        charges::assert_charged_at_most(&charges, ids.iter().map(String::as_str), attempts);
    assert_eq!(charged.len(), 3, "each charged: {charges:?}");
    for (key, charge) in &charged {
        let asked = charge["attempts"].as_u64().unwrap_or(0);
        assert!(
            asked >= 2,
            "{key} was deferred before it was charged: {charge}"
        );
        assert_eq!(charge["refunded"], false, "{charge}");
    }
    // The sandbox config is for platform admins only.
    let (status, _) = t
        .call(
            reqwest::Method::PUT,
            "/sandbox/config",
            Some(&t.customer("x")),
            Some(json!({"overloaded": true})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_overlapping_approval_on_a_one_room_lodging_conflicts() {
    let t = TestPlatform::start().await;
    t.register_lodging("tiny", 1, "manual").await;
    let (a, _) = t.request("jo", "tiny", 30, 3).await;
    let (b, _) = t.request("kim", "tiny", 31, 3).await;
    let (first, second) = tokio::join!(t.approve("tiny", &a), t.approve("tiny", &b));
    let statuses = [first.0, second.0];
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::ACCEPTED)
            .count(),
        1,
        "{first:?} {second:?}"
    );
    let loser = if first.0 == StatusCode::CONFLICT {
        &first.1
    } else {
        &second.1
    };
    assert_eq!(loser["status"], 409, "{loser}");
    assert!(
        loser["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("room"),
        "{loser}"
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_post_with_idempotency_key_gives_the_first_answer() {
    let t = TestPlatform::start().await;
    t.register_lodging("villa", 2, "manual").await;
    let send = || {
        t.http
            .post(format!("{}/reservations", t.base))
            .bearer_auth(t.customer("lee"))
            .header("Idempotency-Key", "req-42")
            .json(&stay_body("villa", 40, 2))
            .send()
    };
    let first = send().await.expect("first");
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let first: Value = first.json().await.expect("json");
    let second = send().await.expect("second");
    assert_eq!(second.status(), StatusCode::ACCEPTED);
    let second: Value = second.json().await.expect("json");
    assert_eq!(first, second);
    // Nothing new written by the repeat: one request in the whole log (the saga meanwhile writes
    // its own events about it, so the log's head is no measure).
    let log = t.platform.log.read_all(0, 10_000).await.expect("log");
    let requests: Vec<_> = log
        .iter()
        .filter(|e| e.event_type == "ReservationRequested")
        .map(|e| e.stream.clone())
        .collect();
    let id = first["id"].as_str().expect("id");
    assert_eq!(
        requests,
        vec![format!("reservation-{id}")],
        "nothing new written"
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_problem_json_and_the_process_is_unharmed() {
    let t = TestPlatform::start().await;
    t.register_lodging("inn", 1, "manual").await;
    let customer = t.customer("mia");
    let cases: Vec<(&str, &str, Option<&str>, StatusCode)> = vec![
        (
            "/reservations",
            "{not json",
            Some(customer.as_str()),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/reservations",
            r#"{"lodging_id":"inn"}"#,
            Some(customer.as_str()),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/reservations",
            r#"{"lodging_id":"inn","check_in":"2030-13-01","check_out":"2030-01-02","guests":1}"#,
            Some(customer.as_str()),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/reservations",
            r#"{"lodging_id":"inn","check_in":"2030-01-05","check_out":"2030-01-02","guests":1}"#,
            Some(customer.as_str()),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/reservations",
            r#"{"lodging_id":"inn","check_in":"2030-01-01","check_out":"2030-03-01","guests":1}"#,
            Some(customer.as_str()),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/reservations",
            r#"{"lodging_id":"inn","check_in":"2001-01-01","check_out":"2001-01-02","guests":1}"#,
            Some(customer.as_str()),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/reservations",
            r#"{"lodging_id":"inn","check_in":"2030-01-01","check_out":"2030-01-02","guests":99}"#,
            Some(customer.as_str()),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/reservations",
            r#"{"lodging_id":"inn","check_in":"2030-01-01","check_out":"2030-01-02","guests":-1}"#,
            Some(customer.as_str()),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/reservations",
            r#"{"lodging_id":"inn","check_in":"2030-01-01","check_out":"2030-01-02","guests":1}"#,
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "/reservations",
            r#"{"lodging_id":"inn","check_in":"2030-01-01","check_out":"2030-01-02","guests":1}"#,
            Some("not-a-jwt"),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "/reservations/not-a-uuid/cancel",
            "{}",
            Some(customer.as_str()),
            StatusCode::NOT_FOUND,
        ),
        (
            "/reservations/00000000-0000-0000-0000-000000000000/cancel",
            "{}",
            Some(customer.as_str()),
            StatusCode::NOT_FOUND,
        ),
    ];
    let head = t.platform.log.head_position().await.expect("head");
    for (path, body, token, expected) in cases {
        let mut request = t
            .http
            .post(format!("{}{path}", t.base))
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("sent");
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let problem: Value = response.json().await.expect("problem body");
        assert_eq!(status, expected, "{path} {body}: {problem}");
        assert_eq!(content_type, "application/problem+json", "{path} {body}");
        assert_eq!(problem["status"], expected.as_u16(), "{problem}");
        assert!(
            problem["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{problem}"
        );
    }
    // A body over the limit is refused with 413.
    let huge = json!({"lodging_id": "x".repeat(200_000), "check_in": "2030-01-01", "check_out": "2030-01-02", "guests": 1});
    let (status, _) = t.post("/reservations", &customer, huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        t.platform.log.head_position().await.expect("head"),
        head,
        "no partial write"
    );
    // Still serving.
    let (status, _) = t.call(reqwest::Method::GET, "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_and_metrics_report_the_running_platform() {
    let t = TestPlatform::start().await;
    t.register_lodging("desk", 1, "manual").await;
    let (_, position) = t.request("quinn", "desk", 6, 1).await;
    assert!(t.platform.projector.wait_for(position, WAIT).await);
    let (status, ready) = t.call(reqwest::Method::GET, "/readyz", None, None).await;
    assert_eq!(status, StatusCode::OK, "{ready}");
    assert_eq!(ready["status"], "ready");
    // Every answer names its request, probes and the sandbox included; a caller's id is echoed.
    for (method, path) in [
        (reqwest::Method::GET, "/healthz"),
        (reqwest::Method::GET, "/readyz"),
        (reqwest::Method::GET, "/sandbox/config"),
        (reqwest::Method::GET, "/no-such-route"),
        (reqwest::Method::PATCH, "/healthz"),
    ] {
        let url = format!("{}{path}", t.base);
        let answer = t
            .http
            .request(method.clone(), &url)
            .send()
            .await
            .expect("sent");
        let id = answer
            .headers()
            .get("x-request-id")
            .map(|v| v.to_str().expect("ascii").to_owned());
        assert!(
            id.is_some_and(|id| uuid::Uuid::parse_str(&id).is_ok()),
            "{method} {path}"
        );
        let echoed = t
            .http
            .request(method.clone(), &url)
            .header("x-request-id", "trace-42")
            .send()
            .await
            .expect("sent");
        assert_eq!(
            echoed.headers()["x-request-id"],
            "trace-42",
            "{method} {path}"
        );
    }
    let text = t
        .http
        .get(format!("{}/metrics", t.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let metric = |name: &str, labels: &str| stayledger::metrics::sample(&text, name, labels);
    let posted = "method=\"POST\",route=\"/reservations\",status=\"202\"";
    for (name, labels, value) in [
        ("stayledger_http_requests_total", posted, 1.0),
        (
            "stayledger_reservations_in_flight",
            "step=\"awaiting_approval\"",
            1.0,
        ),
        (
            "stayledger_reservations_in_flight",
            "step=\"awaiting_payment\"",
            0.0,
        ),
        ("stayledger_payment_circuit_state", "", 0.0),
        // Read from the view store: 0 dead letters, and the read did not fail.
        ("stayledger_dead_letters", "", 0.0),
        ("stayledger_view_store_scrape_error", "", 0.0),
    ] {
        assert_eq!(
            metric(name, labels),
            Some(value),
            "{name}{{{labels}}} in\n{text}"
        );
    }
    for name in [
        "stayledger_projector_lag_events",
        "stayledger_saga_in_flight",
        "stayledger_appended_events_total",
    ] {
        assert!(metric(name, "").is_some(), "missing {name} in\n{text}");
    }
    t.stop().await;
}
