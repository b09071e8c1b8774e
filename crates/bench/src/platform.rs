//! A real `serve` for one benchmark: `serve::start` on 127.0.0.1 port 0 over its own data dir, in
//! this process (the load generator shares the runtime and the two cores with it), plus tokens
//! minted with its secret and the set-up calls the benchmarks make. For diagnostics it can also run
//! the command routes alone (no saga, no projector, no query routes) over the same embedded log.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use chrono::Utc;
use command_api::CommandState;
use eventlog::{EventLog, Repositories, SqliteEventLog};
use http_edge::{Auth, Claims, Role};
use hyper::header::HeaderValue;
use hyper::StatusCode;
use serde_json::json;
use stayledger::data_dir::{self, secret};
use stayledger::serve::{self, Platform, ServeConfig};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::client::{bearer, Call, Connection};

pub struct BenchServe {
    addr: SocketAddr,
    auth: Arc<Auth>,
    /// `None` when only the command routes run.
    platform: Option<Platform>,
    shutdown: CancellationToken,
    tasks: JoinSet<anyhow::Result<()>>,
}

impl BenchServe {
    /// Start `serve` with its defaults over `dir`.
    pub async fn start(dir: &Path) -> anyhow::Result<Self> {
        Self::start_with(dir, |_| {}).await
    }

    /// Start `serve` over `dir` with its defaults as `configure` leaves them.
    pub async fn start_with(
        dir: &Path,
        configure: impl FnOnce(&mut ServeConfig),
    ) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding 127.0.0.1:0")?;
        let shutdown = CancellationToken::new();
        let mut config = ServeConfig::new(dir);
        configure(&mut config);
        let (platform, tasks) = serve::start(config, listener, shutdown.clone())
            .await
            .context("starting serve")?;
        Ok(Self {
            addr: platform.addr,
            auth: Arc::clone(&platform.auth),
            platform: Some(platform),
            shutdown,
            tasks,
        })
    }

    /// Only the command routes (`command_api::router`) over an embedded log in `dir`.
    pub async fn commands_alone(dir: &Path) -> anyhow::Result<Self> {
        let log = SqliteEventLog::open(data_dir::events_path(dir)).context("opening the log")?;
        let log: Arc<dyn EventLog> = Arc::new(log);
        let auth = Arc::new(Auth::new(secret::load_or_create(dir)?));
        let app = command_api::router(CommandState::new(Repositories::new(log), Arc::clone(&auth)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding 127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let stop = shutdown.clone();
        tasks.spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
                .context("command routes")
        });
        Ok(Self {
            addr,
            auth,
            platform: None,
            shutdown,
            tasks,
        })
    }

    /// A handle on a `serve` running in another process at `addr` over `dir` (tokens are minted with
    /// the dir's secret: created here if the process has not yet); `stop` leaves that process be.
    pub fn attach(addr: SocketAddr, dir: &Path) -> anyhow::Result<Self> {
        Ok(Self {
            addr,
            auth: Arc::new(Auth::new(secret::load_or_create(dir)?)),
            platform: None,
            shutdown: CancellationToken::new(),
            tasks: JoinSet::new(),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The running platform's handles (not when only the command routes run).
    pub fn platform(&self) -> anyhow::Result<&Platform> {
        self.platform
            .as_ref()
            .context("only the command routes run here")
    }

    /// `Bearer <token>` for a principal, valid for a day.
    pub fn token(&self, role: Role, sub: &str, lodgings: &[&str]) -> anyhow::Result<HeaderValue> {
        let lodgings = lodgings.iter().map(|l| (*l).to_string()).collect();
        let claims = Claims::new(sub, role, lodgings, Duration::from_secs(86_400));
        let token = self
            .auth
            .mint(&claims)
            .map_err(|e| anyhow::anyhow!("minting a token: {e}"))?;
        bearer(&token)
    }

    pub fn customer(&self, n: usize) -> anyhow::Result<HeaderValue> {
        self.token(Role::Customer, &format!("bench-customer-{n}"), &[])
    }

    /// Register `count` lodgings `{prefix}-{n}` with the most rooms allowed (no request is refused for room).
    pub async fn register_lodgings(
        &self,
        prefix: &str,
        count: usize,
        mode: &str,
    ) -> anyhow::Result<Vec<String>> {
        let admin = self.token(Role::Admin, "bench-platform-admin", &["*"])?;
        let mut connection = Connection::open(self.addr()).await?;
        let mut ids = Vec::with_capacity(count);
        for n in 0..count {
            let id = format!("{prefix}-{n}");
            let body = json!({"lodging_id": id, "name": format!("Bench lodging {n}"), "nightly_rate": 120_000,
                              "currency": "KRW", "rooms": 10_000, "max_guests": 4, "approval_mode": mode});
            let call = Call::post("/lodgings", &admin, Bytes::from(body.to_string()));
            let (status, answer) = connection.send(&call).await?;
            anyhow::ensure!(
                status == StatusCode::CREATED,
                "registering {id}: {status} {}",
                String::from_utf8_lossy(&answer)
            );
            ids.push(id);
        }
        Ok(ids)
    }

    /// Wait until the saga and the projector have handled everything in the log and the log stops
    /// growing; returns the head position.
    pub async fn settle(&self, timeout: Duration) -> anyhow::Result<u64> {
        let deadline = Instant::now() + timeout;
        let platform = self.platform()?;
        let mut last = u64::MAX;
        loop {
            let head = platform.log.head_position().await?;
            let saga = platform.saga.checkpoint();
            let views = platform.projector.applied_position();
            if head == last && saga >= head && views >= head {
                return Ok(head);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "not settled after {timeout:?}: head {head}, saga {saga}, views {views}"
            );
            last = head;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The event log writer's counters from `/metrics`: appends, events, group-commit transactions.
    pub async fn writer_counters(&self) -> anyhow::Result<WriterCounters> {
        let mut connection = Connection::open(self.addr()).await?;
        let call = Call {
            method: hyper::Method::GET,
            path: "/metrics".into(),
            auth: None,
            body: None,
        };
        let (status, text) = connection.send(&call).await?;
        anyhow::ensure!(status == StatusCode::OK, "GET /metrics: {status}");
        let text = String::from_utf8_lossy(&text);
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
                .unwrap_or(0.0)
        };
        Ok(WriterCounters {
            at: Instant::now(),
            appends: value("stayledger_appends_total"),
            events: value("stayledger_appended_events_total"),
            transactions: value("stayledger_append_transactions_total"),
        })
    }

    /// Shut down and wait for every task.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), serve::wait(self.tasks))
            .await
            .context("serve did not stop within 30 s")?
    }
}

/// A `POST /reservations` body: a stay of `nights` nights `offset` days from today, 2 guests.
pub fn stay_body(lodging_id: &str, offset: i64, nights: i64) -> Bytes {
    let today = Utc::now().date_naive();
    let check_in = today + chrono::TimeDelta::days(offset);
    let check_out = check_in + chrono::TimeDelta::days(nights);
    let body = json!({"lodging_id": lodging_id, "check_in": check_in.to_string(),
                      "check_out": check_out.to_string(), "guests": 2});
    Bytes::from(body.to_string())
}

/// Request bodies spread over `lodgings`, 1-3 nights between 200 and 600 days ahead.
pub fn stay_bodies(lodgings: &[String], count: usize) -> Vec<Bytes> {
    if lodgings.is_empty() {
        return Vec::new();
    }
    (0..count)
        .map(|n| {
            let lodging = &lodgings[n % lodgings.len()];
            let offset = 200 + (n * 37 % 400) as i64;
            stay_body(lodging, offset, 1 + (n % 3) as i64)
        })
        .collect()
}

/// The event log writer's totals at one instant.
#[derive(Debug, Clone, Copy)]
pub struct WriterCounters {
    at: Instant,
    appends: f64,
    events: f64,
    transactions: f64,
}

impl WriterCounters {
    /// Rates between `self` and a later reading: appends/s, events/s, fsynced transactions/s.
    pub fn rates_until(&self, later: &WriterCounters) -> serde_json::Value {
        let seconds = (later.at - self.at).as_secs_f64().max(f64::EPSILON);
        let transactions = later.transactions - self.transactions;
        json!({
            "seconds": seconds,
            "appends_per_sec": (later.appends - self.appends) / seconds,
            "events_per_sec": (later.events - self.events) / seconds,
            "transactions_per_sec": transactions / seconds,
            "appends_per_transaction": (later.appends - self.appends) / transactions.max(1.0),
        })
    }
}
