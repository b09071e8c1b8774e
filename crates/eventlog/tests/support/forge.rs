//! What an attacker who can write the log file but does not hold the log key does after editing rows:
//! recompute a stream's plain SHA-256 chain. Shared by the tamper tests of `eventlog` and `stayledger`
//! (included with `#[path]`), which check that the keyed verification still catches it.

use eventlog::hash::{chain_hash, CanonicalEvent};
use rusqlite::{params, Connection};
use uuid::Uuid;

/// An event row as the chain hashes it: position, version, event id, type, schema version, data,
/// metadata, recorded at.
type StoredRow = (i64, i64, Vec<u8>, String, i64, String, String, String);

/// What an attacker without the key does after editing rows: recompute the stream's SHA-256 chain.
pub fn rehash(conn: &Connection, stream: &str) {
    let rows: Vec<StoredRow> = conn
        .prepare(
            "SELECT position, version, event_id, event_type, schema_version, data, metadata, \
             recorded_at FROM events WHERE stream = ?1 ORDER BY version",
        )
        .expect("prepare")
        .query_map([stream], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
            ))
        })
        .expect("query")
        .map(|r| r.expect("row"))
        .collect();
    let mut prev = String::new();
    for (position, version, id, event_type, schema, data, metadata, at) in rows {
        let hash = chain_hash(
            &prev,
            &CanonicalEvent {
                stream,
                version: version as u64,
                event_id: Uuid::from_slice(&id).expect("id"),
                event_type: &event_type,
                schema_version: schema as u32,
                data_json: &data,
                metadata_json: &metadata,
                recorded_at: &at,
            },
        );
        conn.execute(
            "UPDATE events SET hash = ?1 WHERE position = ?2",
            params![hash, position],
        )
        .expect("update");
        prev = hash;
    }
}
