//! Webhooks over real HTTP on a real `serve`, delivered to real receivers: small axum servers on
//! 127.0.0.1 that record every request (headers and the raw body) and answer 204, 503 or 410 as
//! told, or are truly down (the listener closed, later bound again on the same port). Every request
//! a receiver gets is checked as a subscriber would: `Stayledger-Signature` verifies over the exact
//! body with the secret `POST /webhooks` gave, and `Stayledger-Delivery` names the delivery.
//!
//! - GotoHotel (pay first, the hotel confirms, the guest cancels while her receiver is down): the
//!   guest's inbox, her webhook, the hotel's webhook and her live stream all tell the same changes
//!   in log order; what was sent during the outage arrives once the receiver is back, no delivery
//!   is answered 2xx twice, and the deliveries list shows every one delivered.
//! - Subscriptions: who may subscribe, which URLs and event types, each owner lists and deletes
//!   only their own, nothing is delivered to a deleted one, and an events filter picks the types.
//! - A refused delivery (4xx) parks at once and its owner re-drives it; one that keeps failing
//!   parks once `park_after` has passed.
//! - A dead or hanging endpoint holds up no other subscriber.

mod common;
#[path = "common/receiver.rs"]
mod receiver;
#[path = "common/sse.rs"]
mod sse;

use std::future::Future;
use std::time::Duration;

use axum::body::Bytes;
use chrono::{DateTime, Utc};
use common::{stay_body, TestPlatform};
use http_edge::Role;
use notifier::policy::RetryPolicy;
use notifier::signature;
use receiver::{summary, Hit, Receiver};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sse::Frames;
use tokio::net::{TcpListener, TcpStream};

const WAIT: Duration = Duration::from_secs(15);
/// How far a signature's `t` may be from the receiver's clock.
const TOLERANCE_SECS: i64 = 300;

/// Retries every 100 ms doubling to 500 ms, parked `park_after` from the first attempt, 2 s per
/// attempt.
fn fast_policy(park_after: Duration) -> RetryPolicy {
    RetryPolicy {
        base: Duration::from_millis(100),
        max_delay: Duration::from_millis(500),
        park_after,
        timeout: Duration::from_secs(2),
    }
}

async fn platform(park_after: Duration) -> TestPlatform {
    TestPlatform::start_with(|config| {
        config.webhook_allow_private = true;
        config.webhook_policy = fast_policy(park_after);
    })
    .await
}

/// Whether a request answered 2xx carried a change of `reservation` of type `kind`.
fn has_delivered(hits: &[Hit], reservation: &str, kind: &str) -> bool {
    hits.iter().any(|h| {
        let body = h.json();
        h.ok() && body["reservation_id"] == reservation && body["type"] == kind
    })
}

/// Check every request as a subscriber would, and that the sender kept its promises: each is a
/// POST to the subscribed path, JSON, with a delivery id, signed with `secret` over its exact
/// body within [`TOLERANCE_SECS`] of its arrival; every attempt of one delivery carries the same
/// bytes; and no delivery id is answered 2xx twice (a repeat is allowed only after a non-2xx).
/// Returns those answered 2xx, in the order they came.
fn checked(hits: &[Hit], secret: &str) -> Vec<Hit> {
    let mut bodies: std::collections::HashMap<String, Bytes> = std::collections::HashMap::new();
    let mut delivered: Vec<Hit> = Vec::new();
    for hit in hits {
        assert_eq!(hit.path, "/hook");
        assert_eq!(
            hit.content_type.as_deref(),
            Some("application/json"),
            "{hit:?}"
        );
        let delivery = hit.delivery.clone().expect("Stayledger-Delivery present");
        assert!(uuid::Uuid::parse_str(&delivery).is_ok(), "{delivery}");
        let header = hit
            .signature
            .as_deref()
            .expect("Stayledger-Signature present");
        assert_eq!(
            signature::verify(secret, header, &hit.body, hit.at_unix, TOLERANCE_SECS),
            Ok(()),
            "signature of {delivery} ({header})"
        );
        let first = bodies
            .entry(delivery.clone())
            .or_insert_with(|| hit.body.clone());
        assert_eq!(
            *first, hit.body,
            "every attempt of {delivery} sends the same bytes"
        );
        if hit.ok() {
            assert!(
                !delivered.iter().any(|d| d.delivery == hit.delivery),
                "{delivery} answered 2xx twice: {:?}",
                summary(hits)
            );
            delivered.push(hit.clone());
        }
    }
    delivered
}

fn of_reservation(delivered: &[Hit], reservation: &str) -> Vec<Hit> {
    delivered
        .iter()
        .filter(|h| h.json()["reservation_id"] == reservation)
        .cloned()
        .collect()
}

fn types(delivered: &[Hit]) -> Vec<String> {
    delivered
        .iter()
        .map(|h| h.json()["type"].as_str().unwrap_or_default().to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The API.

/// Poll `probe` until it gives `Ok` (panics with its last `Err` after [`WAIT`]).
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(last) => assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: not within {WAIT:?}; last: {last}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Subscribe `body` as `token`: (webhook id, secret), the answer checked.
async fn subscribe(t: &TestPlatform, token: &str, body: Value) -> (String, String) {
    let (status, made) = t.post("/webhooks", token, body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(made["url"], body["url"], "{made}");
    let events = body.get("events").cloned().unwrap_or_else(|| json!([]));
    assert_eq!(made["events"], events, "{made}");
    assert!(made["created_at"].is_string(), "{made}");
    let secret = made["secret"].as_str().expect("the secret, shown once");
    assert!(secret.len() >= 32, "{made}");
    let id = made["id"].as_str().expect("id");
    (id.to_string(), secret.to_string())
}

/// A raw request: (status, content type, body).
async fn raw(
    t: &TestPlatform,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, String, Value) {
    let mut request = t.http.request(method, format!("{}{path}", t.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("sent");
    let status = response.status();
    let kind = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = response.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, kind, value)
}

/// The fields a 400 problem names.
fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["field"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Every delivery of `webhook` (all pages), oldest first; each page checked newest first.
async fn deliveries(t: &TestPlatform, token: &str, webhook: &str) -> Vec<Value> {
    let mut items: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/webhooks/{webhook}/deliveries?limit=2");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let (status, page) = t.get(&path, token).await;
        assert_eq!(status, StatusCode::OK, "{path}: {page}");
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    let positions: Vec<u64> = items
        .iter()
        .filter_map(|d| d["position"].as_u64())
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] > w[1]),
        "newest first across pages: {positions:?}"
    );
    items.reverse();
    items
}

/// One status change as the inbox tells it.
#[derive(Debug, Clone)]
struct Change {
    status: String,
    position: u64,
    created_at: DateTime<Utc>,
}

/// The status changes of `reservation` in the caller's inbox once the notifier reached
/// `position`, oldest first.
async fn status_changes(
    t: &TestPlatform,
    token: &str,
    reservation: &str,
    position: &Value,
) -> Vec<Change> {
    let path = format!("/me/notifications?min_position={position}&wait_ms=5000&limit=100");
    let (status, page) = t.get(&path, token).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let mut changes: Vec<Change> = page["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|i| i["reservation_id"] == reservation && i["kind"] == "status_changed")
        .map(|i| Change {
            status: i["status"].as_str().unwrap_or_default().to_string(),
            position: i["position"].as_u64().expect("position"),
            created_at: i["created_at"]
                .as_str()
                .and_then(|at| at.parse().ok())
                .expect("created_at"),
        })
        .collect();
    changes.reverse();
    changes
}

/// Check that `delivered` (a receiver's 2xx requests for `reservation`) tells `changes` in order.
fn assert_tells(delivered: &[Hit], changes: &[Change], reservation: &str, lodging: &str) {
    let expected: Vec<String> = changes
        .iter()
        .map(|c| format!("reservation.{}", c.status))
        .collect();
    assert_eq!(types(delivered), expected, "{:?}", summary(delivered));
    for (hit, change) in delivered.iter().zip(changes) {
        let body = hit.json();
        assert_eq!(body["status"], change.status.as_str(), "{body}");
        assert_eq!(body["position"], change.position, "{body}");
        assert_eq!(body["reservation_id"], reservation, "{body}");
        assert_eq!(body["lodging_id"], lodging, "{body}");
        assert!(
            body["id"]
                .as_str()
                .is_some_and(|id| uuid::Uuid::parse_str(id).is_ok()),
            "the event's id: {body}"
        );
        let occurred: DateTime<Utc> = body["occurred_at"]
            .as_str()
            .and_then(|at| at.parse().ok())
            .expect("occurred_at");
        assert_eq!(occurred, change.created_at, "{body}");
        assert_eq!(body["data"]["reservation_id"], reservation, "{body}");
        assert!(
            body["data"]["position"].as_u64() >= Some(change.position),
            "the document as of the change or later: {body}"
        );
    }
}

async fn approve_listing(t: &TestPlatform, host: &str, listing: Value) {
    let id = listing["lodging_id"]
        .as_str()
        .expect("lodging_id")
        .to_string();
    let (status, body) = t.post("/listings", host, listing).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, body) = t
        .post(
            &format!("/listings/{id}/approve"),
            &t.platform_admin(),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

async fn book(t: &TestPlatform, guest: &str, lodging: &str, offset: i64) -> String {
    let (status, body) = t
        .post(
            "/reservations",
            &t.customer(guest),
            stay_body(lodging, offset, 2),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    body["id"].as_str().expect("id").to_string()
}

// ---------------------------------------------------------------------------------------------
// The tests.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn goto_hotel_the_guest_and_the_hotel_follow_a_stay_by_webhook_through_an_outage() {
    let t = platform(Duration::from_secs(60)).await;
    let hotel = t.token(Role::Admin, "goto-hotel", &[]);
    approve_listing(
        &t,
        &hotel,
        json!({"lodging_id": "goto-seoul", "name": "GotoHotel Seoul", "nightly_rate": 120_000,
               "currency": "KRW", "rooms": 1, "max_guests": 2, "approval_mode": "pay_first",
               "timezone": "Asia/Seoul"}),
    )
    .await;
    let guest = t.customer("guest-kim");
    let mut guest_hook = Receiver::start(204).await;
    let hotel_hook = Receiver::start(204).await;
    let (guest_webhook, guest_secret) =
        subscribe(&t, &guest, json!({"url": guest_hook.url()})).await;
    // The hotel follows its lodging as its catalog admin (no `lodgings` claim).
    let (hotel_webhook, hotel_secret) =
        subscribe(&t, &hotel, json!({"url": hotel_hook.url()})).await;
    let mut live = Frames::open(&t, "", Some(&guest), None).await;

    // The guest books and pays at once; the hotel confirms.
    let id = book(&t, "guest-kim", "goto-seoul", 3).await;
    t.wait_for(&id, "status", "paid", WAIT).await;
    let mut frames = live.until(&id, "paid").await;
    let (status, body) = t
        .post(
            &format!("/management/requests/{id}/approve"),
            &hotel,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    t.wait_for(&id, "status", "confirmed", WAIT).await;
    frames.extend(live.until(&id, "confirmed").await);
    guest_hook
        .wait_for("the guest hears of the confirmation", |hits| {
            has_delivered(hits, &id, "reservation.confirmed")
        })
        .await;

    // Her receiver goes down (nothing listens on its port) and she cancels; the refund follows.
    guest_hook.go_down().await;
    assert!(
        TcpStream::connect(guest_hook.addr).await.is_err(),
        "down: connections are refused"
    );
    let (status, body) = t
        .post(
            &format!("/reservations/{id}/cancel"),
            &guest,
            json!({"reason": "plans changed"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let refunded = t.wait_for(&id, "refund_status", "refunded", WAIT).await;
    frames.extend(live.until(&id, "cancelled").await);
    // The hotel's receiver, up all along, hears of it meanwhile.
    hotel_hook
        .wait_for("the hotel hears of the cancellation", |hits| {
            has_delivered(hits, &id, "reservation.cancelled")
        })
        .await;
    // Down through several retry rounds.
    let (t_ref, guest_ref, webhook_ref) = (&t, guest.as_str(), guest_webhook.as_str());
    let during = eventually(
        "the cancellation retried while the receiver is down",
        || async move {
            let items = deliveries(t_ref, guest_ref, webhook_ref).await;
            let cancelled = items
                .iter()
                .find(|d| d["type"] == "reservation.cancelled")
                .cloned()
                .ok_or_else(|| format!("not queued: {items:?}"))?;
            if cancelled["status"] == "retrying" && cancelled["attempts"].as_u64() >= Some(3) {
                Ok(cancelled)
            } else {
                Err(cancelled.to_string())
            }
        },
    )
    .await;
    assert!(during["last_error"].is_string(), "{during}");
    assert!(during["last_status_code"].is_null(), "no answer: {during}");
    assert!(during["next_attempt_at"].is_string(), "{during}");
    assert!(during["settled_at"].is_null(), "{during}");
    assert!(
        !has_delivered(&guest_hook.hits(), &id, "reservation.cancelled"),
        "nothing answered while down"
    );

    // Back on the same port: the cancellation arrives.
    guest_hook.come_back(204).await;
    guest_hook
        .wait_for("the cancellation, once the receiver is back", |hits| {
            has_delivered(hits, &id, "reservation.cancelled")
        })
        .await;

    // Her inbox: one entry per status change, in order.
    let changes = status_changes(&t, &guest, &id, &refunded["position"]).await;
    let statuses: Vec<&str> = changes.iter().map(|c| c.status.as_str()).collect();
    assert_eq!(statuses, ["requested", "paid", "confirmed", "cancelled"]);
    assert!(changes.windows(2).all(|w| w[0].position < w[1].position));

    // Her webhook: the same changes, signed, in log order, each answered 2xx once; the
    // cancellation only after the receiver came back.
    let got = checked(&guest_hook.hits(), &guest_secret);
    let sent = of_reservation(&got, &id);
    assert_eq!(sent.len(), got.len(), "only her reservation");
    assert_tells(&sent, &changes, &id, "goto-seoul");
    let epochs: Vec<u32> = sent.iter().map(|h| h.epoch).collect();
    assert_eq!(
        epochs,
        [0, 0, 0, 1],
        "the cancellation came after the outage"
    );

    // The deliveries list: all delivered; the one of the outage after several attempts.
    let listed = deliveries(&t, &guest, &guest_webhook).await;
    assert_eq!(listed.len(), changes.len(), "{listed:?}");
    for ((delivery, hit), change) in listed.iter().zip(&sent).zip(&changes) {
        let body = hit.json();
        assert_eq!(delivery["status"], "delivered", "{delivery}");
        assert_eq!(delivery["delivery_id"].as_str(), hit.delivery.as_deref());
        assert_eq!(delivery["event_id"], body["id"], "{delivery}");
        assert_eq!(delivery["type"], body["type"], "{delivery}");
        assert_eq!(delivery["reservation_id"], id.as_str(), "{delivery}");
        assert_eq!(delivery["position"], change.position, "{delivery}");
        assert_eq!(delivery["last_status_code"], 204, "{delivery}");
        assert!(delivery["settled_at"].is_string(), "{delivery}");
        assert!(delivery["next_attempt_at"].is_null(), "{delivery}");
        let attempts = delivery["attempts"].as_u64().unwrap_or(0);
        if change.status == "cancelled" {
            assert!(attempts > 1, "retried through the outage: {delivery}");
            assert!(
                attempts > during["attempts"].as_u64().unwrap_or(0),
                "{delivery}"
            );
        } else {
            assert_eq!(attempts, 1, "delivered at once: {delivery}");
        }
    }

    // The hotel's webhook: the same changes of the stay, the very same bytes, its own ids.
    let hotel_got = checked(&hotel_hook.hits(), &hotel_secret);
    let hotel_sent = of_reservation(&hotel_got, &id);
    assert_tells(&hotel_sent, &changes, &id, "goto-seoul");
    let bodies = |hits: &[Hit]| hits.iter().map(|h| h.body.clone()).collect::<Vec<_>>();
    assert_eq!(bodies(&hotel_sent), bodies(&sent), "one body per change");
    assert!(hotel_sent
        .iter()
        .all(|h| sent.iter().all(|g| g.delivery != h.delivery)));
    let hotel_listed = deliveries(&t, &hotel, &hotel_webhook).await;
    assert!(
        hotel_listed
            .iter()
            .all(|d| d["status"] == "delivered" && d["attempts"] == 1),
        "{hotel_listed:?}"
    );
    // Each owner reads only their own webhook's deliveries.
    let (status, _) = t
        .get(&format!("/webhooks/{hotel_webhook}/deliveries"), &guest)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Her live stream followed it: ids growing, statuses in the inbox's order. (A stream sends a
    // version only if the views still hold it when it gets there, so the `requested` version,
    // replaced within moments by the payment, may be skipped; each later status waited on a
    // person and was read off the stream before the next step.)
    let ours: Vec<_> = frames
        .iter()
        .filter(|f| f.data["reservation_id"] == id.as_str())
        .collect();
    assert!(ours.windows(2).all(|w| w[0].id < w[1].id), "ids grow");
    assert!(ours.iter().all(|f| f.event == "reservation"));
    let mut seen: Vec<&str> = ours
        .iter()
        .filter_map(|f| f.data["status"].as_str())
        .collect();
    seen.dedup();
    if seen.first() == Some(&"requested") {
        seen.remove(0);
    }
    assert_eq!(seen, ["paid", "confirmed", "cancelled"], "{ours:?}");
    drop(live);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_may_subscribe_and_which_targets_and_events_are_refused() {
    // The default: private and loopback targets are not allowed.
    let t = TestPlatform::start().await;
    let customer = t.customer("sora");
    let public = "http://93.184.216.34/hook";

    let (status, body) = t
        .post("/webhooks", &t.auditor(), json!({"url": public}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = t.get("/webhooks", &t.auditor()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = t
        .call(
            Method::POST,
            "/webhooks",
            None,
            Some(json!({"url": public})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    for private in [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10:8080/in",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:9/hook",
    ] {
        let (status, kind, problem) = raw(
            &t,
            Method::POST,
            "/webhooks",
            Some(&customer),
            Some(json!({"url": private})),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{private}: {problem}");
        assert!(kind.starts_with("application/problem+json"), "{kind}");
        assert_eq!(fields(&problem), ["url"], "{private}: {problem}");
    }
    for malformed in [
        "ftp://93.184.216.34/x",
        "not a url",
        "https://u:p@93.184.216.34/",
    ] {
        let (status, problem) = t
            .post("/webhooks", &customer, json!({"url": malformed}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{malformed}: {problem}");
        assert_eq!(fields(&problem), ["url"], "{malformed}: {problem}");
    }
    for events in [
        json!(["reservation.bogus"]),
        json!(["confirmed"]),
        json!("reservation.confirmed"),
        json!([]),
        json!([1]),
    ] {
        let (status, problem) = t
            .post(
                "/webhooks",
                &customer,
                json!({"url": public, "events": events}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{events}: {problem}");
        assert_eq!(fields(&problem), ["events"], "{events}: {problem}");
    }
    let (status, problem) = t
        .post(
            "/webhooks",
            &customer,
            json!({"url": public, "colour": "red"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(fields(&problem), ["colour"], "{problem}");
    let (status, problem) = t.post("/webhooks", &customer, json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    let (status, problem) = t
        .call(Method::POST, "/webhooks", Some(&customer), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");

    // Nothing was made; a public target is taken (every status named once, repeats dropped).
    let (status, list) = t.get("/webhooks", &customer).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["items"], json!([]), "{list}");
    let (status, made) = t
        .post(
            "/webhooks",
            &customer,
            json!({"url": public, "events": ["reservation.cancelled", "reservation.paid", "reservation.cancelled"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(
        made["events"],
        json!(["reservation.cancelled", "reservation.paid"])
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn owners_see_and_delete_only_their_own_and_an_events_filter_picks_types() {
    let t = platform(Duration::from_secs(60)).await;
    t.register_lodging("hook-inn", 2, "manual").await;
    let sora = t.customer("sora");
    let joon = t.customer("joon");
    let elsewhere = t.admin_of("other-inn");
    let deleted_hook = Receiver::start(204).await;
    let confirmed_hook = Receiver::start(204).await;
    let every_hook = Receiver::start(204).await;
    let strangers_hook = Receiver::start(204).await;
    let (deleted, deleted_secret) = subscribe(&t, &sora, json!({"url": deleted_hook.url()})).await;
    let (confirmed, confirmed_secret) = subscribe(
        &t,
        &sora,
        json!({"url": confirmed_hook.url(), "events": ["reservation.confirmed"]}),
    )
    .await;
    let (every, every_secret) = subscribe(&t, &sora, json!({"url": every_hook.url()})).await;
    let (joons, _) = subscribe(&t, &joon, json!({"url": strangers_hook.url()})).await;
    let (other_desks, _) = subscribe(&t, &elsewhere, json!({"url": strangers_hook.url()})).await;

    // Each owner lists their own, without secrets.
    let listed = |token: String| {
        let t = &t;
        async move {
            let (status, page) = t.get("/webhooks", &token).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            let items = page["items"].as_array().cloned().unwrap_or_default();
            assert!(
                items
                    .iter()
                    .all(|w| w.get("secret").is_none() && w["url"].is_string()),
                "{page}"
            );
            let mut ids: Vec<String> = items
                .iter()
                .filter_map(|w| w["id"].as_str().map(str::to_string))
                .collect();
            ids.sort();
            ids
        }
    };
    let sorted = |mut ids: Vec<String>| {
        ids.sort();
        ids
    };
    assert_eq!(
        listed(sora.clone()).await,
        sorted(vec![deleted.clone(), confirmed.clone(), every.clone()])
    );
    assert_eq!(listed(joon.clone()).await, [joons.as_str()]);
    assert_eq!(listed(elsewhere.clone()).await, [other_desks.as_str()]);
    assert!(listed(t.customer("nobody")).await.is_empty());

    // Another owner's webhook is not found, for any use.
    let path = format!("/webhooks/{deleted}");
    let (status, _) = t.call(Method::DELETE, &path, Some(&joon), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = t
        .call(Method::DELETE, &path, Some(&t.platform_admin()), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = t.get(&format!("{path}/deliveries"), &joon).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = t
        .call(Method::DELETE, "/webhooks/not-an-id", Some(&sora), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Sora books; her all-events webhooks hear of the request.
    let id = book(&t, "sora", "hook-inn", 6).await;
    for hook in [&deleted_hook, &every_hook] {
        hook.wait_for("the request", |hits| {
            has_delivered(hits, &id, "reservation.requested")
        })
        .await;
    }
    // She deletes one: it is gone, and hears nothing more.
    let (status, body) = t.call(Method::DELETE, &path, Some(&sora), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        listed(sora.clone()).await,
        sorted(vec![confirmed.clone(), every.clone()])
    );
    let (status, _) = t.call(Method::DELETE, &path, Some(&sora), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = t.get(&format!("{path}/deliveries"), &sora).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = t.approve("hook-inn", &id).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let done = t.wait_for(&id, "status", "confirmed", WAIT).await;
    every_hook
        .wait_for("every change", |hits| {
            has_delivered(hits, &id, "reservation.confirmed")
        })
        .await;
    confirmed_hook
        .wait_for("the confirmation", |hits| {
            has_delivered(hits, &id, "reservation.confirmed")
        })
        .await;
    // A grace period for a wrong delivery to the deleted webhook to show (its peers, sent by
    // senders just like its own, are all in).
    tokio::time::sleep(Duration::from_millis(500)).await;

    let changes = status_changes(&t, &sora, &id, &done["position"]).await;
    let statuses: Vec<&str> = changes.iter().map(|c| c.status.as_str()).collect();
    assert_eq!(statuses, ["requested", "approved", "confirmed"]);
    assert_tells(
        &checked(&every_hook.hits(), &every_secret),
        &changes,
        &id,
        "hook-inn",
    );
    assert_tells(
        &checked(&confirmed_hook.hits(), &confirmed_secret),
        &changes[2..],
        &id,
        "hook-inn",
    );
    assert_eq!(
        confirmed_hook.hits().len(),
        1,
        "only the confirmation, once"
    );
    assert_tells(
        &checked(&deleted_hook.hits(), &deleted_secret),
        &changes[..1],
        &id,
        "hook-inn",
    );
    assert_eq!(
        deleted_hook.hits().len(),
        1,
        "nothing after the deletion: {:?}",
        summary(&deleted_hook.hits())
    );
    assert!(
        strangers_hook.hits().is_empty(),
        "another customer and another lodging's admin hear nothing of it: {:?}",
        summary(&strangers_hook.hits())
    );
    let listed_deliveries = deliveries(&t, &sora, &confirmed).await;
    assert_eq!(listed_deliveries.len(), 1, "{listed_deliveries:?}");
    assert_eq!(listed_deliveries[0]["type"], "reservation.confirmed");
    assert_eq!(listed_deliveries[0]["status"], "delivered");
    assert!(deliveries(&t, &joon, &joons).await.is_empty());
    t.stop().await;
}

/// The one delivery of `webhook` of type `kind`, once `done` holds of it.
async fn delivery_when(
    t: &TestPlatform,
    token: &str,
    webhook: &str,
    kind: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let done = &done;
    eventually(what, || async move {
        let items = deliveries(t, token, webhook).await;
        let found: Vec<&Value> = items.iter().filter(|d| d["type"] == kind).collect();
        match found.as_slice() {
            [one] if done(one) => Ok((*one).clone()),
            [one] => Err(one.to_string()),
            _ => Err(format!("{kind}: {items:?}")),
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_delivery_parks_at_once_holds_up_nothing_and_is_re_driven_by_its_owner() {
    let t = platform(Duration::from_secs(60)).await;
    t.register_lodging("park-inn", 2, "manual").await;
    let sora = t.customer("sora");
    let hook = Receiver::start(410).await;
    let (webhook, secret) = subscribe(&t, &sora, json!({"url": hook.url()})).await;

    // 410 Gone: parked after its one attempt.
    let id = book(&t, "sora", "park-inn", 4).await;
    let parked = delivery_when(
        &t,
        &sora,
        &webhook,
        "reservation.requested",
        "parked",
        |d| d["status"] == "parked",
    )
    .await;
    assert_eq!(parked["attempts"], 1, "{parked}");
    assert_eq!(parked["last_status_code"], 410, "{parked}");
    assert!(parked["settled_at"].is_string(), "{parked}");
    assert!(parked["next_attempt_at"].is_null(), "{parked}");
    let hits = hook.hits();
    assert_eq!(hits.len(), 1, "{:?}", summary(&hits));
    assert_eq!(hits[0].answered, 410);
    let delivery = parked["delivery_id"]
        .as_str()
        .expect("delivery_id")
        .to_string();
    assert_eq!(hits[0].delivery.as_deref(), Some(delivery.as_str()));

    // The receiver is fixed; later changes go out although the parked one is still parked.
    hook.answer_with(204);
    let (status, body) = t.approve("park-inn", &id).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    hook.wait_for("the later changes", |hits| {
        has_delivered(hits, &id, "reservation.confirmed")
    })
    .await;
    let still = delivery_when(
        &t,
        &sora,
        &webhook,
        "reservation.requested",
        "still parked",
        |_| true,
    )
    .await;
    assert_eq!(still["status"], "parked", "{still}");

    // Re-drive: not by another owner, not an unknown one.
    let retry = format!("/webhooks/{webhook}/deliveries/{delivery}/retry");
    let (status, _) = t.post(&retry, &t.customer("joon"), json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for unknown in [
        format!(
            "/webhooks/{webhook}/deliveries/{}/retry",
            uuid::Uuid::new_v4()
        ),
        format!("/webhooks/{webhook}/deliveries/not-an-id/retry"),
        format!(
            "/webhooks/{}/deliveries/{delivery}/retry",
            uuid::Uuid::new_v4()
        ),
    ] {
        let (status, body) = t.post(&unknown, &sora, json!({})).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{unknown}: {body}");
    }
    let (status, queued) = t.post(&retry, &sora, json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    assert_eq!(queued["delivery_id"], delivery.as_str(), "{queued}");
    assert_eq!(queued["status"], "pending", "{queued}");
    assert_eq!(queued["attempts"], 0, "its attempts start over: {queued}");
    let delivered = delivery_when(
        &t,
        &sora,
        &webhook,
        "reservation.requested",
        "re-driven and delivered",
        |d| d["status"] == "delivered",
    )
    .await;
    assert_eq!(delivered["attempts"], 1, "{delivered}");
    assert_eq!(delivered["last_status_code"], 204, "{delivered}");
    let got = checked(&hook.hits(), &secret);
    let again: Vec<u16> = hook
        .hits()
        .iter()
        .filter(|h| h.delivery.as_deref() == Some(delivery.as_str()))
        .map(|h| h.answered)
        .collect();
    assert_eq!(again, [410, 204], "the same delivery, sent again");
    assert_eq!(
        types(&of_reservation(&got, &id)),
        [
            "reservation.approved",
            "reservation.confirmed",
            "reservation.requested"
        ],
        "the re-driven one comes after the ones that went past it"
    );

    // A delivered one is not re-driven.
    let (status, problem) = t.post(&retry, &sora, json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert!(
        problem["type"]
            .as_str()
            .is_some_and(|kind| kind.ends_with("not-parked")),
        "{problem}"
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delivery_that_keeps_failing_parks_once_park_after_has_passed() {
    let t = platform(Duration::from_millis(300)).await;
    t.register_lodging("flaky-inn", 2, "manual").await;
    let sora = t.customer("sora");
    let hook = Receiver::start(503).await;
    let (webhook, secret) = subscribe(&t, &sora, json!({"url": hook.url()})).await;
    book(&t, "sora", "flaky-inn", 4).await;
    let parked = delivery_when(
        &t,
        &sora,
        &webhook,
        "reservation.requested",
        "parked after retries",
        |d| d["status"] == "parked",
    )
    .await;
    let attempts = parked["attempts"].as_u64().unwrap_or(0);
    assert!(attempts >= 2, "retried before parking: {parked}");
    assert_eq!(parked["last_status_code"], 503, "{parked}");
    assert!(parked["next_attempt_at"].is_null(), "{parked}");
    let delivery = parked["delivery_id"].as_str().expect("delivery_id");
    let hits = hook.hits();
    assert!(checked(&hits, &secret).is_empty(), "none answered 2xx");
    let tries = hits
        .iter()
        .filter(|h| h.delivery.as_deref() == Some(delivery))
        .count();
    assert_eq!(
        u64::try_from(tries).unwrap_or(0),
        attempts,
        "each attempt reached it"
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_or_hanging_endpoint_holds_up_no_other_subscriber() {
    let t = platform(Duration::from_secs(60)).await;
    t.register_lodging("busy-inn", 3, "instant").await;
    // A port nothing listens on (connections refused), and one that takes connections and never
    // answers (each attempt runs into the 2 s timeout).
    let dead = {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        listener.local_addr().expect("addr")
    };
    let hanging = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let hanging_addr = hanging.local_addr().expect("addr");
    let live_hook = Receiver::start(204).await;
    let desk = t.admin_of("busy-inn");
    let root = t.platform_admin();
    let mina = t.customer("mina");
    let (dead_webhook, _) =
        subscribe(&t, &desk, json!({"url": format!("http://{dead}/hook")})).await;
    let (hanging_webhook, _) = subscribe(
        &t,
        &root,
        json!({"url": format!("http://{hanging_addr}/hook")}),
    )
    .await;
    let (_, live_secret) = subscribe(&t, &mina, json!({"url": live_hook.url()})).await;

    let mut stays = Vec::new();
    for offset in [3, 6, 9] {
        stays.push(book(&t, "mina", "busy-inn", offset).await);
    }
    let mut last = json!(0);
    for id in &stays {
        last = t.wait_for(id, "status", "confirmed", WAIT).await["position"].clone();
    }
    live_hook
        .wait_for("every change of every stay", |hits| {
            stays
                .iter()
                .all(|id| has_delivered(hits, id, "reservation.confirmed"))
        })
        .await;
    let got = checked(&live_hook.hits(), &live_secret);
    for id in &stays {
        let positions: Vec<u64> = of_reservation(&got, id)
            .iter()
            .filter_map(|h| h.json()["position"].as_u64())
            .collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "in log order per reservation: {positions:?}"
        );
    }
    for id in &stays {
        let changes = status_changes(&t, &mina, id, &last).await;
        assert!(!changes.is_empty());
        assert_tells(&of_reservation(&got, id), &changes, id, "busy-inn");
    }

    // Meanwhile the dead endpoint's first delivery of each stay is being retried, holding back
    // the later ones of that stay only (and nothing of any other subscriber).
    let (t_ref, desk_ref, dead_ref) = (&t, desk.as_str(), dead_webhook.as_str());
    let dead_queue = eventually("the dead endpoint retried", || async move {
        let items = deliveries(t_ref, desk_ref, dead_ref).await;
        match items.first() {
            Some(head) if head["status"] == "retrying" && head["attempts"].as_u64() >= Some(2) => {
                Ok(items)
            }
            _ => Err(format!("{items:?}")),
        }
    })
    .await;
    assert!(
        dead_queue[0]["last_error"].is_string(),
        "{:?}",
        dead_queue[0]
    );
    let mut heads = std::collections::HashSet::new();
    let mut behind = 0;
    for d in &dead_queue {
        let stay = d["reservation_id"].as_str().unwrap_or_default().to_string();
        if heads.insert(stay) {
            assert_ne!(d["status"], "delivered", "{d}");
        } else {
            behind += 1;
            assert!(
                d["status"] == "pending" && d["attempts"] == 0,
                "behind its stay's head, in order: {dead_queue:?}"
            );
        }
    }
    assert!(
        behind >= 1,
        "the dead one has later changes of a stay queued: {dead_queue:?}"
    );
    let (t_ref, root_ref, hanging_ref) = (&t, root.as_str(), hanging_webhook.as_str());
    let hanging_queue = eventually("the hanging endpoint timed out", || async move {
        let items = deliveries(t_ref, root_ref, hanging_ref).await;
        match items.first() {
            Some(head) if head["status"] == "retrying" => Ok(items),
            _ => Err(format!("{items:?}")),
        }
    })
    .await;
    assert_eq!(
        hanging_queue[0]["last_error"], "timed out",
        "{:?}",
        hanging_queue[0]
    );
    assert!(hanging_queue.iter().all(|d| d["status"] != "delivered"));
    drop(hanging);
    t.stop().await;
}
