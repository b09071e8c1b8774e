//! The live streams' hub on the query service alone, its queues one frame long: the views held
//! back while a customer's reservations are requested and granted, then a batch usually brings
//! many frames at once, so the hub drops the streams that cannot take them; each joins again and
//! catches up from the hub's latest frames. Every stream still gets every version of each
//! reservation, ids growing, no version twice, and another customer sees none of it. And with the views held back
//! while each request is made and granted, the streams (live, and one resuming from before them)
//! still send every version, each as its event left it; a derived version the views contradict (a
//! lodging renamed before the stream read its name) is sent as the views have it.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::QueryApp;
use http_edge::Role;
use serde_json::Value;
use uuid::Uuid;

/// One SSE frame: its id and its document.
struct Frame {
    id: u64,
    data: Value,
}

/// A `GET /stream` answer read frame by frame.
struct Frames {
    response: reqwest::Response,
    buffer: String,
}

impl Frames {
    async fn open(app: &QueryApp, token: &str) -> Self {
        Self::open_after(app, token, None).await
    }

    /// A stream resuming after `last_event_id` (`None`: from the head).
    async fn open_after(app: &QueryApp, token: &str, last_event_id: Option<u64>) -> Self {
        let mut request = app
            .client
            .get(format!("{}/stream", app.base))
            .bearer_auth(token);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        let response = request.send().await.expect("sent");
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        Self {
            response,
            buffer: String::new(),
        }
    }

    async fn next(&mut self, timeout: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let id = block
                    .lines()
                    .find_map(|l| l.strip_prefix("id:"))
                    .and_then(|v| v.trim().parse().ok());
                let data = block.lines().find_map(|l| l.strip_prefix("data:"));
                if let (Some(id), Some(data)) = (id, data) {
                    let data = serde_json::from_str(data.trim_start()).expect("JSON data");
                    return Some(Frame { id, data });
                }
                continue;
            }
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Ok(Ok(Some(bytes))) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                _ => return None,
            }
        }
    }

    /// Frames until every reservation of `current` showed its current version (id -> position).
    async fn until_current(&mut self, current: &HashMap<String, u64>) -> Vec<Frame> {
        let mut seen: Vec<Frame> = Vec::new();
        let mut latest: HashMap<String, u64> = HashMap::new();
        while current.iter().any(|(id, p)| latest.get(id) != Some(p)) {
            let frame = self
                .next(Duration::from_secs(20))
                .await
                .unwrap_or_else(|| panic!("stuck after {} frames: {latest:?}", seen.len()));
            let id = frame.data["reservation_id"].as_str().unwrap_or_default();
            latest.insert(id.to_string(), frame.id);
            seen.push(frame);
        }
        seen
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_the_hub_drops_for_a_full_queue_catch_up_without_a_gap_or_a_repeat() {
    let app = QueryApp::start_lagging_with_stream_queue(1).await;
    app.lodging("inn", 60).await;
    let mut mina = Frames::open(&app, &app.token(Role::Customer, "mina", &[])).await;
    let mut auditor = Frames::open(&app, &app.token(Role::Auditor, "audit", &[])).await;
    let mut joon = Frames::open(&app, &app.token(Role::Customer, "joon", &[])).await;

    let expected = requests_granted_by_turns(&app, 12).await;
    let ids: Vec<Uuid> = expected
        .keys()
        .map(|id| id.parse().expect("an id"))
        .collect();
    app.start_projector();
    app.project().await;
    let mut current = HashMap::new();
    for id in &ids {
        let view = app
            .views
            .reservation(*id)
            .await
            .expect("read")
            .expect("a view");
        current.insert(id.to_string(), view.position);
    }

    for frames in [
        mina.until_current(&current).await,
        auditor.until_current(&current).await,
    ] {
        let ids: Vec<u64> = frames.iter().map(|f| f.id).collect();
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "ids grow, none twice: {ids:?}"
        );
        assert!(frames
            .iter()
            .all(|f| f.data["customer_id"] == "mina" && f.data["position"].as_u64() == Some(f.id)));
        assert_eq!(
            versions_by_reservation(&frames),
            expected,
            "joined again from the hub's latest frames: every version"
        );
    }
    // Whether a stream was dropped depends on how the hub's batches fell (the log's subscription
    // may hand it one event at a time): in ~3% of runs under load none was. Dropping itself is
    // tested in `stream_hub.rs`; what this test holds is that every version arrives either way.
    let hub = app.stream_hub.as_ref().expect("the test's hub");
    if hub.dropped() == 0 {
        eprintln!("no stream was dropped in this run: the hub's batches came a frame at a time");
    }
    assert!(
        joon.next(Duration::from_millis(300)).await.is_none(),
        "another customer sees nothing of it"
    );
}

/// The views' document of reservation `id`.
async fn document(app: &QueryApp, id: Uuid) -> readmodel::ReservationView {
    let view = app.views.reservation(id).await.expect("read");
    view.expect("a view")
}

/// Mina's requests at "inn" for nights 1..=`nights`, every second one granted: each reservation's
/// versions as (position, status, approval status), as a stream must send them.
async fn requests_granted_by_turns(
    app: &QueryApp,
    nights: i64,
) -> HashMap<String, Vec<(u64, String, String)>> {
    let mut expected = HashMap::new();
    for night in 1..=nights {
        let (id, requested) = app.reserve("mina", "inn", night, night + 1).await;
        let mut versions = vec![(requested, "requested".into(), "pending".into())];
        if night % 2 == 0 {
            let granted = app.approve("inn", id).await;
            versions.push((granted, "requested".into(), "approved".into()));
        }
        expected.insert(id.to_string(), versions);
    }
    expected
}

/// The frames of `frames` by reservation: (id, status, approval status) in the order they came.
fn versions_by_reservation(frames: &[Frame]) -> HashMap<String, Vec<(u64, String, String)>> {
    let mut by_reservation: HashMap<String, Vec<(u64, String, String)>> = HashMap::new();
    for frame in frames {
        let field = |name: &str| frame.data[name].as_str().unwrap_or_default().to_string();
        by_reservation
            .entry(field("reservation_id"))
            .or_default()
            .push((frame.id, field("status"), field("approval_status")));
    }
    by_reservation
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_the_views_replaced_before_the_stream_read_them_are_still_sent() {
    let app = QueryApp::start_lagging_with_stream_queue(4096).await;
    let before = app.lodging("inn", 60).await;
    let token = app.token(Role::Customer, "mina", &[]);
    let mut live = Frames::open(&app, &token).await;

    // Each request and grant while the views stand still: the projector then takes them in one
    // batch, and the views hold each reservation's last version only.
    let expected = requests_granted_by_turns(&app, 6).await;
    let current: HashMap<String, u64> = expected
        .iter()
        .map(|(id, versions)| (id.clone(), versions.last().map_or(0, |v| v.0)))
        .collect();
    app.start_projector();
    app.project().await;

    let mut resumed = Frames::open_after(&app, &token, Some(before)).await;
    for (stream, frames) in [
        ("live", live.until_current(&current).await),
        ("resumed", resumed.until_current(&current).await),
    ] {
        assert_eq!(
            versions_by_reservation(&frames),
            expected,
            "{stream}: every version of each reservation, in order"
        );
        for frame in &frames {
            let id = frame.data["reservation_id"].as_str().unwrap_or_default();
            if current.get(id) == Some(&frame.id) {
                let view = document(&app, id.parse().expect("an id")).await;
                assert_eq!(
                    frame.data,
                    serde_json::to_value(&view).expect("JSON"),
                    "{stream}: the last version is the views' document"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_the_views_contradict_is_sent_as_the_views_have_it() {
    let app = QueryApp::start_lagging_with_stream_queue(4096).await;
    app.lodging("inn", 60).await;
    let mut live = Frames::open(&app, &app.token(Role::Customer, "mina", &[])).await;
    // Requested under the lodging's first name, renamed before the stream reads the lodging: the
    // version the stream derives names it as it is now, the views as it was at the request.
    let (id, requested) = app.reserve("mina", "inn", 3, 4).await;
    app.rename("inn", "The Renamed Inn").await;
    app.start_projector();
    app.project().await;

    let current = HashMap::from([(id.to_string(), requested)]);
    let frames = live.until_current(&current).await;
    let view = document(&app, id).await;
    assert_eq!(view.lodging_name.as_deref(), Some("Lodging inn"));
    assert_eq!(frames.len(), 1);
    assert_eq!(
        frames[0].data,
        serde_json::to_value(&view).expect("JSON"),
        "the views' document, not the derived one"
    );
}
