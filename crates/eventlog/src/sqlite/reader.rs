//! Read side of the SQLite adapter: a small pool of connections separate from the writer (WAL lets
//! them read a committed snapshot while the writer writes), used from `spawn_blocking`.

use std::path::PathBuf;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension, Row};
use uuid::Uuid;

use super::{open_connection, store_error, to_u64, READER_CACHE_KIB};
use crate::hash::{self, BadEvent, CanonicalEvent, VerifyReport};
use crate::json_syntax;
use crate::{EventMetadata, LogError, Position, RawRecordedEvent, RecordedEvent, StreamVersion};

/// Idle connections kept for reuse; more are opened on demand when all are busy.
const MAX_IDLE: usize = 8;

/// Reads of the whole log asking for at least this many events go through a mapped connection
/// ([`Reader::with_mapped`]); a subscription's pages (512) and a live projector's stay pooled.
pub(crate) const MAPPED_READ_EVENTS: usize = 4_096;

/// How much of the file a mapped connection maps: the bundled SQLite's ceiling
/// (`SQLITE_MAX_MMAP_SIZE`, 2 GiB less 64 KiB); a larger file's rest is read as usual.
const MAPPED_BYTES: i64 = 0x7fff_0000;

const COLUMNS: &str =
    "position, stream, version, event_id, event_type, schema_version, data, metadata, \
                       recorded_at, hash";

pub(crate) struct Reader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Reader {
    pub(crate) fn new(path: PathBuf) -> Self {
        Self {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Run `f` on a pooled connection (blocking: call from `spawn_blocking`).
    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, LogError>,
    ) -> Result<T, LogError> {
        let pooled = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let conn = match pooled {
            Some(conn) => conn,
            None => self.open()?,
        };
        let result = f(&conn);
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < MAX_IDLE {
                idle.push(conn);
            }
        }
        result
    }

    /// Run `f` on a connection of its own that reads the file through a memory map (SQLite's
    /// `mmap_size`) instead of a `pread` and a copy per page, then close it, which unmaps whatever
    /// it touched: `serve`'s resident memory does not keep a bulk read's pages (B7), and pooled
    /// connections never map the file. For bulk reads only (a rebuild's pages of
    /// [`MAPPED_READ_EVENTS`] or more): B5's rebuild of 1,000,000 events took ~9% less time,
    /// its kernel time ~20% less (docs/benchmarks.md). Blocking: call from `spawn_blocking`.
    pub(crate) fn with_mapped<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, LogError>,
    ) -> Result<T, LogError> {
        let conn = self.open()?;
        conn.pragma_update(None, "mmap_size", MAPPED_BYTES)
            .map_err(store_error)?;
        f(&conn)
    }

    fn open(&self) -> Result<Connection, LogError> {
        let conn = open_connection(&self.path)?;
        conn.pragma_update(None, "query_only", true)
            .map_err(store_error)?;
        conn.pragma_update(None, "cache_size", READER_CACHE_KIB)
            .map_err(store_error)?;
        Ok(conn)
    }
}

pub(crate) fn read_stream(
    conn: &Connection,
    stream: &str,
    from_version: u64,
    limit: usize,
) -> Result<Vec<RecordedEvent>, LogError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM events WHERE stream = ?1 AND version >= ?2 ORDER BY version LIMIT ?3"
    );
    let mut statement = conn.prepare_cached(&sql).map_err(store_error)?;
    let rows = statement
        .query_map(
            params![stream, lower_bound(from_version), clamp(limit)],
            raw_row,
        )
        .map_err(store_error)?;
    rows.map(|row| decode(row.map_err(store_error)?)).collect()
}

/// The global log from `from`, at most `limit` rows, payloads as stored.
pub(crate) fn read_all(
    conn: &Connection,
    from: Position,
    limit: usize,
) -> Result<Vec<RawRecordedEvent>, LogError> {
    let sql =
        format!("SELECT {COLUMNS} FROM events WHERE position >= ?1 ORDER BY position LIMIT ?2");
    let mut statement = conn.prepare_cached(&sql).map_err(store_error)?;
    let rows = statement
        .query_map(params![lower_bound(from), clamp(limit)], raw_row)
        .map_err(store_error)?;
    rows.map(|row| decode_raw(row.map_err(store_error)?))
        .collect()
}

pub(crate) fn stream_version(conn: &Connection, stream: &str) -> Result<StreamVersion, LogError> {
    let version: Option<i64> = conn
        .prepare_cached("SELECT MAX(version) FROM events WHERE stream = ?1")
        .and_then(|mut s| s.query_row([stream], |r| r.get(0)))
        .map_err(store_error)?;
    version.map(to_u64).transpose()
}

pub(crate) fn head_position(conn: &Connection) -> Result<Position, LogError> {
    let head: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(position), 0) FROM events")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(store_error)?;
    to_u64(head)
}

pub(crate) fn load_snapshot(
    conn: &Connection,
    stream: &str,
) -> Result<Option<(u64, serde_json::Value)>, LogError> {
    let row: Option<(i64, String)> = conn
        .prepare_cached("SELECT version, state FROM snapshots WHERE stream = ?1")
        .and_then(|mut s| {
            s.query_row([stream], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(store_error)?;
    let Some((version, state)) = row else {
        return Ok(None);
    };
    let state = serde_json::from_str(&state)
        .map_err(|e| LogError::Corrupt(format!("snapshot of {stream}: {e}")))?;
    Ok(Some((to_u64(version)?, state)))
}

/// Walk every stream in version order, hashing the stored text exactly as written (the positions, the
/// MAC chain and the head are checked by `integrity`, after this).
pub(crate) fn verify(conn: &Connection) -> Result<VerifyReport, LogError> {
    // Casts, so a row tampered with values of another type is reported instead of failing the walk.
    let sql =
        "SELECT position, CAST(stream AS TEXT), CAST(version AS INTEGER), CAST(event_id AS BLOB), \
               CAST(event_type AS TEXT), \
               CAST(schema_version AS INTEGER), CAST(data AS TEXT), CAST(metadata AS TEXT), \
               CAST(recorded_at AS TEXT), CAST(hash AS TEXT) FROM events ORDER BY stream, version";
    let mut statement = conn.prepare(sql).map_err(store_error)?;
    let mut rows = statement.query([]).map_err(store_error)?;
    let mut checked = 0u64;
    let mut prev: Option<(String, u64, String)> = None;
    while let Some(row) = rows.next().map_err(store_error)? {
        let raw = raw_row(row).map_err(store_error)?;
        checked += 1;
        let (expected_version, prev_hash) = match &prev {
            Some((stream, version, hash)) if *stream == raw.stream => (version + 1, hash.as_str()),
            _ => (0, ""),
        };
        let version = to_u64(raw.version)?;
        let recomputed = raw_hash(prev_hash, &raw, version);
        let reason = if version != expected_version {
            Some(format!(
                "version {version} where {expected_version} was expected"
            ))
        } else if recomputed.as_deref() != Some(raw.hash.as_str()) {
            Some("hash mismatch".to_owned())
        } else {
            None
        };
        if let Some(reason) = reason {
            let bad = BadEvent::new(&raw.stream, version, to_u64(raw.position)?, reason);
            return Ok(VerifyReport::bad(checked, bad));
        }
        prev = Some((raw.stream, version, raw.hash));
    }
    Ok(VerifyReport::good(checked))
}

/// A row as stored, before any decoding.
/// A row of `events` as stored (also how the writer hands committed rows to the tail, `tail.rs`).
#[derive(Clone)]
pub(crate) struct RawEvent {
    pub(crate) position: i64,
    pub(crate) stream: String,
    pub(crate) version: i64,
    pub(crate) event_id: Vec<u8>,
    pub(crate) event_type: String,
    pub(crate) schema_version: i64,
    pub(crate) data: String,
    pub(crate) metadata: String,
    pub(crate) recorded_at: String,
    pub(crate) hash: String,
}

impl RawEvent {
    pub(crate) fn position(&self) -> Position {
        u64::try_from(self.position).unwrap_or(0)
    }
}

fn raw_row(row: &Row<'_>) -> rusqlite::Result<RawEvent> {
    Ok(RawEvent {
        position: row.get(0)?,
        stream: row.get(1)?,
        version: row.get(2)?,
        event_id: row.get(3)?,
        event_type: row.get(4)?,
        schema_version: row.get(5)?,
        data: row.get(6)?,
        metadata: row.get(7)?,
        recorded_at: row.get(8)?,
        hash: row.get(9)?,
    })
}

fn raw_hash(prev_hash: &str, raw: &RawEvent, version: u64) -> Option<String> {
    let event_id = Uuid::from_slice(&raw.event_id).ok()?;
    Some(hash::chain_hash(
        prev_hash,
        &CanonicalEvent {
            stream: &raw.stream,
            version,
            event_id,
            event_type: &raw.event_type,
            schema_version: u32::try_from(raw.schema_version).ok()?,
            data_json: &raw.data,
            metadata_json: &raw.metadata,
            recorded_at: &raw.recorded_at,
        },
    ))
}

pub(crate) fn decode(raw: RawEvent) -> Result<RecordedEvent, LogError> {
    let (event, data) = decode_with(raw, |text| serde_json::from_str(text))?;
    Ok(event.map_data(|_| data))
}

/// Decode a row but its payload, which stays text once it is known to parse as a `Value`.
pub(crate) fn decode_raw(raw: RawEvent) -> Result<RawRecordedEvent, LogError> {
    decode_with(raw, json_syntax::check).map(|(event, ())| event)
}

/// Decode a row, its payload read by `payload`. The payload is read where it always was (after
/// the event id, before the metadata), so a row with several bad columns fails the same way
/// whichever way the payload is read.
fn decode_with<D>(
    raw: RawEvent,
    payload: impl FnOnce(&str) -> serde_json::Result<D>,
) -> Result<(RawRecordedEvent, D), LogError> {
    let corrupt = |what: &str, e: &dyn std::fmt::Display| {
        LogError::Corrupt(format!("{what} of event at position {}: {e}", raw.position))
    };
    let event_id = Uuid::from_slice(&raw.event_id).map_err(|e| corrupt("event_id", &e))?;
    let data = payload(&raw.data).map_err(|e| corrupt("data", &e))?;
    let metadata: EventMetadata =
        serde_json::from_str(&raw.metadata).map_err(|e| corrupt("metadata", &e))?;
    let event = RawRecordedEvent {
        event_id,
        position: to_u64(raw.position)?,
        version: to_u64(raw.version)?,
        recorded_at: hash::parse_recorded_at(&raw.recorded_at)?,
        stream: raw.stream,
        event_type: raw.event_type,
        schema_version: u32::try_from(raw.schema_version)
            .map_err(|e| corrupt("schema_version", &e))?,
        data: raw.data,
        metadata,
        hash: raw.hash,
    };
    Ok((event, data))
}

/// A lower bound of a range query: no stored position or version exceeds `i64::MAX`, so a larger
/// bound reads nothing rather than failing.
fn lower_bound(from: u64) -> i64 {
    i64::try_from(from).unwrap_or(i64::MAX)
}

fn clamp(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mmap_size(conn: &Connection) -> Result<i64, LogError> {
        conn.query_row("PRAGMA mmap_size", [], |row| row.get(0))
            .map_err(store_error)
    }

    #[test]
    fn only_a_bulk_read_maps_the_file_and_its_connection_is_not_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let reader = Reader::new(dir.path().join("events.db"));
        assert_eq!(reader.with(mmap_size).expect("pooled"), 0);
        assert_eq!(reader.with_mapped(mmap_size).expect("mapped"), MAPPED_BYTES);
        // The pool holds the one pooled connection, unmapped; the mapped one was closed.
        assert_eq!(reader.idle.lock().expect("pool").len(), 1);
        assert_eq!(reader.with(mmap_size).expect("pooled again"), 0);
    }
}
