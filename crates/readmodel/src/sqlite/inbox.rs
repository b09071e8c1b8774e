//! The inbox in its own SQLite file (`inbox.db` beside `views.db`): what the notifier remembers of
//! reservations and desks, the entries, its checkpoint and dead letters. A file of its own, so the
//! notifier's commits never wait on the projector's (and a views rebuild leaves it alone).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use super::blocking;
use super::read::{dead_letter_count, page, seq_cursor, seq_value, ListQuery};
use super::schema::{configure, migrate, store_error, BOOKKEEPING};
use super::write::{apply_batch, checkpoint, park, parse_doc, save_guarded, to_doc, to_i64};
use crate::inbox::rules::{concerns, project_inbox, InboxChanges, InboxSource};
use crate::inbox::{Desk, InboxEntry, InboxFilter, InboxStore, Tracked};
use crate::query::{decode_seq_cursor, CursorKind};
use crate::{DeadLetter, Page, PageRequest, ProjectionTarget, ViewError, ViewEvent};

/// Bumped whenever the layout changes: the inbox is then rebuilt from the log.
const SCHEMA_VERSION: i64 = 2;

const DROP: &str = "
DROP TABLE IF EXISTS tracked;
DROP TABLE IF EXISTS desks;
DROP TABLE IF EXISTS inbox;
DROP TABLE IF EXISTS checkpoints;
DROP TABLE IF EXISTS dead_letters;
";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tracked (
    reservation_id TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS desks (
    lodging_id TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS inbox (
    seq INTEGER PRIMARY KEY,
    audience TEXT NOT NULL,
    recipient TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS inbox_by_recipient ON inbox (audience, recipient);
";

/// The inbox in one SQLite file (WAL): one connection for the notifier's writes, one for reads.
pub struct SqliteInbox {
    path: PathBuf,
    writer: Arc<Mutex<Connection>>,
    reader: Arc<Mutex<Connection>>,
    _checkpointer: super::checkpoint::Checkpointer,
}

impl std::fmt::Debug for SqliteInbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteInbox")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

pub(super) fn open_writer(path: &Path) -> Result<Connection, ViewError> {
    let mut conn = Connection::open(path).map_err(store_error)?;
    configure(&conn)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(store_error)?;
    // The background checkpointer copies the WAL into the file off the notifier's commits; the
    // writer checkpoints in a commit only if it falls far behind (as the views' writer).
    conn.pragma_update(
        None,
        "wal_autocheckpoint",
        super::checkpoint::WRITER_AUTOCHECKPOINT,
    )
    .map_err(store_error)?;
    migrate(
        &mut conn,
        SCHEMA_VERSION,
        DROP,
        &format!("{SCHEMA}{BOOKKEEPING}"),
    )?;
    Ok(conn)
}

impl SqliteInbox {
    /// Open (or create) the inbox at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ViewError> {
        let path = path.as_ref().to_path_buf();
        let writer = open_writer(&path)?;
        let reader = Connection::open(&path).map_err(store_error)?;
        configure(&reader)?;
        let checkpointer = super::checkpoint::start(&path, "inbox-checkpoint")?;
        Ok(Self {
            path,
            writer: Arc::new(Mutex::new(writer)),
            reader: Arc::new(Mutex::new(reader)),
            _checkpointer: checkpointer,
        })
    }

    /// The file this inbox lives in.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn with<T: Send + 'static>(
        conn: &Arc<Mutex<Connection>>,
        task: impl FnOnce(&mut Connection) -> Result<T, ViewError> + Send + 'static,
    ) -> Result<T, ViewError> {
        let conn = Arc::clone(conn);
        blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            task(&mut conn)
        })
        .await
    }
}

/// What the projection reads, inside the write transaction.
struct TxSource<'c> {
    conn: &'c Connection,
}

impl TxSource<'_> {
    fn one<T: serde::de::DeserializeOwned>(
        &self,
        sql: &str,
        key: &str,
    ) -> Result<Option<T>, ViewError> {
        let doc: Option<String> = self
            .conn
            .prepare_cached(sql)
            .and_then(|mut s| s.query_row([key], |row| row.get(0)).optional())
            .map_err(store_error)?;
        doc.map(|doc| parse_doc(&doc)).transpose()
    }
}

impl InboxSource for TxSource<'_> {
    fn tracked(&mut self, reservation_id: Uuid) -> Result<Option<Tracked>, ViewError> {
        let sql = "SELECT doc FROM tracked WHERE reservation_id = ?1";
        self.one(sql, &reservation_id.to_string())
    }

    fn desk(&mut self, lodging_id: &str) -> Result<Option<Desk>, ViewError> {
        self.one("SELECT doc FROM desks WHERE lodging_id = ?1", lodging_id)
    }
}

fn save(conn: &Connection, changes: &InboxChanges) -> Result<(), ViewError> {
    for stay in &changes.tracked {
        let id = stay.reservation_id.to_string();
        save_guarded(conn, "tracked", "reservation_id", &id, stay.position, stay)?;
    }
    for desk in &changes.desks {
        save_guarded(
            conn,
            "desks",
            "lodging_id",
            &desk.lodging_id,
            desk.position,
            desk,
        )?;
    }
    let mut entries = conn
        .prepare_cached(
            "INSERT INTO inbox (seq, audience, recipient, doc) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (seq) DO NOTHING",
        )
        .map_err(store_error)?;
    for entry in &changes.entries {
        entries
            .execute(params![
                to_i64(entry.seq()),
                entry.audience.as_str(),
                entry.recipient,
                to_doc(entry)?
            ])
            .map_err(store_error)?;
    }
    Ok(())
}

fn apply(conn: &mut Connection, projector_id: &str, events: &[ViewEvent]) -> Result<(), ViewError> {
    apply_batch(conn, projector_id, events, |tx, events| {
        let changes = project_inbox(&mut TxSource { conn: tx }, events)?;
        save(tx, &changes)
    })
}

/// The query of a page of `filter`'s entries, newest first.
/// Every desk's entries (the platform's `*`) are walked by `seq` (`NOT INDEXED`, as in
/// [`STATUS_CHANGES`]); one customer's, or named desks', come from `inbox_by_recipient`.
pub(super) fn entries_query(
    filter: &InboxFilter,
    request: &PageRequest,
) -> Result<ListQuery, ViewError> {
    let mut clauses = Vec::new();
    let mut values = Vec::new();
    let mut from = "inbox";
    let text = |v: &str| rusqlite::types::Value::Text(v.to_string());
    match filter {
        InboxFilter::Customer(customer_id) => {
            clauses.push("audience = 'customer' AND recipient = ?".to_string());
            values.push(text(customer_id));
        }
        InboxFilter::Lodgings(lodgings) => {
            clauses.push("audience = 'lodging'".to_string());
            match lodgings {
                Some(lodgings) => {
                    let marks = vec!["?"; lodgings.len()].join(", ");
                    clauses.push(format!("recipient IN ({marks})"));
                    values.extend(lodgings.iter().map(|l| text(l)));
                }
                None => from = "inbox NOT INDEXED",
            }
        }
    }
    if let Some(cursor) = &request.cursor {
        let seq = decode_seq_cursor(CursorKind::Inbox, cursor)?;
        clauses.push("seq < ?".to_string());
        values.push(seq_value(seq));
    }
    let limit = request.clamped_limit();
    let sql = format!(
        "SELECT seq, doc FROM {from} WHERE {} ORDER BY seq DESC LIMIT {}",
        clauses.join(" AND "),
        limit + 1
    );
    Ok(ListQuery { sql, values, limit })
}

fn entries(
    conn: &Connection,
    filter: &InboxFilter,
    request: &PageRequest,
) -> Result<Page<InboxEntry>, ViewError> {
    page(
        conn,
        entries_query(filter, request)?,
        seq_cursor(CursorKind::Inbox),
    )
}

/// The customers' entries in a `seq` range, walked by `seq` (the rowid). `NOT INDEXED`: left to
/// itself, SQLite took `inbox_by_recipient` for `audience = ?` and sorted every customer's entry
/// by `seq` at each read (19 ms a read at 30,000 entries, growing with the inbox, against 0.7 ms).
pub(super) const STATUS_CHANGES: &str = "SELECT doc FROM inbox NOT INDEXED
    WHERE seq > ?1 AND seq <= ?2 AND audience = 'customer' ORDER BY seq LIMIT ?3";

fn status_changes_after(
    conn: &Connection,
    after: u64,
    through: u64,
    limit: usize,
) -> Result<Vec<InboxEntry>, ViewError> {
    let mut statement = conn.prepare_cached(STATUS_CHANGES).map_err(store_error)?;
    let docs = statement
        .query_map(
            params![to_i64(after), to_i64(through), to_i64(limit as u64)],
            |row| row.get::<_, String>(0),
        )
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(store_error)?;
    docs.iter().map(|doc| parse_doc(doc)).collect()
}

#[async_trait]
impl ProjectionTarget for SqliteInbox {
    async fn checkpoint(&self, projector_id: &str) -> Result<u64, ViewError> {
        let projector_id = projector_id.to_string();
        Self::with(&self.reader, move |conn| checkpoint(conn, &projector_id)).await
    }

    async fn apply(&self, projector_id: &str, events: &[ViewEvent]) -> Result<(), ViewError> {
        if events.is_empty() {
            return Ok(());
        }
        // Only what the rules read crosses to the writer's thread, and the last event (its
        // position moves the checkpoint; an event the rules skip changes nothing).
        let last = events.len() - 1;
        let kept: Vec<ViewEvent> = events
            .iter()
            .enumerate()
            .filter(|(i, e)| *i == last || concerns(e))
            .map(|(_, e)| e.clone())
            .collect();
        let projector_id = projector_id.to_string();
        Self::with(&self.writer, move |conn| apply(conn, &projector_id, &kept)).await
    }

    async fn record_dead_letter(
        &self,
        projector_id: &str,
        dead_letter: &DeadLetter,
    ) -> Result<(), ViewError> {
        let (projector_id, dead_letter) = (projector_id.to_string(), dead_letter.clone());
        Self::with(&self.writer, move |conn| {
            park(conn, &projector_id, &dead_letter)
        })
        .await
    }

    async fn dead_letter_count(&self) -> Result<u64, ViewError> {
        Self::with(&self.reader, |conn| dead_letter_count(conn)).await
    }

    async fn lodging_of(&self, reservation_id: Uuid) -> Result<Option<String>, ViewError> {
        Self::with(&self.reader, move |conn| {
            let mut source = TxSource { conn };
            Ok(source.tracked(reservation_id)?.map(|t| t.lodging_id))
        })
        .await
    }
}

#[async_trait]
impl InboxStore for SqliteInbox {
    async fn entries(
        &self,
        filter: &InboxFilter,
        page: &PageRequest,
    ) -> Result<Page<InboxEntry>, ViewError> {
        let (filter, page) = (filter.clone(), page.clone());
        Self::with(&self.reader, move |conn| entries(conn, &filter, &page)).await
    }

    async fn status_changes_after(
        &self,
        after: u64,
        through: u64,
        limit: usize,
    ) -> Result<Vec<InboxEntry>, ViewError> {
        Self::with(&self.reader, move |conn| {
            status_changes_after(conn, after, through, limit)
        })
        .await
    }
}
