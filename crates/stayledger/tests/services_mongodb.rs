//! Each service alone with its views in MongoDB (`STAYLEDGER_MONGODB_URL`): command-api, query-api,
//! projector, saga, the notifier and the payment sandbox as real processes take a reservation from
//! requested to confirmed, the views read back from the server itself and none left in the data
//! dir; the notifier builds the inbox and sends a webhook from MongoDB too. Without a server the
//! test says SKIPPED.

#[path = "common/process.rs"]
mod process;
#[path = "common/receiver.rs"]
mod receiver;

use std::time::Duration;

use domain::reservation::ReservationStatus;
use process::{admin_of, customer, Process};
use readmodel::{MongoViewStore, ViewStore};
use reqwest::StatusCode;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

/// `stayledger <service>` on a free port over the data dir `data`, with `extra` flags.
async fn on_data(service: &str, data: &str, extra: &[&str]) -> Process {
    let args = [
        &[service, "--addr", "127.0.0.1:0", "--data-dir", data],
        extra,
    ]
    .concat();
    Process::start(&args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_processes_with_views_in_mongodb_take_a_reservation_to_confirmed() {
    let Some(url) = eventlog::conformance::server_url(
        "STAYLEDGER_MONGODB_URL",
        "the services with their views in MongoDB",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().to_str().expect("utf-8 path").to_string();
    let db = format!("stayledger_services_{}", uuid::Uuid::new_v4().simple());
    let mongo = ["--mongodb-url", url.as_str(), "--mongodb-db", db.as_str()];

    // On the test's own data dir: the default one would carry an earlier run's charges.
    let sandbox = Process::sandbox(&data).await;
    let gateway = format!("{}/sandbox", sandbox.base);
    let commands = on_data("command-api", &data, &[]).await;
    let private = ["--webhook-allow-private"];
    let queries = on_data("query-api", &data, &[&mongo[..], &private].concat()).await;
    let projector = on_data("projector", &data, &mongo).await;
    let notifier = on_data("notifier", &data, &[&mongo[..], &private].concat()).await;
    let saga = on_data(
        "saga",
        &data,
        &["--payment-gateway-url", &gateway, "--shard", "0/1"],
    )
    .await;
    for process in [&sandbox, &commands, &queries, &projector, &saga, &notifier] {
        process
            .api()
            .wait_status("/readyz", StatusCode::OK, WAIT)
            .await;
    }

    let (commands_api, queries_api) = (commands.api(), queries.api());
    let hook = receiver::Receiver::start(204).await;
    let (status, subscribed) = queries_api
        .post("/webhooks", &customer("alice"), json!({"url": hook.url()}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{subscribed}");
    let secret = subscribed["secret"].as_str().expect("secret").to_string();
    commands_api.register_lodging("harbor", 2, "manual").await;
    let (id, position) = commands_api.request("alice", "harbor", 12).await;
    // Read your own write through query-api: it waits for the projector's checkpoint in MongoDB.
    let (status, doc) = queries_api
        .get(
            &format!("/reservations/{id}?min_position={position}"),
            Some(&customer("alice")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    assert_eq!(doc["lodging_name"], "Lodging harbor");
    let (status, pending) = queries_api
        .get(
            &format!("/management/requests?lodging_id=harbor&min_position={position}"),
            Some(&admin_of("harbor")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{pending}");
    assert_eq!(
        pending["items"][0]["reservation_id"],
        id.as_str(),
        "{pending}"
    );

    let (status, body) = commands_api
        .post(
            &format!("/management/requests/{id}/approve"),
            &admin_of("harbor"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let doc = queries_api.wait_for(&id, "status", "confirmed", WAIT).await;
    assert_eq!(doc["payment_status"], "completed", "{doc}");
    let charges = sandbox.api().sandbox_charges().await;
    assert_eq!(charges.len(), 1, "{charges:?}");

    // The views are the server's: read there directly, and no views.db in the data dir.
    let views = MongoViewStore::connect(&url, &db)
        .await
        .expect("connect to MongoDB");
    let stored = views
        .reservation(id.parse().expect("uuid"))
        .await
        .expect("read the view")
        .expect("the reservation is in MongoDB");
    assert_eq!(stored.status, ReservationStatus::Confirmed);
    assert_eq!(stored.lodging_name.as_deref(), Some("Lodging harbor"));
    assert!(
        !dir.path().join("views.db").exists(),
        "the views are kept in MongoDB"
    );

    // The notifier's inbox and webhooks are in MongoDB too: each status change reached Alice's
    // inbox and her webhook, signed, in order.
    let confirmed_at = doc["position"].as_u64().expect("position");
    let (status, inbox) = queries_api
        .get(
            &format!("/me/notifications?min_position={confirmed_at}&wait_ms=10000"),
            Some(&customer("alice")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{inbox}");
    let mut told: Vec<String> = inbox["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["kind"] == "status_changed")
        .map(|i| i["status"].as_str().unwrap_or_default().to_string())
        .collect();
    told.reverse();
    assert_eq!(
        told.last().map(String::as_str),
        Some("confirmed"),
        "{inbox}"
    );
    let hits = hook
        .wait_for("every change of Alice's stay", |hits| {
            hits.iter().filter(|h| h.ok()).count() >= told.len()
        })
        .await;
    let sent: Vec<String> = hits
        .iter()
        .filter(|h| h.ok())
        .inspect(|h| assert!(h.signed_by(&secret), "signed with Alice's secret"))
        .map(|h| h.json()["status"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(sent, told, "one delivery per status change, in order");
    for file in ["inbox.db", "webhooks.db"] {
        assert!(!dir.path().join(file).exists(), "{file}: kept in MongoDB");
    }

    for process in [notifier, saga, projector, queries, commands, sandbox] {
        process.stop().await;
    }
    views.drop_database().await.expect("drop the test database");
}
