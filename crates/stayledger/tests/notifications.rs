//! The inbox over real HTTP on a real `serve`: the notifier follows the log under its own
//! checkpoint, and `GET /me/notifications` gives a customer one entry per status change of their
//! reservations and a lodging's admin the new requests (a `pay_first` one only once paid),
//! payments and cancellations of the lodgings they manage, newest first; no one reads another's.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::TestPlatform;
use readmodel::inbox::{InboxFilter, InboxStore, SqliteInbox, NOTIFIER_ID};
use readmodel::{PageRequest, ProjectionTarget};
use reqwest::StatusCode;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(15);

/// The caller's inbox once the notifier reached `position`: (kind, status) oldest first.
async fn inbox(t: &TestPlatform, token: &str, position: &Value) -> Vec<(String, String)> {
    let path = format!("/me/notifications?min_position={position}&wait_ms=5000&limit=100");
    let (status, page) = t.get(&path, token).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let items = page["items"].as_array().cloned().unwrap_or_default();
    let positions: Vec<u64> = items
        .iter()
        .filter_map(|i| i["position"].as_u64())
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {positions:?}"
    );
    items
        .iter()
        .rev()
        .map(|i| {
            let text = |f: &str| i[f].as_str().unwrap_or_default().to_string();
            (text("kind"), text("status"))
        })
        .collect()
}

/// The position of reservation `id`'s request on the desk of `lodging` once it is there.
async fn desk_position(t: &TestPlatform, lodging: &str, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let path = format!("/management/requests?lodging_id={lodging}");
        let (status, page) = t.get(&path, &t.admin_of(lodging)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let items = page["items"].as_array().cloned().unwrap_or_default();
        if let Some(row) = items.iter().find(|r| r["reservation_id"] == id) {
            return row["position"].clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id} never reached the desk"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn told(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, s)| (k.to_string(), s.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_and_desks_read_their_own_inbox() {
    let t = TestPlatform::start().await;
    t.register_lodging("inbox-inn", 2, "manual").await;
    let (id, _) = t.request("sora", "inbox-inn", 6, 2).await;
    let (status, body) = t.approve("inbox-inn", &id).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    t.wait_for(&id, "status", "confirmed", WAIT).await;
    let (status, cancelled) = t
        .post(
            &format!("/reservations/{id}/cancel"),
            &t.customer("sora"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{cancelled}");
    let refunded = t.wait_for(&id, "refund_status", "refunded", WAIT).await;
    let at = &refunded["position"];

    assert_eq!(
        inbox(&t, &t.customer("sora"), at).await,
        told(&[
            ("status_changed", "requested"),
            ("status_changed", "approved"),
            ("status_changed", "confirmed"),
            ("status_changed", "cancelled"),
        ]),
        "one entry per status change"
    );
    assert_eq!(
        inbox(&t, &t.admin_of("inbox-inn"), at).await,
        told(&[
            ("new_request", "requested"),
            ("payment_received", "approved"),
            ("cancelled", "cancelled"),
        ])
    );
    assert!(inbox(&t, &t.customer("someone-else"), at).await.is_empty());
    assert!(inbox(&t, &t.admin_of("another-inn"), at).await.is_empty());
    assert!(inbox(&t, &t.auditor(), at).await.is_empty());
    assert_eq!(
        inbox(&t, &t.platform_admin(), at).await.len(),
        3,
        "the platform admin reads every desk"
    );
    let (status, page) = t
        .get("/me/notifications?limit=1", &t.customer("sora"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let cursor = page["next_cursor"].as_str().expect("a next page");
    let (status, next) = t
        .get(
            &format!("/me/notifications?limit=1&cursor={cursor}"),
            &t.customer("sora"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{next}");
    assert_eq!(next["items"][0]["status"], "confirmed");
    let (status, bad) = t
        .get("/me/notifications?cursor=zz", &t.customer("sora"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");

    // A pay_first hotel hears of a request only once it is paid.
    t.register_lodging("inbox-hotel", 1, "pay_first").await;
    let (paid, _) = t.request("yuri", "inbox-hotel", 9, 1).await;
    t.wait_for(&paid, "status", "paid", WAIT).await;
    // It reaches the desk (`RequestPaid`) after the reservation is paid: wait for the desk's list.
    let on_desk = desk_position(&t, "inbox-hotel", &paid).await;
    let desk = inbox(&t, &t.admin_of("inbox-hotel"), &on_desk).await;
    let requests: Vec<_> = desk.iter().filter(|(k, _)| k == "new_request").collect();
    assert_eq!(requests.len(), 1, "{desk:?}");
    assert_eq!(requests[0].1, "paid", "{desk:?}");

    // Rebuilt from position 0 into a fresh inbox, the notifier writes the same entries.
    let head = t.platform.log.head_position().await.expect("head");
    let everything = InboxFilter::Lodgings(None);
    let live = t.platform.inbox.as_ref();
    let at_head = inbox(&t, &t.platform_admin(), &json!(head)).await;
    assert!(!at_head.is_empty());
    let dir = tempfile::tempdir().expect("dir");
    let fresh = Arc::new(SqliteInbox::open(dir.path().join("inbox.db")).expect("open"));
    let rebuilt_to = projector::rebuild_target(
        Arc::clone(&t.platform.log),
        Arc::clone(&fresh) as Arc<dyn ProjectionTarget>,
        NOTIFIER_ID,
        |_, _| {},
    )
    .await
    .expect("rebuild the inbox");
    assert_eq!(rebuilt_to, head);
    for filter in [everything, InboxFilter::Customer("sora".into())] {
        let page = PageRequest::first(500);
        let (live, rebuilt) = (
            live.entries(&filter, &page).await.expect("live"),
            fresh.entries(&filter, &page).await.expect("rebuilt"),
        );
        assert!(!live.items.is_empty());
        assert_eq!(live.items, rebuilt.items, "{filter:?}: rebuild equals live");
    }
    t.stop().await;
}
