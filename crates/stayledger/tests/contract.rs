//! Contract tests on the API boundary: command and query routers merged on one port (as `serve`
//! does), a whole scenario driven over HTTP, and every answer, success or problem, checked against
//! what `/openapi.json` publishes for its route and status. (Here rather than in query-api, which
//! publishes the document: only this crate sees both sides.)

mod contract_support;

use contract_support::schema::conforms;
use contract_support::{day, Answer, CombinedApp};
use domain::payout::{PayoutCommand, PayoutTerms};
use domain::Stay;
use http_edge::Role;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

struct Checked<'a> {
    app: &'a CombinedApp,
    doc: Value,
}

impl Checked<'_> {
    async fn call(
        &self,
        method: Method,
        template: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        self.call_with(
            method,
            template,
            path,
            token,
            body.map(|b| b.to_string().into_bytes()),
            &[],
        )
        .await
    }

    async fn call_with(
        &self,
        method: Method,
        template: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let answer = self
            .app
            .send(method.clone(), path, token, headers, body)
            .await;
        if answer.status.as_u16() != 304 {
            let content_type = answer
                .header("content-type")
                .unwrap_or_default()
                .to_string();
            let verb = method.as_str().to_lowercase();
            conforms(
                &self.doc,
                &verb,
                template,
                answer.status.as_u16(),
                &content_type,
                &answer.body,
            );
        }
        answer
    }

    async fn get(&self, template: &str, path: &str, token: &str) -> Answer {
        self.call(Method::GET, template, path, Some(token), None)
            .await
    }

    async fn post(&self, template: &str, path: &str, token: &str, body: Value) -> Answer {
        self.call(Method::POST, template, path, Some(token), Some(body))
            .await
    }
}

fn stay_body(lodging: &str) -> Value {
    json!({"lodging_id": lodging, "check_in": day(5).to_string(), "check_out": day(7).to_string(), "guests": 2})
}

#[tokio::test]
async fn every_answer_of_a_whole_scenario_matches_the_published_contract() {
    let app = CombinedApp::start().await;
    let spec = app.get("/openapi.json", None, &[]).await;
    let api = Checked {
        app: &app,
        doc: spec.ok().clone(),
    };
    let (root, customer, other) = (
        app.token(Role::Admin, "root", &["*"]),
        app.token(Role::Customer, "c-1", &[]),
        app.token(Role::Customer, "c-2", &[]),
    );
    let (admin, auditor) = (
        app.token(Role::Admin, "a-1", &["l-1"]),
        app.token(Role::Auditor, "au", &[]),
    );

    commands(&api, &root, &customer).await;
    let id = reserve(&api, &customer).await;
    let rejected = reserve(&api, &customer).await;
    api.app.project().await;
    views(&api, &customer, &other, &admin, id).await;
    decisions(&api, &admin, &customer, id, rejected).await;
    api.app.project().await;
    audit(&api, &auditor, &customer, id).await;
    payouts(&api, (&admin, &auditor, &customer), id, rejected).await;
}

async fn commands(api: &Checked<'_>, root: &str, customer: &str) {
    let lodging = json!({"lodging_id": "l-1", "name": "Hanok", "nightly_rate": 90000, "rooms": 2});
    assert_eq!(
        api.post("/lodgings", "/lodgings", root, lodging.clone())
            .await
            .status
            .as_u16(),
        201
    );
    api.post("/lodgings", "/lodgings", root, lodging)
        .await
        .problem(409);
    api.post("/lodgings", "/lodgings", root, json!({"rooms": "many"}))
        .await
        .problem(400);
    api.post("/lodgings", "/lodgings", customer, json!({}))
        .await
        .problem(403);
    api.call(
        Method::POST,
        "/reservations",
        "/reservations",
        None,
        Some(stay_body("l-1")),
    )
    .await
    .problem(401);
    api.post(
        "/reservations",
        "/reservations",
        customer,
        stay_body("nowhere"),
    )
    .await
    .problem(422);
    let large = vec![b' '; 100 * 1024];
    let too_large = api
        .call_with(
            Method::POST,
            "/reservations",
            "/reservations",
            Some(customer),
            Some(large),
            &[],
        )
        .await;
    too_large.problem(413);
}

async fn reserve(api: &Checked<'_>, customer: &str) -> Uuid {
    let answer = api
        .post("/reservations", "/reservations", customer, stay_body("l-1"))
        .await;
    assert_eq!(answer.status.as_u16(), 202, "{:?}", answer.body);
    let id = Uuid::parse_str(answer.body["id"].as_str().unwrap_or_default()).expect("uuid");
    let stay = Stay {
        rooms: 1,
        check_in: day(5),
        check_out: day(7),
        guests: 2,
    };
    api.app.forward("l-1", id, stay).await;
    id
}

async fn views(api: &Checked<'_>, customer: &str, other: &str, admin: &str, id: Uuid) {
    let one = "/reservations/{id}";
    let doc = api.get(one, &format!("/reservations/{id}"), customer).await;
    let tag = doc.header("etag").unwrap_or_default().to_string();
    let path = format!("/reservations/{id}");
    let unchanged = api
        .call_with(
            Method::GET,
            one,
            &path,
            Some(customer),
            None,
            &[("if-none-match", &tag)],
        )
        .await;
    assert_eq!(unchanged.status.as_u16(), 304);
    api.get(one, &path, other).await.problem(403);
    api.get(one, &format!("/reservations/{}", Uuid::new_v4()), customer)
        .await
        .problem(404);
    api.get(
        one,
        &format!("{path}?min_position=999999&wait_ms=50"),
        customer,
    )
    .await
    .problem(504);
    api.get("/reservations", "/reservations?limit=1", customer)
        .await
        .ok();
    api.get("/reservations", "/reservations?limit=0", customer)
        .await
        .problem(400);
    api.get("/lodgings", "/lodgings", customer).await.ok();
    api.get("/lodgings/{id}", "/lodgings/l-1", customer)
        .await
        .ok();
    api.get(
        "/management/requests",
        "/management/requests?status=pending",
        admin,
    )
    .await
    .ok();
    api.get("/management/requests", "/management/requests", customer)
        .await
        .problem(403);
}

async fn decisions(api: &Checked<'_>, admin: &str, customer: &str, id: Uuid, rejected: Uuid) {
    let approve = format!("/management/requests/{id}/approve");
    let approved = api
        .post(
            "/management/requests/{id}/approve",
            &approve,
            admin,
            json!({}),
        )
        .await;
    assert_eq!(approved.status.as_u16(), 202);
    api.post(
        "/management/requests/{id}/approve",
        &approve,
        admin,
        json!({}),
    )
    .await
    .problem(409);
    let reject = format!("/management/requests/{rejected}/reject");
    let answer = api
        .post(
            "/management/requests/{id}/reject",
            &reject,
            admin,
            json!({"reason": "full"}),
        )
        .await;
    assert_eq!(answer.status.as_u16(), 202);
    let retry = format!("/payments/{id}/retry");
    api.post("/payments/{id}/retry", &retry, admin, json!({}))
        .await
        .problem(409);
    let cancel = format!("/reservations/{id}/cancel");
    assert_eq!(
        api.post("/reservations/{id}/cancel", &cancel, customer, json!({}))
            .await
            .status
            .as_u16(),
        202
    );
    api.post("/reservations/{id}/cancel", &cancel, customer, json!({}))
        .await
        .problem(409);
}

async fn audit(api: &Checked<'_>, auditor: &str, customer: &str, id: Uuid) {
    let history = format!("/audit/reservations/{id}/history");
    api.get("/audit/reservations/{id}/history", &history, auditor)
        .await
        .ok();
    api.get("/audit/reservations/{id}/history", &history, customer)
        .await
        .problem(403);
    let state = format!("/audit/reservations/{id}/state?as_of_position=3");
    api.get("/audit/reservations/{id}/state", &state, auditor)
        .await
        .ok();
    api.get("/audit/events", "/audit/events?limit=3", auditor)
        .await
        .ok();
    api.get("/audit/events", "/audit/events?from_position=x", auditor)
        .await
        .problem(400);
    api.get(
        "/audit/streams/{stream}",
        &format!("/audit/streams/reservation-{id}"),
        auditor,
    )
    .await
    .ok();
    api.get("/audit/verify", "/audit/verify", auditor)
        .await
        .ok();
}

/// Two payouts of l-1 written as the saga writes them: one sent (every field set), one only
/// scheduled (`gateway_ref` and `sent_at` null).
async fn payouts(
    api: &Checked<'_>,
    (admin, auditor, customer): (&str, &str, &str),
    sent: Uuid,
    scheduled: Uuid,
) {
    for id in [sent, scheduled] {
        let terms = PayoutTerms {
            reservation_id: id,
            lodging_id: "l-1".into(),
            host_id: "root".into(),
            gross: 180_000,
            fee_bps: 1_000,
            currency: "KRW".into(),
        };
        api.app.payout(id, &PayoutCommand::Schedule(terms)).await;
    }
    let gateway_ref = "po-contract".to_string();
    api.app
        .payout(sent, &PayoutCommand::RecordSent { gateway_ref })
        .await;
    api.app.project().await;
    let list = api.get("/payouts", "/payouts", admin).await;
    let statuses: Vec<&Value> = list.ok()["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| &p["status"])
        .collect();
    assert_eq!(statuses, [&json!("scheduled"), &json!("sent")]);
    api.get(
        "/payouts",
        "/payouts?lodging_id=l-1&status=sent&limit=1",
        auditor,
    )
    .await
    .ok();
    api.get("/payouts", "/payouts?status=deferred", auditor)
        .await
        .problem(400);
    api.get("/payouts", "/payouts?lodging_id=l-2", admin)
        .await
        .problem(403);
    api.get("/payouts", "/payouts", customer).await.problem(403);
    api.get(
        "/payouts",
        "/payouts?min_position=999999&wait_ms=50",
        auditor,
    )
    .await
    .problem(504);
    let summary = api
        .get("/payouts/summary", "/payouts/summary?lodging_id=l-1", admin)
        .await;
    assert_eq!(summary.ok()["items"][0]["count"], 2);
    api.get("/payouts/summary", "/payouts/summary?status=none", admin)
        .await
        .problem(400);
    api.get("/payouts/summary", "/payouts/summary", customer)
        .await
        .problem(403);
    let reservation = api
        .get(
            "/reservations/{id}",
            &format!("/reservations/{sent}"),
            customer,
        )
        .await;
    assert_eq!(reservation.ok()["payout_status"], "sent");
}

#[test]
fn the_checker_refuses_answers_that_break_their_schema() {
    let doc = query_api::openapi();
    let check = |body: Value| {
        let doc = doc.clone();
        std::panic::catch_unwind(move || {
            conforms(&doc, "get", "/verify-none", 200, "application/json", &body)
        })
        .is_ok()
    };
    assert!(!check(json!({})), "an undocumented route is refused");
    let verify = |body: Value| {
        let doc = doc.clone();
        std::panic::catch_unwind(move || {
            conforms(&doc, "get", "/audit/verify", 200, "application/json", &body)
        })
        .is_ok()
    };
    assert!(verify(
        json!({"ok": true, "events_checked": 3, "first_bad": null, "keyed": true})
    ));
    assert!(!verify(
        json!({"ok": "yes", "events_checked": 3, "first_bad": null, "keyed": true})
    ));
    assert!(!verify(
        json!({"ok": true, "first_bad": null, "keyed": true})
    ));
    assert!(!verify(
        json!({"ok": true, "events_checked": -1, "first_bad": null, "keyed": true})
    ));
}
