//! A real `serve` on 127.0.0.1 port 0 over a temp data dir, and an HTTP client for it.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use http_edge::{Claims, Role};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use stayledger::serve::{self, Platform, ServeConfig};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub struct TestPlatform {
    pub platform: Platform,
    pub base: String,
    pub http: reqwest::Client,
    pub shutdown: CancellationToken,
    pub tasks: Option<JoinSet<anyhow::Result<()>>>,
    pub dir: tempfile::TempDir,
}

/// A quick policy for tests: short retry base, few attempts, default 24h deadline.
pub fn test_config(dir: &std::path::Path) -> ServeConfig {
    let mut config = ServeConfig::new(dir);
    config.policy.retry_base = chrono::TimeDelta::milliseconds(100);
    config.breaker.cool_down = Duration::from_millis(300);
    config.breaker.failure_threshold = 3;
    config.payment_timeout = Duration::from_secs(2);
    config
}

impl TestPlatform {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut ServeConfig)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = test_config(dir.path());
        adjust(&mut config);
        Self::start_in(dir, config).await
    }

    pub async fn start_in(dir: tempfile::TempDir, config: ServeConfig) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let shutdown = CancellationToken::new();
        let (platform, tasks) = serve::start(config, listener, shutdown.clone())
            .await
            .expect("serve starts");
        let base = format!("http://{}", platform.addr);
        Self {
            platform,
            base,
            http: reqwest::Client::new(),
            shutdown,
            tasks: Some(tasks),
            dir,
        }
    }

    /// Stop cleanly and hand back the data dir (for restarts and rebuild checks).
    pub async fn stop(mut self) -> tempfile::TempDir {
        self.shutdown.cancel();
        if let Some(tasks) = self.tasks.take() {
            tokio::time::timeout(Duration::from_secs(10), serve::wait(tasks))
                .await
                .expect("shutdown within 10 s")
                .expect("clean shutdown");
        }
        self.dir
    }

    pub fn token(&self, role: Role, sub: &str, lodgings: &[&str]) -> String {
        let claims = Claims::new(
            sub,
            role,
            lodgings.iter().map(|l| (*l).to_string()).collect(),
            Duration::from_secs(3600),
        );
        self.platform.auth.mint(&claims).expect("mint")
    }

    pub fn platform_admin(&self) -> String {
        self.token(Role::Admin, "platform-admin", &["*"])
    }

    pub fn customer(&self, sub: &str) -> String {
        self.token(Role::Customer, sub, &[])
    }

    pub fn admin_of(&self, lodging: &str) -> String {
        self.token(Role::Admin, &format!("admin-of-{lodging}"), &[lodging])
    }

    pub fn auditor(&self) -> String {
        self.token(Role::Auditor, "auditor-1", &[])
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let text = response.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn register_lodging(&self, lodging_id: &str, rooms: u32, mode: &str) {
        let (status, body) = self
            .post(
                "/lodgings",
                &self.platform_admin(),
                json!({"lodging_id": lodging_id, "name": format!("Lodging {lodging_id}"), "nightly_rate": 120_000,
                       "currency": "KRW", "rooms": rooms, "max_guests": 4, "approval_mode": mode}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "register {lodging_id}: {body}");
    }

    /// Request a stay `offset` days from today for `nights` nights; returns (reservation id, position).
    pub async fn request(
        &self,
        customer: &str,
        lodging_id: &str,
        offset: i64,
        nights: i64,
    ) -> (String, u64) {
        let (status, body) = self
            .post(
                "/reservations",
                &self.customer(customer),
                stay_body(lodging_id, offset, nights),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "request: {body}");
        (
            body["id"].as_str().expect("id").to_string(),
            body["position"].as_u64().expect("position"),
        )
    }

    pub async fn approve(&self, lodging_id: &str, reservation_id: &str) -> (StatusCode, Value) {
        self.post(
            &format!("/management/requests/{reservation_id}/approve"),
            &self.admin_of(lodging_id),
            json!({}),
        )
        .await
    }

    /// Poll the ReservationList until `field` has `expected` (or panic after `timeout`).
    pub async fn wait_for(
        &self,
        reservation_id: &str,
        field: &str,
        expected: &str,
        timeout: Duration,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        let token = self.auditor();
        loop {
            let (status, doc) = self
                .get(&format!("/reservations/{reservation_id}"), &token)
                .await;
            if status == StatusCode::OK && doc[field] == expected {
                return doc;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{reservation_id}: {field} never became {expected}; last {status} {doc}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Make the sandbox gateway answer every charge 503 (or stop doing so).
    pub async fn set_overloaded(&self, overloaded: bool) {
        let (status, body) = self
            .call(
                Method::PUT,
                "/sandbox/config",
                Some(&self.platform_admin()),
                Some(json!({ "overloaded": overloaded })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    pub async fn sandbox_charges(&self) -> Vec<Value> {
        self.sandbox_ledger("/sandbox/charges").await
    }

    pub async fn sandbox_payouts(&self) -> Vec<Value> {
        self.sandbox_ledger("/sandbox/payouts").await
    }

    async fn sandbox_ledger(&self, path: &str) -> Vec<Value> {
        let (status, body) = self.get(path, &self.platform_admin()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body.as_array().cloned().unwrap_or_default()
    }
}

pub fn day(offset: i64) -> NaiveDate {
    domain::local_date(Utc::now(), domain::WAVE1_TIMEZONE) + chrono::TimeDelta::days(offset)
}

pub fn stay_body(lodging_id: &str, offset: i64, nights: i64) -> Value {
    json!({"lodging_id": lodging_id, "check_in": day(offset).to_string(),
           "check_out": day(offset + nights).to_string(), "guests": 2})
}

/// Run the `stayledger` binary with `args` on `data_dir` (`--data-dir`), to completion.
pub fn stayledger(args: &[&str], data_dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stayledger"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("stayledger runs")
}
