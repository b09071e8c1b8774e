//! `stayledger serve`: command and query routes, saga, projector and the sandbox payment gateway in
//! one process on one port, over the embedded SQLite stores in `--data-dir`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use command_api::{CommandOptions, CommandState};
use domain::saga::SagaPolicy;
use eventlog::{EventLog, Repositories, SqliteEventLog};
use http_edge::{Auth, ServerLimits};
use notifier::policy::RetryPolicy;
use notifier::routes::WebhookState;
use notifier::{WebhookParts, WebhookStore};
use projector::ProjectorStatus;
use query_api::{QueryState, ViewProgress};
use readmodel::inbox::{InboxStore, NOTIFIER_ID};
use readmodel::ProjectionTarget;
use readmodel::{SwappableViewStore, ViewStore};
use saga::sandbox::{self, SandboxAccess, SandboxState};
use saga::{
    BreakerPolicy, GatewayKey, SagaConfig, SagaRunner, SagaStatus, Shard, SqliteTimerStore,
};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::cli::{self, SandboxArgs, ServeArgs};
use crate::data_dir::{self, secret};
use crate::metrics::{self, HttpMetrics};
use crate::ops::{self, Probes};
use crate::readiness::CatchUp;
use crate::stores::{self, payment_gateway};
use crate::supervise::{run_until_stopped, shutdown_on_signals};
use crate::views_swap;

/// Everything `serve` runs with.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    pub policy: SagaPolicy,
    /// `None`: the built-in sandbox, reached over real HTTP at `http://<addr>/sandbox`.
    pub payment_gateway_url: Option<String>,
    /// The key the saga's client presents (and the built-in sandbox takes). `None`: the data
    /// dir's `payment-gateway-key`, created on first start.
    pub payment_gateway_key: Option<GatewayKey>,
    pub payment_timeout: Duration,
    pub breaker: BreakerPolicy,
    pub max_projector_lag: u64,
    /// Timeouts and the connection cap of the listener.
    pub http: ServerLimits,
    /// The time zone and platform fee of a lodging registered without them.
    pub commands: CommandOptions,
    /// The event log's key file; `None`: `log-key` in the data dir.
    pub log_key: Option<PathBuf>,
    /// How webhooks are retried and parked.
    pub webhook_policy: RetryPolicy,
    /// `--webhook-allow-private`: loopback and private targets allowed.
    pub webhook_allow_private: bool,
}

impl ServeConfig {
    /// Defaults for a data dir (24h deadline, 2s retry base, built-in sandbox).
    #[must_use]
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            policy: SagaPolicy::default(),
            payment_gateway_url: None,
            payment_gateway_key: None,
            payment_timeout: Duration::from_secs(3),
            breaker: BreakerPolicy::default(),
            max_projector_lag: 10_000,
            http: ServerLimits::default(),
            commands: CommandOptions::default(),
            log_key: None,
            webhook_policy: RetryPolicy::default(),
            webhook_allow_private: false,
        }
    }

    fn from_args(args: &ServeArgs) -> anyhow::Result<Self> {
        let policy = cli::saga_policy(
            args.approval_deadline,
            args.payment_retry_base,
            args.payment_max_attempts,
        )?;
        Ok(Self {
            policy,
            payment_gateway_url: args.payment_gateway_url.clone(),
            payment_gateway_key: args
                .gateway_key
                .given()
                .map(|key| {
                    GatewayKey::new(key)
                        .context("--payment-gateway-key (STAYLEDGER_PAYMENT_GATEWAY_KEY)")
                })
                .transpose()?,
            payment_timeout: args.payment_timeout,
            max_projector_lag: args.max_projector_lag,
            http: args.http.limits(),
            commands: args.catalog.command_options(),
            log_key: args.store.log_key.clone(),
            webhook_policy: args.webhooks.policy(),
            webhook_allow_private: args.webhooks.targets.webhook_allow_private,
            ..Self::new(args.store.data_dir.clone())
        })
    }
}

/// Handles on a running platform, for tests and operators.
#[derive(Clone)]
pub struct Platform {
    pub addr: SocketAddr,
    pub log: Arc<dyn EventLog>,
    /// The process's one write model: the command routes and the saga write through its clones.
    pub repositories: Repositories,
    pub views: Arc<dyn ViewStore>,
    pub projector: ProjectorStatus,
    pub saga: SagaStatus,
    pub sandbox: SandboxState,
    /// The key the saga's client presents to the payment gateway.
    pub gateway_key: GatewayKey,
    pub auth: Arc<Auth>,
    /// Customers' data keys (`keys.db` in the data dir).
    pub keys: Arc<dyn keys::KeyStore>,
    /// The inbox the notifier builds (`inbox.db`), and the notifier's progress.
    pub inbox: Arc<dyn InboxStore>,
    pub notifier: ProjectorStatus,
    /// Webhook subscriptions and deliveries (`webhooks.db`).
    pub webhooks: Arc<dyn WebhookStore>,
    /// Wakes the webhooks' senders: a subscription's when deliveries are queued for it, their
    /// supervisor when subscriptions change.
    pub webhook_wakeups: Arc<notifier::Wakeups>,
}

/// The CLI entry: bind, print the address, run until SIGINT/SIGTERM.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = ServeConfig::from_args(&args)?;
    let listener = TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("binding {}", args.addr))?;
    let shutdown = shutdown_on_signals();
    let (platform, tasks) = start(config, listener, shutdown.clone()).await?;
    println!("stayledger listening on http://{}", platform.addr);
    // A part that stops (e.g. the saga losing a lane) stops the whole process with its error.
    run_until_stopped("serve", shutdown, tasks, None).await
}

/// Wait for every task of a started platform to finish (after shutdown was cancelled).
pub async fn wait(mut tasks: JoinSet<anyhow::Result<()>>) -> anyhow::Result<()> {
    let mut result = Ok(());
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = Err(e),
            Err(e) => result = Err(anyhow::anyhow!("a task panicked: {e}")),
        }
    }
    result
}

/// Open the stores and start every part on `listener`. Returns once it takes requests.
pub async fn start(
    config: ServeConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<(Platform, JoinSet<anyhow::Result<()>>)> {
    let addr = listener.local_addr()?;
    let stores = open_stores(&config.data_dir, config.log_key.as_deref())?;
    let auth = Arc::new(Auth::new(secret::load_or_create(&config.data_dir)?));
    let projector_status = ProjectorStatus::default();
    let sandbox_state = data_dir::sandbox_ledger(&config.data_dir)?;
    let keys = Arc::new(data_dir::key_store(&config.data_dir)?);
    let inbox = Arc::new(data_dir::sqlite_inbox(&config.data_dir)?);
    let webhooks = Arc::new(data_dir::sqlite_webhooks(&config.data_dir)?);
    let gateway_key = match config.payment_gateway_key.clone() {
        Some(key) => key,
        None => data_dir::gateway_key::load_or_create(&config.data_dir)?,
    };
    let gateway_url = config
        .payment_gateway_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}/sandbox"));
    let gateway = payment_gateway(
        &gateway_url,
        &gateway_key,
        config.payment_timeout,
        config.breaker,
    )?;
    let repositories = Repositories::new(Arc::clone(&stores.log));
    let saga = SagaRunner::new(
        repositories.clone(),
        gateway,
        stores.timers,
        config.policy,
        SagaConfig::default(),
    );
    let platform = Platform {
        addr,
        log: Arc::clone(&stores.log),
        repositories,
        views: Arc::clone(&stores.views),
        projector: projector_status,
        saga: saga.status(),
        sandbox: sandbox_state,
        gateway_key,
        auth,
        keys,
        inbox,
        notifier: ProjectorStatus::default(),
        webhooks,
        webhook_wakeups: Arc::default(),
    };
    let writer_log = Arc::clone(&stores.sqlite_log);
    let start_head = platform.log.head_position().await?;
    let probes = Probes {
        log: Some(Arc::clone(&platform.log)),
        views: Some(Arc::clone(&platform.views)),
        projector: Some(platform.projector.clone()),
        saga: Some(platform.saga.clone()),
        writer: Some(Arc::new(move || writer_log.stats())),
        http: Arc::new(HttpMetrics::default()),
        max_projector_lag: config.max_projector_lag,
        view_checkpoint: None,
        require_saga: false,
        catch_up: Arc::new(CatchUp::to(start_head)),
    };
    let connections = Arc::clone(&probes.http.connections);
    let commands = config.commands;
    let app = router(&platform, probes, commands, &config, shutdown.clone());
    let mut tasks = JoinSet::new();
    let http_shutdown = shutdown.clone();
    let limits = config.http;
    tasks.spawn(async move {
        http_edge::server::serve(listener, app, limits, connections, http_shutdown)
            .await
            .context("HTTP server")
    });
    let (swaps, swapped) = tokio::sync::mpsc::channel(1);
    tasks.spawn(views_swap::watch_generation(
        config.data_dir.clone(),
        Arc::clone(&platform.log),
        swaps,
        shutdown.clone(),
    ));
    // The notifier follows the projector's reads into the inbox, under its own checkpoint.
    let notifier = views_swap::Follower {
        id: NOTIFIER_ID.to_string(),
        store: Arc::clone(&platform.inbox) as Arc<dyn ProjectionTarget>,
        status: platform.notifier.clone(),
    };
    tasks.spawn(views_swap::run_projector(
        Arc::clone(&platform.log),
        Arc::clone(&stores.swappable),
        platform.projector.clone(),
        Some(notifier),
        swapped,
        shutdown.clone(),
    ));
    spawn_webhooks(&mut tasks, &platform, &config, shutdown.clone())?;
    tasks.spawn(run_saga(saga, shutdown));
    tracing::info!(%addr, data_dir = %config.data_dir.display(), gateway = %gateway_url, "stayledger serving");
    Ok((platform, tasks))
}

struct Stores {
    sqlite_log: Arc<SqliteEventLog>,
    log: Arc<dyn EventLog>,
    /// The views the queries read and the projector writes; `replay` swaps what is behind it.
    swappable: Arc<SwappableViewStore>,
    views: Arc<dyn ViewStore>,
    timers: Arc<SqliteTimerStore>,
}

fn open_stores(data_dir: &Path, log_key: Option<&Path>) -> anyhow::Result<Stores> {
    let sqlite_log = Arc::new(data_dir::sqlite_log(data_dir, log_key)?);
    let views = data_dir::sqlite_views(data_dir)?;
    let timers = data_dir::timer_store(data_dir, Shard::ALL)?;
    let swappable = Arc::new(SwappableViewStore::new(Arc::new(views)));
    Ok(Stores {
        log: Arc::clone(&sqlite_log) as Arc<dyn EventLog>,
        sqlite_log,
        views: Arc::clone(&swappable) as Arc<dyn ViewStore>,
        swappable,
        timers: Arc::new(timers),
    })
}

/// The webhook dispatcher (inbox -> deliveries) and its senders, on a thread of their own.
fn spawn_webhooks(
    tasks: &mut JoinSet<anyhow::Result<()>>,
    platform: &Platform,
    config: &ServeConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let parts = WebhookParts {
        inbox: Arc::clone(&platform.inbox),
        views: Arc::clone(&platform.views),
        store: Arc::clone(&platform.webhooks),
        keys: Arc::clone(&platform.keys),
        policy: config.webhook_policy,
        allow_private: config.webhook_allow_private,
        wakeups: Arc::clone(&platform.webhook_wakeups),
    };
    let mut dispatcher = parts.dispatcher(projector::PROJECTOR_ID, NOTIFIER_ID);
    dispatcher.inbox_moved = Some(platform.notifier.subscribe());
    let senders = parts
        .senders(eventlog::Partition::ALL)
        .context("building the webhook client")?;
    let webhooks = crate::own_thread::spawn("webhooks", &shutdown, move |stop| async move {
        tokio::join!(dispatcher.run(stop.clone()), senders.run(stop));
        Ok(())
    })
    .context("starting the webhooks' thread")?;
    tasks.spawn(webhooks);
    Ok(())
}

async fn run_saga(saga: SagaRunner, shutdown: CancellationToken) -> anyhow::Result<()> {
    // The runner retries store failures itself; a lost lane is fatal to this process.
    saga.run(shutdown).await.context("saga runner")
}

fn router(
    platform: &Platform,
    probes: Probes,
    options: CommandOptions,
    config: &ServeConfig,
    closing: CancellationToken,
) -> Router {
    let webhooks = notifier::routes::routes(WebhookState {
        store: Arc::clone(&platform.webhooks),
        keys: Arc::clone(&platform.keys),
        log: Arc::clone(&platform.log),
        auth: Arc::clone(&platform.auth),
        allow_private: config.webhook_allow_private,
        wakeups: Arc::clone(&platform.webhook_wakeups),
    });
    let commands = command_api::router(CommandState::with_keys(
        platform.repositories.clone(),
        Arc::clone(&platform.auth),
        options,
        Arc::clone(&platform.keys),
    ));
    let sandbox_routes = sandbox::router(
        platform.sandbox.clone(),
        SandboxAccess::new(platform.gateway_key.clone(), Arc::clone(&platform.auth)),
    );
    let queries = query_api::router(
        QueryState::new(
            Arc::clone(&platform.log),
            Arc::clone(&platform.views),
            Arc::clone(&platform.auth),
            ViewProgress::Watch(platform.projector.subscribe()),
        )
        .with_keys(Arc::clone(&platform.keys))
        .closing_with(closing)
        .with_inbox(
            Arc::clone(&platform.inbox),
            ViewProgress::Watch(platform.notifier.subscribe()),
        ),
    );
    let http_metrics = Arc::clone(&probes.http);
    let app = commands
        .merge(queries)
        .merge(webhooks)
        .nest("/sandbox", sandbox_routes)
        .merge(ops::routes(probes))
        .fallback(http_edge::problem::not_found);
    http_edge::outermost(app).layer(axum::middleware::from_fn_with_state(
        http_metrics,
        metrics::track,
    ))
}

/// `stayledger payment-sandbox`: the sandbox gateway alone, its routes under `/sandbox`.
pub async fn payment_sandbox(args: SandboxArgs) -> anyhow::Result<()> {
    let listener = TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("binding {}", args.addr))?;
    let data_dir = &args.store.data_dir;
    let state = data_dir::sandbox_ledger(data_dir)?;
    let key = data_dir::gateway_key::given_or_created(args.gateway_key.given(), data_dir)?;
    let access = SandboxAccess::new(key, stores::auth(&args.auth, data_dir)?);
    let shutdown = shutdown_on_signals();
    println!(
        "stayledger payment sandbox (NOT a real gateway) listening on http://{}/sandbox",
        listener.local_addr()?
    );
    let probes = Probes::default();
    let http_metrics = Arc::clone(&probes.http);
    let connections = Arc::clone(&probes.http.connections);
    let app = Router::new()
        .nest("/sandbox", sandbox::router(state, access))
        .merge(ops::routes(probes))
        .fallback(http_edge::problem::not_found);
    let app = http_edge::outermost(app).layer(axum::middleware::from_fn_with_state(
        http_metrics,
        metrics::track,
    ));
    http_edge::server::serve(listener, app, args.http.limits(), connections, shutdown)
        .await
        .context("sandbox HTTP server")
}
