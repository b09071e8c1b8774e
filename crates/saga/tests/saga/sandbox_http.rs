//! The sandbox gateway's HTTP contract, over a real socket: who may call it, and what it answers.

use http_edge::Role;
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};

use crate::world::{platform_admin, sandbox_access, token, World, GATEWAY_KEY};

/// A payment call, as the saga's client makes it: with the gateway key.
async fn post(world: &World, path: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}{path}", world.sandbox_url))
        .bearer_auth(GATEWAY_KEY)
        .json(&body)
        .send()
        .await
        .expect("sandbox reachable")
}

/// A charge of `amount` won under `key`, as `POST /charges` takes it.
fn charge(key: &str, amount: i64) -> Value {
    json!({"idempotency_key": key, "amount": amount, "currency": "KRW"})
}

/// A refund of `amount` won of the charge `charge_ref`, as `POST /refunds` takes it.
fn refund(charge_ref: &str, amount: i64) -> Value {
    json!({"charge_ref": charge_ref, "amount": amount})
}

/// A payout of `amount` won to `payee` under `key`, as `POST /payouts` takes it.
fn payout(key: &str, payee: &str, amount: i64) -> Value {
    json!({"idempotency_key": key, "payee": payee, "amount": amount, "currency": "KRW"})
}

/// Charge `amount` won under `key`: the charge's reference.
async fn charge_ref(world: &World, key: &str, amount: i64) -> String {
    let charge: Value = post(world, "/charges", charge(key, amount))
        .await
        .json()
        .await
        .expect("json");
    charge["charge_ref"].as_str().expect("ref").to_string()
}

/// `body` posted to `path` is taken (201) and labelled as the sandbox's, in a header and in the
/// answer: the answer's headers and body.
async fn taken(world: &World, path: &str, body: Value) -> (HeaderMap, Value) {
    let answer = post(world, path, body).await;
    assert_eq!(answer.status(), 201, "POST {path}");
    assert_eq!(answer.headers()["x-sandbox"], "true");
    let headers = answer.headers().clone();
    let answer: Value = answer.json().await.expect("json");
    assert_eq!(answer["sandbox"], true);
    (headers, answer)
}

/// With the sandbox overloaded, `body` posted to `path` is refused for now (503, retry after a
/// second); the sandbox is no longer overloaded after. The refusal.
async fn refused_while_overloaded(world: &World, path: &str, body: Value) -> reqwest::Response {
    world.configure_sandbox(json!({"overloaded": true})).await;
    let refused = post(world, path, body).await;
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    world.configure_sandbox(json!({"overloaded": false})).await;
    refused
}

/// `refused` is a 400 whose problem names `field`, a field the route does not take.
async fn assert_refused_naming(refused: reqwest::Response, field: &str) {
    assert_eq!(refused.status(), 400);
    let problem: Value = refused.json().await.expect("json");
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(field), "{problem}");
}

fn content_type(response: &reqwest::Response) -> &str {
    response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charges_are_idempotent_and_labelled_as_sandbox() {
    let world = World::new().await;
    let body = charge("k-1", 1200);
    let (_, first) = taken(&world, "/charges", body.clone()).await;
    let again: Value = post(&world, "/charges", body)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(again["charge_ref"], first["charge_ref"]);
    let reused = post(&world, "/charges", charge("k-1", 1)).await;
    assert_eq!(reused.status(), 409);
    let charges = world.charges().await;
    assert_eq!(charges.len(), 1);
    assert_eq!(charges[0].attempts, 3);
    assert_eq!(world.sandbox.charges(), charges);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declines_overload_and_bad_input_are_problems() {
    let world = World::new().await;
    world.configure_sandbox(json!({"decline_rate": 1.0})).await;
    let declined = post(&world, "/charges", charge("k", 1)).await;
    assert_eq!(declined.status(), 402);
    assert_eq!(content_type(&declined), "application/problem+json");
    world.configure_sandbox(json!({"decline_rate": 0.0})).await;
    refused_while_overloaded(&world, "/charges", charge("k", 1)).await;

    let malformed = reqwest::Client::new()
        .post(format!("{}/charges", world.sandbox_url))
        .bearer_auth(GATEWAY_KEY)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("reachable");
    assert_eq!(malformed.status(), 400);
    assert_eq!(content_type(&malformed), "application/problem+json");
    let negative = post(&world, "/charges", charge("k", -5)).await;
    assert_eq!(negative.status(), 422);
    let bad_rate = reqwest::Client::new()
        .put(format!("{}/config", world.sandbox_url))
        .bearer_auth(platform_admin())
        .json(&json!({"decline_rate": 2.0}))
        .send()
        .await
        .expect("reachable");
    assert_eq!(bad_rate.status(), 422);
    assert!(world.charges().await.is_empty());
    assert_eq!(world.sandbox.config().decline_rate, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_charge_is_refunded_at_most_once() {
    let world = World::new().await;
    let charge_ref = charge_ref(&world, "k", 900).await;
    let too_much = post(&world, "/refunds", refund(&charge_ref, 901)).await;
    assert_eq!(too_much.status(), 422);
    let unknown = post(&world, "/refunds", refund("ch_nope", 1)).await;
    assert_eq!(unknown.status(), 404);
    let first = post(&world, "/refunds", refund(&charge_ref, 900)).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.expect("json");
    let second: Value = post(&world, "/refunds", refund(&charge_ref, 900))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(first["refund_ref"], second["refund_ref"]);
    let charges = world.charges().await;
    assert_eq!(
        (charges[0].refunded, charges[0].refunded_amount),
        (true, 900)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_sandbox_serves_until_shutdown() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shutdown = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(saga::sandbox::serve_sandbox(
        listener,
        saga::sandbox::SandboxState::default(),
        sandbox_access(),
        shutdown.clone(),
    ));
    let answer: Value = reqwest::Client::new()
        .get(format!("http://{addr}/config"))
        .bearer_auth(platform_admin())
        .send()
        .await
        .expect("reachable")
        .json()
        .await
        .expect("json");
    assert_eq!(answer["sandbox"], true);
    assert_eq!(answer["overloaded"], false);
    shutdown.cancel();
    server.await.expect("joined").expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_with_fields_the_sandbox_does_not_take_are_refused_by_name() {
    let world = World::new().await;
    let mut capture = charge("k", 1);
    capture["capture"] = json!(false);
    let refused = post(&world, "/charges", capture).await;
    assert_eq!(content_type(&refused), "application/problem+json");
    assert_refused_naming(refused, "capture").await;
    assert!(world.charges().await.is_empty(), "nothing was charged");

    let mut with_reason = refund(&charge_ref(&world, "k", 1).await, 1);
    with_reason["reason"] = json!("x");
    assert_refused_naming(post(&world, "/refunds", with_reason).await, "reason").await;
    assert!(world.charges().await.iter().all(|c| !c.refunded));
}

/// Every route of the sandbox with a body it accepts, and whether it is a payment call (which the
/// gateway key may make).
fn every_route(charge_ref: &str) -> Vec<(Method, &'static str, Option<Value>, bool)> {
    vec![
        (Method::GET, "/", None, false),
        (Method::POST, "/charges", Some(charge("k-access", 10)), true),
        (Method::GET, "/charges", None, false),
        (Method::POST, "/refunds", Some(refund(charge_ref, 10)), true),
        (
            Method::POST,
            "/payouts",
            Some(payout("po-access", "host-1", 10)),
            true,
        ),
        (Method::GET, "/payouts", None, false),
        (Method::GET, "/config", None, false),
        (
            Method::PUT,
            "/config",
            Some(json!({"latency_ms": 0})),
            false,
        ),
    ]
}

async fn call(
    world: &World,
    method: &Method,
    path: &str,
    body: Option<&Value>,
    bearer: Option<&str>,
) -> reqwest::Response {
    let mut request =
        reqwest::Client::new().request(method.clone(), format!("{}{path}", world.sandbox_url));
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.expect("sandbox reachable")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_takes_only_the_gateway_key_or_the_platform_admin() {
    let world = World::new().await;
    let charge_ref = charge_ref(&world, "k-first", 10).await;
    let foreign = http_edge::Auth::new(b"a secret of another data dir, 32 bytes+")
        .mint(&http_edge::Claims::new(
            "root",
            Role::Admin,
            vec!["*".to_string()],
            std::time::Duration::from_secs(60),
        ))
        .expect("mint");
    let outsiders: Vec<(Option<String>, u16)> = vec![
        (None, 401),
        (Some("not-a-token".to_string()), 401),
        (Some(foreign), 401),
        (Some(token(Role::Customer, "c-1", &[])), 403),
        (Some(token(Role::Auditor, "au-1", &[])), 403),
        (Some(token(Role::Admin, "host", &["hanok-1"])), 403),
        (Some(token(Role::Customer, "c-star", &["*"])), 403),
    ];
    for (method, path, body, _) in every_route(&charge_ref) {
        for (bearer, status) in &outsiders {
            let answer = call(&world, &method, path, body.as_ref(), bearer.as_deref()).await;
            assert_eq!(answer.status(), *status, "{method} {path} as {bearer:?}");
            assert_eq!(answer.headers()["x-sandbox"], "true");
            assert_eq!(content_type(&answer), "application/problem+json");
        }
    }
    assert_eq!(world.sandbox.charges().len(), 1, "no outsider charged");
    assert!(world.sandbox.payouts().is_empty(), "no outsider paid out");
    assert!(!world.sandbox.charges()[0].refunded, "no outsider refunded");
    for (method, path, body, payment_call) in every_route(&charge_ref) {
        let with_key = call(&world, &method, path, body.as_ref(), Some(GATEWAY_KEY)).await;
        let expected = if payment_call { 201 } else { 403 };
        assert_eq!(
            with_key.status(),
            expected,
            "{method} {path} with the gateway key"
        );
        let admin = call(
            &world,
            &method,
            path,
            body.as_ref(),
            Some(&platform_admin()),
        )
        .await;
        assert!(
            admin.status().is_success(),
            "{method} {path} as the platform admin: {}",
            admin.status()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payouts_are_idempotent_listed_and_never_declined() {
    let world = World::new().await;
    world.configure_sandbox(json!({"decline_rate": 1.0})).await;
    let body = payout("po-1", "host-1", 9_000);
    // Taken although every charge is declined: a payout is not declined.
    let (headers, first) = taken(&world, "/payouts", body.clone()).await;
    assert!(headers.get("idempotent-replayed").is_none());
    let again = post(&world, "/payouts", body).await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.expect("json");
    assert_eq!(again["payout_ref"], first["payout_ref"]);
    let listed = world.payouts().await;
    assert_eq!(listed.len(), 1, "paid once: {listed:?}");
    assert_eq!(
        listed[0].payout_ref,
        first["payout_ref"].as_str().expect("ref")
    );
    assert_eq!(
        (
            listed[0].payee.as_str(),
            listed[0].amount,
            listed[0].currency.as_str()
        ),
        ("host-1", 9_000, "KRW")
    );
    assert_eq!(listed[0].attempts, 2);
    for reuse in [payout("po-1", "host-1", 1), payout("po-1", "host-2", 9_000)] {
        let reused = post(&world, "/payouts", reuse).await;
        assert_eq!(reused.status(), 409);
        assert_eq!(content_type(&reused), "application/problem+json");
    }
    let listed = world.payouts().await;
    assert_eq!((listed.len(), listed[0].attempts), (1, 4));
    assert_eq!(world.sandbox.payouts(), listed);
    assert!(world.charges().await.is_empty(), "a payout is not a charge");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payout_overload_and_bad_input_are_problems() {
    let world = World::new().await;
    let good = payout("po", "host-1", 1);
    let overloaded = refused_while_overloaded(&world, "/payouts", good.clone()).await;
    assert_eq!(content_type(&overloaded), "application/problem+json");
    let mut lower_case = payout("po-bad", "host-1", 1);
    lower_case["currency"] = json!("krw");
    for bad in [
        payout("po-bad", "host-1", 0),
        lower_case,
        payout("po-bad", " ", 1),
    ] {
        let refused = post(&world, "/payouts", bad.clone()).await;
        assert_eq!(refused.status(), 422, "{bad}");
        assert_eq!(content_type(&refused), "application/problem+json");
    }
    let mut memo = payout("po-bad", "host-1", 1);
    memo["memo"] = json!("x");
    assert_refused_naming(post(&world, "/payouts", memo).await, "memo").await;
    let missing = post(
        &world,
        "/payouts",
        json!({"idempotency_key": "po-bad", "amount": 1, "currency": "KRW"}),
    )
    .await;
    assert_eq!(missing.status(), 400);
    assert_eq!(content_type(&missing), "application/problem+json");
    assert!(world.payouts().await.is_empty(), "nothing was paid");

    let paid = post(&world, "/payouts", good).await;
    assert_eq!(paid.status(), 201);
    let listed = world.payouts().await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].attempts, 2, "the overloaded attempt counts");
}
