//! Real `stayledger` processes for tests: start a subcommand on 127.0.0.1 port 0, read its address
//! from the `listening on http://...` line it prints, talk to it over HTTP, stop it with SIGTERM
//! (graceful) or SIGKILL (crash). A child still running when its handle drops is killed.
//! Include with `#[path = "common/process.rs"] mod process;`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use http_edge::{Auth, Claims, Role};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

/// The JWT secret every child gets (`STAYLEDGER_JWT_SECRET`), so the test can mint tokens.
pub const SECRET: &str = "process-tests-secret-of-at-least-32-bytes";

/// The payment gateway key every child gets (`STAYLEDGER_PAYMENT_GATEWAY_KEY`): the saga presents
/// it, the sandbox takes it.
pub const GATEWAY_KEY: &str = "sk_sandbox_process_tests_key_0123456789";

/// How long a child may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Process {
    pub name: String,
    pub addr: SocketAddr,
    /// `http://<addr>`.
    pub base: String,
    child: tokio::process::Child,
    /// Lines the child printed on stdout after its address line.
    lines: mpsc::UnboundedReceiver<String>,
}

impl Process {
    /// Start `stayledger <args...>` and wait for its address line.
    pub async fn start(args: &[&str]) -> Self {
        let command = tokio::process::Command::new(env!("CARGO_BIN_EXE_stayledger"));
        Self::spawn(command, args).await
    }

    /// Start the payment sandbox on a free loopback port, keeping its ledger in `data`.
    pub async fn sandbox(data: &str) -> Self {
        Self::start(&[
            "payment-sandbox",
            "--addr",
            "127.0.0.1:0",
            "--data-dir",
            data,
        ])
        .await
    }

    /// [`Process::start`] with the open-file limit of the child lowered to `files` (`ulimit -n`).
    pub async fn start_with_file_limit(files: u32, args: &[&str]) -> Self {
        let mut command = tokio::process::Command::new("sh");
        command.args([
            "-c",
            &format!("ulimit -n {files} && exec \"$0\" \"$@\""),
            env!("CARGO_BIN_EXE_stayledger"),
        ]);
        Self::spawn(command, args).await
    }

    /// [`Process::start`] with the child's largest file lowered to `blocks` of 512 bytes (`ulimit
    /// -f`) and SIGXFSZ ignored: a write past it fails (EFBIG) as a write on a full disk does.
    pub async fn start_with_file_size_limit(blocks: u64, args: &[&str]) -> Self {
        let mut command = tokio::process::Command::new("sh");
        command.args([
            "-c",
            &format!("trap '' XFSZ; ulimit -f {blocks} && exec \"$0\" \"$@\""),
            env!("CARGO_BIN_EXE_stayledger"),
        ]);
        Self::spawn(command, args).await
    }

    async fn spawn(mut command: tokio::process::Command, args: &[&str]) -> Self {
        let name = args.first().copied().unwrap_or("stayledger").to_string();
        for (key, _) in std::env::vars() {
            if key.starts_with("STAYLEDGER_") {
                command.env_remove(key);
            }
        }
        command
            .args(args)
            .env("STAYLEDGER_JWT_SECRET", SECRET)
            .env("STAYLEDGER_PAYMENT_GATEWAY_KEY", GATEWAY_KEY)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("{name} starts: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut reader = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(START_TIMEOUT, async {
            while let Ok(Some(line)) = reader.next_line().await {
                if let Some(addr) = listening_addr(&line) {
                    return Some(addr);
                }
            }
            None
        })
        .await;
        let addr = match first {
            Ok(Some(addr)) => addr,
            Ok(None) => panic!(
                "{name} exited without printing its address: {:?}",
                child.wait().await
            ),
            Err(_) => panic!("{name} printed no address within {START_TIMEOUT:?}"),
        };
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = reader.next_line().await {
                let _ = tx.send(line);
            }
        });
        Self {
            name,
            addr,
            base: format!("http://{addr}"),
            child,
            lines,
        }
    }

    pub fn api(&self) -> Api {
        Api::new(&self.base)
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("child still running")
    }

    /// Send SIGTERM (graceful shutdown).
    pub fn terminate(&self) {
        let pid = self.child.id().expect("child still running");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "SIGTERM to {}", self.name);
    }

    /// SIGKILL, and reap it.
    pub async fn crash(&mut self) {
        self.child.kill().await.expect("SIGKILL");
    }

    /// Wait for the process to exit.
    pub async fn exited(&mut self, timeout: Duration) -> ExitStatus {
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} still running after {timeout:?}", self.name))
            .expect("wait")
    }

    /// SIGTERM, then assert a clean exit within 10 s.
    pub async fn stop(mut self) {
        self.terminate();
        let status = self.exited(Duration::from_secs(10)).await;
        assert!(status.success(), "{} exits cleanly: {status}", self.name);
    }

    /// Wait for a stdout line containing `text`.
    pub async fn printed(&mut self, text: &str, timeout: Duration) -> String {
        let name = &self.name;
        tokio::time::timeout(timeout, async {
            while let Some(line) = self.lines.recv().await {
                if line.contains(text) {
                    return line;
                }
            }
            panic!("{name} closed stdout before printing {text:?}")
        })
        .await
        .unwrap_or_else(|_| panic!("{name} did not print {text:?} within {timeout:?}"))
    }
}

/// The address in a `... listening on http://ADDR[/path]` line.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = line.split("listening on http://").nth(1)?;
    let end = rest.find(['/', ' ']).unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// A token signed with [`SECRET`].
pub fn token(role: Role, sub: &str, lodgings: &[&str]) -> String {
    let lodgings = lodgings.iter().map(|l| (*l).to_string()).collect();
    let claims = Claims::new(sub, role, lodgings, Duration::from_secs(3600));
    Auth::new(SECRET).mint(&claims).expect("mint")
}

pub fn platform_admin() -> String {
    token(Role::Admin, "platform-admin", &["*"])
}

pub fn customer(sub: &str) -> String {
    token(Role::Customer, sub, &[])
}

pub fn admin_of(lodging: &str) -> String {
    token(Role::Admin, &format!("admin-of-{lodging}"), &[lodging])
}

pub fn auditor() -> String {
    token(Role::Auditor, "auditor-1", &[])
}

pub fn day(offset: i64) -> NaiveDate {
    domain::local_date(Utc::now(), domain::WAVE1_TIMEZONE) + chrono::TimeDelta::days(offset)
}

pub fn stay_body(lodging_id: &str, offset: i64, nights: i64) -> Value {
    json!({"lodging_id": lodging_id, "check_in": day(offset).to_string(),
           "check_out": day(offset + nights).to_string(), "guests": 2})
}

/// A JSON client of one process.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
}

impl Api {
    pub fn new(base: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client");
        Self {
            http,
            base: base.to_string(),
        }
    }

    /// One request; `Err` only when no answer came (connection refused, reset, closed, timeout).
    pub async fn try_call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<(StatusCode, Value), reqwest::Error> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, value))
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.try_call(Method::GET, path, token, None, None)
            .await
            .unwrap_or_else(|e| panic!("GET {}{path}: {e}", self.base))
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.try_call(Method::POST, path, Some(token), Some(&body), None)
            .await
            .unwrap_or_else(|e| panic!("POST {}{path}: {e}", self.base))
    }

    /// Register a lodging (as a platform admin) with 4 guests per room.
    pub async fn register_lodging(&self, lodging_id: &str, rooms: u32, mode: &str) {
        let body = json!({"lodging_id": lodging_id, "name": format!("Lodging {lodging_id}"),
            "nightly_rate": 120_000, "currency": "KRW", "rooms": rooms, "max_guests": 4,
            "approval_mode": mode});
        let (status, answer) = self.post("/lodgings", &platform_admin(), body).await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "register {lodging_id}: {answer}"
        );
    }

    /// Request a stay; returns (reservation id, position).
    pub async fn request(&self, customer_id: &str, lodging_id: &str, offset: i64) -> (String, u64) {
        let (status, body) = self
            .post(
                "/reservations",
                &customer(customer_id),
                stay_body(lodging_id, offset, 2),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "request: {body}");
        let id = body["id"].as_str().expect("id").to_string();
        (id, body["position"].as_u64().expect("position"))
    }

    /// Poll `GET /reservations/{id}` (as an auditor) until `field` is `expected`.
    pub async fn wait_for(
        &self,
        id: &str,
        field: &str,
        expected: &str,
        timeout: Duration,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        let token = auditor();
        loop {
            let (status, doc) = self.get(&format!("/reservations/{id}"), Some(&token)).await;
            if status == StatusCode::OK && doc[field] == expected {
                return doc;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{id}: {field} never became {expected}; last {status} {doc}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Poll `path` until it answers `expected`.
    pub async fn wait_status(&self, path: &str, expected: StatusCode, timeout: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let (status, body) = self.get(path, None).await;
            if status == expected {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}{path} never answered {expected}; last {status} {body}",
                self.base
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        let (status, body) = self.get("/metrics", None).await;
        assert_eq!(status, StatusCode::OK);
        body.as_str().unwrap_or_default().to_string()
    }

    /// The value of an unlabelled series (or a series with exactly `labels`) in `/metrics`.
    pub async fn metric(&self, name: &str, labels: &str) -> Option<f64> {
        stayledger::metrics::sample(&self.metrics().await, name, labels)
    }

    /// [`Api::metric`] that must be there: a missing series fails the test.
    pub async fn required_metric(&self, name: &str, labels: &str) -> f64 {
        let text = self.metrics().await;
        stayledger::metrics::sample(&text, name, labels)
            .unwrap_or_else(|| panic!("{} publishes no {name}{{{labels}}}:\n{text}", self.base))
    }

    /// Every sandbox charge (this must be a `payment-sandbox` process).
    pub async fn sandbox_charges(&self) -> Vec<Value> {
        let (status, body) = self.get("/sandbox/charges", Some(&platform_admin())).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body.as_array().cloned().unwrap_or_default()
    }
}
