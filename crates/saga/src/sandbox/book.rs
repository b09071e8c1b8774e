//! Where the sandbox keeps its ledger, as a real gateway keeps its own: in memory for tests, or in
//! one SQLite file (WAL, `synchronous=NORMAL`) so a charge or payout retried with the same
//! idempotency key after a restart returns the first one instead of moving the money twice. Every
//! change is written, in one transaction, before it is answered; a change that cannot be written
//! is undone and answered 503. `NORMAL` keeps a committed change across a crash or kill of the
//! process (what a retried charge or payout meets) without an fsync per change: the sandbox moves
//! no real money, and an fsync per change under its one lock made it the bottleneck of every
//! payment (docs/benchmarks.md, B3).

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{params, Connection};
use serde::de::DeserializeOwned;

use super::ledger::{Ledger, LedgerRefusal, SandboxCharge};
use super::payouts::{Payouts, SandboxPayout};

/// The charges and payouts, one row each (a row carries its attempts), and the attempts of keys that
/// have none yet (declined, overloaded; files written before 2026-12-07 hold every key's).
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
CREATE TABLE IF NOT EXISTS sandbox_payouts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    payout_ref TEXT NOT NULL UNIQUE,
    idempotency_key TEXT NOT NULL UNIQUE,
    payout TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sandbox_payout_attempts (
    idempotency_key TEXT PRIMARY KEY,
    attempts INTEGER NOT NULL
);
";

/// Where the attempts of each key are counted: charges' and payouts' keys are apart.
#[derive(Debug, Clone, Copy)]
enum Attempts {
    Charges,
    Payouts,
}

impl Attempts {
    fn upsert(self) -> &'static str {
        match self {
            Self::Charges => {
                "INSERT INTO sandbox_attempts (idempotency_key, attempts) VALUES (?1, ?2)
                 ON CONFLICT(idempotency_key) DO UPDATE SET attempts = excluded.attempts"
            }
            Self::Payouts => {
                "INSERT INTO sandbox_payout_attempts (idempotency_key, attempts) VALUES (?1, ?2)
                 ON CONFLICT(idempotency_key) DO UPDATE SET attempts = excluded.attempts"
            }
        }
    }

    fn select(self) -> &'static str {
        match self {
            Self::Charges => "SELECT idempotency_key, attempts FROM sandbox_attempts",
            Self::Payouts => "SELECT idempotency_key, attempts FROM sandbox_payout_attempts",
        }
    }
}

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
    /// The ledger kept in the SQLite file at `path` (created if missing; a file from before payouts
    /// gains their tables).
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
        self.record(|conn| match charge {
            // The charge's row carries its attempts.
            Some(charge) => save_charge(conn, &charge),
            None if attempts > 0 => save_attempts(conn, Attempts::Charges, key, attempts),
            None => Ok(()),
        })?;
        outcome
    }

    /// Pay out through the ledger, then write what the attempt changed.
    pub(super) fn payout(
        &mut self,
        key: &str,
        payee: &str,
        amount: i64,
        currency: &str,
    ) -> Result<(SandboxPayout, bool), LedgerRefusal> {
        let outcome = self.ledger.payout(key, payee, amount, currency);
        let attempts = self.ledger.payouts().attempts_of(key);
        let payout = self.ledger.payouts().by_key(key).cloned();
        self.record(|conn| match payout {
            // The payout's row carries its attempts.
            Some(payout) => save_payout(conn, &payout),
            None if attempts > 0 => save_attempts(conn, Attempts::Payouts, key, attempts),
            None => Ok(()),
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
    conn.prepare_cached(
        "INSERT INTO sandbox_charges (charge_ref, idempotency_key, charge) VALUES (?1, ?2, ?3)
         ON CONFLICT(charge_ref) DO UPDATE SET charge = excluded.charge",
    )
    .and_then(|mut insert| insert.execute(params![charge.charge_ref, charge.idempotency_key, body]))
    .map_err(store_error)?;
    Ok(())
}

fn save_payout(conn: &Connection, payout: &SandboxPayout) -> Result<(), LedgerStoreError> {
    let body = serde_json::to_string(payout).map_err(store_error)?;
    conn.prepare_cached(
        "INSERT INTO sandbox_payouts (payout_ref, idempotency_key, payout) VALUES (?1, ?2, ?3)
         ON CONFLICT(payout_ref) DO UPDATE SET payout = excluded.payout",
    )
    .and_then(|mut insert| insert.execute(params![payout.payout_ref, payout.idempotency_key, body]))
    .map_err(store_error)?;
    Ok(())
}

fn save_attempts(
    conn: &Connection,
    table: Attempts,
    key: &str,
    attempts: u32,
) -> Result<(), LedgerStoreError> {
    conn.prepare_cached(table.upsert())
        .and_then(|mut upsert| upsert.execute(params![key, attempts]))
        .map_err(store_error)?;
    Ok(())
}

fn load(conn: &Connection) -> Result<Ledger, LedgerStoreError> {
    let charges = load_json(conn, "SELECT charge FROM sandbox_charges ORDER BY seq")?;
    let payouts = load_json(conn, "SELECT payout FROM sandbox_payouts ORDER BY seq")?;
    let payouts = Payouts::restore(payouts, load_attempts(conn, Attempts::Payouts)?);
    Ok(Ledger::restore(
        charges,
        load_attempts(conn, Attempts::Charges)?,
        payouts,
    ))
}

/// Every row of `query` (one JSON text column), in its order.
fn load_json<T: DeserializeOwned>(
    conn: &Connection,
    query: &str,
) -> Result<Vec<T>, LedgerStoreError> {
    let mut statement = conn.prepare(query).map_err(store_error)?;
    let rows = statement
        .query_map([], |row| row.get::<_, String>(0))
        .map_err(store_error)?;
    let mut found = Vec::new();
    for row in rows {
        let text = row.map_err(store_error)?;
        found.push(serde_json::from_str::<T>(&text).map_err(store_error)?);
    }
    Ok(found)
}

/// The attempts of every key in `table`.
fn load_attempts(
    conn: &Connection,
    table: Attempts,
) -> Result<HashMap<String, u32>, LedgerStoreError> {
    let mut statement = conn.prepare(table.select()).map_err(store_error)?;
    let rows = statement
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, u32>(1)?))
        })
        .map_err(store_error)?;
    let mut attempts = HashMap::new();
    for row in rows {
        let (key, count) = row.map_err(store_error)?;
        attempts.insert(key, count);
    }
    Ok(attempts)
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
            book.charge("k-1", 700, "KRW", false).unwrap_err();
            (first, refunded)
        };
        let raw = Connection::open(&path).expect("raw");
        let counted: Vec<String> = raw
            .prepare("SELECT idempotency_key FROM sandbox_attempts")
            .and_then(|mut s| s.query_map([], |row| row.get(0))?.collect())
            .expect("attempts rows");
        assert_eq!(counted, ["k-3"], "a charge's row carries its own attempts");
        let mut book = Book::open(&path).expect("reopen");
        assert!(!book.ledger.config.overloaded, "the config is not kept");
        let (again, replayed) = book.charge("k-1", 700, "KRW", true).expect("replayed");
        assert!(replayed);
        assert_eq!(again.charge_ref, first.charge_ref);
        assert_eq!(
            again.attempts, 3,
            "the overloaded repeat before the restart counts"
        );
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

    #[test]
    fn a_reopened_book_remembers_payouts_and_their_attempts() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("sandbox.db");
        let first = {
            let mut book = Book::open(&path).expect("open");
            let (first, replayed) = book.payout("po-1", "host-1", 9_000, "KRW").expect("paid");
            assert!(!replayed);
            book.ledger.config.overloaded = true;
            book.payout("po-2", "host-2", 1, "KRW").unwrap_err();
            first
        };
        let mut book = Book::open(&path).expect("reopen");
        let (again, replayed) = book
            .payout("po-1", "host-1", 9_000, "KRW")
            .expect("replayed");
        assert!(replayed);
        assert_eq!(again.payout_ref, first.payout_ref);
        assert_eq!(again.attempts, 2);
        let reused = book.payout("po-1", "host-1", 9_001, "KRW").unwrap_err();
        assert!(matches!(reused, LedgerRefusal::KeyReused(_)), "{reused:?}");
        let (late, _) = book.payout("po-2", "host-2", 1, "KRW").expect("paid");
        assert_eq!(
            late.attempts, 2,
            "the overloaded attempt before the restart counts"
        );
        let (_, replayed) = book.charge("po-1", 9_000, "KRW", false).expect("charged");
        assert!(!replayed, "a payout's key is not a charge's");
        drop(book);
        let book = Book::open(&path).expect("reopen again");
        let payouts = book.ledger.payouts().all();
        assert_eq!(payouts.len(), 2);
        assert_eq!(payouts[0].payout_ref, first.payout_ref);
        assert_eq!((payouts[0].amount, payouts[0].attempts), (9_000, 3));
    }

    #[test]
    fn a_ledger_file_from_before_payouts_opens_with_its_charges() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("sandbox.db");
        {
            let conn = Connection::open(&path).expect("file");
            conn.execute_batch(
                "CREATE TABLE sandbox_charges (seq INTEGER PRIMARY KEY AUTOINCREMENT,
                     charge_ref TEXT NOT NULL UNIQUE, idempotency_key TEXT NOT NULL UNIQUE,
                     charge TEXT NOT NULL);
                 CREATE TABLE sandbox_attempts (idempotency_key TEXT PRIMARY KEY,
                     attempts INTEGER NOT NULL);",
            )
            .expect("the schema before payouts");
            let old = Ledger::default().charge("k-old", 700, "KRW", false);
            let (charge, _) = old.expect("charged");
            save_charge(&conn, &charge).expect("saved");
            save_attempts(&conn, Attempts::Charges, "k-old", 1).expect("saved");
        }
        let mut book = Book::open(&path).expect("opens");
        assert_eq!(book.ledger.charges().len(), 1);
        let (again, replayed) = book.charge("k-old", 700, "KRW", false).expect("replayed");
        assert!(replayed);
        assert_eq!(again.attempts, 2);
        book.payout("po-1", "host-1", 500, "KRW").expect("paid");
        drop(book);
        let book = Book::open(&path).expect("reopen");
        assert_eq!(book.ledger.payouts().all().len(), 1);
    }
}
