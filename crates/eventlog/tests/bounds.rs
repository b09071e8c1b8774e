//! Reads from positions and versions past anything storable answer nothing, never an error.

use eventlog::{EventLog, SqliteEventLog};

#[tokio::test]
async fn reads_beyond_every_position_are_empty() {
    let dir = tempfile::tempdir().expect("dir");
    let log = SqliteEventLog::open(dir.path().join("events.db")).expect("open");
    for from in [u64::MAX, u64::MAX - 1, i64::MAX as u64 + 1] {
        assert!(log.read_all(from, 10).await.expect("read_all").is_empty());
        assert!(log
            .read_stream("s-1", from, 10)
            .await
            .expect("read_stream")
            .is_empty());
    }
}
