//! The embedded log's tamper check (docs/decisions/0019): every stream's SHA-256 chain (`reader`),
//! then one walk in position order checking that positions run 1..=head without a gap and that the
//! MAC chain checks with the log's key, then the signed head record beside the file and, if given,
//! an auditor's anchor. The first thing found wrong is reported with its stream, version and position.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use super::{head, reader, store_error, to_u64};
use crate::hash::{BadEvent, VerifyReport};
use crate::seal::{same_mac, Anchor, LogKey, Mac};
use crate::LogError;

/// An event the head record or the anchor points at, as the walk found it.
struct Seen {
    stream: String,
    version: u64,
    mac: Option<Vec<u8>>,
}

/// What the walk in position order found.
struct Walk {
    last: u64,
    first_keyed: Option<u64>,
    seen: HashMap<u64, Seen>,
}

/// Check the log in `conn`, its head record at `head_path` (read before the log, so a log that grew
/// meanwhile still holds it) and, if given, `anchor`.
pub(crate) fn verify(
    conn: &Connection,
    key: Option<&LogKey>,
    head_path: &Path,
    anchor: Option<&Anchor>,
) -> Result<VerifyReport, LogError> {
    let head = key.map(|_| head::read(head_path));
    let mut report = reader::verify(conn)?;
    report.keyed = key.is_some();
    report.head_position = head
        .as_ref()
        .and_then(|h| h.as_ref().ok())
        .and_then(|h| h.as_ref().map(|a| a.position));
    report.anchor_position = anchor.map(|a| a.position);
    if !report.ok {
        return Ok(report);
    }
    let points: Vec<u64> = [report.head_position, report.anchor_position]
        .into_iter()
        .flatten()
        .collect();
    let walk = match walk(conn, key, &points)? {
        Ok(walk) => walk,
        Err(bad) => return Ok(failed(report, bad)),
    };
    // Only a keyed check speaks of unkeyed events (an unkeyed log has no MACs to miss).
    report.unkeyed_before = match walk.first_keyed {
        _ if key.is_none() => None,
        Some(1) => None,
        Some(first) => Some(first),
        None if walk.last > 0 => Some(walk.last + 1),
        None => None,
    };
    if let (Some(first), None) = (walk.first_keyed, key) {
        let reason = format!(
            "events carry MACs from position {first} on, but no key was given to check them"
        );
        return Ok(failed(report, BadEvent::new("", 0, first, reason)));
    }
    if let Some(key) = key {
        let record = "the signed head record";
        let found = match head {
            Some(Ok(Some(head))) if !head.signed_by(key) => Err(BadEvent::new(
                &head.stream,
                head.version,
                head.position,
                format!(
                    "{record} ({}) does not check with this log's key: it was edited or replaced",
                    head_path.display()
                ),
            )),
            Some(Ok(Some(head))) => check_point(&walk, &head, record),
            Some(Ok(None)) if walk.first_keyed.is_some() => Err(BadEvent::new(
                "",
                0,
                walk.last,
                format!(
                    "{record} ({}) is missing, though the log holds keyed events",
                    head_path.display()
                ),
            )),
            Some(Err(e)) => Err(BadEvent::new("", 0, walk.last, e.to_string())),
            _ => Ok(()),
        };
        if let Err(bad) = found {
            return Ok(failed(report, bad));
        }
    }
    if let Some(anchor) = anchor {
        let forged = anchor.signature.is_some() && key.is_some_and(|k| !anchor.signed_by(k));
        let found = if forged {
            Err(BadEvent::new(
                &anchor.stream,
                anchor.version,
                anchor.position,
                "the anchor was not signed with this log's key (or was edited)".into(),
            ))
        } else {
            check_point(&walk, anchor, "the anchor")
        };
        if let Err(bad) = found {
            return Ok(failed(report, bad));
        }
    }
    Ok(report)
}

/// The log still holds the event `point` records, at its position.
fn check_point(walk: &Walk, point: &Anchor, what: &str) -> Result<(), BadEvent> {
    if point.position > walk.last {
        return Err(BadEvent::new(
            &point.stream,
            point.version,
            point.position,
            format!(
                "the log ends at position {} but {what} records position {} ({} version {}): \
                 the events after {} were removed, or the log was rolled back",
                walk.last, point.position, point.stream, point.version, walk.last
            ),
        ));
    }
    let recorded = point
        .mac_bytes()
        .map_err(|e| BadEvent::new(&point.stream, point.version, point.position, e.to_string()))?;
    let (stream, version, stored) = match walk.seen.get(&point.position) {
        Some(seen) => (seen.stream.as_str(), seen.version, seen.mac.as_deref()),
        None => ("", 0, None),
    };
    let same = match (stored, recorded.as_deref()) {
        (None, None) => true,
        (Some(a), Some(b)) => same_mac(a, b),
        _ => false,
    };
    if same {
        return Ok(());
    }
    Err(BadEvent::new(
        stream,
        version,
        point.position,
        format!(
            "not the event {what} records at position {} ({} version {}): the log was rewritten \
             at or before this position",
            point.position, point.stream, point.version
        ),
    ))
}

fn failed(mut report: VerifyReport, bad: BadEvent) -> VerifyReport {
    report.ok = false;
    report.first_bad = Some(bad);
    report
}

/// Walk the log in position order: positions gap-free from 1, MACs (where present) a prefix-free
/// suffix of the log, and, with `key`, each MAC the chained HMAC of its position and stream hash.
/// Keeps the events at `points`.
fn walk(
    conn: &Connection,
    key: Option<&LogKey>,
    points: &[u64],
) -> Result<Result<Walk, BadEvent>, LogError> {
    let mut statement = conn
        .prepare(
            "SELECT position, CAST(stream AS TEXT), CAST(version AS INTEGER), CAST(hash AS TEXT), \
             CAST(mac AS BLOB) FROM events ORDER BY position",
        )
        .map_err(store_error)?;
    let mut rows = statement.query([]).map_err(store_error)?;
    let mut walk = Walk {
        last: 0,
        first_keyed: None,
        seen: HashMap::new(),
    };
    let mut prev: Mac = [0; 32];
    while let Some(row) = rows.next().map_err(store_error)? {
        let position = to_u64(row.get(0).map_err(store_error)?)?;
        let stream: String = row.get(1).map_err(store_error)?;
        let version = to_u64(row.get(2).map_err(store_error)?)?;
        let hash: String = row.get(3).map_err(store_error)?;
        let mac: Option<Vec<u8>> = row.get(4).map_err(store_error)?;
        let bad = |reason: String| Ok(Err(BadEvent::new(&stream, version, position, reason)));
        let expected = walk.last + 1;
        if position != expected {
            return bad(format!(
                "position {position} where {expected} was expected: the event at {expected} was removed"
            ));
        }
        match (&mac, walk.first_keyed) {
            (None, Some(first)) => {
                return bad(format!(
                    "no MAC, though the events from position {first} on carry one: written without \
                     the log's key, or its MAC removed"
                ));
            }
            (None, None) => {}
            (Some(stored), _) => {
                walk.first_keyed.get_or_insert(position);
                if let Some(key) = key {
                    let computed = key.chain(&prev, position, &hash);
                    if !same_mac(stored, &computed) {
                        return bad(
                            "MAC mismatch: this event was edited or moved, or an event before it \
                             was removed or inserted"
                                .into(),
                        );
                    }
                    prev = computed;
                }
            }
        }
        if points.contains(&position) {
            walk.seen.insert(
                position,
                Seen {
                    stream,
                    version,
                    mac,
                },
            );
        }
        walk.last = position;
    }
    Ok(Ok(walk))
}

/// The signed head of the log as it is now.
pub(crate) fn current(conn: &Connection, key: &LogKey) -> Result<Anchor, LogError> {
    let LastEvent {
        position,
        stream,
        version,
        mac,
    } = last_event(conn)?;
    let keyed_from = first_keyed(conn)?.unwrap_or(position + 1);
    let mac = mac.and_then(|m| Mac::try_from(m).ok());
    Ok(Anchor::sign(
        key,
        position,
        &stream,
        version,
        mac.as_ref(),
        keyed_from,
    ))
}

/// The last event: position, stream, version and MAC (position 0 for an empty log).
pub(crate) struct LastEvent {
    pub position: u64,
    pub stream: String,
    pub version: u64,
    pub mac: Option<Vec<u8>>,
}

/// The log's last event as it is now.
pub(crate) fn last_event(conn: &Connection) -> Result<LastEvent, LogError> {
    let row: Option<(i64, String, i64, Option<Vec<u8>>)> = conn
        .query_row(
            "SELECT position, stream, version, CAST(mac AS BLOB) FROM events \
             ORDER BY position DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()
        .map_err(store_error)?;
    match row {
        Some((position, stream, version, mac)) => Ok(LastEvent {
            position: to_u64(position)?,
            stream,
            version: to_u64(version)?,
            mac,
        }),
        None => Ok(LastEvent {
            position: 0,
            stream: String::new(),
            version: 0,
            mac: None,
        }),
    }
}

/// The first position whose event carries a MAC.
pub(crate) fn first_keyed(conn: &Connection) -> Result<Option<u64>, LogError> {
    let first: Option<i64> = conn
        .query_row(
            "SELECT position FROM events WHERE mac IS NOT NULL ORDER BY position LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(store_error)?;
    first.map(to_u64).transpose()
}
