//! The live streams' hub on the query service alone, its queues one frame long: the views held
//! back while a customer's reservations are requested and granted, then one batch brings many
//! frames at once, so the hub drops the streams that cannot take them; each joins again and
//! catches up from the log. Every stream still ends with each reservation's current version, ids
//! growing, no version twice, and another customer sees none of it.

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
        let response = app
            .client
            .get(format!("{}/stream", app.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("sent");
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

    let mut ids: Vec<Uuid> = Vec::new();
    for night in 1..=12 {
        let (id, _) = app.reserve("mina", "inn", night, night + 1).await;
        if night % 2 == 0 {
            app.approve("inn", id).await;
        }
        ids.push(id);
    }
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
    }
    let hub = app.stream_hub.as_ref().expect("the test's hub");
    assert!(
        hub.dropped() >= 1,
        "a batch of many frames overfills a one-frame queue"
    );
    assert!(
        joon.next(Duration::from_millis(300)).await.is_none(),
        "another customer sees nothing of it"
    );
}
