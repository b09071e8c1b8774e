//! R4 over HTTP: concurrent approvals never overbook a night.

mod common;

use std::collections::{BTreeMap, HashSet};

use common::TestApp;
use http_edge::Role;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn two_concurrent_approvals_for_the_last_room_one_wins() {
    let app = TestApp::start().await;
    app.lodging("l-1", 1).await;
    let first = app.reserve("c-1", "l-1", 5, 8).await;
    let second = app.reserve("c-2", "l-1", 6, 9).await;
    let admin = app.token(Role::Admin, "a-1", &["l-1"]);
    let (path_a, path_b) = (
        format!("/management/requests/{first}/approve"),
        format!("/management/requests/{second}/approve"),
    );
    let (a, b) = tokio::join!(
        app.post(&path_a, &admin, json!({})),
        app.post(&path_b, &admin, json!({})),
    );
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [202, 409], "{:?} / {:?}", a.body, b.body);
    let loser = if a.status == StatusCode::CONFLICT {
        &a
    } else {
        &b
    };
    assert_eq!(loser.problem(409)["type"], "urn:stayledger:problem:no-room");
    let granted = app.stream("lodging-l-1").await;
    assert_eq!(
        granted
            .iter()
            .filter(|e| e.event_type == "ApprovalGranted")
            .count(),
        1
    );
}

#[tokio::test]
async fn many_concurrent_approvals_never_overbook_two_rooms() {
    let app = TestApp::start().await;
    app.lodging("l-2", 2).await;
    let admin = app.token(Role::Admin, "a-1", &["l-2"]);
    let mut reservations = Vec::new();
    for i in 0..24_i64 {
        let check_in = 3 + (i * 7) % 6;
        let nights = 1 + (i * 5) % 4;
        let id = app
            .reserve(&format!("c-{i}"), "l-2", check_in, check_in + nights)
            .await;
        reservations.push(id);
    }
    let paths: Vec<String> = reservations
        .iter()
        .map(|id| format!("/management/requests/{id}/approve"))
        .collect();
    let answers =
        futures::future::join_all(paths.iter().map(|path| app.post(path, &admin, json!({})))).await;
    let mut accepted = HashSet::new();
    for (id, answer) in reservations.iter().zip(&answers) {
        match answer.status.as_u16() {
            202 => {
                accepted.insert(id.clone());
            }
            409 => {
                answer.problem(409);
            }
            other => panic!("approval answered {other}: {:?}", answer.body),
        }
    }
    assert!(accepted.len() >= 2, "some requests fit");
    assert!(
        accepted.len() < reservations.len(),
        "not every request fits two rooms"
    );

    let events = app.stream("lodging-l-2").await;
    let mut stays = BTreeMap::new();
    let mut booked: BTreeMap<String, u32> = BTreeMap::new();
    let mut granted = HashSet::new();
    for event in &events {
        let id = event.data["reservation_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        match event.event_type.as_str() {
            "ApprovalRequested" => {
                stays.insert(
                    id,
                    (
                        event.data["check_in"].clone(),
                        event.data["check_out"].clone(),
                    ),
                );
            }
            "ApprovalGranted" => {
                let (check_in, check_out) =
                    stays.get(&id).cloned().expect("requested before granted");
                let (from, to) = (
                    check_in.as_str().unwrap_or_default(),
                    check_out.as_str().unwrap_or_default(),
                );
                for night in nights(from, to) {
                    let count = booked.entry(night.clone()).or_default();
                    *count += 1;
                    assert!(*count <= 2, "night {night} overbooked");
                }
                granted.insert(id);
            }
            _ => {}
        }
    }
    assert_eq!(granted, accepted, "exactly the 202 answers were granted");
}

fn nights(from: &str, to: &str) -> Vec<String> {
    let parse = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
    let (from, to) = (parse(from), parse(to));
    from.iter_days()
        .take_while(|d| *d < to)
        .map(|d| d.to_string())
        .collect()
}

/// The command side takes a reservation as this process last saw it (`Store::reservation`, unread
/// when cached): a state behind the log must never let through a decision the log refuses.
#[tokio::test]
async fn an_approval_decided_on_a_reservation_state_behind_the_log_is_still_refused() {
    use domain::reservation::{ReservationAggregate, ReservationCommand};
    use eventlog::{CommandContext, Repository};

    let app = TestApp::start().await;
    app.lodging("l-9", 2).await;
    // This process keeps the reservation as it wrote it: requested.
    let id = app.reserve("c-1", "l-9", 5, 7).await;
    let admin = app.token(Role::Admin, "a-1", &["l-9"]);
    let path = format!("/management/requests/{id}/approve");
    let other = app.sibling().await;
    let first = other.post(&path, &admin, json!({})).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{:?}", first.body);
    // What the saga records next, behind this process's back.
    let ctx = CommandContext {
        correlation_id: id.parse().expect("a uuid"),
        causation_id: uuid::Uuid::now_v7(),
        actor: "saga".into(),
        now: chrono::Utc::now(),
    };
    let approve = ReservationCommand::RecordApproval {
        approved_by: "admin:a-1".into(),
    };
    Repository::<ReservationAggregate>::new(std::sync::Arc::clone(&app.log))
        .execute(&id, &approve, &ctx)
        .await
        .expect("recorded");

    let stale = app.post(&path, &admin, json!({})).await;
    assert_eq!(
        stale.problem(409)["type"],
        "urn:stayledger:problem:already-decided"
    );
    let reject = app
        .post(
            &path.replace("/approve", "/reject"),
            &admin,
            json!({"reason": "full"}),
        )
        .await;
    assert_eq!(
        reject.problem(409)["type"],
        "urn:stayledger:problem:already-decided"
    );
    let lodging = app.stream("lodging-l-9").await;
    let decided: Vec<&str> = lodging
        .iter()
        .map(|e| e.event_type.as_str())
        .filter(|t| t.starts_with("Approval") && *t != "ApprovalRequested")
        .collect();
    assert_eq!(decided, ["ApprovalGranted"]);
}
