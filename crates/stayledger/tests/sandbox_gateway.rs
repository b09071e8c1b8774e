//! The sandbox payment gateway under `/sandbox` in `serve`, as a real gateway: every route takes
//! only the saga's gateway key (payment calls) or the platform admin's token, and its ledger is
//! kept in the data dir, so a charge retried after a restart is not taken twice.

mod common;

use std::time::Duration;

use common::{test_config, TestPlatform};
use http_edge::{Auth, Claims, Role};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Every `/sandbox` route with a body it accepts, and whether it is a payment call.
fn every_route(charge_ref: &str) -> Vec<(Method, &'static str, Option<Value>, bool)> {
    let charge = json!({"idempotency_key": "k-route", "amount": 100, "currency": "KRW"});
    vec![
        (Method::GET, "/sandbox", None, false),
        (Method::POST, "/sandbox/charges", Some(charge), true),
        (Method::GET, "/sandbox/charges", None, false),
        (
            Method::POST,
            "/sandbox/refunds",
            Some(json!({"charge_ref": charge_ref, "amount": 100})),
            true,
        ),
        (Method::GET, "/sandbox/config", None, false),
        (
            Method::PUT,
            "/sandbox/config",
            Some(json!({"latency_ms": 0})),
            false,
        ),
    ]
}

async fn charge(t: &TestPlatform, key: &str, idempotency_key: &str) -> reqwest::Response {
    t.http
        .post(format!("{}/sandbox/charges", t.base))
        .bearer_auth(key)
        .json(&json!({"idempotency_key": idempotency_key, "amount": 5_000, "currency": "KRW"}))
        .send()
        .await
        .expect("sandbox reachable")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sandbox_route_takes_only_the_gateway_key_or_the_platform_admin() {
    let t = TestPlatform::start().await;
    let key = t.platform.gateway_key.expose().to_string();
    let first = charge(&t, &key, "k-live-booking").await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.expect("json");
    let charge_ref = first["charge_ref"].as_str().expect("ref").to_string();
    let claims = Claims::new(
        "root",
        Role::Admin,
        vec!["*".into()],
        Duration::from_secs(60),
    );
    let other_data_dir = Auth::new(b"the secret of another data dir, 32 b+")
        .mint(&claims)
        .expect("mint");
    let outsiders = [
        (None, StatusCode::UNAUTHORIZED),
        (Some("garbage".to_string()), StatusCode::UNAUTHORIZED),
        (Some(other_data_dir), StatusCode::UNAUTHORIZED),
        (Some(t.customer("c-1")), StatusCode::FORBIDDEN),
        (Some(t.auditor()), StatusCode::FORBIDDEN),
        (Some(t.admin_of("hanok-1")), StatusCode::FORBIDDEN),
    ];
    for (method, path, body, _) in every_route(&charge_ref) {
        for (token, expected) in &outsiders {
            let (status, answer) = t
                .call(method.clone(), path, token.as_deref(), body.clone())
                .await;
            assert_eq!(status, *expected, "{method} {path} as {token:?}: {answer}");
            assert!(answer["detail"].is_string(), "problem+json: {answer}");
        }
    }
    let (_, charges) = t.get("/sandbox/charges", &t.platform_admin()).await;
    assert_eq!(charges.as_array().map(Vec::len), Some(1), "{charges}");
    assert_eq!(charges[0]["refunded"], false, "nobody else refunded it");
    for (method, path, body, payment_call) in every_route(&charge_ref) {
        let (status, answer) = t.call(method.clone(), path, Some(&key), body.clone()).await;
        let expected = if payment_call {
            StatusCode::CREATED
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(
            status, expected,
            "{method} {path} with the gateway key: {answer}"
        );
        let admin = t.platform_admin();
        let (status, answer) = t.call(method.clone(), path, Some(&admin), body).await;
        assert!(
            status.is_success(),
            "{method} {path} as platform admin: {status} {answer}"
        );
    }
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_charge_retried_after_a_restart_returns_the_first_charge() {
    let t = TestPlatform::start().await;
    let key = t.platform.gateway_key.expose().to_string();
    let first = charge(&t, &key, "k-across-restart").await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.expect("json");
    let dir = t.stop().await;
    let config = test_config(dir.path());
    let t = TestPlatform::start_in(dir, config).await;
    assert_eq!(
        t.platform.gateway_key.expose(),
        key,
        "the key is read back from the data dir"
    );
    let again = charge(&t, &key, "k-across-restart").await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.expect("json");
    assert_eq!(again["charge_ref"], first["charge_ref"]);
    let (_, charges) = t.get("/sandbox/charges", &t.platform_admin()).await;
    let charges = charges.as_array().expect("list");
    assert_eq!(charges.len(), 1, "taken once: {charges:?}");
    assert_eq!(charges[0]["attempts"], 2);
    t.stop().await;
}
