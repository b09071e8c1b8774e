//! The test world: a real SQLite event log in a temp dir, the real sandbox gateway on a real
//! socket, the real HTTP gateway client, and saga runners started and stopped at will.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use domain::lodging::{
    ApprovalMode, LodgingAggregate, LodgingApproval, LodgingCommand, LodgingProfile,
};
use domain::payment::{Payment, PaymentAggregate};
use domain::payout::{PayoutAggregate, PayoutCommand};
use domain::reservation::{LodgingTerms, Reservation, ReservationAggregate, ReservationCommand};
use domain::saga::{ReservationSaga, SagaPolicy, SagaState};
use domain::{Aggregate, Stay};
use eventlog::{CommandContext, Repositories, Repository};
use eventlog::{EventLog, RecordedEvent, SqliteEventLog};
use http_edge::{Auth, Claims, Role};
use saga::sandbox::{self, SandboxAccess, SandboxCharge, SandboxPayout, SandboxState};
use saga::{
    BreakerGateway, BreakerPolicy, GatewayKey, HttpGateway, PaymentGateway, SagaConfig,
    SagaRunError, SagaRunner, SagaStatus, Source, SqliteTimerStore,
};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const NIGHTLY_RATE: i64 = 50_000;

/// The key the world's sandbox takes and its HTTP client presents.
pub const GATEWAY_KEY: &str = "sk_sandbox_world_key_0123456789";
/// The JWT secret the world's sandbox verifies operator tokens with.
const JWT_SECRET: &[u8] = b"saga-tests-secret-of-at-least-32-bytes";

/// A token signed with the world's secret.
pub fn token(role: Role, sub: &str, lodgings: &[&str]) -> String {
    let lodgings = lodgings.iter().map(ToString::to_string).collect();
    let claims = Claims::new(sub, role, lodgings, Duration::from_secs(3600));
    Auth::new(JWT_SECRET).mint(&claims).expect("mint")
}

/// The platform admin's token: may call every sandbox route.
pub fn platform_admin() -> String {
    token(Role::Admin, "root", &["*"])
}

pub fn gateway_key() -> GatewayKey {
    GatewayKey::new(GATEWAY_KEY).expect("key")
}

/// The sandbox's access rules as the world's sandbox has them.
pub fn sandbox_access() -> SandboxAccess {
    SandboxAccess::new(gateway_key(), Arc::new(Auth::new(JWT_SECRET)))
}

/// Short durations, so the tests run fast.
pub fn fast_policy() -> SagaPolicy {
    SagaPolicy {
        approval_deadline: TimeDelta::hours(1),
        retry_base: TimeDelta::milliseconds(50),
        max_payment_attempts: 30,
    }
}

pub struct World {
    pub dir: TempDir,
    pub log: Arc<dyn EventLog>,
    pub sandbox_url: String,
    pub sandbox: SandboxState,
    sandbox_stop: CancellationToken,
    pub http: reqwest::Client,
}

pub struct Running {
    pub status: SagaStatus,
    shutdown: CancellationToken,
    handle: JoinHandle<Result<(), SagaRunError>>,
}

impl Running {
    pub async fn stop(self) {
        self.shutdown.cancel();
        let result = tokio::time::timeout(Duration::from_secs(10), self.handle)
            .await
            .expect("the runner stops promptly");
        result.expect("runner task").expect("runner ends cleanly");
    }
}

impl Running {
    /// Wait (at most 10 s) for the runner to end without being told to, and assert it ended cleanly.
    pub async fn ends_by_itself(self) {
        let result = tokio::time::timeout(Duration::from_secs(10), self.handle)
            .await
            .expect("the runner ends by itself");
        result.expect("runner task").expect("runner ends cleanly");
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.sandbox_stop.cancel();
    }
}

impl World {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = SqliteEventLog::open(dir.path().join("events.db")).expect("event log");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let sandbox = SandboxState::default();
        let sandbox_stop = CancellationToken::new();
        let app = sandbox::router(sandbox.clone(), sandbox_access());
        let stop = sandbox_stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
        });
        Self {
            dir,
            log: Arc::new(log),
            sandbox_url: format!("http://{addr}"),
            sandbox,
            sandbox_stop,
            http: reqwest::Client::new(),
        }
    }

    pub fn http_gateway(&self) -> HttpGateway {
        HttpGateway::new(&self.sandbox_url, &gateway_key(), Duration::from_secs(2))
            .expect("gateway url")
    }

    pub fn gateway(&self, breaker: BreakerPolicy) -> Arc<dyn PaymentGateway> {
        Arc::new(BreakerGateway::new(self.http_gateway(), breaker))
    }

    pub fn store_path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Start a runner on the store file `store` with a breaker that rarely opens.
    pub fn start(&self, policy: SagaPolicy, store: &str) -> Running {
        let breaker = BreakerPolicy {
            failure_threshold: 1_000,
            cool_down: Duration::from_millis(100),
        };
        self.start_with(policy, store, self.gateway(breaker), SagaConfig::default())
    }

    pub fn start_with(
        &self,
        policy: SagaPolicy,
        store: &str,
        gateway: Arc<dyn PaymentGateway>,
        config: SagaConfig,
    ) -> Running {
        self.start_from(policy, store, gateway, config, Source::Log)
    }

    /// [`start_with`](Self::start_with), taking events from `source`.
    pub fn start_from(
        &self,
        policy: SagaPolicy,
        store: &str,
        gateway: Arc<dyn PaymentGateway>,
        config: SagaConfig,
        source: Source,
    ) -> Running {
        let timers = SqliteTimerStore::open(self.store_path(store)).expect("timer store");
        // Each runner stands for a process of its own: its own write model.
        let runner = SagaRunner::new(
            Repositories::new(Arc::clone(&self.log)),
            gateway,
            Arc::new(timers),
            policy,
            config,
        )
        .with_source(source);
        let status = runner.status();
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(runner.run(shutdown.clone()));
        Running {
            status,
            shutdown,
            handle,
        }
    }

    fn ctx(&self, correlation_id: Uuid, actor: &str) -> CommandContext {
        CommandContext {
            correlation_id,
            causation_id: Uuid::new_v4(),
            actor: actor.to_string(),
            now: Utc::now(),
        }
    }

    pub async fn register_lodging(&self, rooms: u32, approval_mode: ApprovalMode) -> String {
        let lodging_id = format!("hanok-{}", Uuid::new_v4().simple());
        let profile = LodgingProfile {
            fee_bps: 1_000,
            lodging_id: lodging_id.clone(),
            name: "Hanok Stay".to_string(),
            nightly_rate: NIGHTLY_RATE,
            currency: "KRW".to_string(),
            rooms,
            max_guests: 4,
            approval_mode,
            admin_id: "admin-1".to_string(),
            timezone: domain::Tz::Asia__Seoul,
        };
        Repository::<LodgingAggregate>::new(Arc::clone(&self.log))
            .with_snapshots(self.log.snapshots())
            .execute(
                &lodging_id,
                &LodgingCommand::Register(profile),
                &self.ctx(Uuid::new_v4(), "admin:a"),
            )
            .await
            .expect("lodging registered");
        lodging_id
    }

    pub fn stay() -> Stay {
        let today = Utc::now().date_naive();
        Stay {
            rooms: 1,
            check_in: today + TimeDelta::days(10),
            check_out: today + TimeDelta::days(12),
            guests: 2,
        }
    }

    /// A customer requests a two-night stay; returns the reservation id.
    pub async fn request_stay(&self, lodging_id: &str) -> Uuid {
        let reservation_id = Uuid::new_v4();
        let command = ReservationCommand::Request {
            reservation_id,
            customer_id: "customer-1".to_string(),
            lodging: LodgingTerms {
                lodging_id: lodging_id.to_string(),
                nightly_rate: NIGHTLY_RATE,
                currency: "KRW".to_string(),
                max_guests: 4,
                rooms: 4,
                timezone: domain::Tz::Asia__Seoul,
            },
            stay: Self::stay(),
        };
        self.reservation_command(reservation_id, &command).await;
        reservation_id
    }

    /// Request `count` stays at `lodging_id`, one after another; their reservation ids.
    pub async fn request_stays(&self, lodging_id: &str, count: usize) -> Vec<Uuid> {
        let mut reservations = Vec::with_capacity(count);
        for _ in 0..count {
            reservations.push(self.request_stay(lodging_id).await);
        }
        reservations
    }

    pub async fn reservation_command(&self, reservation_id: Uuid, command: &ReservationCommand) {
        Repository::<ReservationAggregate>::new(Arc::clone(&self.log))
            .with_snapshots(self.log.snapshots())
            .execute(
                &reservation_id.to_string(),
                command,
                &self.ctx(reservation_id, "customer:c"),
            )
            .await
            .expect("reservation command accepted");
    }

    /// The platform admin's command on a stay's payout.
    pub async fn payout_command(&self, reservation_id: Uuid, command: &PayoutCommand) {
        Repository::<PayoutAggregate>::new(Arc::clone(&self.log))
            .with_snapshots(self.log.snapshots())
            .execute(
                &reservation_id.to_string(),
                command,
                &self.ctx(reservation_id, "admin:root"),
            )
            .await
            .expect("payout command accepted");
    }

    /// The lodging admin approves.
    pub async fn grant(&self, lodging_id: &str, reservation_id: Uuid) {
        let command = LodgingCommand::Grant {
            reservation_id,
            stay: Self::stay(),
            granted_by: "admin-1".to_string(),
        };
        Repository::<LodgingAggregate>::new(Arc::clone(&self.log))
            .with_snapshots(self.log.snapshots())
            .execute(lodging_id, &command, &self.ctx(reservation_id, "admin:a"))
            .await
            .expect("approval granted");
    }

    pub async fn reservation(&self, id: Uuid) -> Reservation {
        load::<ReservationAggregate>(&self.log, &id.to_string()).await
    }

    pub async fn payment(&self, id: Uuid) -> Payment {
        load::<PaymentAggregate>(&self.log, &id.to_string()).await
    }

    pub async fn lodging(&self, id: &str) -> LodgingApproval {
        load::<LodgingAggregate>(&self.log, id).await
    }

    pub async fn saga(&self, id: Uuid) -> SagaState {
        load::<ReservationSaga>(&self.log, &id.to_string()).await
    }

    pub async fn stream(&self, stream: &str) -> Vec<RecordedEvent> {
        self.log
            .read_stream(stream, 0, 10_000)
            .await
            .expect("read stream")
    }

    pub async fn event_types(&self, stream: &str) -> Vec<String> {
        self.stream(stream)
            .await
            .into_iter()
            .map(|e| e.event_type)
            .collect()
    }

    pub async fn head(&self) -> u64 {
        self.log.head_position().await.expect("head position")
    }

    pub async fn configure_sandbox(&self, config: Value) {
        let response = self
            .http
            .put(format!("{}/config", self.sandbox_url))
            .bearer_auth(platform_admin())
            .json(&config)
            .send()
            .await
            .expect("sandbox reachable");
        assert_eq!(response.status(), 200, "PUT /config {config}");
    }

    /// `GET {path}` on the sandbox as the platform admin: its JSON answer.
    async fn sandbox_get<T: DeserializeOwned>(&self, path: &str) -> T {
        self.http
            .get(format!("{}{path}", self.sandbox_url))
            .bearer_auth(platform_admin())
            .send()
            .await
            .expect("sandbox reachable")
            .json()
            .await
            .unwrap_or_else(|error| panic!("GET {path} json: {error}"))
    }

    /// `GET /charges` over HTTP.
    pub async fn charges(&self) -> Vec<SandboxCharge> {
        self.sandbox_get("/charges").await
    }

    /// Every payout, as `GET /payouts` lists it to the platform admin.
    pub async fn payouts(&self) -> Vec<SandboxPayout> {
        self.sandbox_get("/payouts").await
    }

    pub async fn charges_for(&self, reservation_id: Uuid) -> Vec<SandboxCharge> {
        let key = reservation_id.to_string();
        let mut charges = self.charges().await;
        charges.retain(|c| c.idempotency_key == key);
        charges
    }

    /// Wait until `runner` has handled and committed everything in the log and has nothing in
    /// flight; returns the log's head position then.
    pub async fn settle(&self, runner: &Running) -> u64 {
        eventually("the runner to settle", || async {
            let head = self.head().await;
            let snapshot = runner.status.snapshot();
            (snapshot.checkpoint >= head && snapshot.in_flight == 0).then_some(head)
        })
        .await
    }

    /// Every reservation of `reservations` charged once (one attempt) and each of its saga's triggers
    /// recorded once.
    pub async fn assert_handled_once(&self, reservations: &[Uuid]) {
        for rid in reservations {
            let charges = self.charges_for(*rid).await;
            assert_eq!(
                (charges.len(), charges[0].attempts),
                (1, 1),
                "{rid}: {charges:?}"
            );
            let saga_events = self.event_types(&format!("saga-{rid}")).await;
            let handled = saga_events
                .iter()
                .filter(|t| *t == "SagaEventHandled")
                .count();
            let distinct = self.saga(*rid).await.handled.len();
            assert_eq!(
                handled, distinct,
                "each trigger handled once: {saga_events:?}"
            );
        }
    }

    /// Wait until every reservation of `ids` reaches `status`.
    pub async fn wait_for_all(&self, ids: &[Uuid], status: &str) {
        for id in ids {
            self.wait_for_status(*id, status).await;
        }
    }

    /// Wait until the reservation reaches `status` (as its `as_str`).
    pub async fn wait_for_status(&self, id: Uuid, status: &str) -> Reservation {
        eventually(&format!("reservation {id} to be {status}"), || async {
            let reservation = self.reservation(id).await;
            (reservation.status.as_str() == status).then_some(reservation)
        })
        .await
    }
}

async fn load<A: Aggregate>(log: &Arc<dyn EventLog>, id: &str) -> A::State {
    let repository = Repository::<A>::new(Arc::clone(log)).with_snapshots(log.snapshots());
    match repository.load(id).await {
        Ok(loaded) => loaded.state,
        Err(error) => panic!("cannot load {}: {error}", A::stream_name(id)),
    }
}

/// Poll `check` every 20 ms until it yields a value; fail the test after 15 s.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
