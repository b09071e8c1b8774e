//! A connection's page cache is bounded by its own `cache_size` (the bundled SQLite has no
//! process-wide page-cache pool, `sqlite_build.rs`). Alone in its test binary: it measures the
//! process's resident memory.

use rusqlite::Connection;

fn resident_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib / 1024.0
}

/// Write `mib` MiB of 1 KiB rows through `conn`, one transaction per MiB.
fn fill(conn: &Connection, mib: usize) {
    conn.execute_batch("CREATE TABLE t (b BLOB)")
        .expect("table");
    for _ in 0..mib {
        conn.execute_batch(
            "BEGIN;
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1024)
             INSERT INTO t (b) SELECT randomblob(1024) FROM n;
             COMMIT;",
        )
        .expect("insert");
    }
}

#[test]
fn a_connection_page_cache_stays_within_its_own_cache_size() {
    let dir = tempfile::tempdir().expect("dir");
    let conn = Connection::open(dir.path().join("big.db")).expect("open");
    conn.pragma_update(None, "cache_size", -8_192)
        .expect("8 MiB cache");
    let before = resident_mib();
    fill(&conn, 48);
    let grown = resident_mib() - before;
    // A cache that kept every page written would hold about 50 MiB.
    assert!(grown < 24.0, "resident memory grew by {grown:.1} MiB");
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM t", [], |row| row.get(0))
        .expect("count");
    assert_eq!(rows, 48 * 1024, "every row still there");
}
