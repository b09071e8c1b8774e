//! The guest on the lists, and erasure everywhere, over real HTTP on a real `serve`: the host's
//! ManagementList names the guest (`guest_name`, `guest_phone`) and the customer's ReservationList
//! carries their name, opened from the sealed profile at each read; a new profile renames them
//! (and a cached document's ETag no longer matches). After erasure the fields read `null` at once,
//! and no plaintext of the customer is anywhere: not in the views, their rebuild from zero, the
//! export, a replay of the export into a fresh data dir, nor (a byte search) in any file of either
//! data dir once SQLite has checkpointed its WAL; and the log's chains still verify.

mod common;
#[path = "common/personal.rs"]
mod personal;
#[path = "common/views.rs"]
mod views;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{stayledger, test_config, TestPlatform};
use personal::{files_holding, put_profile};
use reqwest::header::{ETAG, IF_NONE_MATCH};
use reqwest::StatusCode;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(15);
const NAME: &str = "Park Jiwoo-Unique-Guest";
const RENAMED: &str = "Park Jiwoo-Renamed-Guest";
const PHONE: &str = "010-5555-0199";
const NEW_PHONE: &str = "010-7777-0142";

fn plaintexts() -> [&'static str; 4] {
    [NAME, RENAMED, PHONE, NEW_PHONE]
}

fn assert_no_plaintext(what: &str, text: &str) {
    for secret in plaintexts() {
        assert!(!text.contains(secret), "{what} holds {secret:?}");
    }
}

fn assert_no_plaintext_in_files(dir: &Path) {
    for secret in plaintexts() {
        let found = files_holding(dir, secret.as_bytes());
        assert!(found.is_empty(), "{secret:?} is in {found:?}");
    }
}

/// The host's ManagementList of `giwa` once the views reached `position`.
async fn host_list(t: &TestPlatform, position: &Value) -> Vec<Value> {
    let path = format!("/management/requests?lodging_id=giwa&min_position={position}&wait_ms=5000");
    let (status, page) = t.get(&path, &t.admin_of("giwa")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"].as_array().cloned().unwrap_or_default()
}

/// (`guest_name`, `guest_phone`) of reservation `id` in `rows`.
fn guest(rows: &[Value], id: &str) -> (Value, Value) {
    let row = rows
        .iter()
        .find(|r| r["reservation_id"] == id)
        .unwrap_or_else(|| panic!("{id} is listed: {rows:?}"));
    (row["guest_name"].clone(), row["guest_phone"].clone())
}

/// `GET /reservations/{id}` with `If-None-Match: etag`: (status, ETag, body).
async fn reservation(
    t: &TestPlatform,
    id: &str,
    token: &str,
    etag: Option<&str>,
) -> (StatusCode, String, Value) {
    let mut request = t
        .http
        .get(format!("{}/reservations/{id}", t.base))
        .bearer_auth(token);
    if let Some(etag) = etag {
        request = request.header(IF_NONE_MATCH, etag);
    }
    let response = request.send().await.expect("sent");
    let status = response.status();
    let tag = response
        .headers()
        .get(ETAG)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, tag, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_sees_the_guest_until_erasure_and_then_no_plaintext_is_left_anywhere() {
    let t = TestPlatform::start().await;
    let jiwoo = t.customer("jiwoo");
    let profile = json!({"name": NAME, "email": "jiwoo@example.kr", "phone": PHONE});
    let (status, body) = put_profile(&t, &jiwoo, profile).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    t.register_lodging("giwa", 3, "instant").await;
    let (stay, _) = t.request("jiwoo", "giwa", 4, 2).await;
    let (other, _) = t.request("dami", "giwa", 4, 1).await;
    t.wait_for(&stay, "status", "confirmed", WAIT).await;
    let confirmed = t.wait_for(&other, "status", "confirmed", WAIT).await;

    // The host reads the guest's name and phone; a customer without a profile reads null.
    let rows = host_list(&t, &confirmed["position"]).await;
    assert_eq!(guest(&rows, &stay), (json!(NAME), json!(PHONE)));
    assert_eq!(guest(&rows, &other), (Value::Null, Value::Null));
    let (status, own) = t.get("/reservations", &jiwoo).await;
    assert_eq!(status, StatusCode::OK, "{own}");
    assert_eq!(own["items"][0]["guest_name"], NAME, "{own}");
    assert!(own["items"][0].get("guest_phone").is_none(), "{own}");
    let (status, etag, doc) = reservation(&t, &stay, &jiwoo, None).await;
    assert_eq!((status, &doc["guest_name"]), (StatusCode::OK, &json!(NAME)));
    let (status, _, _) = reservation(&t, &stay, &jiwoo, Some(&etag)).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);

    // A new profile renames the guest on every list; the cached document is stale.
    let renamed = json!({"name": RENAMED, "email": "jiwoo@example.kr", "phone": NEW_PHONE});
    let (status, body) = put_profile(&t, &jiwoo, renamed).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let rows = host_list(&t, &body["position"]).await;
    assert_eq!(guest(&rows, &stay), (json!(RENAMED), json!(NEW_PHONE)));
    let (status, _, doc) = reservation(&t, &stay, &jiwoo, Some(&etag)).await;
    assert_eq!(
        (status, &doc["guest_name"]),
        (StatusCode::OK, &json!(RENAMED))
    );

    // Erased: the key goes first, so every list reads null at once; then the views are scrubbed.
    let (status, erased) = t.post("/me/erase", &jiwoo, json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{erased}");
    let rows = host_list(&t, &json!(0)).await;
    assert_eq!(guest(&rows, &stay), (Value::Null, Value::Null), "at once");
    let rows = host_list(&t, &erased["position"]).await;
    assert_eq!(guest(&rows, &stay), (Value::Null, Value::Null));
    let (_, _, doc) = reservation(&t, &stay, &t.auditor(), None).await;
    assert_eq!(doc["guest_name"], Value::Null, "{doc}");
    let scrubbed = t
        .platform
        .views
        .customers(&["jiwoo".to_string()])
        .await
        .expect("customers view");
    assert_eq!(scrubbed.len(), 1);
    assert!(scrubbed[0].erased && scrubbed[0].name.is_none() && scrubbed[0].phone.is_none());

    // A rebuild from zero equals the live views, the erased customer scrubbed in both.
    let live =
        views::assert_equal_to_rebuild(Arc::clone(&t.platform.log), t.platform.views.as_ref())
            .await;
    assert_eq!(live.customers.len(), 1, "only jiwoo has contact details");
    assert_eq!(live.customers[0]["erased"], true);

    // The auditor's tools: the export holds no plaintext, and the chains still verify.
    let dir = t.dir.path().to_path_buf();
    let exported = tempfile::tempdir().expect("dir");
    let export_file = exported.path().join("log.jsonl");
    let export = stayledger(
        &["export", "--output", export_file.to_str().expect("utf8")],
        &dir,
    );
    assert!(export.status.success(), "{export:?}");
    let export_text = std::fs::read_to_string(&export_file).expect("export");
    assert!(export_text.contains("CustomerErased"));
    assert_no_plaintext("the export", &export_text);
    let verify = stayledger(&["verify"], &dir);
    assert!(verify.status.success(), "{verify:?}");
    let (status, audit) = t.get("/audit/events?limit=500", &t.auditor()).await;
    assert_eq!(status, StatusCode::OK);
    assert_no_plaintext("the log's pages", &audit.to_string());

    // Stopped, every SQLite file is checkpointed and closed: no file holds plaintext.
    let dir = t.stop().await;
    assert_no_plaintext_in_files(dir.path());

    // Replayed into a fresh data dir (without keys.db) and served anew: the guest reads null.
    let fresh = tempfile::tempdir().expect("dir");
    let import = stayledger(
        &["import", "--input", export_file.to_str().expect("utf8")],
        fresh.path(),
    );
    assert!(import.status.success(), "{import:?}");
    let config = test_config(fresh.path());
    let replayed = TestPlatform::start_in(fresh, config).await;
    let head = replayed.platform.log.head_position().await.expect("head");
    let rows = host_list(&replayed, &json!(head)).await;
    assert_eq!(guest(&rows, &stay), (Value::Null, Value::Null));
    let (status, me) = replayed
        .get("/me?min_position=0", &replayed.customer("jiwoo"))
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!((&me["erased"], &me["name"]), (&json!(true), &Value::Null));
    let replayed_dir = replayed.stop().await;
    assert_no_plaintext_in_files(replayed_dir.path());
}
