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

/// The ledger as a journal: every change a row appended (a charge or payout with its attempts,
/// written again when refunded or repeated; or the attempts of a key that has none yet: declined,
/// overloaded), read back in order, the last row of each one winning. Appending touches the table's
/// last page only; rows kept up to date in place cost four B-trees a charge (the table, two unique
/// indexes and AUTOINCREMENT's counter): 4.2 WAL pages a B3 `pay_first` flow against ~1.
/// Uniqueness (one charge per key, one key per charge) is the ledger's, under its lock.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sandbox_journal (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    body TEXT NOT NULL
);
";

/// The tables of files written before the journal (2026-12-07), moved into it on first open.
const OLD_TABLES: [(&str, &str); 4] = [
    (
        "sandbox_charges",
        "SELECT 'charge', charge FROM sandbox_charges ORDER BY seq",
    ),
    (
        "sandbox_attempts",
        "SELECT 'charge_attempts', json_object('key', idempotency_key, 'attempts', attempts)
         FROM sandbox_attempts",
    ),
    (
        "sandbox_payouts",
        "SELECT 'payout', payout FROM sandbox_payouts ORDER BY seq",
    ),
    (
        "sandbox_payout_attempts",
        "SELECT 'payout_attempts', json_object('key', idempotency_key, 'attempts', attempts)
         FROM sandbox_payout_attempts",
    ),
];

/// What a journal row holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Charge,
    Payout,
    ChargeAttempts,
    PayoutAttempts,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Charge => "charge",
            Self::Payout => "payout",
            Self::ChargeAttempts => "charge_attempts",
            Self::PayoutAttempts => "payout_attempts",
        }
    }

    fn parse(kind: &str) -> Option<Self> {
        [
            Self::Charge,
            Self::Payout,
            Self::ChargeAttempts,
            Self::PayoutAttempts,
        ]
        .into_iter()
        .find(|k| k.as_str() == kind)
    }
}

/// The attempts of a key that has no charge or payout (yet).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct KeyAttempts {
    key: String,
    attempts: u32,
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
    /// The ledger kept in the SQLite file at `path` (created if missing; a file from before the
    /// journal has its tables moved into it).
    pub(super) fn open(path: &Path) -> Result<Self, LedgerStoreError> {
        let conn = Connection::open(path).map_err(store_error)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(store_error)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(store_error)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(store_error)?;
        conn.execute_batch(SCHEMA).map_err(store_error)?;
        migrate(&conn)?;
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
            Some(charge) => append(conn, Kind::Charge, &charge),
            None if attempts > 0 => append_attempts(conn, Kind::ChargeAttempts, key, attempts),
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
            Some(payout) => append(conn, Kind::Payout, &payout),
            None if attempts > 0 => append_attempts(conn, Kind::PayoutAttempts, key, attempts),
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
        self.record(|conn| charge.map_or(Ok(()), |charge| append(conn, Kind::Charge, &charge)))?;
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

/// Append `value` (a charge or payout) to the journal.
fn append<T: serde::Serialize>(
    conn: &Connection,
    kind: Kind,
    value: &T,
) -> Result<(), LedgerStoreError> {
    let body = serde_json::to_string(value).map_err(store_error)?;
    conn.prepare_cached("INSERT INTO sandbox_journal (kind, body) VALUES (?1, ?2)")
        .and_then(|mut insert| insert.execute(params![kind.as_str(), body]))
        .map_err(store_error)?;
    Ok(())
}

fn append_attempts(
    conn: &Connection,
    kind: Kind,
    key: &str,
    attempts: u32,
) -> Result<(), LedgerStoreError> {
    let key = key.to_owned();
    append(conn, kind, &KeyAttempts { key, attempts })
}

/// Move the rows of a file written before the journal into it, in their order, and drop the old
/// tables: all in one transaction, so a file is either the one or the other.
fn migrate(conn: &Connection) -> Result<(), LedgerStoreError> {
    let tx = conn.unchecked_transaction().map_err(store_error)?;
    for (table, rows) in OLD_TABLES {
        let found: i64 = tx
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [table],
                |row| row.get(0),
            )
            .map_err(store_error)?;
        if found > 0 {
            tx.execute(
                &format!("INSERT INTO sandbox_journal (kind, body) {rows}"),
                [],
            )
            .map_err(store_error)?;
            tx.execute(&format!("DROP TABLE {table}"), [])
                .map_err(store_error)?;
        }
    }
    tx.commit().map_err(store_error)
}

/// The ledger the journal holds: its rows in order, the last one of each charge, payout or key
/// winning, charges and payouts in the order they were first made.
fn load(conn: &Connection) -> Result<Ledger, LedgerStoreError> {
    let mut statement = conn
        .prepare("SELECT kind, body FROM sandbox_journal ORDER BY seq")
        .map_err(store_error)?;
    let rows = statement
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })
        .map_err(store_error)?;
    let mut charges = Latest::default();
    let mut payouts = Latest::default();
    let mut charge_attempts = HashMap::new();
    let mut payout_attempts = HashMap::new();
    for row in rows {
        let (kind, body) = row.map_err(store_error)?;
        let kind = Kind::parse(&kind)
            .ok_or_else(|| LedgerStoreError(format!("unknown journal row kind {kind:?}")))?;
        match kind {
            Kind::Charge => {
                let charge: SandboxCharge = parse(&body)?;
                charges.put(charge.charge_ref.clone(), charge);
            }
            Kind::Payout => {
                let payout: SandboxPayout = parse(&body)?;
                payouts.put(payout.payout_ref.clone(), payout);
            }
            Kind::ChargeAttempts => count_attempts(&mut charge_attempts, &body)?,
            Kind::PayoutAttempts => count_attempts(&mut payout_attempts, &body)?,
        }
    }
    let payouts = Payouts::restore(payouts.into_vec(), payout_attempts);
    Ok(Ledger::restore(
        charges.into_vec(),
        charge_attempts,
        payouts,
    ))
}

/// A key's attempts row: the latest count wins.
fn count_attempts(attempts: &mut HashMap<String, u32>, body: &str) -> Result<(), LedgerStoreError> {
    let KeyAttempts {
        key,
        attempts: count,
    } = parse(body)?;
    attempts.insert(key, count);
    Ok(())
}

fn parse<T: DeserializeOwned>(body: &str) -> Result<T, LedgerStoreError> {
    serde_json::from_str(body).map_err(store_error)
}

/// The last value of each key, in the order the keys first came.
struct Latest<T> {
    values: Vec<T>,
    index: HashMap<String, usize>,
}

impl<T> Default for Latest<T> {
    fn default() -> Self {
        Self {
            values: Vec::new(),
            index: HashMap::new(),
        }
    }
}

impl<T> Latest<T> {
    fn put(&mut self, key: String, value: T) {
        match self.index.get(&key) {
            Some(&at) => self.values[at] = value,
            None => {
                self.index.insert(key, self.values.len());
                self.values.push(value);
            }
        }
    }

    fn into_vec(self) -> Vec<T> {
        self.values
    }
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
        let kinds: Vec<String> = raw
            .prepare("SELECT kind FROM sandbox_journal ORDER BY seq")
            .and_then(|mut s| s.query_map([], |row| row.get(0))?.collect())
            .expect("journal rows");
        // k-1, k-2, k-2 refunded, k-3's overloaded attempt, k-1's overloaded repeat: a charge's
        // row carries its own attempts, a key without a charge has a row of its attempts.
        let expected = ["charge", "charge", "charge", "charge_attempts", "charge"];
        assert_eq!(kinds, expected);
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
    fn a_ledger_file_from_before_the_journal_opens_with_its_charges_and_payouts() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("sandbox.db");
        let (charge, payout) = {
            let conn = Connection::open(&path).expect("file");
            conn.execute_batch(
                "CREATE TABLE sandbox_charges (seq INTEGER PRIMARY KEY AUTOINCREMENT,
                     charge_ref TEXT NOT NULL UNIQUE, idempotency_key TEXT NOT NULL UNIQUE,
                     charge TEXT NOT NULL);
                 CREATE TABLE sandbox_attempts (idempotency_key TEXT PRIMARY KEY,
                     attempts INTEGER NOT NULL);
                 CREATE TABLE sandbox_payouts (seq INTEGER PRIMARY KEY AUTOINCREMENT,
                     payout_ref TEXT NOT NULL UNIQUE, idempotency_key TEXT NOT NULL UNIQUE,
                     payout TEXT NOT NULL);
                 CREATE TABLE sandbox_payout_attempts (idempotency_key TEXT PRIMARY KEY,
                     attempts INTEGER NOT NULL);",
            )
            .expect("the schema before the journal");
            let mut old = Ledger::default();
            let (charge, _) = old.charge("k-old", 700, "KRW", false).expect("charged");
            let (payout, _) = old.payout("po-old", "host-1", 500, "KRW").expect("paid");
            let rows = [
                ("INSERT INTO sandbox_charges (charge_ref, idempotency_key, charge) VALUES (?1, ?2, ?3)",
                 [charge.charge_ref.clone(), charge.idempotency_key.clone(),
                  serde_json::to_string(&charge).expect("json")]),
                ("INSERT INTO sandbox_payouts (payout_ref, idempotency_key, payout) VALUES (?1, ?2, ?3)",
                 [payout.payout_ref.clone(), payout.idempotency_key.clone(),
                  serde_json::to_string(&payout).expect("json")]),
            ];
            for (sql, values) in rows {
                conn.execute(sql, params![values[0], values[1], values[2]])
                    .expect("old row");
            }
            conn.execute_batch(
                "INSERT INTO sandbox_attempts VALUES ('k-declined', 2);
                 INSERT INTO sandbox_payout_attempts VALUES ('po-overloaded', 1);",
            )
            .expect("old attempts");
            (charge, payout)
        };
        let mut book = Book::open(&path).expect("opens");
        let raw = Connection::open(&path).expect("raw");
        let left: i64 = raw
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name LIKE 'sandbox_%' AND name != 'sandbox_journal'",
                [],
                |row| row.get(0),
            )
            .expect("tables");
        assert_eq!(left, 0, "the old tables are moved into the journal");
        assert_eq!(book.ledger.charges().len(), 1);
        let (again, replayed) = book.charge("k-old", 700, "KRW", false).expect("replayed");
        assert!(replayed);
        assert_eq!(again.charge_ref, charge.charge_ref);
        assert_eq!(again.attempts, 2);
        let (late, _) = book.charge("k-declined", 1, "KRW", false).expect("charged");
        assert_eq!(late.attempts, 3, "the attempts before the journal count");
        let (paid, replayed) = book
            .payout("po-old", "host-1", 500, "KRW")
            .expect("replayed");
        assert!(replayed);
        assert_eq!(paid.payout_ref, payout.payout_ref);
        let (late, _) = book
            .payout("po-overloaded", "host-2", 1, "KRW")
            .expect("paid");
        assert_eq!(late.attempts, 2);
        drop(book);
        let book = Book::open(&path).expect("reopen");
        assert_eq!(book.ledger.charges().len(), 2);
        assert_eq!(book.ledger.payouts().all().len(), 2);
    }
}
