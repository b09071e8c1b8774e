//! An SSE client for `GET /stream`: reads `event:`/`id:`/`data:` frames off a live answer (the
//! keep-alive comments skipped). Include with `#[path = "common/sse.rs"] mod sse;` next to
//! `mod common;`.
#![allow(dead_code)]

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::TestPlatform;

/// How long [`Frames::until`] waits for the next frame.
pub const WAIT: Duration = Duration::from_secs(15);

/// One SSE frame.
#[derive(Debug, Clone)]
pub struct Frame {
    pub id: u64,
    pub event: String,
    pub data: Value,
}

/// Reads frames off a `GET /stream` answer (comments, the keep-alives, are skipped).
pub struct Frames {
    response: reqwest::Response,
    buffer: String,
}

impl Frames {
    pub async fn open(
        t: &TestPlatform,
        query: &str,
        token: Option<&str>,
        last: Option<u64>,
    ) -> Self {
        let mut request = t.http.get(format!("{}/stream{query}", t.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(last) = last {
            request = request.header("Last-Event-ID", last.to_string());
        }
        let response = request.send().await.expect("sent");
        assert_eq!(response.status(), StatusCode::OK);
        let kind = response.headers()["content-type"]
            .to_str()
            .unwrap_or_default();
        assert!(kind.starts_with("text/event-stream"), "{kind}");
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next frame within `timeout`, if any.
    pub async fn next(&mut self, timeout: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().parse().ok();
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if let Some(id) = id {
                    let data = serde_json::from_str(&data).expect("a frame's data is JSON");
                    return Some(Frame { id, event, data });
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk()).await;
            match chunk {
                Ok(Ok(Some(bytes))) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                _ => return None,
            }
        }
    }

    /// Frames until one shows `reservation` in `status` (panics after [`WAIT`]).
    pub async fn until(&mut self, reservation: &str, status: &str) -> Vec<Frame> {
        let mut seen = Vec::new();
        loop {
            let frame = self
                .next(WAIT)
                .await
                .unwrap_or_else(|| panic!("no frame with {status}; saw {seen:?}"));
            let done =
                frame.data["reservation_id"] == reservation && frame.data["status"] == status;
            seen.push(frame);
            if done {
                return seen;
            }
        }
    }
}
