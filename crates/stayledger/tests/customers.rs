//! My Page's profile and erasure over real HTTP on a real `serve`: a profile reaches the log only
//! sealed under the customer's own key (kept in `keys.db`, outside the log) and `GET /me` opens it;
//! erasure destroys the key, so the sealed fields never open again (`GET /me` reads them null),
//! records `CustomerErased`, and refuses a new profile; the platform admin may erase a customer, no
//! one else.

mod common;
#[path = "common/personal.rs"]
mod personal;

use std::time::Duration;

use common::TestPlatform;
use http_edge::Role;
use keys::KeyState;
use personal::{files_holding, put_profile};
use reqwest::StatusCode;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(15);
const NAME: &str = "Kim Minji-Unique-Name";
const PHONE: &str = "010-9876-5432";
const EMAIL: &str = "minji.kim@example.kr";

fn profile() -> Value {
    json!({"name": NAME, "email": EMAIL, "phone": PHONE})
}

/// `GET /me` once the views reached `position`.
async fn me(t: &TestPlatform, token: &str, position: &Value) -> Value {
    let path = format!("/me?min_position={position}&wait_ms=5000");
    let (status, body) = t.get(&path, token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The events of `customer-{id}`: (type, payload).
async fn customer_events(t: &TestPlatform, customer_id: &str) -> Vec<(String, Value)> {
    let stream = format!("customer-{customer_id}");
    let recorded = t
        .platform
        .log
        .read_stream(&stream, 0, 1_000)
        .await
        .expect("read the customer stream");
    recorded
        .into_iter()
        .map(|e| (e.event_type, e.data))
        .collect()
}

/// The files of the data dir that hold `needle`.
fn data_dir_holds(t: &TestPlatform, needle: &[u8]) -> Vec<String> {
    files_holding(t.dir.path(), needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_is_sealed_in_the_log_and_erasure_makes_it_unreadable_for_good() {
    let t = TestPlatform::start().await;
    let minji = t.customer("minji");
    let blank = me(&t, &minji, &json!(0)).await;
    assert_eq!(
        blank,
        json!({"customer_id": "minji", "name": null, "email": null, "phone": null,
               "erased": false, "reservations": {}})
    );
    let (status, body) = put_profile(&t, &minji, profile()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        (&body["id"], &body["status"]),
        (&json!("minji"), &json!("recorded"))
    );
    t.register_lodging("hanok", 2, "instant").await;
    let (first, _) = t.request("minji", "hanok", 3, 1).await;
    let (second, _) = t.request("minji", "hanok", 5, 1).await;
    t.wait_for(&first, "status", "confirmed", WAIT).await;
    let (status, _) = t
        .post(&format!("/reservations/{second}/cancel"), &minji, json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let cancelled = t.wait_for(&second, "status", "cancelled", WAIT).await;
    let page = me(&t, &minji, &cancelled["position"]).await;
    assert_eq!(
        page,
        json!({"customer_id": "minji", "name": NAME, "email": EMAIL, "phone": PHONE,
               "erased": false, "reservations": {"cancelled": 1, "confirmed": 1}})
    );
    let (status, _) = t.get("/me", &t.token(Role::Admin, "host-1", &[])).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only a customer has a page");

    // In the log: sealed text only, which opens with the customer's key and only for its field.
    let events = customer_events(&t, "minji").await;
    assert_eq!(events.len(), 1);
    let sealed = &events[0].1["profile"];
    let text = sealed.to_string();
    assert!(
        !text.contains(NAME) && !text.contains(PHONE) && !text.contains(EMAIL),
        "{text}"
    );
    let KeyState::Active(key) = t.platform.keys.key("minji").await.expect("keys") else {
        panic!("minji has a key");
    };
    let name = sealed["name"].as_str().expect("sealed name");
    assert_eq!(
        keys::open(&key, "minji", "name", name).expect("opens"),
        NAME
    );
    assert!(
        keys::open(&key, "minji", "phone", name).is_err(),
        "bound to its field"
    );
    assert!(
        keys::open(&key, "someone-else", "name", name).is_err(),
        "and to its customer"
    );
    assert!(
        data_dir_holds(&t, NAME.as_bytes()).is_empty(),
        "no plaintext in the data dir"
    );

    // Erased by the customer: the key is gone, the sealed name never opens again.
    let (status, body) = t.post("/me/erase", &minji, json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "erased");
    assert!(matches!(
        t.platform.keys.key("minji").await,
        Ok(KeyState::Destroyed)
    ));
    assert!(
        data_dir_holds(&t, key.as_bytes()).is_empty(),
        "the key's bytes are nowhere in the data dir"
    );
    let types: Vec<String> = customer_events(&t, "minji")
        .await
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(types, ["CustomerProfileRecorded", "CustomerErased"]);
    let page = me(&t, &minji, &json!(0)).await;
    assert_eq!(
        page,
        json!({"customer_id": "minji", "name": null, "email": null, "phone": null,
               "erased": true, "reservations": {"cancelled": 1, "confirmed": 1}}),
        "erased: the history stays, the person is gone"
    );
    let (status, body) = put_profile(&t, &minji, profile()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["type"], "urn:stayledger:problem:customer-erased");
    // Erasing again is a no-op that still answers 202.
    let (status, _) = t.post("/me/erase", &minji, json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(customer_events(&t, "minji").await.len(), 2);

    // The auditor's tools see the sealed text only, and the chains still verify (they cover it).
    let mut export = Vec::new();
    stayledger::audit::export_to(t.platform.log.as_ref(), &mut export)
        .await
        .expect("export");
    let export = String::from_utf8(export).expect("utf-8");
    assert!(
        export.contains(name),
        "the sealed field is exported as it is"
    );
    assert!(!export.contains(NAME) && !export.contains(PHONE) && !export.contains(EMAIL));
    let (status, page) = t.get("/audit/events?limit=500", &t.auditor()).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        !page.to_string().contains(NAME),
        "no plaintext in the log's pages"
    );
    let (status, verified) = t.get("/audit/verify", &t.auditor()).await;
    assert_eq!(status, StatusCode::OK, "{verified}");
    assert_eq!(verified["ok"], true, "{verified}");
    t.stop().await;
}

/// A crash between the erasure's two steps (the key destroyed, `CustomerErased` not yet recorded):
/// the data is already unreadable, and the same request again records the erasure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_cut_short_after_the_key_is_destroyed_completes_when_asked_again() {
    let t = TestPlatform::start().await;
    let choi = t.customer("choi");
    let (status, body) = put_profile(&t, &choi, profile()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    t.platform
        .keys
        .destroy("choi")
        .await
        .expect("key destroyed");
    assert_eq!(
        customer_events(&t, "choi").await.len(),
        1,
        "not recorded yet"
    );
    let (status, body) = put_profile(&t, &choi, profile()).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "no new key after destruction: {body}"
    );
    let (status, body) = t.post("/me/erase", &choi, json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let types: Vec<String> = customer_events(&t, "choi")
        .await
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(types, ["CustomerProfileRecorded", "CustomerErased"]);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_platform_admin_erases_another_customer_and_bad_profiles_are_named() {
    let t = TestPlatform::start().await;
    let lee = t.customer("lee");
    let (status, body) = put_profile(&t, &lee, profile()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let reason = json!({"reason": "court order 2026-17"});
    for token in [
        t.customer("someone"),
        t.token(Role::Admin, "host-1", &[]),
        t.auditor(),
    ] {
        let (status, body) = t.post("/customers/lee/erase", &token, reason.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
    let (status, body) = t
        .post("/customers/lee/erase", &t.platform_admin(), reason)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let erased = customer_events(&t, "lee").await;
    assert_eq!(erased[1].0, "CustomerErased");
    assert_eq!(erased[1].1["reason"], "court order 2026-17");

    // Only a customer has a profile; a bad one is named field by field, values never echoed.
    let admin = t.token(Role::Admin, "host-1", &[]);
    let (status, _) = put_profile(&t, &admin, profile()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let bad = json!({"name": NAME, "email": "not-an-address", "phone": "call me maybe"});
    let (status, body) = put_profile(&t, &t.customer("park"), bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, ["email", "phone"]);
    assert!(!body.to_string().contains("call me maybe"), "{body}");
    assert!(
        customer_events(&t, "park").await.is_empty(),
        "nothing written"
    );
    t.stop().await;
}
