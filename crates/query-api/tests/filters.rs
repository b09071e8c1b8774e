//! The filters of `GET /reservations` (`lodging_id`, `customer_id`, `status`, `check_in_from`,
//! `check_in_to`) over real HTTP, within each reader's access (docs/decisions/0018), and the 400s
//! of parameters a route does not take, parameters given twice and malformed filter values.

mod common;

use common::{day, QueryApp};
use http_edge::Role;
use uuid::Uuid;

/// The reservation ids `token` sees at `path`, newest first (one page is enough here).
async fn ids(app: &QueryApp, path: &str, token: &str) -> Vec<Uuid> {
    app.get_as(path, token).await.ok()["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item["reservation_id"].as_str())
        .filter_map(|id| Uuid::parse_str(id).ok())
        .collect()
}

/// Four reservations: (c-1, l-1, in 3 days), (c-2, l-1, in 5), (c-1, l-2, in 3), (c-2, l-2,
/// in 8, then cancelled); in that order, so newest first is the reverse.
async fn four(app: &QueryApp) -> [Uuid; 4] {
    app.lodging("l-1", 5).await;
    app.lodging("l-2", 5).await;
    let (r1, _) = app.reserve("c-1", "l-1", 3, 4).await;
    let (r2, _) = app.reserve("c-2", "l-1", 5, 6).await;
    let (r3, _) = app.reserve("c-1", "l-2", 3, 5).await;
    let (r4, _) = app.reserve("c-2", "l-2", 8, 9).await;
    app.cancel("c-2", r4).await;
    app.project().await;
    [r1, r2, r3, r4]
}

#[tokio::test]
async fn auditors_filter_by_lodging_customer_status_and_check_in() {
    let app = QueryApp::start().await;
    let [r1, r2, r3, r4] = four(&app).await;
    let auditor = app.token(Role::Auditor, "au-1", &[]);
    let (d3, d4, d5) = (day(3), day(4), day(5));
    let cases = [
        (String::new(), vec![r4, r3, r2, r1]),
        ("lodging_id=l-1".to_string(), vec![r2, r1]),
        ("customer_id=c-1".to_string(), vec![r3, r1]),
        ("customer_id=c-2&lodging_id=l-2".to_string(), vec![r4]),
        ("status=cancelled".to_string(), vec![r4]),
        ("status=requested&lodging_id=l-2".to_string(), vec![r3]),
        (format!("check_in_from={d5}"), vec![r4, r2]),
        (format!("check_in_to={d3}"), vec![r3, r1]),
        (format!("check_in_from={d4}&check_in_to={d5}"), vec![r2]),
        (
            format!("check_in_from={d3}&check_in_to={d3}&customer_id=c-1"),
            vec![r3, r1],
        ),
        ("lodging_id=nowhere".to_string(), vec![]),
        ("customer_id=c-9".to_string(), vec![]),
    ];
    for (query, expected) in cases {
        let path = format!("/reservations?{query}");
        assert_eq!(ids(&app, &path, &auditor).await, expected, "{path}");
    }
}

#[tokio::test]
async fn filters_narrow_what_admins_and_customers_may_see_and_never_widen_it() {
    let app = QueryApp::start().await;
    let [r1, r2, r3, r4] = four(&app).await;
    let admin = app.token(Role::Admin, "a-1", &["l-1"]);
    let platform = app.token(Role::Admin, "root", &["*"]);
    let c1 = app.token(Role::Customer, "c-1", &[]);
    let d5 = day(5);

    assert_eq!(ids(&app, "/reservations", &admin).await, vec![r2, r1]);
    assert_eq!(
        ids(&app, "/reservations?customer_id=c-1", &admin).await,
        vec![r1]
    );
    let path = "/reservations?lodging_id=l-1&customer_id=c-2";
    assert_eq!(ids(&app, path, &admin).await, vec![r2]);
    let path = format!("/reservations?check_in_from={d5}");
    assert_eq!(ids(&app, &path, &admin).await, vec![r2]);
    let refused = app.get_as("/reservations?lodging_id=l-2", &admin).await;
    assert!(refused.problem(403)["detail"]
        .as_str()
        .is_some_and(|d| d.contains("l-2")));
    assert_eq!(
        ids(&app, "/reservations?lodging_id=l-2", &platform).await,
        vec![r4, r3]
    );
    let path = "/reservations?customer_id=c-2";
    assert_eq!(ids(&app, path, &platform).await, vec![r4, r2]);

    assert_eq!(ids(&app, "/reservations", &c1).await, vec![r3, r1]);
    assert_eq!(
        ids(&app, "/reservations?customer_id=c-1", &c1).await,
        vec![r3, r1]
    );
    assert_eq!(
        ids(&app, "/reservations?lodging_id=l-2", &c1).await,
        vec![r3]
    );
    app.get_as("/reservations?customer_id=c-2", &c1)
        .await
        .problem(403);
    let own_later = format!("/reservations?check_in_from={d5}");
    assert!(
        ids(&app, &own_later, &c1).await.is_empty(),
        "c-2's later stays stay hidden"
    );
}

#[tokio::test]
async fn unknown_repeated_and_malformed_parameters_are_400s_naming_them() {
    let app = QueryApp::start().await;
    let [r1, ..] = four(&app).await;
    let auditor = app.token(Role::Auditor, "au-1", &[]);
    let cases = [
        ("/reservations?rooms=2".to_string(), "rooms"),
        (
            "/reservations?status=confirmed&lodging=l-1".to_string(),
            "lodging",
        ),
        ("/reservations?limit=1&limit=2".to_string(), "limit"),
        ("/reservations?lodging_id=".to_string(), "lodging_id"),
        ("/reservations?lodging_id=a/b".to_string(), "lodging_id"),
        ("/reservations?customer_id=%20".to_string(), "customer_id"),
        (
            "/reservations?check_in_from=2030-13-01".to_string(),
            "check_in_from",
        ),
        (
            "/reservations?check_in_to=tomorrow".to_string(),
            "check_in_to",
        ),
        (
            format!(
                "/reservations?check_in_from={}&check_in_to={}",
                day(5),
                day(4)
            ),
            "check_in_to",
        ),
        ("/management/requests?lodging_id=".to_string(), "lodging_id"),
        (
            "/management/requests?customer_id=c-1".to_string(),
            "customer_id",
        ),
        ("/lodgings?near=inn".to_string(), "near"),
        ("/lodgings/l-1?fields=name".to_string(), "fields"),
        (format!("/reservations/{r1}?include=history"), "include"),
        (format!("/audit/reservations/{r1}/history?limit=5"), "limit"),
        ("/audit/verify?full=true".to_string(), "full"),
        (
            "/audit/events?from_position=1&from_position=2".to_string(),
            "from_position",
        ),
    ];
    for (path, field) in cases {
        let answer = app.get_as(&path, &auditor).await;
        let problem = answer.problem(400);
        assert_eq!(problem["errors"][0]["field"], field, "{path}: {problem}");
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|d| d.contains(field)),
            "{path}: {problem}"
        );
    }
    let still = format!("/reservations/{r1}?min_position=1&wait_ms=100");
    app.get_as(&still, &auditor).await.ok();
}
