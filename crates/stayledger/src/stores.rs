//! Opening what a process runs on, by its flags: the event log (embedded in the data dir, or
//! EventStoreDB), the views, the inbox, the webhooks and customers' data keys (embedded in the
//! data dir, or MongoDB), the JWT
//! secret and the payment gateway's client. What is in the data dir is opened by `data_dir`. Servers that are not up yet
//! are waited for, with backoff, for a bounded time (containers start in any order).

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use domain::saga::SagaPolicy;
use eventlog::{EsdbEventLog, EventLog, WriterStats};
use http_edge::Auth;
use notifier::{MongoWebhooks, WebhookStore};
use readmodel::inbox::{InboxStore, MongoInbox};
use readmodel::{MongoViewStore, ViewStore};
use saga::{BreakerGateway, BreakerPolicy, GatewayKey, HttpGateway, PaymentGateway};
use tokio_util::sync::CancellationToken;

use crate::cli::{self, AuthArgs, LogArgs, Redacted, SagaArgs, ViewArgs};
use crate::data_dir::{self, secret};

/// Longest a service waits for its store servers at start before giving up.
const CONNECT_PATIENCE: Duration = Duration::from_secs(60);

/// Shortest JWT secret accepted.
const MIN_SECRET_BYTES: usize = 32;

/// An opened event log, and its writer's counters when it is the embedded one.
pub(crate) struct OpenedLog {
    pub log: Arc<dyn EventLog>,
    pub writer: Option<Arc<dyn Fn() -> WriterStats + Send + Sync>>,
}

/// The EventStoreDB log at `url`; `None` if shutdown came while waiting for it.
pub(crate) async fn open_esdb(
    url: &Redacted,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<EsdbEventLog>> {
    let url = url.expose().to_string();
    let log = patiently("EventStoreDB", shutdown, || EsdbEventLog::connect(&url)).await?;
    if log.is_some() {
        tracing::info!(store = "eventstoredb", "event log connected");
    }
    Ok(log)
}

/// The event log of `args`; `None` if shutdown came while waiting for EventStoreDB.
pub(crate) async fn open_log(
    args: &LogArgs,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<OpenedLog>> {
    if let Some(url) = &args.eventstore_url {
        let log = open_esdb(url, shutdown).await?;
        return Ok(log.map(|log| OpenedLog {
            log: Arc::new(log),
            writer: None,
        }));
    }
    let log = Arc::new(data_dir::sqlite_log(
        &args.store.data_dir,
        args.store.log_key.as_deref(),
    )?);
    tracing::info!(store = "sqlite", data_dir = %args.store.data_dir.display(), "event log opened");
    let stats = Arc::clone(&log);
    Ok(Some(OpenedLog {
        log,
        writer: Some(Arc::new(move || stats.stats())),
    }))
}

/// The view store of `args` (embedded in `data_dir` unless a MongoDB URL is given); `None` if
/// shutdown came while waiting for MongoDB.
pub(crate) async fn open_views(
    args: &ViewArgs,
    data_dir: &Path,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<Arc<dyn ViewStore>>> {
    if let Some(url) = &args.mongodb_url {
        let url = url.expose().to_string();
        let db = args.mongodb_db.clone();
        let views = patiently("MongoDB", shutdown, || MongoViewStore::connect(&url, &db)).await?;
        return Ok(views.map(|views| {
            tracing::info!(store = "mongodb", db = %args.mongodb_db, "view store connected");
            Arc::new(views) as Arc<dyn ViewStore>
        }));
    }
    let views = data_dir::sqlite_views(data_dir)?;
    tracing::info!(store = "sqlite", data_dir = %data_dir.display(), "view store opened");
    Ok(Some(Arc::new(views)))
}

/// Customers' data keys: a `customer_keys` collection in the MongoDB database of `args` when a
/// URL is given (every command-api instance then shares them), else `keys.db` in `data_dir`; `None`
/// if shutdown came while waiting for MongoDB.
pub(crate) async fn open_keys(
    args: &ViewArgs,
    data_dir: &Path,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<Arc<dyn keys::KeyStore>>> {
    let Some(url) = &args.mongodb_url else {
        return Ok(Some(Arc::new(data_dir::key_store(data_dir)?)));
    };
    let url = url.expose().to_string();
    let name = args.mongodb_db.clone();
    let db = patiently("MongoDB", shutdown, || async {
        let client = mongodb::Client::with_uri_str(&url).await?;
        let db = client.database(&name);
        db.run_command(mongodb::bson::doc! { "ping": 1 }).await?;
        Ok::<_, mongodb::error::Error>(db)
    })
    .await?;
    Ok(db.map(|db| {
        tracing::info!(store = "mongodb", db = %args.mongodb_db, "key store connected");
        Arc::new(keys::MongoKeyStore::new(db)) as Arc<dyn keys::KeyStore>
    }))
}

/// The inbox: collections beside the views in the MongoDB database of `args` when a URL is given,
/// else `inbox.db` in `data_dir`; `None` if shutdown came while waiting for MongoDB.
pub(crate) async fn open_inbox(
    args: &ViewArgs,
    data_dir: &Path,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<Arc<dyn InboxStore>>> {
    let Some(url) = &args.mongodb_url else {
        return Ok(Some(Arc::new(data_dir::sqlite_inbox(data_dir)?)));
    };
    let (url, db) = (url.expose().to_string(), args.mongodb_db.clone());
    let inbox = patiently("MongoDB", shutdown, || MongoInbox::connect(&url, &db)).await?;
    Ok(inbox.map(|inbox| Arc::new(inbox) as Arc<dyn InboxStore>))
}

/// The webhook store: collections in the MongoDB database of `args` when a URL is given, else
/// `webhooks.db` in `data_dir`; `None` if shutdown came while waiting for MongoDB.
pub(crate) async fn open_webhooks(
    args: &ViewArgs,
    data_dir: &Path,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<Arc<dyn WebhookStore>>> {
    let Some(url) = &args.mongodb_url else {
        return Ok(Some(Arc::new(data_dir::sqlite_webhooks(data_dir)?)));
    };
    let (url, db) = (url.expose().to_string(), args.mongodb_db.clone());
    let store = patiently("MongoDB", shutdown, || MongoWebhooks::connect(&url, &db)).await?;
    Ok(store.map(|store| Arc::new(store) as Arc<dyn WebhookStore>))
}

/// The token checker: `--jwt-secret` / `STAYLEDGER_JWT_SECRET`, else the data dir's secret file.
pub(crate) fn auth(args: &AuthArgs, data_dir: &Path) -> anyhow::Result<Arc<Auth>> {
    let secret = match &args.jwt_secret {
        Some(secret) => {
            let bytes = secret.expose().as_bytes();
            anyhow::ensure!(
                bytes.len() >= MIN_SECRET_BYTES,
                "--jwt-secret (STAYLEDGER_JWT_SECRET) must be at least {MIN_SECRET_BYTES} bytes"
            );
            bytes.to_vec()
        }
        None => secret::load_or_create(data_dir)?,
    };
    Ok(Arc::new(Auth::new(secret)))
}

/// A `saga` process's policy and its payment gateway (the gateway key given, or the data dir's),
/// alike for one process and for leased shards.
pub(crate) fn saga_policy_and_gateway(
    args: &SagaArgs,
) -> anyhow::Result<(SagaPolicy, Arc<dyn PaymentGateway>)> {
    let policy = cli::saga_policy(
        args.approval_deadline,
        args.payment_retry_base,
        args.payment_max_attempts,
    )?;
    let key = data_dir::gateway_key::given_or_existing(
        args.gateway_key.given(),
        &args.log.store.data_dir,
    )?;
    let gateway = payment_gateway(
        &args.payment_gateway_url,
        &key,
        args.payment_timeout,
        BreakerPolicy::default(),
    )?;
    Ok((policy, gateway))
}

/// The HTTP client of a payment gateway behind a circuit breaker (`serve`, `saga`, `saga --shards`).
pub(crate) fn payment_gateway(
    url: &str,
    key: &GatewayKey,
    timeout: Duration,
    breaker: BreakerPolicy,
) -> anyhow::Result<Arc<dyn PaymentGateway>> {
    let http = HttpGateway::new(url, key, timeout)
        .with_context(|| format!("payment gateway URL {url:?}"))?;
    Ok(Arc::new(BreakerGateway::new(http, breaker)))
}

/// Call `connect` until it succeeds, waiting 250 ms doubling to 5 s between attempts, for at most
/// [`CONNECT_PATIENCE`]; `None` if `shutdown` comes first.
async fn patiently<T, E, F, Fut>(
    what: &str,
    shutdown: &CancellationToken,
    mut connect: F,
) -> anyhow::Result<Option<T>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let started = tokio::time::Instant::now();
    let mut delay = Duration::from_millis(250);
    loop {
        let error = tokio::select! {
            () = shutdown.cancelled() => return Ok(None),
            attempt = connect() => match attempt {
                Ok(connected) => return Ok(Some(connected)),
                Err(error) => error.to_string(),
            },
        };
        if started.elapsed() + delay > CONNECT_PATIENCE {
            anyhow::bail!("{what} did not answer within {CONNECT_PATIENCE:?}: {error}");
        }
        tracing::warn!(%error, retry_in = ?delay, "{what} is not reachable yet");
        tokio::select! {
            () = shutdown.cancelled() => return Ok(None),
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_secret_is_refused_without_echoing_it() {
        let dir = tempfile::tempdir().expect("dir");
        let args = AuthArgs {
            jwt_secret: Some("too-short-secret".to_string().into()),
        };
        let error = auth(&args, dir.path()).expect_err("short").to_string();
        assert!(error.contains("at least 32 bytes"), "{error}");
        assert!(!error.contains("too-short-secret"), "{error}");
    }

    #[tokio::test]
    async fn an_unreachable_server_is_given_up_on_shutdown() {
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        let got = patiently("nothing", &shutdown, || async {
            Err::<(), _>("refused".to_string())
        })
        .await
        .expect("no error on shutdown");
        assert!(got.is_none());
    }
}
