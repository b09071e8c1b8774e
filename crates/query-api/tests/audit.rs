//! The audit routes over real HTTP on a real log: a reservation's history across streams, its state
//! as of a position or an instant, the log and a stream page by page, and the hash-chain check.

mod common;

use std::sync::Arc;

use common::QueryApp;
use domain::payment::{PaymentAggregate, PaymentCommand};
use eventlog::{CommandContext, Repository};
use http_edge::Role;
use serde_json::Value;
use uuid::Uuid;

/// A lodging with two reservations; the first approved, paid for (requested) and cancelled.
async fn timeline(app: &QueryApp) -> (Uuid, Uuid) {
    app.lodging("l-1", 2).await;
    let (id, _) = app.reserve("c-1", "l-1", 4, 6).await;
    let (other, _) = app.reserve("c-2", "l-1", 4, 6).await;
    app.approve("l-1", id).await;
    let payments = Repository::<PaymentAggregate>::new(Arc::clone(&app.log))
        .with_snapshots(app.log.snapshots());
    let context = CommandContext {
        correlation_id: id,
        causation_id: Uuid::new_v4(),
        actor: "saga".into(),
        now: chrono::Utc::now(),
    };
    let request = PaymentCommand::Request {
        reservation_id: id,
        amount: 100_000,
        currency: "KRW".into(),
    };
    payments
        .execute(&id.to_string(), &request, &context)
        .await
        .map_err(|e| e.to_string())
        .expect("payment");
    app.cancel("c-1", id).await;
    (id, other)
}

fn auditor(app: &QueryApp) -> String {
    app.token(Role::Auditor, "au-1", &[])
}

#[tokio::test]
async fn history_gathers_every_stream_of_the_reservation_in_log_order() {
    let app = QueryApp::start().await;
    let (id, other) = timeline(&app).await;
    let answer = app
        .get_as(&format!("/audit/reservations/{id}/history"), &auditor(&app))
        .await;
    let events = answer.ok()["events"].as_array().expect("events").clone();
    let types: Vec<&str> = events
        .iter()
        .filter_map(|e| e["event_type"].as_str())
        .collect();
    assert_eq!(
        types,
        [
            "ReservationRequested",
            "ApprovalRequested",
            "ApprovalGranted",
            "PaymentRequested",
            "ReservationCancelled"
        ]
    );
    let positions: Vec<u64> = events
        .iter()
        .filter_map(|e| e["position"].as_u64())
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "log order: {positions:?}"
    );
    for event in &events {
        assert_eq!(event["metadata"]["correlation_id"], id.to_string());
        assert!(event["hash"].as_str().is_some_and(|h| h.len() == 64));
        assert!(event["metadata"]["actor"].is_string() && event["recorded_at"].is_string());
    }
    let mentions_other = events
        .iter()
        .any(|e| e["data"]["reservation_id"] == other.to_string());
    assert!(
        !mentions_other,
        "another reservation's lodging events are left out"
    );
    app.get_as(
        &format!("/audit/reservations/{}/history", Uuid::new_v4()),
        &auditor(&app),
    )
    .await
    .problem(404);
}

#[tokio::test]
async fn state_is_rebuilt_as_of_a_position_or_an_instant() {
    let app = QueryApp::start().await;
    let (id, _) = timeline(&app).await;
    let token = auditor(&app);
    let stream = app
        .log
        .read_stream(&format!("reservation-{id}"), 0, 10)
        .await
        .expect("read");
    let requested_at = &stream[0];
    let base = format!("/audit/reservations/{id}/state");

    let now = app.get_as(&base, &token).await;
    assert_eq!(now.ok()["status"], "cancelled");
    assert_eq!(now.body["state"]["status"], "cancelled");
    assert_eq!(
        now.header("etag"),
        Some(format!("\"{}\"", stream[1].position).as_str())
    );

    let then = app
        .get_as(
            &format!("{base}?as_of_position={}", stream[1].position - 1),
            &token,
        )
        .await;
    assert_eq!(then.ok()["status"], "requested");
    assert_eq!(then.body["events_applied"], 1);
    assert_eq!(then.body["state"]["details"]["customer_id"], "c-1");
    let time = requested_at
        .recorded_at
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let at_time = app
        .get_as(&format!("{base}?as_of_time={}", urlencode(&time)), &token)
        .await;
    assert_eq!(at_time.ok()["position"], requested_at.position);

    let before = format!("{base}?as_of_position={}", requested_at.position - 1);
    app.get_as(&before, &token).await.problem(404);
    let both = format!(
        "{base}?as_of_position={}&as_of_time={}",
        stream[1].position,
        urlencode(&time)
    );
    let earlier_wins = app.get_as(&both, &token).await;
    assert_eq!(earlier_wins.ok()["status"], "requested");
    app.get_as(&format!("{base}?as_of_time=yesterday"), &token)
        .await
        .problem(400);
}

fn urlencode(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}

/// Follow `next_cursor` from `first` to the end; every item.
async fn follow(app: &QueryApp, path: &str, token: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut next = Some(path.to_string());
    while let Some(url) = next.take() {
        let page = app.get_as(&url, token).await;
        items.extend(page.ok()["items"].as_array().cloned().unwrap_or_default());
        if let Some(cursor) = page.body["next_cursor"].as_str() {
            next = Some(format!("{path}&cursor={cursor}"));
        }
    }
    items
}

#[tokio::test]
async fn the_log_and_a_stream_read_page_by_page() {
    let app = QueryApp::start().await;
    let (id, _) = timeline(&app).await;
    let token = auditor(&app);
    let head = app.log.head_position().await.expect("head");
    let all = follow(&app, "/audit/events?limit=2", &token).await;
    let positions: Vec<u64> = all.iter().filter_map(|e| e["position"].as_u64()).collect();
    assert_eq!(positions, (1..=head).collect::<Vec<_>>());
    let from = app
        .get_as("/audit/events?from_position=3&limit=1", &token)
        .await;
    assert_eq!(from.ok()["items"][0]["position"], 3);

    let stream = follow(
        &app,
        &format!("/audit/streams/reservation-{id}?limit=1"),
        &token,
    )
    .await;
    let versions: Vec<u64> = stream
        .iter()
        .filter_map(|e| e["version"].as_u64())
        .collect();
    assert_eq!(versions, [0, 1]);
    let later = app
        .get_as(
            &format!("/audit/streams/reservation-{id}?from_version=1"),
            &token,
        )
        .await;
    assert_eq!(later.ok()["items"][0]["event_type"], "ReservationCancelled");
    app.get_as("/audit/streams/reservation-none", &token)
        .await
        .problem(404);
    app.get_as("/audit/events?cursor=abc", &token)
        .await
        .problem(400);
    app.get_as("/audit/events?limit=900", &token)
        .await
        .problem(400);
}

#[tokio::test]
async fn verify_checks_every_hash_chain() {
    let app = QueryApp::start().await;
    timeline(&app).await;
    let head = app.log.head_position().await.expect("head");
    let report = app.get_as("/audit/verify", &auditor(&app)).await;
    let body = report.ok();
    assert_eq!(body["ok"], true);
    assert_eq!(body["events_checked"], head);
    assert!(body["first_bad"].is_null());
}
