//! The SQLite webhook store keeps a delivery's body apart from its state: written once when it is
//! queued, never in the state row an attempt rewrites. A file written while bodies were kept
//! inside the state rows opens with every body in place, and goes on sending the same bytes.
//! Real SQLite files; the rows are read back with plain SQL.

use chrono::Utc;
use notifier::{DeliveryState, SqliteWebhooks, WebhookStore};
use readmodel::PageRequest;
use rusqlite::Connection;
use uuid::Uuid;

#[path = "common/fixtures.rs"]
mod fixtures;
use fixtures::{delivery, subscription};

/// The `doc` of the state row of `seq`, and its body row (if any), as the file has them.
fn raw(file: &std::path::Path, subscription: Uuid, seq: i64) -> (String, Option<String>) {
    let conn = Connection::open(file).expect("open the file");
    conn.query_row(
        "SELECT d.doc, b.body FROM deliveries AS d LEFT JOIN delivery_bodies AS b ON b.id = d.rowid
         WHERE d.subscription_id = ?1 AND d.seq = ?2",
        rusqlite::params![subscription.to_string(), seq],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )
    .expect("the row")
}

fn body_in(doc: &str) -> String {
    let doc: serde_json::Value = serde_json::from_str(doc).expect("a JSON doc");
    doc["body"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn a_body_is_written_once_and_an_attempt_rewrites_only_the_state() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("webhooks.db");
    let store = SqliteWebhooks::open(&file).expect("open");
    let s = subscription();
    store.add_subscription(&s).await.expect("subscribe");
    let queued = delivery(s.id, 8);
    store
        .enqueue(std::slice::from_ref(&queued), 8)
        .await
        .expect("enqueue");

    let (doc, body) = raw(&file, s.id, 8);
    assert_eq!(body.as_deref(), Some(queued.body.as_str()), "the body row");
    assert_eq!(body_in(&doc), "", "the state row holds no body: {doc}");

    let open = store.open_deliveries(s.id, 32).await.expect("window");
    assert_eq!(
        open,
        std::slice::from_ref(&queued),
        "read back whole, body and all"
    );

    let sent = notifier::Delivery {
        state: DeliveryState::Delivered,
        attempts: 1,
        last_status_code: Some(204),
        settled_at: Some(Utc::now()),
        ..queued.clone()
    };
    assert_eq!(
        store
            .record_attempts(std::slice::from_ref(&sent))
            .await
            .expect("save"),
        1
    );
    let (doc, body) = raw(&file, s.id, 8);
    assert_eq!(
        body.as_deref(),
        Some(queued.body.as_str()),
        "the body stays"
    );
    assert_eq!(body_in(&doc), "", "the saved state holds no body: {doc}");
    let listed = store
        .deliveries(s.id, &PageRequest::first(10))
        .await
        .expect("list");
    assert_eq!(listed.items, [sent]);

    assert!(store.remove_subscription(s.id).await.expect("remove"));
    let conn = Connection::open(&file).expect("open the file");
    let bodies: i64 = conn
        .query_row("SELECT count(*) FROM delivery_bodies", [], |r| r.get(0))
        .expect("count");
    assert_eq!(bodies, 0, "a removed subscription's bodies go with it");
}

#[tokio::test]
async fn a_file_with_bodies_inside_the_state_rows_keeps_every_body() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("webhooks.db");
    let s = subscription();
    let (pending, delivered) = (delivery(s.id, 4), delivery(s.id, 5));
    let delivered = notifier::Delivery {
        state: DeliveryState::Delivered,
        attempts: 1,
        last_status_code: Some(200),
        settled_at: Some(Utc::now()),
        ..delivered
    };
    {
        // The earlier layout: no body table, each body inside its row's doc.
        let store = SqliteWebhooks::open(&file).expect("create");
        store.add_subscription(&s).await.expect("subscribe");
        drop(store);
        let conn = Connection::open(&file).expect("open the file");
        conn.execute_batch("DROP TABLE delivery_bodies")
            .expect("the earlier layout");
        for d in [&pending, &delivered] {
            conn.execute(
                "INSERT INTO deliveries (subscription_id, seq, delivery_id, state, doc)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![
                    d.subscription_id.to_string(),
                    i64::try_from(d.seq).expect("small seq"),
                    d.delivery_id.to_string(),
                    d.state.as_str(),
                    serde_json::to_string(d).expect("doc")
                ],
            )
            .expect("a row of the earlier layout");
        }
    }

    let store = SqliteWebhooks::open(&file).expect("open and migrate");
    for d in [&pending, &delivered] {
        let (doc, body) = raw(&file, s.id, i64::try_from(d.seq).expect("small seq"));
        assert_eq!(body.as_deref(), Some(d.body.as_str()), "copied to its row");
        assert_eq!(body_in(&doc), d.body, "the doc is left as it was");
    }
    let open = store.open_deliveries(s.id, 32).await.expect("window");
    assert_eq!(open, std::slice::from_ref(&pending));

    let retrying = notifier::Delivery {
        state: DeliveryState::Retrying,
        attempts: 1,
        last_status_code: Some(503),
        ..pending.clone()
    };
    assert!(store.record_attempt(&retrying).await.expect("save"));
    let (doc, _) = raw(&file, s.id, 4);
    assert_eq!(body_in(&doc), "", "its next save writes the state alone");
    let open = store.open_deliveries(s.id, 32).await.expect("window");
    assert_eq!(open, [retrying], "and the same bytes go out next time");

    drop(store);
    let again = SqliteWebhooks::open(&file).expect("a second open");
    let listed = again
        .deliveries(s.id, &PageRequest::first(10))
        .await
        .expect("list");
    assert_eq!(listed.items.len(), 2);
    assert_eq!(listed.items[0], delivered, "newest first, body and all");
}
