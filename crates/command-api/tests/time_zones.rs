//! Lodging time zones and the withdraw rule over real HTTP and a real log, with the service's clock
//! set to instants near midnight: a lodging's `timezone` (given, defaulted, refused), "in the past"
//! read where the lodging is, and an undecided request withdrawn on its check-in day.

mod common;

use chrono::{TimeZone, Utc};
use command_api::CommandOptions;
use common::TestApp;
use domain::{Timestamp, Tz};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// 2030-06-09 17:13 UTC: 02:13 on the 10th in Seoul.
fn at_0213_in_seoul() -> Timestamp {
    Utc.with_ymd_and_hms(2030, 6, 9, 17, 13, 0).unwrap()
}

/// 2030-06-10 03:00 UTC: 20:00 on the 9th in Los Angeles, 12:00 on the 10th in Seoul.
fn at_2000_in_los_angeles() -> Timestamp {
    Utc.with_ymd_and_hms(2030, 6, 10, 3, 0, 0).unwrap()
}

async fn at(clock: fn() -> Timestamp) -> TestApp {
    TestApp::with_options(CommandOptions {
        clock,
        ..CommandOptions::default()
    })
    .await
}

async fn register(app: &TestApp, id: &str, timezone: Option<&str>) -> String {
    let mut body = json!({"lodging_id": id, "name": "Hanok", "nightly_rate": 100_000, "rooms": 2});
    if let Some(zone) = timezone {
        body["timezone"] = json!(zone);
    }
    let answer = app.post("/lodgings", &app.platform_admin(), body).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
    let events = app.stream(&format!("lodging-{id}")).await;
    assert_eq!(events[0].schema_version, 3);
    assert_eq!(events[0].data["fee_bps"], 1_000);
    events[0].data["timezone"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

async fn request(app: &TestApp, lodging: &str, check_in: &str, check_out: &str) -> (u16, Value) {
    let body =
        json!({"lodging_id": lodging, "check_in": check_in, "check_out": check_out, "guests": 2});
    let answer = app.post("/reservations", &app.customer("c-1"), body).await;
    (answer.status.as_u16(), answer.body)
}

#[tokio::test]
async fn a_lodging_has_the_time_zone_given_or_the_services_default() {
    let app = TestApp::start().await;
    assert_eq!(
        register(&app, "given", Some("America/Los_Angeles")).await,
        "America/Los_Angeles"
    );
    assert_eq!(register(&app, "defaulted", None).await, "Asia/Seoul");
    let elsewhere = TestApp::with_options(CommandOptions {
        default_timezone: Tz::Europe__Lisbon,
        ..CommandOptions::default()
    })
    .await;
    assert_eq!(register(&elsewhere, "lisbon", None).await, "Europe/Lisbon");
}

#[tokio::test]
async fn an_unknown_time_zone_is_refused_naming_the_field() {
    let app = TestApp::start().await;
    let head = app.head().await;
    for zone in [json!("Mars/Olympus_Mons"), json!("KST"), json!(9)] {
        let body = json!({"lodging_id": "l-1", "name": "Hanok", "nightly_rate": 1, "rooms": 1, "timezone": zone});
        let answer = app.post("/lodgings", &app.platform_admin(), body).await;
        let problem = answer.problem(400);
        let fields: Vec<&str> = problem["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .filter_map(|e| e["field"].as_str())
            .collect();
        assert_eq!(fields, ["timezone"], "{zone}: {problem}");
    }
    assert_eq!(app.head().await, head, "nothing registered");
}

#[tokio::test]
async fn in_the_past_is_read_in_seoul_at_0213_kst() {
    let app = at(at_0213_in_seoul).await;
    register(&app, "seoul", None).await;
    // The 9th is today in UTC but yesterday in Seoul.
    let (status, body) = request(&app, "seoul", "2030-06-09", "2030-06-10").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "check_in", "{body}");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("today is 2030-06-10")),
        "{body}"
    );
    let (status, body) = request(&app, "seoul", "2030-06-10", "2030-06-11").await;
    assert_eq!(status, 202, "{body}");
}

#[tokio::test]
async fn yesterday_in_utc_is_today_in_los_angeles_and_may_be_booked() {
    let app = at(at_2000_in_los_angeles).await;
    register(&app, "la", Some("America/Los_Angeles")).await;
    let (status, body) = request(&app, "la", "2030-06-09", "2030-06-10").await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = request(&app, "la", "2030-06-08", "2030-06-10").await;
    assert_eq!(status, 422, "{body}");
}

#[tokio::test]
async fn an_undecided_request_is_withdrawn_on_its_check_in_day() {
    // Noon on the 10th in Seoul; the request (not yet approved) checks in today.
    let app = at(at_2000_in_los_angeles).await;
    register(&app, "seoul", None).await;
    let (status, body) = request(&app, "seoul", "2030-06-10", "2030-06-12").await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().expect("id");
    let answer = app
        .post(
            &format!("/reservations/{id}/cancel"),
            &app.customer("c-1"),
            json!({"reason": "plans changed"}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{:?}", answer.body);
    assert_eq!(answer.body["status"], "cancelled");
    let events = app.stream(&format!("reservation-{id}")).await;
    assert_eq!(events[1].event_type, "ReservationCancelled");
    assert_eq!(events[1].data["refund_due"], 0);
}
