//! Where the sandbox keeps its ledger, as a real gateway keeps its own: in memory for tests, or in
//! one SQLite file (WAL, `synchronous=NORMAL`) so a charge retried with the same idempotency key after
//! a restart returns the first charge instead of taking the money twice. Every change is written, in
//! one transaction, before it is answered; a change that cannot be written is undone and answered
//! 503. `NORMAL` keeps a committed change across a crash or kill of the process (what a retried
//! charge meets) without an fsync per charge: the sandbox moves no real money, and an fsync per
//! change under its one lock made it the bottleneck of every payment (docs/benchmarks.md, B3).

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{params, Connection};

use super::ledger::{Ledger, LedgerRefusal, SandboxCharge};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sandbox_charges (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    charge_ref TEXT NOT NULL UNIQUE,
    idempotency_key TEXT NOT NULL UNIQUE,
    charge TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sandbox_attempts (
    idempotency_key TEXT PRIMARY KEY,
    attempts INTEGER NOT NULL
);
";

/// The ledger file could not be opened or read.
#[derive(Debug, thiserror::Error)]
#[error("sandbox ledger: {0}")]
pub struct LedgerStoreError(String);

fn store_error(e: impl std::fmt::Display) -> LedgerStoreError {
    LedgerStoreError(e.to_string())
}

/// The ledger and, when durable, its file.
#[derive(Debug, Default)]
pub(super) struct Book {
    pub(super) ledger: Ledger,
    file: Option<Connection>,
}

impl Book {
    /// The ledger kept in the SQLite file at `path` (created if missing).
    pub(super) fn open(path: &Path) -> Result<Self, LedgerStoreError> {
        let conn = Connection::open(path).map_err(store_error)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(store_error)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(store_error)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(store_error)?;
        conn.execute_batch(SCHEMA).map_err(store_error)?;
        let ledger = load(&conn)?;
        Ok(Self {
            ledger,
            file: Some(conn),
        })
    }

    /// Charge through the ledger, then write what the attempt changed.
    pub(super) fn charge(
        &mut self,
        key: &str,
        amount: i64,
        currency: &str,
        declined: bool,
    ) -> Result<(SandboxCharge, bool), LedgerRefusal> {
        let outcome = self.ledger.charge(key, amount, currency, declined);
        let attempts = self.ledger.attempts_of(key);
        let charge = self.ledger.charge_by_key(key).cloned();
        self.record(|conn| {
            if attempts > 0 {
                save_attempts(conn, key, attempts)?;
            }
            charge.map_or(Ok(()), |charge| save_charge(conn, &charge))
        })?;
        outcome
    }

    /// Refund through the ledger, then write the refunded charge.
    pub(super) fn refund(
        &mut self,
        charge_ref: &str,
        amount: i64,
    ) -> Result<String, LedgerRefusal> {
        let outcome = self.ledger.refund(charge_ref, amount);
        let charge = self.ledger.charge_by_ref(charge_ref).cloned();
        self.record(|conn| charge.map_or(Ok(()), |charge| save_charge(conn, &charge)))?;
        outcome
    }

    fn record(
        &mut self,
        write: impl FnOnce(&Connection) -> Result<(), LedgerStoreError>,
    ) -> Result<(), LedgerRefusal> {
        let Some(conn) = &mut self.file else {
            return Ok(());
        };
        let written = conn.transaction().map_err(store_error).and_then(|tx| {
            write(&tx)?;
            tx.commit().map_err(store_error)
        });
        let Err(error) = written else {
            return Ok(());
        };
        let conn = &*conn;
        tracing::error!(%error, "the sandbox could not write its ledger; the change is undone");
        let config = self.ledger.config;
        // Undo: the file holds what was answered so far.
        if let Ok(ledger) = load(conn) {
            self.ledger = ledger;
        }
        self.ledger.config = config;
        Err(LedgerRefusal::Unrecorded)
    }
}

fn save_charge(conn: &Connection, charge: &SandboxCharge) -> Result<(), LedgerStoreError> {
    let body = serde_json::to_string(charge).map_err(store_error)?;
    conn.execute(
        "INSERT INTO sandbox_charges (charge_ref, idempotency_key, charge) VALUES (?1, ?2, ?3)
         ON CONFLICT(charge_ref) DO UPDATE SET charge = excluded.charge",
        params![charge.charge_ref, charge.idempotency_key, body],
    )
    .map_err(store_error)?;
    Ok(())
}

fn save_attempts(conn: &Connection, key: &str, attempts: u32) -> Result<(), LedgerStoreError> {
    conn.execute(
        "INSERT INTO sandbox_attempts (idempotency_key, attempts) VALUES (?1, ?2)
         ON CONFLICT(idempotency_key) DO UPDATE SET attempts = excluded.attempts",
        params![key, attempts],
    )
    .map_err(store_error)?;
    Ok(())
}

fn load(conn: &Connection) -> Result<Ledger, LedgerStoreError> {
    let mut charges = Vec::new();
    let mut statement = conn
        .prepare("SELECT charge FROM sandbox_charges ORDER BY seq")
        .map_err(store_error)?;
    let rows = statement
        .query_map([], |row| row.get::<_, String>(0))
        .map_err(store_error)?;
    for row in rows {
        let text = row.map_err(store_error)?;
        charges.push(serde_json::from_str::<SandboxCharge>(&text).map_err(store_error)?);
    }
    let mut attempts = HashMap::new();
    let mut statement = conn
        .prepare("SELECT idempotency_key, attempts FROM sandbox_attempts")
        .map_err(store_error)?;
    let rows = statement
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, u32>(1)?))
        })
        .map_err(store_error)?;
    for row in rows {
        let (key, count) = row.map_err(store_error)?;
        attempts.insert(key, count);
    }
    Ok(Ledger::restore(charges, attempts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reopened_book_remembers_charges_refunds_and_attempts() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("sandbox.db");
        let (first, refunded) = {
            let mut book = Book::open(&path).expect("open");
            let (first, _) = book.charge("k-1", 700, "KRW", false).expect("charged");
            let (refunded, _) = book.charge("k-2", 300, "KRW", false).expect("charged");
            book.refund(&refunded.charge_ref, 300).expect("refunded");
            book.ledger.config.overloaded = true;
            book.charge("k-3", 1, "KRW", false).unwrap_err();
            (first, refunded)
        };
        let mut book = Book::open(&path).expect("reopen");
        assert!(!book.ledger.config.overloaded, "the config is not kept");
        let (again, replayed) = book.charge("k-1", 700, "KRW", true).expect("replayed");
        assert!(replayed);
        assert_eq!(again.charge_ref, first.charge_ref);
        assert_eq!(again.attempts, 2);
        let refund = book.refund(&refunded.charge_ref, 300).expect("same refund");
        let charges = book.ledger.charges().to_vec();
        assert_eq!(charges.len(), 2);
        assert_eq!(charges[1].refund_ref.as_deref(), Some(refund.as_str()));
        let (late, _) = book.charge("k-3", 1, "KRW", false).expect("charged");
        assert_eq!(
            late.attempts, 2,
            "the overloaded attempt before the restart counts"
        );
    }
}
