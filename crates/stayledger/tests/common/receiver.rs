//! A real webhook receiver for tests: an axum server on 127.0.0.1 that records every request it
//! gets (path, `Stayledger-Delivery`, `Stayledger-Signature`, the raw body, the status it answered)
//! and answers 204, 503, 410... as told, or is truly down (its listener closed, later bound again
//! on the same port). Include with `#[path = "common/receiver.rs"] mod receiver;`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::Router;
use chrono::Utc;
use notifier::signature;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// How long [`Receiver::wait_for`] waits.
pub const WAIT: Duration = Duration::from_secs(30);

/// One request a receiver got.
#[derive(Debug, Clone)]
pub struct Hit {
    pub path: String,
    pub delivery: Option<String>,
    pub signature: Option<String>,
    pub content_type: Option<String>,
    pub body: Bytes,
    /// The status it was answered with.
    pub answered: u16,
    /// The receiver's clock when it came (unix seconds).
    pub at_unix: i64,
    /// How many times the receiver had come back up when it came.
    pub epoch: u32,
}

impl Hit {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.answered)
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a delivery's body is JSON")
    }
}

#[derive(Clone, Default)]
struct Shared {
    answer: Arc<AtomicU16>,
    hits: Arc<Mutex<Vec<Hit>>>,
    epoch: Arc<AtomicU32>,
}

async fn record(
    State(shared): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let answered = shared.answer.load(Ordering::SeqCst);
    shared.hits.lock().expect("hits").push(Hit {
        path: uri.path().to_string(),
        delivery: header(signature::DELIVERY_HEADER),
        signature: header(signature::SIGNATURE_HEADER),
        content_type: header("content-type"),
        body,
        answered,
        at_unix: Utc::now().timestamp(),
        epoch: shared.epoch.load(Ordering::SeqCst),
    });
    StatusCode::from_u16(answered).expect("a status code")
}

/// A webhook receiver on 127.0.0.1: records every request, answers as told.
pub struct Receiver {
    pub addr: SocketAddr,
    shared: Shared,
    server: Option<JoinHandle<()>>,
}

fn serve_on(listener: TcpListener, shared: Shared) -> JoinHandle<()> {
    let app = Router::new().fallback(record).with_state(shared);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    })
}

impl Receiver {
    /// Up, answering `answer`.
    pub async fn start(answer: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shared = Shared::default();
        shared.answer.store(answer, Ordering::SeqCst);
        Self {
            addr,
            server: Some(serve_on(listener, shared.clone())),
            shared,
        }
    }

    pub fn url(&self) -> String {
        self.url_at("hook")
    }

    /// The url of a hook at `path` on this receiver.
    pub fn url_at(&self, path: &str) -> String {
        format!("http://{}/{path}", self.addr)
    }

    pub fn answer_with(&self, answer: u16) {
        self.shared.answer.store(answer, Ordering::SeqCst);
    }

    /// Truly down: the listener is closed (so connections are refused) and the open connections
    /// are shut. (A request that slips in on a closing connection is answered 503.)
    pub async fn go_down(&mut self) {
        self.answer_with(503);
        if let Some(server) = self.server.take() {
            server.abort();
            let _ = server.await;
        }
    }

    /// Up again on the same port, answering `answer`.
    pub async fn come_back(&mut self, answer: u16) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(e) => assert!(
                    tokio::time::Instant::now() < deadline,
                    "re-binding {}: {e}",
                    self.addr
                ),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        self.shared.epoch.fetch_add(1, Ordering::SeqCst);
        self.answer_with(answer);
        self.server = Some(serve_on(listener, self.shared.clone()));
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.shared.hits.lock().expect("hits").clone()
    }

    /// The requests got once `done` holds of them (panics after [`WAIT`]).
    pub async fn wait_for(&self, what: &str, done: impl Fn(&[Hit]) -> bool) -> Vec<Hit> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let hits = self.hits();
            if done(&hits) {
                return hits;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: not within {WAIT:?}; got {:?}",
                summary(&hits)
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// (type, position, answer) of each request, for messages.
pub fn summary(hits: &[Hit]) -> Vec<(String, u64, u16)> {
    hits.iter()
        .map(|h| {
            let body: Value = serde_json::from_slice(&h.body).unwrap_or(Value::Null);
            (
                body["type"].as_str().unwrap_or("?").to_string(),
                body["position"].as_u64().unwrap_or(0),
                h.answered,
            )
        })
        .collect()
}

impl Hit {
    /// Whether its signature verifies over its body with `secret` (within 5 minutes of now).
    pub fn signed_by(&self, secret: &str) -> bool {
        let header = self.signature.as_deref().unwrap_or_default();
        signature::verify(secret, header, &self.body, Utc::now().timestamp(), 300).is_ok()
    }
}
