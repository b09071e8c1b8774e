//! Where the view store's point reads run: on the calling task's thread when a reader connection
//! is free, on the blocking pool (without holding the task's thread) when every reader is busy.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, PoisonError};
use std::thread::{self, ThreadId};
use std::time::Duration;

use super::{SqliteViewStore, READERS};

fn store() -> (tempfile::TempDir, SqliteViewStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteViewStore::open(dir.path().join("views.db")).expect("open");
    (dir, store)
}

/// The thread a point read ran on, and what it read.
async fn point_read(store: &SqliteViewStore) -> (ThreadId, i64) {
    store
        .point(|conn| {
            let one = conn
                .query_row("SELECT 1", [], |row| row.get(0))
                .map_err(super::schema::store_error)?;
            Ok((thread::current().id(), one))
        })
        .await
        .expect("point read")
}

#[tokio::test(flavor = "current_thread")]
async fn a_point_read_runs_on_the_calling_thread_when_a_reader_is_free() {
    let (_dir, store) = store();
    for _ in 0..READERS * 2 {
        let (ran_on, one) = point_read(&store).await;
        assert_eq!(one, 1);
        assert_eq!(
            ran_on,
            thread::current().id(),
            "no hand-off to the blocking pool"
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn with_every_reader_busy_a_point_read_waits_on_the_pool_not_on_the_callers_thread() {
    let (_dir, store) = store();
    let readers = Arc::clone(&store.readers);
    let (locked, is_locked) = mpsc::channel();
    let holder = thread::spawn(move || {
        let busy: Vec<_> = readers
            .iter()
            .map(|slot| slot.lock().unwrap_or_else(PoisonError::into_inner))
            .collect();
        locked.send(()).expect("signal");
        thread::sleep(Duration::from_millis(300));
        drop(busy);
    });
    is_locked.recv().expect("every reader locked");
    // One thread runs this test: had the read waited for a lock on it, the ticker would not tick.
    let done = AtomicBool::new(false);
    let read = async {
        let read = point_read(&store).await;
        done.store(true, Ordering::SeqCst);
        read
    };
    let ticker = async {
        let mut ticks = 0;
        while !done.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
            ticks += 1;
        }
        ticks
    };
    let ((ran_on, one), ticks) = tokio::join!(read, ticker);
    holder.join().expect("holder");
    assert_eq!(one, 1);
    assert!(
        ticks >= 5,
        "the caller's thread went on while the read waited: {ticks} ticks"
    );
    assert_ne!(
        ran_on,
        thread::current().id(),
        "it ran on the blocking pool"
    );
}
