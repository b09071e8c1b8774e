//! Import of an exported log into an EMPTY embedded store, reproducing it exactly: the same positions,
//! versions, event ids, payloads, metadata, `recorded_at` and hashes. Every event is checked as it
//! goes in: positions strictly increasing (gap-free for a log exported from the embedded store),
//! versions gap-free per stream, and the hash chain recomputed and compared, so a tampered or
//! reordered export is refused. All or nothing: one transaction.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::params;

use super::{open_connection, store_error, SCHEMA};
use crate::hash::{self, format_recorded_at, metadata_json};
use crate::{LogError, RecordedEvent};

/// What an import wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportReport {
    pub events: u64,
    pub streams: u64,
    pub last_position: u64,
}

/// Import `events` (in log order) into the store file at `path`, which must hold no event yet.
/// Must not run while another process has the file open for writing.
pub fn import_into(
    path: impl AsRef<Path>,
    events: impl IntoIterator<Item = Result<RecordedEvent, LogError>>,
) -> Result<ImportReport, LogError> {
    let mut conn = open_connection(path.as_ref())?;
    conn.execute_batch(SCHEMA).map_err(store_error)?;
    let tx = conn.transaction().map_err(store_error)?;
    let existing: i64 = tx
        .query_row("SELECT COUNT(*) FROM events", [], |row| row.get(0))
        .map_err(store_error)?;
    if existing != 0 {
        return Err(LogError::Corrupt(format!(
            "import needs an empty event log; this one holds {existing} events"
        )));
    }
    let mut heads: HashMap<String, (u64, String)> = HashMap::new();
    let mut report = ImportReport {
        events: 0,
        streams: 0,
        last_position: 0,
    };
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO events (position, stream, version, event_id, event_type, schema_version, \
                 data, metadata, recorded_at, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .map_err(store_error)?;
        for event in events {
            let event = event?;
            check_order(&report, &heads, &event)?;
            let prev_hash = heads.get(&event.stream).map_or("", |(_, h)| h.as_str());
            let expected = hash::recompute_hash(prev_hash, &event)?;
            if expected != event.hash {
                return Err(LogError::Corrupt(format!(
                    "hash mismatch at {} version {} (position {}): the export was altered",
                    event.stream, event.version, event.position
                )));
            }
            let data = serde_json::to_string(&event.data)
                .map_err(|e| LogError::Corrupt(format!("data of {}: {e}", event.event_id)))?;
            insert
                .execute(params![
                    to_i64(event.position)?,
                    event.stream,
                    to_i64(event.version)?,
                    event.event_id.as_bytes().as_slice(),
                    event.event_type,
                    event.schema_version,
                    data,
                    metadata_json(&event.metadata)?,
                    format_recorded_at(&event.recorded_at),
                    event.hash,
                ])
                .map_err(store_error)?;
            report.events += 1;
            report.last_position = event.position;
            heads.insert(event.stream.clone(), (event.version, event.hash));
        }
    }
    tx.commit().map_err(store_error)?;
    report.streams = heads.len() as u64;
    Ok(report)
}

fn check_order(
    report: &ImportReport,
    heads: &HashMap<String, (u64, String)>,
    event: &RecordedEvent,
) -> Result<(), LogError> {
    if event.position <= report.last_position {
        return Err(LogError::Corrupt(format!(
            "position {} does not follow {}",
            event.position, report.last_position
        )));
    }
    let next_version = heads.get(&event.stream).map_or(0, |(v, _)| v + 1);
    if event.version != next_version {
        return Err(LogError::Corrupt(format!(
            "{} version {} where {next_version} was expected",
            event.stream, event.version
        )));
    }
    Ok(())
}

fn to_i64(value: u64) -> Result<i64, LogError> {
    i64::try_from(value).map_err(|_| LogError::Corrupt(format!("{value} does not fit the store")))
}
