//! The tables of the SQLite webhook store, created on open, and the migrations of files written
//! before:
//! - deliveries moved from a `WITHOUT ROWID` table (rows of ~2 KB kept in their primary key's
//!   B-tree, so every insert and every attempt's update split and rewrote pages of a few rows
//!   each) to a rowid table with the same key as a unique index (B9: lag p99 220 against 350 ms
//!   under B3's load, docs/benchmarks.md);
//! - each delivery's body copied out of its row's `doc` into `delivery_bodies`, written once, so
//!   an attempt's outcome rewrites a small row (docs/benchmarks.md, B9).

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS subscriptions (
    id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    subscription_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    delivery_id TEXT NOT NULL,
    state TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (subscription_id, seq)
);
CREATE INDEX IF NOT EXISTS deliveries_by_id ON deliveries (delivery_id);
-- A sender's window: its open deliveries by seq, without stepping over the settled ones (a
-- subscription's settled deliveries only grow; read through them, a window cost more each time).
CREATE INDEX IF NOT EXISTS open_deliveries ON deliveries (subscription_id, seq)
    WHERE state IN ('pending', 'retrying');
-- Each delivery's body, under its `deliveries` row's rowid: written once when it is queued (the
-- same bytes go out at every attempt), so an attempt's outcome rewrites only the small state row.
CREATE TABLE IF NOT EXISTS delivery_bodies (
    id INTEGER PRIMARY KEY,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cursor (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
);
INSERT OR IGNORE INTO cursor (id, seq) VALUES (1, 0);
";

/// Deliveries as the store kept them before: set aside, copied over, then dropped.
const MIGRATE_DELIVERIES: &str = "
DROP INDEX IF EXISTS deliveries_by_id;
DROP INDEX IF EXISTS open_deliveries;
ALTER TABLE deliveries RENAME TO deliveries_without_rowid;
";
const COPY_DELIVERIES: &str = "
INSERT INTO deliveries (subscription_id, seq, delivery_id, state, doc)
    SELECT subscription_id, seq, delivery_id, state, doc FROM deliveries_without_rowid
    ORDER BY subscription_id, seq;
DROP TABLE deliveries_without_rowid;
";

/// Bodies of deliveries written while they were kept inside each row's `doc`, copied to their
/// own table (the docs keep theirs until their next save, which writes the state alone).
const SPLIT_BODIES: &str = "
INSERT INTO delivery_bodies (id, body)
    SELECT rowid, json_extract(doc, '$.body') FROM deliveries
    WHERE json_type(doc, '$.body') = 'text';
";

fn has_table(tx: &Connection, name: &str) -> rusqlite::Result<bool> {
    tx.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |row| row.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

/// Create the tables, migrating a file of an earlier layout first: all in one transaction that
/// holds the write lock from its start, so two processes opening one file migrate it once.
pub(crate) fn prepare(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let bodies_apart = has_table(&tx, "delivery_bodies")?;
    let deliveries: Option<String> = tx
        .query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'deliveries'",
            [],
            |row| row.get(0),
        )
        .optional()?;
    let legacy = deliveries.is_some_and(|sql| sql.to_ascii_uppercase().contains("WITHOUT ROWID"));
    if legacy {
        tx.execute_batch(MIGRATE_DELIVERIES)?;
        tx.execute_batch(SCHEMA)?;
        tx.execute_batch(COPY_DELIVERIES)?;
        tracing::info!("webhook store: deliveries moved to a rowid table");
    } else {
        tx.execute_batch(SCHEMA)?;
    }
    if !bodies_apart {
        tx.execute_batch(SPLIT_BODIES)?;
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The deliveries table as the store created it before this layout.
    const LEGACY: &str = "
    CREATE TABLE deliveries (
        subscription_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        delivery_id TEXT NOT NULL,
        state TEXT NOT NULL,
        doc TEXT NOT NULL,
        PRIMARY KEY (subscription_id, seq)
    ) WITHOUT ROWID;
    CREATE INDEX deliveries_by_id ON deliveries (delivery_id);
    CREATE INDEX open_deliveries ON deliveries (subscription_id, seq)
        WHERE state IN ('pending', 'retrying');
    CREATE TABLE cursor (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL);
    INSERT INTO cursor (id, seq) VALUES (1, 42);
    ";

    fn rows(conn: &Connection) -> Vec<(String, i64, String, String, String)> {
        let mut statement = conn
            .prepare("SELECT subscription_id, seq, delivery_id, state, doc FROM deliveries ORDER BY subscription_id, seq")
            .expect("select");
        let mapped = statement
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .expect("rows");
        mapped.collect::<Result<_, _>>().expect("rows")
    }

    fn table_sql(conn: &Connection) -> String {
        conn.query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'deliveries'",
            [],
            |row| row.get(0),
        )
        .expect("deliveries table")
    }

    fn indexes(conn: &Connection) -> Vec<String> {
        let mut statement = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'deliveries' AND sql IS NOT NULL ORDER BY name")
            .expect("select");
        let names = statement.query_map([], |r| r.get(0)).expect("names");
        names.collect::<Result<_, _>>().expect("names")
    }

    #[test]
    fn a_file_of_the_earlier_layout_keeps_every_delivery_and_its_cursor() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut conn = Connection::open(dir.path().join("webhooks.db")).expect("open");
        conn.execute_batch(LEGACY).expect("legacy layout");
        for (sub, seq, state) in [
            ("b", 2, "delivered"),
            ("a", 7, "pending"),
            ("b", 1, "parked"),
        ] {
            conn.execute(
                "INSERT INTO deliveries VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![
                    sub,
                    seq,
                    format!("d-{sub}-{seq}"),
                    state,
                    format!("{{\"seq\":{seq}}}")
                ],
            )
            .expect("legacy row");
        }
        let before = rows(&conn);

        prepare(&mut conn).expect("migrated");

        assert!(!table_sql(&conn)
            .to_ascii_uppercase()
            .contains("WITHOUT ROWID"));
        assert_eq!(rows(&conn), before, "every row kept as it was");
        assert_eq!(indexes(&conn), ["deliveries_by_id", "open_deliveries"]);
        let cursor: i64 = conn
            .query_row("SELECT seq FROM cursor WHERE id = 1", [], |r| r.get(0))
            .expect("cursor");
        assert_eq!(cursor, 42, "the cursor is left where it was");
        let open: i64 = conn
            .query_row(
                "SELECT count(*) FROM deliveries INDEXED BY open_deliveries WHERE subscription_id = 'a' AND state IN ('pending', 'retrying')",
                [],
                |r| r.get(0),
            )
            .expect("open deliveries by their index");
        assert_eq!(open, 1);

        prepare(&mut conn).expect("a second open changes nothing");
        assert_eq!(rows(&conn), before);
        let leftovers: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'deliveries_without_rowid'",
                [],
                |r| r.get(0),
            )
            .expect("tables");
        assert_eq!(leftovers, 0, "the old table is gone");
    }

    #[test]
    fn a_new_file_gets_the_rowid_layout() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut conn = Connection::open(dir.path().join("webhooks.db")).expect("open");
        prepare(&mut conn).expect("created");
        assert!(table_sql(&conn).contains("PRIMARY KEY (subscription_id, seq)"));
        assert!(!table_sql(&conn)
            .to_ascii_uppercase()
            .contains("WITHOUT ROWID"));
        assert_eq!(indexes(&conn), ["deliveries_by_id", "open_deliveries"]);
    }
}
