//! The command and query routers merged on 127.0.0.1:0 (as `serve` merges them), over a SQLite event
//! log and view store in a temp dir, with the real projector building the views. No saga runs: the
//! forwarding of a request to its lodging is done by [`CombinedApp::forward`].
#![allow(dead_code)]

pub mod schema;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use command_api::CommandState;
use domain::lodging::{LodgingAggregate, LodgingCommand};
use domain::payout::{PayoutAggregate, PayoutCommand};
use domain::Stay;
use eventlog::{CommandContext, EventLog, Repositories, Repository, SqliteEventLog};
use http_edge::{Auth, Claims, Role};
use projector::{Projector, ProjectorStatus};
use query_api::{QueryState, ViewProgress};
use readmodel::{SqliteViewStore, ViewStore};
pub use test_client::Answer;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const SECRET: &[u8] = b"query-secret-query-secret-query-";

pub struct CombinedApp {
    pub base: String,
    pub client: reqwest::Client,
    pub auth: Auth,
    pub log: Arc<dyn EventLog>,
    pub projector: ProjectorStatus,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

pub fn day(days: i64) -> chrono::NaiveDate {
    domain::local_date(Utc::now(), domain::WAVE1_TIMEZONE) + chrono::Duration::days(days)
}

impl CombinedApp {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let log: Arc<dyn EventLog> =
            Arc::new(SqliteEventLog::open(dir.path().join("events.db")).expect("log"));
        let views: Arc<dyn ViewStore> =
            Arc::new(SqliteViewStore::open(dir.path().join("views.db")).expect("views"));
        let projector = Projector::new(Arc::clone(&log), Arc::clone(&views));
        let status = projector.status();
        let progress = ViewProgress::Watch(status.subscribe());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let shutdown = CancellationToken::new();
        let auth = Arc::new(Auth::new(SECRET));
        let repositories = Repositories::new(Arc::clone(&log));
        let commands = command_api::router(CommandState::new(repositories, Arc::clone(&auth)));
        let queries = query_api::router(QueryState::new(Arc::clone(&log), views, auth, progress));
        let app = commands
            .merge(queries)
            .fallback(http_edge::problem::not_found);
        let serving =
            axum::serve(listener, app).with_graceful_shutdown(shutdown.clone().cancelled_owned());
        tokio::spawn(async move { serving.await });
        tokio::spawn(projector.run(shutdown.clone()));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(40))
            .build()
            .expect("client");
        Self {
            base,
            client,
            auth: Auth::new(SECRET),
            log,
            projector: status,
            shutdown,
            _dir: dir,
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

    /// Run `command` on the payout of stay `reservation_id`, as the saga's payout worker does.
    pub async fn payout(&self, reservation_id: Uuid, command: &PayoutCommand) {
        let payouts = Repository::<PayoutAggregate>::new(Arc::clone(&self.log));
        payouts
            .execute(&reservation_id.to_string(), command, &saga(reservation_id))
            .await
            .map_err(|e| e.to_string())
            .expect("payout");
    }

    /// Forward a request to the lodging's approval desk, as the saga does.
    pub async fn forward(&self, lodging: &str, reservation_id: Uuid, stay: Stay) {
        let desk = Repository::<LodgingAggregate>::new(Arc::clone(&self.log));
        let context = saga(reservation_id);
        let command = LodgingCommand::RequestApproval {
            reservation_id,
            stay,
        };
        desk.execute(lodging, &command, &context)
            .await
            .map_err(|e| e.to_string())
            .expect("forward");
    }
}

/// The context of a command the saga sends about `reservation_id`.
fn saga(reservation_id: Uuid) -> CommandContext {
    CommandContext {
        correlation_id: reservation_id,
        causation_id: Uuid::new_v4(),
        actor: "saga".into(),
        now: Utc::now(),
    }
}

impl Drop for CombinedApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
