//! The real command service on 127.0.0.1:0 over a real SQLite event log in a temp dir, and a
//! reqwest client speaking to it.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use command_api::{run, CommandConfig, CommandOptions};
use eventlog::{EventLog, RecordedEvent, Repositories, SqliteEventLog};
use http_edge::{Auth, Claims, Role};
use reqwest::StatusCode;
use serde_json::{json, Value};
pub use test_client::Answer;
use tokio_util::sync::CancellationToken;

pub const SECRET: &[u8] = b"test-secret-test-secret-test-sec";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub auth: Auth,
    pub log: Arc<dyn EventLog>,
    shutdown: CancellationToken,
    dir: Arc<tempfile::TempDir>,
}

/// `YYYY-MM-DD` of today + `days`, today where lodgings are by default (Asia/Seoul).
pub fn day(days: i64) -> String {
    (domain::local_date(Utc::now(), domain::WAVE1_TIMEZONE) + chrono::Duration::days(days))
        .format("%Y-%m-%d")
        .to_string()
}

impl TestApp {
    pub async fn start() -> Self {
        Self::with_options(CommandOptions::default()).await
    }

    /// The service with `options` (e.g. a set clock, another default time zone).
    pub async fn with_options(options: CommandOptions) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let log: Arc<dyn EventLog> =
            Arc::new(SqliteEventLog::open(dir.path().join("events.db")).expect("open log"));
        Self::serve_with(log, Arc::new(dir), options).await
    }

    /// The service over `log` (e.g. a fault-injecting wrapper of a real log in `dir`).
    pub async fn on_log(log: Arc<dyn EventLog>, dir: tempfile::TempDir) -> Self {
        Self::serve(log, Arc::new(dir)).await
    }

    /// Another instance of the service on the same log (nothing shared in memory).
    pub async fn sibling(&self) -> Self {
        Self::serve(Arc::clone(&self.log), Arc::clone(&self.dir)).await
    }

    async fn serve(log: Arc<dyn EventLog>, dir: Arc<tempfile::TempDir>) -> Self {
        Self::serve_with(log, dir, CommandOptions::default()).await
    }

    async fn serve_with(
        log: Arc<dyn EventLog>,
        dir: Arc<tempfile::TempDir>,
        options: CommandOptions,
    ) -> Self {
        let auth = Arc::new(Auth::new(SECRET));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let shutdown = CancellationToken::new();
        let mut config = CommandConfig::new(Repositories::new(Arc::clone(&log)), auth);
        config.options = options;
        tokio::spawn(run(config, listener, shutdown.clone()));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client");
        Self {
            base,
            client,
            auth: Auth::new(SECRET),
            log,
            shutdown,
            dir,
        }
    }

    pub fn token(&self, role: Role, sub: &str, lodgings: &[&str]) -> String {
        let lodgings = lodgings.iter().map(|l| (*l).to_string()).collect();
        let claims = Claims::new(sub, role, lodgings, Duration::from_secs(600));
        self.auth.mint(&claims).expect("mint")
    }

    pub fn customer(&self, sub: &str) -> String {
        self.token(Role::Customer, sub, &[])
    }

    pub fn platform_admin(&self) -> String {
        self.token(Role::Admin, "root", &["*"])
    }

    /// POST raw bytes with optional token and Idempotency-Key.
    pub async fn post_raw(
        &self,
        path: &str,
        token: Option<&str>,
        key: Option<&str>,
        body: Vec<u8>,
    ) -> Answer {
        let key = key.map(|key| ("Idempotency-Key", key));
        let url = format!("{}{path}", self.base);
        test_client::send(
            &self.client,
            reqwest::Method::POST,
            &url,
            token,
            key.as_slice(),
            Some(body),
        )
        .await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.post_raw(path, Some(token), None, body.to_string().into_bytes())
            .await
    }

    pub async fn post_keyed(&self, path: &str, token: &str, key: &str, body: Value) -> Answer {
        self.post_raw(path, Some(token), Some(key), body.to_string().into_bytes())
            .await
    }

    /// Register lodging `id` (manual approval) with `rooms` rooms.
    pub async fn lodging(&self, id: &str, rooms: u32) -> Answer {
        let body = json!({"lodging_id": id, "name": format!("Lodging {id}"), "nightly_rate": 100_000,
            "rooms": rooms, "max_guests": 4});
        let answer = self.post("/lodgings", &self.platform_admin(), body).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
        answer
    }

    /// A customer's request for nights `from..to` (days from today); returns the reservation id.
    pub async fn reserve(&self, customer: &str, lodging: &str, from: i64, to: i64) -> String {
        let body = json!({"lodging_id": lodging, "check_in": day(from), "check_out": day(to), "guests": 2});
        let answer = self
            .post("/reservations", &self.customer(customer), body)
            .await;
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{:?}", answer.body);
        answer.body["id"].as_str().expect("id").to_string()
    }

    pub async fn head(&self) -> u64 {
        self.log.head_position().await.expect("head")
    }

    pub async fn stream(&self, stream: &str) -> Vec<RecordedEvent> {
        self.log.read_stream(stream, 0, 10_000).await.expect("read")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
