//! The webhook store conformance suite against every adapter: SQLite always, MongoDB when
//! `STAYLEDGER_MONGODB_URL` is set.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::FutureExt;
use mongodb::Client;
use notifier::conformance::{self, FreshWebhooks};
use notifier::mongo::MongoWebhooks;
use notifier::{SqliteWebhooks, WebhookStore};

/// Fresh SQLite files in one temporary directory; a pair opens one file twice.
struct SqliteFiles {
    dir: tempfile::TempDir,
    next: AtomicUsize,
}

impl SqliteFiles {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temporary directory"),
            next: AtomicUsize::new(0),
        }
    }

    fn path(&self) -> std::path::PathBuf {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.dir.path().join(format!("webhooks-{n}.db"))
    }
}

fn open_sqlite(path: &std::path::Path) -> Arc<dyn WebhookStore> {
    Arc::new(SqliteWebhooks::open(path).expect("open SQLite webhook store"))
}

#[async_trait]
impl FreshWebhooks for SqliteFiles {
    async fn fresh(&self) -> Arc<dyn WebhookStore> {
        open_sqlite(&self.path())
    }

    async fn fresh_pair(&self) -> [Arc<dyn WebhookStore>; 2] {
        let path = self.path();
        [open_sqlite(&path), open_sqlite(&path)]
    }
}

macro_rules! sqlite_checks {
    ($($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                conformance::$check(&SqliteFiles::new()).await;
            }
        )*
    };
}

sqlite_checks!(
    subscriptions_are_kept_listed_and_removed,
    enqueue_is_idempotent_and_the_cursor_never_moves_back,
    deliveries_of_subscriptions_not_kept_are_dropped,
    open_deliveries_are_pending_or_retrying_by_seq,
    record_attempt_saves_over_open_deliveries_only,
    deliveries_page_newest_first,
    redrive_queues_parked_deliveries_only,
    removing_a_subscription_drops_its_deliveries,
    concurrent_enqueues_make_one_of_each,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_run_all() {
    conformance::run_all(&SqliteFiles::new()).await;
}

/// Fresh MongoDB databases on the server at `STAYLEDGER_MONGODB_URL` (`wh_conf_<run>_<n>`); a pair
/// connects twice (two connection pools, as two processes would). All dropped at the end.
struct MongoDatabases {
    url: String,
    prefix: String,
    next: AtomicUsize,
    created: Mutex<Vec<String>>,
}

impl MongoDatabases {
    fn name(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let name = format!("{}_{n}", self.prefix);
        self.created
            .lock()
            .expect("created databases")
            .push(name.clone());
        name
    }

    async fn connect(&self, name: &str) -> Arc<dyn WebhookStore> {
        Arc::new(
            MongoWebhooks::connect(&self.url, name)
                .await
                .expect("connect to MongoDB"),
        )
    }

    async fn drop_all(&self) {
        let client = Client::with_uri_str(&self.url)
            .await
            .expect("connect to MongoDB");
        let names = std::mem::take(&mut *self.created.lock().expect("created databases"));
        for name in names {
            client
                .database(&name)
                .drop()
                .await
                .expect("drop test database");
        }
    }
}

#[async_trait]
impl FreshWebhooks for MongoDatabases {
    async fn fresh(&self) -> Arc<dyn WebhookStore> {
        let name = self.name();
        self.connect(&name).await
    }

    async fn fresh_pair(&self) -> [Arc<dyn WebhookStore>; 2] {
        let name = self.name();
        [self.connect(&name).await, self.connect(&name).await]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongodb_conformance() {
    let Ok(url) = std::env::var("STAYLEDGER_MONGODB_URL") else {
        // Written to the process's stderr directly, past the test harness's capture, so every
        // run (CI included) shows that this adapter was not exercised.
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"SKIPPED: MongoDB webhook conformance (set STAYLEDGER_MONGODB_URL)\n",
        );
        return;
    };
    let stores = MongoDatabases {
        url,
        prefix: format!("wh_conf_{}", uuid::Uuid::new_v4().simple()),
        next: AtomicUsize::new(0),
        created: Mutex::new(Vec::new()),
    };
    let outcome = std::panic::AssertUnwindSafe(conformance::run_all(&stores))
        .catch_unwind()
        .await;
    stores.drop_all().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
