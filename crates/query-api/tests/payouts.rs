//! `GET /payouts` and `GET /payouts/summary` over real HTTP: rows and sums as the payout events in
//! the log leave them, the ReservationList's `payout_status`, who sees which payouts (a host their
//! lodgings', the platform admin and auditors all, customers none), and the 400s of a bad status.

mod common;

use chrono::{TimeDelta, Utc};
use common::QueryApp;
use domain::payout::{PayoutCommand, PayoutTerms};
use http_edge::Role;
use serde_json::{json, Value};
use uuid::Uuid;

/// Schedule the payout of stay `id` at `lodging` to `host`: `gross` at a 10% fee.
async fn schedule(app: &QueryApp, id: Uuid, (lodging, host): (&str, &str), gross: i64) -> u64 {
    let currency = if lodging == "l-3" { "USD" } else { "KRW" };
    let terms = PayoutTerms {
        reservation_id: id,
        lodging_id: lodging.into(),
        host_id: host.into(),
        gross,
        fee_bps: 1_000,
        currency: currency.into(),
    };
    app.payout(id, &PayoutCommand::Schedule(terms)).await
}

fn defer() -> PayoutCommand {
    PayoutCommand::Defer {
        reason: "gateway unavailable".into(),
        retry_at: Utc::now() + TimeDelta::minutes(5),
    }
}

/// Host h-1 has l-1 (KRW) and l-3 (USD), host h-2 has l-2. Four stays with payouts:
/// r1 (l-1) sent, r2 (l-1) deferred, r3 (l-2) failed then retried, r4 (l-3) failed.
async fn four_payouts(app: &QueryApp) -> [Uuid; 4] {
    app.hosted_lodging("l-1", "h-1", "KRW").await;
    app.hosted_lodging("l-2", "h-2", "KRW").await;
    app.hosted_lodging("l-3", "h-1", "USD").await;
    let (r1, _) = app.reserve("c-1", "l-1", 3, 5).await;
    let (r2, _) = app.reserve("c-2", "l-1", 6, 7).await;
    let (r3, _) = app.reserve("c-1", "l-2", 3, 4).await;
    let (r4, _) = app.reserve("c-2", "l-3", 3, 4).await;
    schedule(app, r1, ("l-1", "h-1"), 100_000).await;
    schedule(app, r2, ("l-1", "h-1"), 50_000).await;
    schedule(app, r3, ("l-2", "h-2"), 70_000).await;
    schedule(app, r4, ("l-3", "h-1"), 12_345).await;
    app.payout(r1, &defer()).await;
    let sent = PayoutCommand::RecordSent {
        gateway_ref: "po-1".into(),
    };
    app.payout(r1, &sent).await;
    app.payout(r2, &defer()).await;
    let fail = PayoutCommand::Fail {
        reason: "payee account closed".into(),
    };
    app.payout(r3, &fail).await;
    let retry = PayoutCommand::Retry {
        requested_by: "admin:root".into(),
    };
    app.payout(r3, &retry).await;
    app.payout(r4, &fail).await;
    app.project().await;
    [r1, r2, r3, r4]
}

/// The reservation ids of the payouts `token` sees at `path` (one page).
async fn ids(app: &QueryApp, path: &str, token: &str) -> Vec<Uuid> {
    app.get_as(path, token).await.ok()["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item["reservation_id"].as_str())
        .filter_map(|id| Uuid::parse_str(id).ok())
        .collect()
}

fn totals(currency: &str, count: u64, gross: i64, fee: i64) -> Value {
    json!({"currency": currency, "count": count, "gross": gross, "fee": fee, "net": gross - fee})
}

#[tokio::test]
async fn payouts_and_their_sums_as_the_log_leaves_them() {
    let app = QueryApp::start().await;
    let [r1, r2, r3, r4] = four_payouts(&app).await;
    let auditor = app.token(Role::Auditor, "au-1", &[]);
    assert_eq!(ids(&app, "/payouts", &auditor).await, [r4, r3, r2, r1]);
    let items = app.get_as("/payouts", &auditor).await.ok()["items"].clone();
    let sent = &items[3];
    assert_eq!(
        (&sent["status"], &sent["gateway_ref"], &sent["host_id"]),
        (&json!("sent"), &json!("po-1"), &json!("h-1"))
    );
    assert_eq!(
        (
            &sent["gross"],
            &sent["fee"],
            &sent["net"],
            &sent["currency"]
        ),
        (
            &json!(100_000),
            &json!(10_000),
            &json!(90_000),
            &json!("KRW")
        )
    );
    assert!(sent["sent_at"].is_string() && sent["scheduled_at"].is_string());
    let statuses: Vec<&Value> = items
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| &i["status"])
        .collect();
    assert_eq!(
        statuses,
        [
            &json!("failed"),
            &json!("scheduled"),
            &json!("pending"),
            &json!("sent")
        ]
    );
    assert_eq!(
        (&items[0]["gateway_ref"], &items[0]["sent_at"]),
        (&Value::Null, &Value::Null)
    );
    assert_eq!(items[0]["fee"], 1_234, "fee rounded down: 10% of 12,345");

    let cases = [
        ("/payouts?status=pending", vec![r2]),
        ("/payouts?status=scheduled", vec![r3]),
        ("/payouts?lodging_id=l-1", vec![r2, r1]),
        ("/payouts?lodging_id=l-1&status=sent", vec![r1]),
        ("/payouts?lodging_id=nowhere", vec![]),
    ];
    for (path, expected) in cases {
        assert_eq!(ids(&app, path, &auditor).await, expected, "{path}");
    }
    let first = app.get_as("/payouts?limit=3", &auditor).await;
    let cursor = first.ok()["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    let rest = app
        .get_as(&format!("/payouts?limit=3&cursor={cursor}"), &auditor)
        .await;
    assert_eq!(
        rest.ok()["items"][0]["reservation_id"],
        json!(r1.to_string())
    );
    assert_eq!(rest.ok()["next_cursor"], Value::Null);

    let summary = app.get_as("/payouts/summary", &auditor).await;
    let everything = json!({"items": [
        totals("KRW", 3, 220_000, 22_000),
        totals("USD", 1, 12_345, 1_234),
    ]});
    assert_eq!(summary.ok(), &everything);
    let sums = app
        .get_as("/payouts/summary?lodging_id=l-1&status=pending", &auditor)
        .await;
    assert_eq!(
        sums.ok(),
        &json!({"items": [totals("KRW", 1, 50_000, 5_000)]})
    );
    let none = app
        .get_as("/payouts/summary?lodging_id=nowhere", &auditor)
        .await;
    assert_eq!(none.ok(), &json!({"items": []}));

    // The ReservationList follows the payout.
    let customer = app.token(Role::Customer, "c-2", &[]);
    let view = app.get_as(&format!("/reservations/{r2}"), &customer).await;
    assert_eq!(view.ok()["payout_status"], "pending");
    let view = app.get_as(&format!("/reservations/{r4}"), &customer).await;
    assert_eq!(view.ok()["payout_status"], "failed");
    let (r5, position) = app.reserve("c-2", "l-1", 9, 10).await;
    let view = app
        .get_as(
            &format!("/reservations/{r5}?min_position={position}"),
            &customer,
        )
        .await;
    assert_eq!(
        view.ok()["payout_status"],
        "none",
        "no payout before the stay ends"
    );
}

#[tokio::test]
async fn a_host_sees_the_payouts_of_their_lodgings_only() {
    let app = QueryApp::start().await;
    let [r1, r2, r3, r4] = four_payouts(&app).await;
    let host = app.token(Role::Admin, "h-1", &[]);
    assert_eq!(ids(&app, "/payouts", &host).await, [r4, r2, r1]);
    assert_eq!(ids(&app, "/payouts?lodging_id=l-3", &host).await, [r4]);
    let summary = app.get_as("/payouts/summary", &host).await;
    let own =
        json!({"items": [totals("KRW", 2, 150_000, 15_000), totals("USD", 1, 12_345, 1_234)]});
    assert_eq!(summary.ok(), &own);
    for path in ["/payouts?lodging_id=l-2", "/payouts/summary?lodging_id=l-2"] {
        let refused = app.get_as(path, &host).await;
        assert!(refused.problem(403)["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("l-2"));
    }
    // An admin by the `lodgings` claim, and the platform admin.
    let by_claim = app.token(Role::Admin, "a-9", &["l-2"]);
    assert_eq!(ids(&app, "/payouts", &by_claim).await, [r3]);
    let root = app.token(Role::Admin, "root", &["*"]);
    assert_eq!(ids(&app, "/payouts", &root).await, [r4, r3, r2, r1]);
    assert_eq!(ids(&app, "/payouts?lodging_id=l-2", &root).await, [r3]);
    let stranger = app.token(Role::Admin, "h-3", &[]);
    assert!(ids(&app, "/payouts", &stranger).await.is_empty());
    let nothing = app.get_as("/payouts/summary", &stranger).await;
    assert_eq!(nothing.ok(), &json!({"items": []}));
    let customer = app.token(Role::Customer, "c-1", &[]);
    for path in ["/payouts", "/payouts/summary"] {
        app.get_as(path, &customer).await.problem(403);
        app.get(path, None, &[]).await.problem(401);
    }
}

#[tokio::test]
async fn a_bad_status_or_parameter_is_a_400_naming_it() {
    let app = QueryApp::start().await;
    let auditor = app.token(Role::Auditor, "au-1", &[]);
    for path in [
        "/payouts?status=none",
        "/payouts?status=deferred",
        "/payouts/summary?status=",
        "/payouts/summary?status=SENT",
    ] {
        let problem = app.get_as(path, &auditor).await;
        let body = problem.problem(400);
        assert_eq!(body["errors"][0]["field"], "status", "{path}");
        assert!(body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("status"));
    }
    for (path, field) in [
        ("/payouts?host_id=h-1", "host_id"),
        ("/payouts/summary?limit=5", "limit"),
        ("/payouts?lodging_id=a/b", "lodging_id"),
        ("/payouts?cursor=7a", "cursor"),
    ] {
        let problem = app.get_as(path, &auditor).await;
        let body = problem.problem(400);
        let named = body["errors"][0]["field"] == field
            || body["detail"].as_str().unwrap_or_default().contains(field);
        assert!(named, "{path}: {body}");
    }
}
