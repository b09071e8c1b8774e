//! The data dir of the embedded deployment (`--data-dir`): what every file in it is called, and
//! opening the embedded stores in it. Every other module asks here; none joins a file name itself.
//!
//! | file | what |
//! |---|---|
//! | `events.db` | the event log |
//! | `views.db`, or the file `views.generation` names | the views (`stayledger replay` makes a new generation) |
//! | `saga.db`, `saga-{i}-of-{n}.db`, `saga-group-{member}.db` | the saga's timer store: all of it, one shard, one consumer-group member |
//! | `leases.db` | the scale-out leases of the processes of one host |
//! | `jwt-secret` | the JWT signing secret ([`secret`]) |
//! | `payment-gateway-key` | the key the saga's client presents to the payment gateway ([`gateway_key`]) |
//! | `sandbox-gateway.db` | the sandbox payment gateway's own ledger of charges, refunds and payouts |
//! | `inbox.db` | the inbox the notifier builds (`GET /me/notifications`) |
//! | `webhooks.db` | webhook subscriptions (secrets sealed), deliveries, the dispatcher's cursor |
//! | `keys.db` | customers' data keys (crypto-shredding: erasure destroys a key; `keys` crate) |
//! | `log-key` | the event log's key ([`log_key`]; `--log-key` keeps it elsewhere) |
//! | `events.head` | the signed head of the log's MAC chain, kept by the log itself |
//!
//! The dir is its owner's alone: created 0700, every file in it 0600 ([`private`]).
//!
//! Must not: decide which store a process uses (embedded or a server by URL: `stores`), nor hold
//! what the stores do.

pub mod gateway_key;
mod generation;
pub mod log_key;
pub mod private;
pub mod secret;

use std::path::{Path, PathBuf};

use anyhow::Context;
use eventlog::SqliteEventLog;
use readmodel::SqliteViewStore;
use saga::sandbox::SandboxState;
use saga::{Shard, SqliteTimerStore};

use crate::lease::LeaseTable;

pub use generation::{current_views_file, fresh_views_file, publish_generation};

/// The event log.
pub const EVENTS_FILE: &str = "events.db";
/// The views, until `replay` names another file in [`VIEWS_GENERATION_FILE`].
pub const VIEWS_FILE: &str = "views.db";
/// The file naming the views file in use; absent means [`VIEWS_FILE`].
pub const VIEWS_GENERATION_FILE: &str = "views.generation";
/// The saga's timer store when one saga handles every reservation (as `serve`).
pub const SAGA_FILE: &str = "saga.db";
/// The lease table of scaled-out consumers.
pub const LEASES_FILE: &str = "leases.db";
/// The JWT signing secret (hex).
pub const SECRET_FILE: &str = "jwt-secret";
/// The payment gateway key of `serve` and of services sharing the data dir.
pub const GATEWAY_KEY_FILE: &str = "payment-gateway-key";
/// The sandbox payment gateway's ledger.
pub const SANDBOX_LEDGER_FILE: &str = "sandbox-gateway.db";
/// The inbox (the notifier's own store).
pub const INBOX_FILE: &str = "inbox.db";
/// Webhook subscriptions and deliveries.
pub const WEBHOOKS_FILE: &str = "webhooks.db";
/// Customers' data keys, outside the event log so that erasure can destroy them.
pub const KEYS_FILE: &str = "keys.db";
/// The event log's key (hex), unless `--log-key` names another file.
pub const LOG_KEY_FILE: &str = "log-key";

/// Where the event log of `data_dir` is.
#[must_use]
pub fn events_path(data_dir: &Path) -> PathBuf {
    data_dir.join(EVENTS_FILE)
}

/// Where the first generation of the views of `data_dir` is (before any `replay`).
#[must_use]
pub fn views_path(data_dir: &Path) -> PathBuf {
    data_dir.join(VIEWS_FILE)
}

/// The saga's timer file for `shard`: `saga.db` for the only shard, else one file per shard, since
/// each shard keeps its own checkpoint and timers.
#[must_use]
pub fn timer_path(data_dir: &Path, shard: Shard) -> PathBuf {
    let file = if shard == Shard::ALL {
        SAGA_FILE.to_string()
    } else {
        format!("saga-{}-of-{}.db", shard.index(), shard.count())
    };
    data_dir.join(file)
}

/// The embedded event log in `data_dir` (created if missing), keyed with the key at `key_file` (default
/// `log-key` in `data_dir`; created if missing).
pub fn sqlite_log(data_dir: &Path, key_file: Option<&Path>) -> anyhow::Result<SqliteEventLog> {
    create_dir(data_dir)?;
    let path = private_file(events_path(data_dir))?;
    let key = log_key::load_or_create(&log_key::path(data_dir, key_file))?;
    SqliteEventLog::open_keyed(path, key).context("opening the event log")
}

/// The embedded event log in `data_dir`, which must be there already (the auditor tools): keyed if
/// its key is found (never created here), else unkeyed (its check then says it was not keyed).
pub fn existing_log(data_dir: &Path, key_file: Option<&Path>) -> anyhow::Result<SqliteEventLog> {
    let path = events_path(data_dir);
    anyhow::ensure!(path.exists(), "no event log at {}", path.display());
    let path = private_file(path)?;
    let opened = match log_key::load(&log_key::path(data_dir, key_file))? {
        Some(key) => SqliteEventLog::open_keyed(&path, key),
        None => SqliteEventLog::open(&path),
    };
    opened.context("opening the event log")
}

/// The embedded view store in `data_dir`: the current generation (created if missing).
pub fn sqlite_views(data_dir: &Path) -> anyhow::Result<SqliteViewStore> {
    create_dir(data_dir)?;
    let file = current_views_file(data_dir)?;
    let path = private_file(data_dir.join(file))?;
    SqliteViewStore::open(path).context("opening the view store")
}

/// The webhook store in `data_dir` (created if missing).
pub fn sqlite_webhooks(data_dir: &Path) -> anyhow::Result<notifier::SqliteWebhooks> {
    create_dir(data_dir)?;
    let path = private_file(data_dir.join(WEBHOOKS_FILE))?;
    notifier::SqliteWebhooks::open(path).context("opening the webhook store")
}

/// The inbox in `data_dir` (created if missing).
pub fn sqlite_inbox(data_dir: &Path) -> anyhow::Result<readmodel::inbox::SqliteInbox> {
    create_dir(data_dir)?;
    let path = private_file(data_dir.join(INBOX_FILE))?;
    readmodel::inbox::SqliteInbox::open(path).context("opening the inbox")
}

/// The view store file `name` in `data_dir` (a generation made by `replay`; created if missing).
pub fn views_generation(data_dir: &Path, name: &str) -> anyhow::Result<SqliteViewStore> {
    let path = private_file(data_dir.join(name))?;
    SqliteViewStore::open(path).with_context(|| format!("opening {name}"))
}

/// The saga's timer store in `data_dir` for `shard` (see [`timer_path`]).
pub fn timer_store(data_dir: &Path, shard: Shard) -> anyhow::Result<SqliteTimerStore> {
    create_dir(data_dir)?;
    let path = private_file(timer_path(data_dir, shard))?;
    SqliteTimerStore::open(path).context("opening the saga store")
}

/// The saga's timer store as member `member` of a consumer group: `saga-group-{member}.db`, kept
/// by the member across restarts (the group hands out events, not the timers they armed).
pub fn group_timer_store(data_dir: &Path, member: &str) -> anyhow::Result<SqliteTimerStore> {
    create_dir(data_dir)?;
    let path = private_file(data_dir.join(format!("saga-group-{member}.db")))?;
    SqliteTimerStore::open(path).context("opening the saga store")
}

/// The lease table of the processes sharing `data_dir` (created if missing).
pub fn lease_table(data_dir: &Path) -> anyhow::Result<LeaseTable> {
    create_dir(data_dir)?;
    let path = private_file(data_dir.join(LEASES_FILE))?;
    Ok(LeaseTable::open(path)?)
}

/// The sandbox payment gateway's ledger in `data_dir` (created if missing).
pub fn sandbox_ledger(data_dir: &Path) -> anyhow::Result<SandboxState> {
    create_dir(data_dir)?;
    let path = private_file(data_dir.join(SANDBOX_LEDGER_FILE))?;
    SandboxState::open(&path).context("opening the sandbox gateway's ledger")
}

/// The customers' key store of `data_dir`.
pub fn key_store(data_dir: &Path) -> anyhow::Result<keys::SqliteKeyStore> {
    create_dir(data_dir)?;
    let path = private_file(data_dir.join(KEYS_FILE))?;
    keys::SqliteKeyStore::open(&path).context("opening the customers' key store")
}

/// Create `data_dir` if it is not there, readable by its owner only.
pub fn create_dir(data_dir: &Path) -> anyhow::Result<()> {
    private::create_dir(data_dir)
}

/// `path`, made private (0600) before a store opens it.
fn private_file(path: PathBuf) -> anyhow::Result<PathBuf> {
    private::file(&path)?;
    Ok(path)
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

    #[cfg(unix)]
    #[test]
    fn the_data_dir_and_every_store_file_are_the_owners_alone() {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir().expect("dir");
        let dir = parent.path().join("data");
        {
            let log = sqlite_log(&dir, None).expect("log");
            let views = sqlite_views(&dir).expect("views");
            let timers = timer_store(&dir, Shard::ALL).expect("timers");
            let leases = lease_table(&dir).expect("leases");
            let sandbox = sandbox_ledger(&dir).expect("sandbox");
            secret::load_or_create(&dir).expect("secret");
            gateway_key::load_or_create(&dir).expect("gateway key");
            publish_generation(&dir, VIEWS_FILE).expect("generation");
            // Every file as a running process has it, -wal and -shm included.
            let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode(&dir), 0o700, "the data dir");
            let mut seen = Vec::new();
            for entry in std::fs::read_dir(&dir).expect("list") {
                let path = entry.expect("entry").path();
                seen.push(
                    path.file_name()
                        .expect("name")
                        .to_string_lossy()
                        .to_string(),
                );
                assert_eq!(mode(&path), 0o600, "{}", path.display());
            }
            assert!(seen.iter().any(|n| n.ends_with("-wal")), "{seen:?}");
            assert!(seen.iter().any(|n| n.ends_with("-shm")), "{seen:?}");
            drop((log, views, timers, leases, sandbox));
        }
        // A file an older version left readable is tightened when its store opens it again.
        std::fs::set_permissions(
            dir.join(EVENTS_FILE),
            std::fs::Permissions::from_mode(0o644),
        )
        .expect("loosen");
        sqlite_log(&dir, None).expect("log again");
        let mode = std::fs::metadata(dir.join(EVENTS_FILE))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
