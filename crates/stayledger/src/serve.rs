//! `stayledger serve`: command and query routes, saga, projector and the sandbox payment gateway in
//! one process on one port, over the embedded SQLite stores in `--data-dir`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use command_api::CommandState;
use domain::saga::SagaPolicy;
use eventlog::{EventLog, Repositories, SqliteEventLog};
use http_edge::{Auth, Principal, Problem};
use projector::ProjectorStatus;
use query_api::{QueryState, ViewProgress};
use readmodel::{SwappableViewStore, ViewStore};
use saga::sandbox::{self, SandboxState};
use saga::{BreakerPolicy, SagaConfig, SagaRunner, SagaStatus, Shard, SqliteTimerStore};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::cli::{self, SandboxArgs, ServeArgs};
use crate::data_dir::{self, secret};
use crate::metrics::{self, HttpMetrics};
use crate::ops::{self, Probes};
use crate::stores::payment_gateway;
use crate::supervise::{run_until_stopped, shutdown_on_signals};
use crate::views_swap;

/// Everything `serve` runs with.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    pub policy: SagaPolicy,
    /// `None`: the built-in sandbox, reached over real HTTP at `http://<addr>/sandbox`.
    pub payment_gateway_url: Option<String>,
    pub payment_timeout: Duration,
    pub breaker: BreakerPolicy,
    pub max_projector_lag: u64,
    /// The event log's key file; `None`: `log-key` in the data dir.
    pub log_key: Option<PathBuf>,
}

impl ServeConfig {
    /// Defaults for a data dir (24h deadline, 2s retry base, built-in sandbox).
    #[must_use]
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            policy: SagaPolicy::default(),
            payment_gateway_url: None,
            payment_timeout: Duration::from_secs(3),
            breaker: BreakerPolicy::default(),
            max_projector_lag: 10_000,
            log_key: None,
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
            payment_timeout: args.payment_timeout,
            max_projector_lag: args.max_projector_lag,
            log_key: args.store.log_key.clone(),
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
    pub auth: Arc<Auth>,
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
    let sandbox_state = SandboxState::default();
    let gateway_url = config
        .payment_gateway_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}/sandbox"));
    let gateway = payment_gateway(&gateway_url, config.payment_timeout, config.breaker)?;
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
        auth,
    };
    let writer_log = Arc::clone(&stores.sqlite_log);
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
    };
    let app = router(&platform, probes);
    let mut tasks = JoinSet::new();
    let http_shutdown = shutdown.clone();
    tasks.spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(http_shutdown.cancelled_owned())
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
    tasks.spawn(views_swap::run_projector(
        Arc::clone(&platform.log),
        Arc::clone(&stores.swappable),
        platform.projector.clone(),
        swapped,
        shutdown.clone(),
    ));
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

async fn run_saga(saga: SagaRunner, shutdown: CancellationToken) -> anyhow::Result<()> {
    // The runner retries store failures itself; a lost lane is fatal to this process.
    saga.run(shutdown).await.context("saga runner")
}

fn router(platform: &Platform, probes: Probes) -> Router {
    let commands = command_api::router(CommandState::new(
        platform.repositories.clone(),
        Arc::clone(&platform.auth),
    ));
    let sandbox_config = sandbox::config_router(platform.sandbox.clone()).route_layer(
        axum::middleware::from_fn_with_state(Arc::clone(&platform.auth), require_platform_admin),
    );
    let sandbox_routes = sandbox::payments_router(platform.sandbox.clone()).merge(sandbox_config);
    let queries = query_api::router(QueryState::new(
        Arc::clone(&platform.log),
        Arc::clone(&platform.views),
        Arc::clone(&platform.auth),
        ViewProgress::Watch(platform.projector.subscribe()),
    ));
    let http_metrics = Arc::clone(&probes.http);
    commands
        .merge(queries)
        .nest("/sandbox", sandbox_routes)
        .merge(ops::routes(probes))
        .layer(axum::middleware::from_fn_with_state(
            http_metrics,
            metrics::track,
        ))
}

/// `PUT /sandbox/config` in `serve` takes a platform admin token (docs/api.md).
async fn require_platform_admin(principal: Principal, request: Request, next: Next) -> Response {
    if principal.is_platform_admin() {
        next.run(request).await
    } else {
        Problem::forbidden("only a platform admin (lodgings '*') may configure the sandbox")
            .into_response()
    }
}

/// `stayledger payment-sandbox`: the sandbox gateway alone, its routes under `/sandbox`.
pub async fn payment_sandbox(args: SandboxArgs) -> anyhow::Result<()> {
    let listener = TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("binding {}", args.addr))?;
    let shutdown = shutdown_on_signals();
    println!(
        "stayledger payment sandbox (NOT a real gateway) listening on http://{}/sandbox",
        listener.local_addr()?
    );
    let probes = Probes::default();
    let http_metrics = Arc::clone(&probes.http);
    let app = Router::new()
        .nest("/sandbox", sandbox::router(SandboxState::default()))
        .merge(ops::routes(probes))
        .layer(axum::middleware::from_fn_with_state(
            http_metrics,
            metrics::track,
        ));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .context("sandbox HTTP server")
}
