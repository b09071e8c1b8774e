//! R6 for the query routes: every route x every role x own / other resource. Another customer's
//! reservation is 403 (as on the command side); lists are scoped, never refused, for their readers.

mod common;

use common::QueryApp;
use http_edge::Role;

struct Callers {
    owner: String,
    other_customer: String,
    admin: String,
    other_admin: String,
    platform_admin: String,
    auditor: String,
}

impl Callers {
    fn new(app: &QueryApp) -> Self {
        Self {
            owner: app.token(Role::Customer, "c-1", &[]),
            other_customer: app.token(Role::Customer, "c-2", &[]),
            admin: app.token(Role::Admin, "a-1", &["l-1"]),
            other_admin: app.token(Role::Admin, "a-2", &["l-2"]),
            platform_admin: app.token(Role::Admin, "root", &["*"]),
            auditor: app.token(Role::Auditor, "au-1", &[]),
        }
    }

    fn all(&self) -> [(&str, &String); 6] {
        [
            ("owner", &self.owner),
            ("other customer", &self.other_customer),
            ("admin", &self.admin),
            ("other admin", &self.other_admin),
            ("platform admin", &self.platform_admin),
            ("auditor", &self.auditor),
        ]
    }
}

/// `path` answers `expected[i]` to the i-th caller of [`Callers::all`], and 401 without a token.
async fn check(app: &QueryApp, who: &Callers, path: &str, expected: [u16; 6]) {
    app.get(path, None, &[]).await.problem(401);
    for ((name, token), status) in who.all().into_iter().zip(expected) {
        let answer = app.get_as(path, token).await;
        assert_eq!(
            answer.status.as_u16(),
            status,
            "{name} GET {path}: {:?}",
            answer.body
        );
        if status >= 400 {
            answer.problem(status);
        }
    }
}

/// How many items `token` sees at `path`.
async fn count(app: &QueryApp, path: &str, token: &str) -> usize {
    app.get_as(path, token).await.ok()["items"]
        .as_array()
        .map_or(0, Vec::len)
}

#[tokio::test]
async fn every_query_route_for_every_role() {
    let app = QueryApp::start().await;
    app.lodging("l-1", 2).await;
    app.lodging("l-2", 2).await;
    let (id, _) = app.reserve("c-1", "l-1", 3, 4).await;
    app.project().await;
    let who = Callers::new(&app);
    let everyone = [200; 6];
    let auditors_only = [403, 403, 403, 403, 403, 200];
    check(&app, &who, "/lodgings", everyone).await;
    check(&app, &who, "/lodgings/l-1", everyone).await;
    check(
        &app,
        &who,
        &format!("/reservations/{id}"),
        [200, 403, 200, 403, 200, 200],
    )
    .await;
    check(&app, &who, "/reservations", everyone).await;
    check(
        &app,
        &who,
        "/management/requests",
        [403, 403, 200, 200, 200, 200],
    )
    .await;
    check(
        &app,
        &who,
        "/management/requests?lodging_id=l-1",
        [403, 403, 200, 403, 200, 200],
    )
    .await;
    for payouts in ["/payouts", "/payouts/summary"] {
        check(&app, &who, payouts, [403, 403, 200, 200, 200, 200]).await;
        let one_lodging = format!("{payouts}?lodging_id=l-1");
        check(&app, &who, &one_lodging, [403, 403, 200, 403, 200, 200]).await;
    }
    check(
        &app,
        &who,
        &format!("/audit/reservations/{id}/history"),
        auditors_only,
    )
    .await;
    check(
        &app,
        &who,
        &format!("/audit/reservations/{id}/state"),
        auditors_only,
    )
    .await;
    check(&app, &who, "/audit/events", auditors_only).await;
    check(
        &app,
        &who,
        &format!("/audit/streams/reservation-{id}"),
        auditors_only,
    )
    .await;
    check(&app, &who, "/audit/verify", auditors_only).await;

    let seen = [
        (&who.owner, 1),
        (&who.other_customer, 0),
        (&who.admin, 1),
        (&who.other_admin, 0),
        (&who.platform_admin, 1),
        (&who.auditor, 1),
    ];
    for (token, items) in seen {
        assert_eq!(count(&app, "/reservations", token).await, items);
    }
    assert_eq!(count(&app, "/management/requests", &who.admin).await, 1);
    assert_eq!(
        count(&app, "/management/requests", &who.other_admin).await,
        0
    );
}

#[tokio::test]
async fn unknown_documents_are_404_for_whoever_may_ask() {
    let app = QueryApp::start().await;
    let who = Callers::new(&app);
    let unknown = uuid::Uuid::new_v4();
    app.get_as(&format!("/reservations/{unknown}"), &who.owner)
        .await
        .problem(404);
    app.get_as("/reservations/not-a-uuid", &who.auditor)
        .await
        .problem(404);
    app.get_as("/lodgings/none", &who.owner).await.problem(404);
    app.get_as(
        &format!("/audit/reservations/{unknown}/state"),
        &who.auditor,
    )
    .await
    .problem(404);
}
