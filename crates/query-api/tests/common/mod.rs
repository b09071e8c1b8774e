//! The real query service on 127.0.0.1:0 over a real SQLite event log and SQLite view store in a
//! temp dir, with the real projector building the views. Commands are written with the real
//! command-side services; the saga's forwarding of a request to the lodging is done by `forward`.
#![allow(dead_code)]

pub mod contract;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use command_api::idempotency::IdempotencyKey;
use command_api::input::{CancelReservation, RegisterLodging, RequestReservation};
use command_api::{Auth, Claims, CommandOptions, CommandServices, Invocation, Principal, Role};
use domain::lodging::{ApprovalMode, LodgingAggregate, LodgingCommand};
use domain::Stay;
use eventlog::{CommandContext, EventLog, Repository, SqliteEventLog};
use projector::{Projector, ProjectorStatus, PROJECTOR_ID};
use query_api::{run, QueryConfig, ViewProgress};
use readmodel::{SqliteViewStore, ViewStore};
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const SECRET: &[u8] = b"query-secret-query-secret-query-";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lag {
    None,
    Watch,
    Checkpoint,
}

pub struct QueryApp {
    pub base: String,
    pub client: reqwest::Client,
    pub auth: Auth,
    pub log: Arc<dyn EventLog>,
    pub views: Arc<dyn ViewStore>,
    pub commands: CommandServices,
    pub projector: ProjectorStatus,
    idle_projector: std::sync::Mutex<Option<Projector>>,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Assert a problem+json answer of `status` and return it.
    pub fn problem(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "{:?}", self.body);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(self.body["status"], status);
        assert!(self.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
        &self.body
    }

    /// Assert 200 and return the body.
    pub fn ok(&self) -> &Value {
        assert_eq!(self.status, StatusCode::OK, "{:?}", self.body);
        &self.body
    }
}

pub fn day(days: i64) -> chrono::NaiveDate {
    Utc::now().date_naive() + chrono::Duration::days(days)
}

impl QueryApp {
    /// The query service alone (`query_api::run`), the projector following the log.
    pub async fn start() -> Self {
        Self::start_with(false, Lag::None).await
    }

    /// Command and query routers merged on one port, as `stayledger serve` does.
    pub async fn start_combined() -> Self {
        Self::start_with(true, Lag::None).await
    }

    /// The projector not started until [`QueryApp::start_projector`]; `min_position` learns the
    /// views' progress from the projector's watch, or by polling the stored checkpoint.
    pub async fn start_lagging(by_checkpoint: bool) -> Self {
        Self::start_with(
            false,
            if by_checkpoint {
                Lag::Checkpoint
            } else {
                Lag::Watch
            },
        )
        .await
    }

    async fn start_with(combined: bool, lag: Lag) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let log: Arc<dyn EventLog> =
            Arc::new(SqliteEventLog::open(dir.path().join("events.db")).expect("log"));
        let views: Arc<dyn ViewStore> =
            Arc::new(SqliteViewStore::open(dir.path().join("views.db")).expect("views"));
        let projector = Projector::new(Arc::clone(&log), Arc::clone(&views));
        let status = projector.status();
        let progress = match lag {
            Lag::Checkpoint => ViewProgress::Checkpoint {
                projector_id: PROJECTOR_ID.to_string(),
                every: Duration::from_millis(20),
            },
            _ => ViewProgress::Watch(status.subscribe()),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let shutdown = CancellationToken::new();
        let auth = Arc::new(Auth::new(SECRET));
        let config = QueryConfig {
            log: Arc::clone(&log),
            views: Arc::clone(&views),
            auth: Arc::clone(&auth),
            progress,
        };
        if combined {
            let commands =
                command_api::router(command_api::CommandState::new(Arc::clone(&log), auth));
            let state =
                query_api::QueryState::new(config.log, config.views, config.auth, config.progress);
            let app = commands
                .merge(query_api::router(state))
                .fallback(command_api::problem::not_found);
            let serving = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown.clone().cancelled_owned());
            tokio::spawn(async move { serving.await });
        } else {
            tokio::spawn(run(config, listener, shutdown.clone()));
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(40))
            .build()
            .expect("client");
        let app = Self {
            base,
            client,
            auth: Auth::new(SECRET),
            commands: CommandServices::new(Arc::clone(&log), CommandOptions::default()),
            log,
            views,
            projector: status,
            idle_projector: std::sync::Mutex::new(Some(projector)),
            shutdown,
            _dir: dir,
        };
        if lag == Lag::None {
            app.start_projector();
        }
        app
    }

    /// Start the projector (once).
    pub fn start_projector(&self) {
        let idle = self.idle_projector.lock().ok().and_then(|mut p| p.take());
        if let Some(projector) = idle {
            tokio::spawn(projector.run(self.shutdown.clone()));
        }
    }

    /// Wait until the views reflect everything in the log.
    pub async fn project(&self) {
        let head = self.log.head_position().await.expect("head");
        assert!(
            self.projector.wait_for(head, Duration::from_secs(20)).await,
            "views stuck before {head}"
        );
    }

    pub fn token(&self, role: Role, sub: &str, lodgings: &[&str]) -> String {
        let lodgings = lodgings.iter().map(|l| (*l).to_string()).collect();
        self.auth
            .mint(&Claims::new(sub, role, lodgings, Duration::from_secs(600)))
            .expect("mint")
    }

    pub async fn get(&self, path: &str, token: Option<&str>, headers: &[(&str, &str)]) -> Answer {
        self.send(reqwest::Method::GET, path, token, headers, None)
            .await
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Answer {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("send");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
        }
    }

    pub async fn get_as(&self, path: &str, token: &str) -> Answer {
        self.get(path, Some(token), &[]).await
    }

    fn invocation(role: Role, sub: &str, lodgings: &[&str], key: Option<&str>) -> Invocation {
        Invocation {
            principal: Principal {
                sub: sub.to_string(),
                role,
                lodgings: lodgings.iter().map(|l| (*l).to_string()).collect(),
            },
            request_id: Uuid::new_v4(),
            idempotency_key: key.and_then(|k| IdempotencyKey::parse(k).ok()),
        }
    }

    /// Register a manual-approval lodging; returns the position written.
    pub async fn lodging(&self, id: &str, rooms: u32) -> u64 {
        let input = RegisterLodging {
            lodging_id: Some(id.to_string()),
            name: format!("Lodging {id}"),
            nightly_rate: 50_000,
            currency: "KRW".into(),
            rooms,
            max_guests: 4,
            approval_mode: ApprovalMode::Manual,
            admin_id: None,
        };
        let who = Self::invocation(Role::Admin, "root", &["*"], None);
        self.commands
            .register_lodging(&who, input)
            .await
            .expect("register")
            .position
    }

    /// A customer's request for nights `from..to` (days from today): (reservation id, position).
    pub async fn reserve(&self, customer: &str, lodging: &str, from: i64, to: i64) -> (Uuid, u64) {
        let input = RequestReservation {
            lodging_id: lodging.to_string(),
            stay: Stay {
                check_in: day(from),
                check_out: day(to),
                guests: 2,
            },
        };
        let stay = input.stay;
        let who = Self::invocation(Role::Customer, customer, &[], None);
        let accepted = self
            .commands
            .request_reservation(&who, input)
            .await
            .expect("request");
        let id = Uuid::parse_str(&accepted.id).expect("uuid");
        self.forward(lodging, id, stay).await;
        (id, accepted.position)
    }

    /// Forward a request to the lodging's approval desk, as the saga does.
    pub async fn forward(&self, lodging: &str, reservation_id: Uuid, stay: Stay) {
        let desk = Repository::<LodgingAggregate>::new(Arc::clone(&self.log))
            .with_snapshots(self.log.snapshots());
        let context = CommandContext {
            correlation_id: reservation_id,
            causation_id: Uuid::new_v4(),
            actor: "saga".into(),
            now: Utc::now(),
        };
        let command = LodgingCommand::RequestApproval {
            reservation_id,
            stay,
        };
        desk.execute(lodging, &command, &context)
            .await
            .map_err(|e| e.to_string())
            .expect("forward");
    }

    pub async fn approve(&self, admin_of: &str, reservation: Uuid) -> u64 {
        let who = Self::invocation(Role::Admin, "a-1", &[admin_of], None);
        self.commands
            .approve_request(&who, reservation)
            .await
            .expect("approve")
            .position
    }

    pub async fn cancel(&self, customer: &str, reservation: Uuid) -> u64 {
        let who = Self::invocation(Role::Customer, customer, &[], None);
        let input = CancelReservation {
            reason: "plans changed".into(),
        };
        self.commands
            .cancel_reservation(&who, reservation, input)
            .await
            .expect("cancel")
            .position
    }
}

impl Drop for QueryApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
