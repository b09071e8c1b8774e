//! The sandbox payment gateway under `/sandbox` in `serve`, as a real gateway: every route takes
//! only the saga's gateway key (payment calls) or the platform admin's token, and its ledger is
//! kept in the data dir, so a charge or payout retried after a restart is not made twice.

mod common;

use std::time::Duration;

use common::{test_config, TestPlatform};
use http_edge::{Auth, Claims, Role};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Every `/sandbox` route with a body it accepts, and whether it is a payment call.
fn every_route(charge_ref: &str) -> Vec<(Method, &'static str, Option<Value>, bool)> {
    let charge = json!({"idempotency_key": "k-route", "amount": 100, "currency": "KRW"});
    let payout =
        json!({"idempotency_key": "po-route", "payee": "host-1", "amount": 100, "currency": "KRW"});
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
        (Method::POST, "/sandbox/payouts", Some(payout), true),
        (Method::GET, "/sandbox/payouts", None, false),
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
    let (_, payouts) = t.get("/sandbox/payouts", &t.platform_admin()).await;
    assert_eq!(payouts, json!([]), "nobody else was paid out");
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

async fn payout(t: &TestPlatform, key: &str, amount: i64) -> reqwest::Response {
    let body = json!({"idempotency_key": "po-stay-1", "payee": "host-1",
                      "amount": amount, "currency": "KRW"});
    t.http
        .post(format!("{}/sandbox/payouts", t.base))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .expect("sandbox reachable")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payout_is_made_once_across_a_restart_and_listed_with_its_attempts() {
    let t = TestPlatform::start().await;
    let key = t.platform.gateway_key.expose().to_string();
    let first = payout(&t, &key, 90_000).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert_eq!(first.headers()["x-sandbox"], "true");
    let first: Value = first.json().await.expect("json");
    assert_eq!(first["sandbox"], true);
    let dir = t.stop().await;
    let config = test_config(dir.path());
    let t = TestPlatform::start_in(dir, config).await;

    let again = payout(&t, &key, 90_000).await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.expect("json");
    assert_eq!(again["payout_ref"], first["payout_ref"]);
    let admin = t.platform_admin();
    let (status, payouts) = t.get("/sandbox/payouts", &admin).await;
    assert_eq!(status, StatusCode::OK);
    let listed = payouts.as_array().expect("a list");
    assert_eq!(listed.len(), 1, "paid once: {payouts}");
    assert_eq!(listed[0]["payout_ref"], first["payout_ref"]);
    assert_eq!(listed[0]["idempotency_key"], "po-stay-1");
    assert_eq!(listed[0]["payee"], "host-1");
    assert_eq!(listed[0]["amount"], 90_000);
    assert_eq!(listed[0]["currency"], "KRW");
    assert_eq!(listed[0]["attempts"], 2);

    let reused = payout(&t, &key, 1).await;
    assert_eq!(reused.status(), StatusCode::CONFLICT);
    let overloaded = json!({"overloaded": true});
    let (status, _) = t
        .call(
            Method::PUT,
            "/sandbox/config",
            Some(&admin),
            Some(overloaded),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let refused = payout(&t, &key, 90_000).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    let (_, payouts) = t.get("/sandbox/payouts", &admin).await;
    assert_eq!(payouts.as_array().map(Vec::len), Some(1), "{payouts}");
    assert_eq!(payouts[0]["attempts"], 4);
    t.stop().await;
}
