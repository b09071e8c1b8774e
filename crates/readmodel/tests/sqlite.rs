//! What only the SQLite view store promises: several openers of one file (as several processes
//! would), and a store of an older layout being dropped so it is rebuilt from the log.

use std::sync::Arc;

use readmodel::conformance::{dump, history, PROJECTOR};
use readmodel::{SqliteViewStore, ViewStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_openers_of_one_file_write_and_read_each_other() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("views.db");
    let first = Arc::new(SqliteViewStore::open(&path).expect("open"));
    let second = Arc::new(SqliteViewStore::open(&path).expect("open again"));
    let (t, cast) = history();
    let (early, late) = t.events().split_at(t.events().len() / 2);

    // Both write at once (each under its own checkpoint); the write lock serializes them.
    let writes = [
        (Arc::clone(&first), "a", early.to_vec()),
        (Arc::clone(&second), "b", t.events().to_vec()),
    ]
    .map(|(store, id, events)| {
        tokio::spawn(async move {
            for batch in events.chunks(3) {
                store.apply(id, batch).await.expect("apply");
            }
        })
    });
    for write in writes {
        write.await.expect("writer task");
    }
    first.apply("a", late).await.expect("apply the rest");

    assert_eq!(second.checkpoint("a").await.expect("checkpoint"), t.head());
    assert_eq!(first.checkpoint("b").await.expect("checkpoint"), t.head());
    assert!(second
        .reservation(cast.confirmed)
        .await
        .expect("read")
        .is_some());
    assert_eq!(dump(&*first).await, dump(&*second).await);

    let alone = SqliteViewStore::open(dir.path().join("alone.db")).expect("open");
    alone.apply(PROJECTOR, t.events()).await.expect("apply");
    assert_eq!(
        dump(&alone).await,
        dump(&*first).await,
        "the same views as one writer builds"
    );
}

#[tokio::test]
async fn a_store_of_another_layout_is_dropped_for_a_rebuild() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("views.db");
    let (t, _) = history();
    {
        let store = SqliteViewStore::open(&path).expect("open");
        store.apply(PROJECTOR, t.events()).await.expect("apply");
    }
    {
        let store = SqliteViewStore::open(&path).expect("reopen");
        assert_eq!(
            store.checkpoint(PROJECTOR).await.expect("checkpoint"),
            t.head(),
            "kept"
        );
    }
    let conn = rusqlite::Connection::open(&path).expect("raw connection");
    conn.pragma_update(None, "user_version", 1)
        .expect("pretend an old layout");
    drop(conn);
    let store = SqliteViewStore::open(&path).expect("reopen");
    assert_eq!(
        store.checkpoint(PROJECTOR).await.expect("checkpoint"),
        0,
        "rebuild from 0"
    );
    assert!(dump(&store).await.is_empty());
}

#[tokio::test]
async fn a_swappable_store_serves_the_store_swapped_in() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (t, cast) = history();
    let live = Arc::new(SqliteViewStore::open(dir.path().join("live.db")).expect("open"));
    live.apply(PROJECTOR, t.events()).await.expect("apply");
    let fresh = Arc::new(SqliteViewStore::open(dir.path().join("fresh.db")).expect("open"));
    let swappable = readmodel::SwappableViewStore::new(live.clone());
    assert_eq!(dump(&swappable).await, dump(&*live).await);
    assert!(swappable
        .reservation(cast.confirmed)
        .await
        .expect("read")
        .is_some());

    let replaced = swappable.swap(fresh.clone());
    assert_eq!(
        dump(&*replaced).await,
        dump(&*live).await,
        "the old store comes back"
    );
    assert_eq!(
        swappable.checkpoint(PROJECTOR).await.expect("checkpoint"),
        0
    );
    swappable
        .apply(PROJECTOR, &t.events()[..3])
        .await
        .expect("apply");
    assert_eq!(
        fresh.checkpoint(PROJECTOR).await.expect("checkpoint"),
        3,
        "writes reach the new store"
    );
    assert_eq!(
        live.checkpoint(PROJECTOR).await.expect("checkpoint"),
        t.head(),
        "not the old one"
    );
}

/// Size of the database file itself (not its WAL).
fn main_file_len(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).expect("database file").len()
}

/// Wait until the background checkpointer has copied `path`'s WAL into the file (it grew past
/// `before` by more than a few pages), failing after 5 s; the WAL must be small enough that the
/// writer itself never checkpointed.
async fn wait_for_the_background_checkpoint(path: &std::path::Path, before: u64) {
    let mut wal_path = path.as_os_str().to_owned();
    wal_path.push("-wal");
    let wal = std::fs::metadata(&wal_path).expect("WAL file").len();
    assert!(
        wal < 8 << 20,
        "the WAL is {wal} bytes: the writer may have checkpointed"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while main_file_len(path) <= before + 64 * 1024 {
        assert!(
            std::time::Instant::now() < deadline,
            "the database file stayed at {} bytes (from {before}) with {wal} bytes of WAL",
            main_file_len(path)
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Enough flows to fill new pages, far below the writers' own checkpoint threshold (the WAL stays a
/// few hundred KiB).
fn many_flows() -> readmodel::conformance::timeline::Timeline {
    use readmodel::conformance::timeline::{day, Timeline};
    let mut t = Timeline::new();
    t.register("seoul-1", 1_000);
    for n in 0..400_u64 {
        let id = t.request("seoul-1", &format!("customer-{n}"), day(n % 30), 1);
        t.grant("seoul-1", id);
    }
    t
}

/// Apply `many_flows` to `target` (the store of the file at `path`) under `id`, in batches of 64;
/// wait for the background checkpointer to copy them into the file; the checkpoint is the last event.
async fn fill_and_wait_for_the_checkpoint(
    path: &std::path::Path,
    target: &dyn readmodel::ProjectionTarget,
    id: &str,
) {
    let t = many_flows();
    let before = main_file_len(path);
    for batch in t.events().chunks(64) {
        target.apply(id, batch).await.expect("apply");
    }
    wait_for_the_background_checkpoint(path, before).await;
    assert_eq!(target.checkpoint(id).await.expect("checkpoint"), t.head());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_views_reach_the_database_file_without_a_checkpoint_in_any_commit() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("views.db");
    let store: Arc<dyn ViewStore> = Arc::new(SqliteViewStore::open(&path).expect("open"));
    fill_and_wait_for_the_checkpoint(&path, &readmodel::Views(store), PROJECTOR).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_inbox_entries_reach_the_database_file_without_a_checkpoint_in_any_commit() {
    use readmodel::inbox::{SqliteInbox, NOTIFIER_ID};
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("inbox.db");
    let inbox = SqliteInbox::open(&path).expect("open");
    fill_and_wait_for_the_checkpoint(&path, &inbox, NOTIFIER_ID).await;
}

/// The file's layout: every table and index with its definition.
fn layout(path: &std::path::Path) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open(path).expect("raw connection");
    let mut statement = conn
        .prepare("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
        .expect("prepare");
    let rows = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("query");
    rows.map(|row| row.expect("row")).collect()
}

#[tokio::test]
async fn a_bulk_load_ends_with_the_layout_and_views_of_a_load_event_by_event() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (t, _) = history();
    let normal_path = dir.path().join("normal.db");
    let normal = SqliteViewStore::open(&normal_path).expect("open");
    for event in t.events() {
        normal
            .apply(PROJECTOR, std::slice::from_ref(event))
            .await
            .expect("apply");
    }

    let bulk_path = dir.path().join("bulk.db");
    let bulk = SqliteViewStore::open(&bulk_path).expect("open");
    bulk.begin_bulk_load().await.expect("begin");
    let during = layout(&bulk_path);
    assert!(
        during.len() < layout(&normal_path).len(),
        "the query-only indexes are put off: {during:?}"
    );
    for batch in t.events().chunks(5) {
        bulk.apply_shared(PROJECTOR, Arc::from(batch))
            .await
            .expect("apply");
    }
    bulk.end_bulk_load().await.expect("end");

    assert_eq!(layout(&bulk_path), layout(&normal_path));
    assert_eq!(dump(&bulk).await, dump(&normal).await);
    bulk.end_bulk_load()
        .await
        .expect("ending again changes nothing");
    assert_eq!(layout(&bulk_path), layout(&normal_path));
}
