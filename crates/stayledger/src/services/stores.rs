//! Opening what a service alone runs on: the event log (embedded `events.db` or EventStoreDB), the
//! views (embedded `views.db` or MongoDB), the saga's timer store and the JWT secret. Servers that
//! are not up yet are waited for, with backoff, for a bounded time (containers start in any order).

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use eventlog::{EsdbEventLog, EventLog, SqliteEventLog, WriterStats};
use http_edge::Auth;
use readmodel::{MongoViewStore, SqliteViewStore, ViewStore};
use saga::{Shard, SqliteTimerStore};
use tokio_util::sync::CancellationToken;

use super::args::{AuthArgs, LogArgs, Redacted, ViewArgs};
use crate::secret;
use crate::serve::{EVENTS_FILE, SAGA_FILE};

/// Longest a service waits for its store servers at start before giving up.
const CONNECT_PATIENCE: Duration = Duration::from_secs(60);

/// Shortest JWT secret accepted.
const MIN_SECRET_BYTES: usize = 32;

/// An opened event log, and its writer's counters when it is the embedded one.
pub(crate) struct OpenedLog {
    pub log: Arc<dyn EventLog>,
    pub writer: Option<Arc<dyn Fn() -> WriterStats + Send + Sync>>,
}

/// The embedded event log in `data_dir` (created if missing).
pub(crate) fn sqlite_log(data_dir: &Path) -> anyhow::Result<SqliteEventLog> {
    create_dir(data_dir)?;
    SqliteEventLog::open(data_dir.join(EVENTS_FILE)).context("opening the event log")
}

/// The embedded view store in `data_dir` (created if missing).
pub(crate) fn sqlite_views(data_dir: &Path) -> anyhow::Result<SqliteViewStore> {
    create_dir(data_dir)?;
    let file = crate::audit::current_views_file(data_dir)?;
    SqliteViewStore::open(data_dir.join(file)).context("opening the view store")
}

/// The saga's timer store in `data_dir`: `saga.db` for the only shard (as `serve`), else one file
/// per shard, since each shard keeps its own checkpoint and timers.
pub(crate) fn timer_store(data_dir: &Path, shard: Shard) -> anyhow::Result<SqliteTimerStore> {
    create_dir(data_dir)?;
    let file = if shard == Shard::ALL {
        SAGA_FILE.to_string()
    } else {
        format!("saga-{}-of-{}.db", shard.index(), shard.count())
    };
    SqliteTimerStore::open(data_dir.join(file)).context("opening the saga store")
}

fn create_dir(data_dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data dir {}", data_dir.display()))
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

/// The saga's timer store as member `member` of a consumer group: `saga-group-{member}.db`, kept
/// by the member across restarts (the group hands out events, not the timers they armed).
pub(crate) fn group_timer_store(data_dir: &Path, member: &str) -> anyhow::Result<SqliteTimerStore> {
    create_dir(data_dir)?;
    SqliteTimerStore::open(data_dir.join(format!("saga-group-{member}.db")))
        .context("opening the saga store")
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
    let log = Arc::new(sqlite_log(&args.store.data_dir)?);
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
    let views = sqlite_views(data_dir)?;
    tracing::info!(store = "sqlite", data_dir = %data_dir.display(), "view store opened");
    Ok(Some(Arc::new(views)))
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
    fn shards_keep_their_own_timer_files() {
        let dir = tempfile::tempdir().expect("dir");
        timer_store(dir.path(), Shard::ALL).expect("all");
        timer_store(dir.path(), Shard::new(1, 2).expect("shard")).expect("one of two");
        assert!(dir.path().join(SAGA_FILE).exists());
        assert!(dir.path().join("saga-1-of-2.db").exists());
    }

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
