//! Store outages: while the event log fails, commands answer 503 problem+json without the cause,
//! write nothing, and work again once the log is back. The outage is injected by a thin wrapper
//! over the real SQLite log (a real outage cannot be produced on demand).

mod common;

use std::sync::Arc;

use common::{day, TestApp};
use eventlog::conformance::FaultyLog;
use eventlog::{EventLog, SqliteEventLog};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_failing_log_answers_503_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let inner = SqliteEventLog::open(dir.path().join("events.db")).expect("open");
    let log = Arc::new(FaultyLog::new(
        Arc::new(inner),
        "disk /srv/secret-volume detached",
    ));
    let app = TestApp::on_log(Arc::clone(&log) as Arc<dyn EventLog>, dir).await;
    app.lodging("l-1", 1).await;
    let customer = app.customer("c-1");
    let body = json!({"lodging_id": "l-1", "check_in": day(3), "check_out": day(4), "guests": 1});
    let head = app.head().await;

    log.set_down(true);
    let answer = app.post("/reservations", &customer, body.clone()).await;
    let problem = answer.problem(503);
    assert!(
        !problem.to_string().contains("secret-volume"),
        "the cause is logged, never sent: {problem}"
    );
    let register = json!({"name": "Inn", "nightly_rate": 1, "rooms": 1});
    app.post("/lodgings", &app.platform_admin(), register)
        .await
        .problem(503);
    assert_eq!(app.head().await, head, "nothing was written");

    log.set_down(false);
    let answer = app.post("/reservations", &customer, body).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{:?}", answer.body);
}
