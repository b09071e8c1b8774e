//! R6 for the command routes: every route x every role x own / other resource. A denial writes
//! nothing. Another customer's reservation is 403 (it exists, it is not yours); an unknown id 404.

mod common;

use common::{day, TestApp};
use http_edge::Role;
use serde_json::{json, Value};
use uuid::Uuid;

struct Callers {
    none: Option<String>,
    owner: Option<String>,
    other_customer: Option<String>,
    admin: Option<String>,
    other_admin: Option<String>,
    platform_admin: Option<String>,
    auditor: Option<String>,
}

impl Callers {
    fn new(app: &TestApp) -> Self {
        Self {
            none: None,
            owner: Some(app.customer("c-1")),
            other_customer: Some(app.customer("c-2")),
            admin: Some(app.token(Role::Admin, "a-1", &["l-1"])),
            other_admin: Some(app.token(Role::Admin, "a-2", &["l-2"])),
            platform_admin: Some(app.platform_admin()),
            auditor: Some(app.token(Role::Auditor, "au-1", &[])),
        }
    }
}

async fn expect(app: &TestApp, path: &str, token: &Option<String>, body: &Value, status: u16) {
    let answer = app
        .post_raw(path, token.as_deref(), None, body.to_string().into_bytes())
        .await;
    assert_eq!(
        answer.status.as_u16(),
        status,
        "POST {path}: {:?}",
        answer.body
    );
    if status >= 400 {
        answer.problem(status);
    }
}

#[tokio::test]
async fn denials_come_before_any_write() {
    let app = TestApp::start().await;
    app.lodging("l-1", 5).await;
    app.lodging("l-2", 5).await;
    let r = app.reserve("c-1", "l-1", 4, 6).await;
    let who = Callers::new(&app);
    let head = app.head().await;
    let lodging = json!({"lodging_id": "l-3", "name": "Inn", "nightly_rate": 1, "rooms": 1});
    let stay = json!({"lodging_id": "l-1", "check_in": day(4), "check_out": day(6), "guests": 1});
    let (cancel, approve) = (
        format!("/reservations/{r}/cancel"),
        format!("/management/requests/{r}/approve"),
    );
    let (reject, retry) = (
        format!("/management/requests/{r}/reject"),
        format!("/payments/{r}/retry"),
    );
    let reason = json!({"reason": "no"});
    let empty = json!({});
    let denied: Vec<(&str, &Option<String>, &Value, u16)> = vec![
        ("/lodgings", &who.none, &lodging, 401),
        ("/lodgings", &who.owner, &lodging, 403),
        ("/lodgings", &who.admin, &lodging, 403),
        ("/lodgings", &who.auditor, &lodging, 403),
        ("/reservations", &who.none, &stay, 401),
        ("/reservations", &who.admin, &stay, 403),
        ("/reservations", &who.platform_admin, &stay, 403),
        ("/reservations", &who.auditor, &stay, 403),
        (&cancel, &who.none, &reason, 401),
        (&cancel, &who.other_customer, &reason, 403),
        (&cancel, &who.admin, &reason, 403),
        (&cancel, &who.auditor, &reason, 403),
        (&approve, &who.none, &empty, 401),
        (&approve, &who.owner, &empty, 403),
        (&approve, &who.other_admin, &empty, 403),
        (&approve, &who.auditor, &empty, 403),
        (&reject, &who.owner, &reason, 403),
        (&reject, &who.other_admin, &reason, 403),
        (&reject, &who.auditor, &reason, 403),
        (&retry, &who.none, &empty, 401),
        (&retry, &who.owner, &empty, 403),
        (&retry, &who.other_admin, &empty, 403),
        (&retry, &who.auditor, &empty, 403),
    ];
    for (path, token, body, status) in denied {
        expect(&app, path, token, body, status).await;
    }
    assert_eq!(app.head().await, head, "no denied request wrote anything");
}

#[tokio::test]
async fn owners_and_their_admins_are_allowed() {
    let app = TestApp::start().await;
    app.lodging("l-1", 5).await;
    let who = Callers::new(&app);
    let lodging = json!({"lodging_id": "l-3", "name": "Inn", "nightly_rate": 1, "rooms": 1});
    expect(&app, "/lodgings", &who.platform_admin, &lodging, 201).await;
    let stay = json!({"lodging_id": "l-1", "check_in": day(4), "check_out": day(6), "guests": 1});
    expect(&app, "/reservations", &who.owner, &stay, 202).await;

    let cancelled = app.reserve("c-1", "l-1", 4, 6).await;
    expect(
        &app,
        &format!("/reservations/{cancelled}/cancel"),
        &who.owner,
        &json!({}),
        202,
    )
    .await;
    let approved = app.reserve("c-1", "l-1", 4, 6).await;
    expect(
        &app,
        &format!("/management/requests/{approved}/approve"),
        &who.admin,
        &json!({}),
        202,
    )
    .await;
    let by_platform = app.reserve("c-2", "l-1", 4, 6).await;
    let path = format!("/management/requests/{by_platform}/approve");
    expect(&app, &path, &who.platform_admin, &json!({}), 202).await;
    let rejected = app.reserve("c-1", "l-1", 4, 6).await;
    let path = format!("/management/requests/{rejected}/reject");
    expect(&app, &path, &who.admin, &json!({"reason": "full"}), 202).await;
    // Allowed, but the payment is not deferred: the state answers, not the access rule.
    expect(
        &app,
        &format!("/payments/{approved}/retry"),
        &who.admin,
        &json!({}),
        409,
    )
    .await;
}

#[tokio::test]
async fn unknown_reservations_are_404_for_whoever_may_ask() {
    let app = TestApp::start().await;
    let who = Callers::new(&app);
    let unknown = Uuid::new_v4();
    expect(
        &app,
        &format!("/reservations/{unknown}/cancel"),
        &who.owner,
        &json!({}),
        404,
    )
    .await;
    let approve = format!("/management/requests/{unknown}/approve");
    expect(&app, &approve, &who.admin, &json!({}), 404).await;
    let reject = format!("/management/requests/{unknown}/reject");
    expect(&app, &reject, &who.admin, &json!({"reason": "x"}), 404).await;
    expect(
        &app,
        &format!("/payments/{unknown}/retry"),
        &who.admin,
        &json!({}),
        404,
    )
    .await;
}
