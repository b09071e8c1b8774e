//! The real query service on 127.0.0.1:0 over a real SQLite event log and SQLite view store in a
//! temp dir, with the real projector building the views. The events it reads are written with the
//! domain's aggregates through the real repository, as the command side and the saga write them
//! (the query side does not depend on the command side; the merged-router contract test lives in
//! the stayledger crate).
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use domain::lodging::{ApprovalMode, LodgingAggregate, LodgingCommand, LodgingProfile};
use domain::payout::{PayoutAggregate, PayoutCommand};
use domain::reservation::{LodgingTerms, ReservationAggregate, ReservationCommand};
use domain::{Aggregate, Stay};
use eventlog::{CommandContext, EventLog, Repository, SqliteEventLog};
use http_edge::{Auth, Claims, Role};
use projector::{Projector, ProjectorStatus, PROJECTOR_ID};
use query_api::{run, QueryConfig, QueryState, StreamHub, ViewProgress};
use readmodel::{SqliteViewStore, ViewStore};
pub use test_client::Answer;
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
    pub projector: ProjectorStatus,
    /// The live streams' hub, when the test chose its queue.
    pub stream_hub: Option<Arc<StreamHub>>,
    idle_projector: std::sync::Mutex<Option<Projector>>,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

pub fn day(days: i64) -> chrono::NaiveDate {
    domain::local_date(Utc::now(), domain::WAVE1_TIMEZONE) + chrono::Duration::days(days)
}

impl QueryApp {
    /// The query service alone (`query_api::run`), the projector following the log.
    pub async fn start() -> Self {
        Self::start_with(Lag::None).await
    }

    /// The projector not started until [`QueryApp::start_projector`]; `min_position` learns the
    /// views' progress from the projector's watch, or by polling the stored checkpoint.
    pub async fn start_lagging(by_checkpoint: bool) -> Self {
        Self::start_with(if by_checkpoint {
            Lag::Checkpoint
        } else {
            Lag::Watch
        })
        .await
    }

    /// As [`QueryApp::start_lagging`] (the projector's watch), the live streams queueing at most
    /// `frames` frames each.
    pub async fn start_lagging_with_stream_queue(frames: usize) -> Self {
        Self::start_with_queue(Lag::Watch, Some(frames)).await
    }

    async fn start_with(lag: Lag) -> Self {
        Self::start_with_queue(lag, None).await
    }

    async fn start_with_queue(lag: Lag, stream_queue: Option<usize>) -> Self {
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
        let mut stream_hub = None;
        match stream_queue {
            None => {
                tokio::spawn(run(config, listener, shutdown.clone()));
            }
            Some(frames) => {
                let state = QueryState::new(config.log, config.views, config.auth, config.progress)
                    .closing_with(shutdown.clone())
                    .with_stream_queue(frames);
                stream_hub = Some(Arc::clone(&state.stream_hub));
                let app = query_api::router(state);
                tokio::spawn(http_edge::server::serve_alone(
                    "query API",
                    listener,
                    app,
                    shutdown.clone(),
                ));
            }
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(40))
            .build()
            .expect("client");
        let app = Self {
            base,
            client,
            auth: Auth::new(SECRET),
            log,
            views,
            projector: status,
            stream_hub,
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
        let url = format!("{}{path}", self.base);
        test_client::send(&self.client, method, &url, token, headers, body).await
    }

    pub async fn get_as(&self, path: &str, token: &str) -> Answer {
        self.get(path, Some(token), &[]).await
    }

    /// Run `command` on aggregate `id` as `actor` (`role:sub`, as the services name callers), in
    /// the correlation of `correlation` (random when `None`); the position of its last event.
    async fn write<A: Aggregate>(
        &self,
        id: &str,
        command: &A::Command,
        actor: &str,
        correlation: Option<Uuid>,
    ) -> u64
    where
        A::Error: std::fmt::Display,
    {
        let causation = Uuid::new_v4();
        let context = CommandContext {
            correlation_id: correlation.unwrap_or(causation),
            causation_id: causation,
            actor: actor.to_string(),
            now: Utc::now(),
        };
        let executed = Repository::<A>::new(Arc::clone(&self.log))
            .execute(id, command, &context)
            .await
            .map_err(|e| e.to_string())
            .expect("command");
        executed.outcome.map_or(0, |o| o.position)
    }

    /// Register a manual-approval lodging (by a platform admin); returns the position written.
    pub async fn lodging(&self, id: &str, rooms: u32) -> u64 {
        self.register(id, rooms, "root", "KRW").await
    }

    /// Register a two-room lodging hosted by `host` (its `admin_id`), priced in `currency`.
    pub async fn hosted_lodging(&self, id: &str, host: &str, currency: &str) -> u64 {
        self.register(id, 2, host, currency).await
    }

    async fn register(&self, id: &str, rooms: u32, host: &str, currency: &str) -> u64 {
        let profile = LodgingProfile {
            fee_bps: 1_000,
            lodging_id: id.to_string(),
            name: format!("Lodging {id}"),
            nightly_rate: 50_000,
            currency: currency.into(),
            rooms,
            max_guests: 4,
            approval_mode: ApprovalMode::Manual,
            admin_id: host.into(),
            timezone: domain::Tz::Asia__Seoul,
        };
        let command = LodgingCommand::Register(profile);
        self.write::<LodgingAggregate>(id, &command, "admin:root", None)
            .await
    }

    /// The platform admin renames lodging `id`; returns the position written.
    pub async fn rename(&self, id: &str, name: &str) -> u64 {
        let changes = domain::lodging::LodgingChanges {
            name: Some(name.to_string()),
            updated_by: "admin:root".into(),
            ..domain::lodging::LodgingChanges::default()
        };
        let command = LodgingCommand::Update(changes);
        self.write::<LodgingAggregate>(id, &command, "admin:root", None)
            .await
    }

    /// A customer's request for nights `from..to` (days from today): (reservation id, position).
    pub async fn reserve(&self, customer: &str, lodging: &str, from: i64, to: i64) -> (Uuid, u64) {
        let stay = Stay {
            rooms: 1,
            check_in: day(from),
            check_out: day(to),
            guests: 2,
        };
        let id = Uuid::now_v7();
        let command = ReservationCommand::Request {
            reservation_id: id,
            customer_id: customer.to_string(),
            lodging: LodgingTerms {
                lodging_id: lodging.to_string(),
                nightly_rate: 50_000,
                currency: "KRW".into(),
                max_guests: 4,
                rooms: 2,
                timezone: domain::Tz::Asia__Seoul,
            },
            stay,
        };
        let actor = format!("customer:{customer}");
        let position = self
            .write::<ReservationAggregate>(&id.to_string(), &command, &actor, Some(id))
            .await;
        self.forward(lodging, id, stay).await;
        (id, position)
    }

    /// Forward a request to the lodging's approval desk, as the saga does.
    pub async fn forward(&self, lodging: &str, reservation_id: Uuid, stay: Stay) {
        let command = LodgingCommand::RequestApproval {
            reservation_id,
            stay,
        };
        self.write::<LodgingAggregate>(lodging, &command, "saga", Some(reservation_id))
            .await;
    }

    /// The lodging's admin `a-1` grants the request.
    pub async fn approve(&self, admin_of: &str, reservation: Uuid) -> u64 {
        let stay = self.requested_stay(reservation).await;
        let command = LodgingCommand::Grant {
            reservation_id: reservation,
            stay,
            granted_by: "admin:a-1".into(),
        };
        self.write::<LodgingAggregate>(admin_of, &command, "admin:a-1", Some(reservation))
            .await
    }

    /// Run `command` on the payout of stay `reservation`, as the saga's payout worker (or the
    /// platform admin, for a retry) does; the position of its last event.
    pub async fn payout(&self, reservation: Uuid, command: &PayoutCommand) -> u64 {
        let actor = match command {
            PayoutCommand::Retry { .. } => "admin:root",
            _ => "saga",
        };
        let id = reservation.to_string();
        self.write::<PayoutAggregate>(&id, command, actor, Some(reservation))
            .await
    }

    pub async fn cancel(&self, customer: &str, reservation: Uuid) -> u64 {
        let actor = format!("customer:{customer}");
        let command = ReservationCommand::Cancel {
            cancelled_by: actor.clone(),
            reason: "plans changed".into(),
            timezone: domain::Tz::Asia__Seoul,
        };
        let id = reservation.to_string();
        self.write::<ReservationAggregate>(&id, &command, &actor, Some(reservation))
            .await
    }

    async fn requested_stay(&self, reservation: Uuid) -> Stay {
        let loaded = Repository::<ReservationAggregate>::new(Arc::clone(&self.log))
            .load(&reservation.to_string())
            .await
            .map_err(|e| e.to_string())
            .expect("load");
        loaded.state.details.as_ref().expect("requested").stay()
    }
}

impl Drop for QueryApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
