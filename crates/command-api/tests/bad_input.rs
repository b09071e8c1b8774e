//! R5: a table of malformed requests, each answered with a problem+json 4xx naming the bad field
//! where there is one; nothing is written and the service keeps serving.

mod common;

use common::{day, TestApp};
use http_edge::{Claims, Role};
use reqwest::StatusCode;
use serde_json::json;

struct Case {
    path: &'static str,
    body: Vec<u8>,
    status: u16,
    field: Option<&'static str>,
}

fn case(
    path: &'static str,
    body: impl Into<Vec<u8>>,
    status: u16,
    field: Option<&'static str>,
) -> Case {
    Case {
        path,
        body: body.into(),
        status,
        field,
    }
}

fn reservation(field: &str, value: serde_json::Value) -> Vec<u8> {
    let mut body =
        json!({"lodging_id": "l-1", "check_in": day(3), "check_out": day(5), "guests": 2});
    body[field] = value;
    body.to_string().into_bytes()
}

fn lodging(field: &str, value: serde_json::Value) -> Vec<u8> {
    let mut body = json!({"lodging_id": "l-9", "name": "Inn", "nightly_rate": 100, "rooms": 2});
    body[field] = value;
    body.to_string().into_bytes()
}

fn customer_cases() -> Vec<Case> {
    let nested = format!("{}{}", "[".repeat(300), "]".repeat(300));
    vec![
        case("/reservations", "{", 400, None),
        case("/reservations", "{\"lodging_id\": \"l-1\",}", 400, None),
        case("/reservations", "[1, 2]", 400, None),
        case("/reservations", "\"text\"", 400, None),
        case("/reservations", "null", 400, None),
        case("/reservations", nested, 400, None),
        case("/reservations", vec![0xff, 0xfe, b'{'], 400, None),
        case("/reservations", "{}", 400, Some("lodging_id")),
        case(
            "/reservations",
            reservation("lodging_id", json!(12)),
            400,
            Some("lodging_id"),
        ),
        case(
            "/reservations",
            reservation("lodging_id", json!("")),
            400,
            Some("lodging_id"),
        ),
        case(
            "/reservations",
            reservation("lodging_id", json!("a/b")),
            400,
            Some("lodging_id"),
        ),
        case(
            "/reservations",
            reservation("check_in", json!(null)),
            400,
            Some("check_in"),
        ),
        case(
            "/reservations",
            reservation("check_in", json!("2030/01/01")),
            400,
            Some("check_in"),
        ),
        case(
            "/reservations",
            reservation("check_in", json!("2030-02-30")),
            400,
            Some("check_in"),
        ),
        case(
            "/reservations",
            reservation("check_out", json!(20300101)),
            400,
            Some("check_out"),
        ),
        case(
            "/reservations",
            reservation("guests", json!(0)),
            400,
            Some("guests"),
        ),
        case(
            "/reservations",
            reservation("guests", json!(-1)),
            400,
            Some("guests"),
        ),
        case(
            "/reservations",
            reservation("guests", json!(1.5)),
            400,
            Some("guests"),
        ),
        case(
            "/reservations",
            reservation("guests", json!("2")),
            400,
            Some("guests"),
        ),
        case(
            "/reservations",
            reservation("guests", json!(1e20)),
            400,
            Some("guests"),
        ),
        case(
            "/reservations",
            reservation("guests", json!(u64::MAX)),
            400,
            Some("guests"),
        ),
        case(
            "/reservations",
            reservation("pets", json!(2)),
            400,
            Some("pets"),
        ),
        case(
            "/reservations",
            reservation("rooms", json!(0)),
            400,
            Some("rooms"),
        ),
        case(
            "/reservations",
            reservation("Guests", json!(2)),
            400,
            Some("Guests"),
        ),
        case("/reservations", vec![b' '; 70 * 1024], 413, None),
    ]
}

fn admin_cases() -> Vec<Case> {
    vec![
        case("/lodgings", "{}", 400, Some("name")),
        case(
            "/lodgings",
            lodging("nightly_rate", json!(-5)),
            400,
            Some("nightly_rate"),
        ),
        case("/lodgings", lodging("rooms", json!(0)), 400, Some("rooms")),
        case(
            "/lodgings",
            lodging("currency", json!("usd")),
            400,
            Some("currency"),
        ),
        case(
            "/lodgings",
            lodging("approval_mode", json!("auto")),
            400,
            Some("approval_mode"),
        ),
        case(
            "/lodgings",
            lodging("lodging_id", json!("*")),
            400,
            Some("lodging_id"),
        ),
        case(
            "/lodgings",
            lodging("name", json!("x".repeat(201))),
            400,
            Some("name"),
        ),
        case(
            "/lodgings",
            lodging("max_guests", json!(0)),
            400,
            Some("max_guests"),
        ),
        case(
            "/lodgings",
            lodging("nightly_price", json!(100)),
            400,
            Some("nightly_price"),
        ),
    ]
}

async fn check(app: &TestApp, token: &str, cases: Vec<Case>) {
    for case in cases {
        let answer = app
            .post_raw(case.path, Some(token), None, case.body.clone())
            .await;
        let shown = String::from_utf8_lossy(&case.body[..case.body.len().min(80)]).to_string();
        assert_eq!(
            answer.status.as_u16(),
            case.status,
            "{} {shown}: {:?}",
            case.path,
            answer.body
        );
        let problem = answer.problem(case.status);
        if let Some(field) = case.field {
            let fields: Vec<&str> = problem["errors"]
                .as_array()
                .map(|errors| errors.iter().filter_map(|e| e["field"].as_str()).collect())
                .unwrap_or_default();
            assert!(
                fields.contains(&field),
                "{shown}: expected {field} in {problem}"
            );
        }
    }
}

#[tokio::test]
async fn malformed_bodies_are_answered_with_problems_and_write_nothing() {
    let app = TestApp::start().await;
    app.lodging("l-1", 1).await;
    let head = app.head().await;
    check(&app, &app.customer("c-1"), customer_cases()).await;
    check(&app, &app.platform_admin(), admin_cases()).await;
    let admin = app.token(Role::Admin, "a-1", &["l-1"]);
    let id = app.reserve("c-1", "l-1", 3, 4).await;
    let head_after_reserve = app.head().await;
    assert_eq!(
        head_after_reserve,
        head + 1,
        "only the valid reservation was written"
    );
    let reject = format!("/management/requests/{id}/reject");
    for body in [
        json!({}),
        json!({"reason": ""}),
        json!({"reason": 7}),
        json!({"reason": "x".repeat(501)}),
    ] {
        let answer = app.post(&reject, &admin, body).await;
        answer.problem(400);
    }
    let cancel = format!("/reservations/{id}/cancel");
    app.post(&cancel, &app.customer("c-1"), json!({"reason": ["no"]}))
        .await
        .problem(400);
    let unknown = [
        (
            cancel.clone(),
            app.customer("c-1"),
            json!({"why": "plans"}),
            "why",
        ),
        (
            reject.clone(),
            admin.clone(),
            json!({"reason": "full", "rooms": 1}),
            "rooms",
        ),
        (
            format!("/management/requests/{id}/approve"),
            admin.clone(),
            json!({"reason": "ok"}),
            "reason",
        ),
        (
            format!("/payments/{id}/retry"),
            admin.clone(),
            json!({"force": true}),
            "force",
        ),
    ];
    for (path, token, body, field) in unknown {
        let answer = app.post(&path, &token, body).await;
        assert_eq!(answer.problem(400)["errors"][0]["field"], field, "{path}");
    }
    assert_eq!(app.head().await, head_after_reserve);
}

#[tokio::test]
async fn bad_tokens_headers_and_routes_are_problems_too() {
    let app = TestApp::start().await;
    app.lodging("l-1", 1).await;
    let body = reservation("guests", json!(1));
    app.post_raw("/reservations", None, None, body.clone())
        .await
        .problem(401);
    app.post_raw("/reservations", Some("not-a-jwt"), None, body.clone())
        .await
        .problem(401);
    let mut expired = Claims::new("c-1", Role::Customer, vec![], std::time::Duration::ZERO);
    expired.exp -= 3600;
    let expired = app.auth.mint(&expired).expect("mint");
    let answer = app
        .post_raw("/reservations", Some(&expired), None, body.clone())
        .await;
    assert!(answer.problem(401)["detail"]
        .as_str()
        .unwrap_or_default()
        .contains("expired"));
    assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
    let forged = http_edge::Auth::new(b"some-other-secret-some-other-sec").mint(&Claims::new(
        "c-1",
        Role::Customer,
        vec![],
        std::time::Duration::from_secs(60),
    ));
    app.post_raw("/reservations", forged.ok().as_deref(), None, body.clone())
        .await
        .problem(401);

    let customer = app.customer("c-1");
    let long_key = "k".repeat(300);
    let answer = app
        .post_raw(
            "/reservations",
            Some(&customer),
            Some(&long_key),
            body.clone(),
        )
        .await;
    assert_eq!(answer.problem(400)["errors"][0]["field"], "Idempotency-Key");
    app.post_raw("/nowhere", Some(&customer), None, body.clone())
        .await
        .problem(404);
    let get = app
        .client
        .get(format!("{}/management/requests/x/approve", app.base))
        .send()
        .await;
    let get = get.expect("send");
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(get.headers()["content-type"], "application/problem+json");

    let still_serving = app
        .post_raw("/reservations", Some(&customer), None, body)
        .await;
    assert_eq!(
        still_serving.status,
        StatusCode::ACCEPTED,
        "{:?}",
        still_serving.body
    );
}
