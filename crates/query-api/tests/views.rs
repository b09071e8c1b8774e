//! The view routes over real HTTP: documents, lists with cursors, filters, ETag / 304, and the
//! `min_position` wait (answer once the views caught up, 504 if they do not in time).

mod common;

use std::time::Duration;

use common::QueryApp;
use http_edge::Role;

#[tokio::test]
async fn the_catalog_pages_with_cursors_and_tags_each_lodging() {
    let app = QueryApp::start().await;
    for id in ["a-inn", "b-inn", "c-inn"] {
        app.lodging(id, 2).await;
    }
    app.project().await;
    let token = app.token(Role::Customer, "c-1", &[]);
    let first = app.get_as("/lodgings?limit=2", &token).await;
    let body = first.ok();
    assert_eq!(body["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(body["items"][0]["lodging_id"], "a-inn");
    assert_eq!(body["items"][0]["nightly_rate"], 50_000);
    assert_eq!(body["items"][0]["approval_mode"], "manual");
    let cursor = body["next_cursor"].as_str().expect("more pages");
    let second = app
        .get_as(&format!("/lodgings?limit=2&cursor={cursor}"), &token)
        .await;
    assert_eq!(second.ok()["items"][0]["lodging_id"], "c-inn");
    assert!(second.body["next_cursor"].is_null());

    let one = app.get_as("/lodgings/b-inn", &token).await;
    assert_eq!(one.ok()["name"], "Lodging b-inn");
    let tag = one.header("etag").expect("etag").to_string();
    assert_eq!(tag, format!("\"{}\"", one.body["position"]));
    let unchanged = app
        .get("/lodgings/b-inn", Some(&token), &[("if-none-match", &tag)])
        .await;
    assert_eq!(unchanged.status.as_u16(), 304);
    app.get_as("/lodgings/none", &token).await.problem(404);
}

#[tokio::test]
async fn a_reservation_document_follows_its_events_and_its_etag_changes() {
    let app = QueryApp::start().await;
    app.lodging("l-1", 1).await;
    let (id, _) = app.reserve("c-1", "l-1", 4, 7).await;
    app.project().await;
    let owner = app.token(Role::Customer, "c-1", &[]);
    let path = format!("/reservations/{id}");
    let first = app.get_as(&path, &owner).await;
    let doc = first.ok();
    assert_eq!(doc["status"], "requested");
    assert_eq!(doc["approval_status"], "pending");
    assert_eq!(doc["lodging_name"], "Lodging l-1");
    assert_eq!(
        (doc["nights"].as_u64(), doc["total_amount"].as_i64()),
        (Some(3), Some(150_000))
    );
    let tag = first.header("etag").expect("etag").to_string();
    let same = app
        .get(&path, Some(&owner), &[("if-none-match", &tag)])
        .await;
    assert_eq!(same.status.as_u16(), 304);

    let position = app.cancel("c-1", id).await;
    app.project().await;
    let after = app
        .get(&path, Some(&owner), &[("if-none-match", &tag)])
        .await;
    assert_eq!(after.ok()["status"], "cancelled");
    assert_eq!(
        after.header("etag"),
        Some(format!("\"{position}\"").as_str())
    );
}

#[tokio::test]
async fn lists_are_scoped_filtered_and_checked() {
    let app = QueryApp::start().await;
    app.lodging("l-1", 3).await;
    app.lodging("l-2", 3).await;
    let (mine, _) = app.reserve("c-1", "l-1", 3, 4).await;
    let (cancelled, _) = app.reserve("c-1", "l-2", 3, 4).await;
    let (theirs, _) = app.reserve("c-2", "l-2", 5, 6).await;
    app.cancel("c-1", cancelled).await;
    app.project().await;

    let customer = app.token(Role::Customer, "c-1", &[]);
    let own = app.get_as("/reservations", &customer).await;
    let ids: Vec<&str> = own.ok()["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|d| d["reservation_id"].as_str())
        .collect();
    assert_eq!(
        ids,
        [cancelled.to_string(), mine.to_string()],
        "own only, newest first"
    );
    let filtered = app
        .get_as("/reservations?status=cancelled", &customer)
        .await;
    assert_eq!(
        filtered.ok()["items"][0]["reservation_id"],
        cancelled.to_string()
    );
    assert_eq!(filtered.body["items"].as_array().map(Vec::len), Some(1));

    let admin = app.token(Role::Admin, "a-2", &["l-2"]);
    let of_l2 = app.get_as("/reservations", &admin).await;
    assert_eq!(of_l2.ok()["items"].as_array().map(Vec::len), Some(2));
    let requests = app
        .get_as("/management/requests?lodging_id=l-2", &admin)
        .await;
    let ids: Vec<&str> = requests.ok()["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|d| d["reservation_id"].as_str())
        .collect();
    assert_eq!(
        ids,
        [cancelled.to_string(), theirs.to_string()],
        "oldest request first"
    );
    app.approve("l-2", theirs).await;
    app.project().await;
    let approved = app
        .get_as("/management/requests?status=approved", &admin)
        .await;
    let items = approved.ok()["items"].as_array().expect("items").clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["reservation_id"], theirs.to_string());
    assert_eq!(
        (
            items[0]["request_status"].as_str(),
            items[0]["available"].as_bool()
        ),
        (Some("approved"), Some(true))
    );
    let auditor = app.token(Role::Auditor, "au", &[]);
    let all = app.get_as("/management/requests", &auditor).await;
    assert_eq!(all.ok()["items"].as_array().map(Vec::len), Some(3));

    for bad in [
        "/reservations?status=lost",
        "/reservations?limit=0",
        "/reservations?limit=501",
        "/reservations?cursor=zz",
        "/management/requests?status=maybe",
    ] {
        app.get_as(bad, &admin).await.problem(400);
    }
}

/// While the projector is stopped a reachable position answers 504 after the wait, a position
/// beyond the log 409 at once; once it starts, the waiting request answers with the new document.
async fn min_position_waits(by_checkpoint: bool) {
    let app = QueryApp::start_lagging(by_checkpoint).await;
    app.lodging("l-1", 1).await;
    let (id, position) = app.reserve("c-1", "l-1", 3, 5).await;
    let owner = app.token(Role::Customer, "c-1", &[]);
    let started = std::time::Instant::now();
    let late = format!("/reservations/{id}?min_position={position}&wait_ms=200");
    app.get_as(&late, &owner).await.problem(504);
    assert!(started.elapsed() >= Duration::from_millis(200));
    // A position no write has reached yet waits like any other (API.md), then 504.
    let beyond = format!(
        "/reservations/{id}?min_position={}&wait_ms=300",
        position + 100
    );
    let started = std::time::Instant::now();
    app.get_as(&beyond, &owner).await.problem(504);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "a position beyond the log waits too"
    );

    let path = format!("/reservations/{id}?min_position={position}&wait_ms=10000");
    let started = std::time::Instant::now();
    let (answer, ()) = tokio::join!(app.get_as(&path, &owner), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        app.start_projector();
    });
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(answer.ok()["position"], position);
    let wait_too_long = format!("/lodgings?min_position={position}&wait_ms=30001");
    app.get_as(&wait_too_long, &owner).await.problem(400);
}

#[tokio::test]
async fn min_position_waits_on_the_projector_watch_or_answers_504() {
    min_position_waits(false).await;
}

#[tokio::test]
async fn min_position_waits_on_the_stored_checkpoint_or_answers_504() {
    min_position_waits(true).await;
}

#[tokio::test]
async fn the_openapi_document_and_docs_are_open() {
    let app = QueryApp::start().await;
    let spec = app.get("/openapi.json", None, &[]).await;
    assert_eq!(spec.ok()["openapi"], "3.1.0");
    let docs = app
        .client
        .get(format!("{}/docs", app.base))
        .send()
        .await
        .expect("docs");
    assert_eq!(docs.status().as_u16(), 200);
    assert!(docs
        .text()
        .await
        .unwrap_or_default()
        .contains("/openapi.json"));
    app.get("/lodgings", None, &[]).await.problem(401);
    app.get("/nowhere", None, &[]).await.problem(404);
}
