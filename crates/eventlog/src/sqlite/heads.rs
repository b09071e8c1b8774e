//! The writer's memory of streams: for each stream it touched, the last version, position and hash (to
//! chain the next event) and the ids of its last [`DEDUP_WINDOW`] events (to deduplicate without an
//! index on random event ids, which would cost one random B-tree page write per event; the port's
//! dedup looks that far back, `EventLog::append`).
//!
//! It stays exact across processes: at the start of every write transaction the writer compares the
//! file's `MAX(position)` with the last position it knows and folds in whatever another process wrote in
//! between (positions are gap-free, so `position > known` is exactly the missing part).

use std::collections::HashMap;

use rusqlite::Connection;
use uuid::Uuid;

use super::{store_error, to_i64, to_u64};
use crate::{LogError, DEDUP_WINDOW};

/// The memory of streams above which the less recently used half of them is forgotten (a forgotten
/// stream is read back on its next append: one indexed read of its last rows), by the estimate of
/// [`Heads::bytes`]. It was a count of streams plus ids (65,536), which held ~3 MiB while a lodging's
/// every id was kept and ~14 MiB once they were not and flows' streams took their place (B7 under
/// load, decision 0038); before that, 1,000,000 ids held tens of MiB (issue 18).
const MAX_BYTES: usize = 4 << 20;
/// A stream's share of that: its slot in the map (name, head, hash and ids as `String`s and a
/// `Vec`, ~100 bytes at the map's load), its name (~48), its hash in hex (64) and the allocators'
/// rounding.
const STREAM_BYTES: usize = 256;
/// An event id's share.
const ID_BYTES: usize = 16;
/// A foreign write larger than this clears the cache instead of being folded in.
const MAX_CATCH_UP: u64 = 50_000;

pub(crate) struct StreamState {
    pub version: u64,
    pub position: u64,
    pub hash: String,
    pub ids: RecentIds,
    used: u64,
}

/// The ids of a stream's last [`DEDUP_WINDOW`] events, oldest first (more, if its last append alone
/// had more). A long stream (a lodging's desk) thus costs what a short one does, and reading it back
/// reads its last rows only.
#[derive(Default)]
pub(crate) struct RecentIds(Vec<Uuid>);

impl RecentIds {
    pub(crate) fn contains(&self, id: &Uuid) -> bool {
        self.0.contains(id)
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Remember the ids of one append (in order), forgetting the oldest beyond the window.
    pub(crate) fn extend(&mut self, ids: impl IntoIterator<Item = Uuid>) {
        let before = self.0.len();
        self.0.extend(ids);
        let keep = DEDUP_WINDOW.max(self.0.len() - before);
        // `load` fills a wider window in one call: keep all of it.
        if self.0.len() > keep {
            self.0.drain(..self.0.len() - keep);
        }
    }
}

#[derive(Default)]
pub(crate) struct Heads {
    streams: HashMap<String, StreamState>,
    /// Position up to which `streams` reflects the file; `None` = unknown, start afresh.
    known: Option<u64>,
    ids: usize,
    batch: u64,
}

impl Heads {
    /// Bring the cache up to `head` (the file's current last position, read inside the write transaction).
    pub(crate) fn sync(&mut self, conn: &Connection, head: u64) -> Result<(), LogError> {
        self.batch += 1;
        match self.known {
            Some(known) if known == head => {}
            Some(known) if known < head && head - known <= MAX_CATCH_UP => {
                self.fold_in(conn, known)?
            }
            _ => self.clear(),
        }
        if self.bytes() > MAX_BYTES {
            self.forget_older_half();
        }
        self.known = Some(head);
        Ok(())
    }

    /// What the memory of streams holds, by estimate.
    fn bytes(&self) -> usize {
        self.streams.len() * STREAM_BYTES + self.ids * ID_BYTES
    }

    /// Forget the less recently used half of the streams. The recent ones are where the next appends
    /// go (a new reservation's saga and follow-ups come within seconds); forgetting all but the current
    /// batch's made every one of those re-read its stream on the one writer thread.
    fn forget_older_half(&mut self) {
        let mut used: Vec<u64> = self.streams.values().map(|s| s.used).collect();
        let middle = used.len() / 2;
        let cut = *used.select_nth_unstable(middle).1;
        self.streams.retain(|_, s| s.used >= cut);
        self.streams.shrink_to_fit();
        self.ids = self.streams.values().map(|s| s.ids.len()).sum();
    }

    /// Forget everything (after a rollback, or a foreign write too large to fold in).
    pub(crate) fn clear(&mut self) {
        self.streams.clear();
        self.known = None;
        self.ids = 0;
    }

    /// The state of `stream`, loaded from the file on first use; `None` if the stream does not exist.
    /// Its ids reach back `window` events at least (an append of more events than [`DEDUP_WINDOW`]
    /// is checked against as many), read from the file if the memory holds fewer.
    pub(crate) fn get(
        &mut self,
        conn: &Connection,
        stream: &str,
        window: usize,
    ) -> Result<Option<&mut StreamState>, LogError> {
        let window = window.max(DEDUP_WINDOW);
        let short = self.streams.get(stream).map(|s| {
            let events = usize::try_from(s.version.saturating_add(1)).unwrap_or(usize::MAX);
            s.ids.len() < window.min(events)
        });
        if short != Some(false) {
            let Some(state) = load(conn, stream, window)? else {
                return Ok(None);
            };
            let before = self.streams.get(stream).map_or(0, |s| s.ids.len());
            self.ids = self.ids - before + state.ids.len();
            self.streams.insert(stream.to_owned(), state);
        }
        let batch = self.batch;
        let Some(state) = self.streams.get_mut(stream) else {
            return Ok(None);
        };
        state.used = batch;
        Ok(Some(state))
    }

    /// Account for an append this writer just made to a cached stream, up to `position`: its
    /// remembered ids went from `before` to `after`.
    pub(crate) fn added(&mut self, before: usize, after: usize, position: u64) {
        self.ids = self.ids - before + after;
        self.known = self.known.map(|k| k.max(position));
    }

    /// Cache a stream this writer just created (the transaction is not committed yet).
    pub(crate) fn create(
        &mut self,
        stream: &str,
        ids: impl Iterator<Item = Uuid>,
        version: u64,
        position: u64,
        hash: String,
    ) {
        let mut recent = RecentIds::default();
        recent.extend(ids);
        let ids = recent;
        self.added(0, ids.len(), position);
        let used = self.batch;
        let state = StreamState {
            version,
            position,
            hash,
            ids,
            used,
        };
        self.streams.insert(stream.to_owned(), state);
    }

    /// Apply what another process appended after `known` to the streams we cache.
    fn fold_in(&mut self, conn: &Connection, known: u64) -> Result<(), LogError> {
        let mut statement = conn
            .prepare_cached(
                "SELECT stream, version, position, hash, event_id FROM events WHERE position > ?1 ORDER BY position",
            )
            .map_err(store_error)?;
        let mut rows = statement.query([to_i64(known)?]).map_err(store_error)?;
        while let Some(row) = rows.next().map_err(store_error)? {
            let stream: String = row.get(0).map_err(store_error)?;
            let Some(state) = self.streams.get_mut(&stream) else {
                continue;
            };
            state.version = to_u64(row.get(1).map_err(store_error)?)?;
            state.position = to_u64(row.get(2).map_err(store_error)?)?;
            state.hash = row.get(3).map_err(store_error)?;
            let before = state.ids.len();
            state.ids.extend([id_at(row, 4)?]);
            self.ids = self.ids + state.ids.len() - before;
        }
        Ok(())
    }
}

/// A stream's state as the file holds it: its last `window` rows, newest first, through the
/// `(stream, version)` index (the first row gives the head, every row its event id).
fn load(conn: &Connection, stream: &str, window: usize) -> Result<Option<StreamState>, LogError> {
    let mut statement = conn
        .prepare_cached(
            "SELECT version, position, hash, event_id FROM events WHERE stream = ?1 ORDER BY version DESC LIMIT ?2",
        )
        .map_err(store_error)?;
    let mut rows = statement
        .query(rusqlite::params![stream, to_i64(window as u64)?])
        .map_err(store_error)?;
    let mut head = None;
    let mut newest_first = Vec::new();
    while let Some(row) = rows.next().map_err(store_error)? {
        if head.is_none() {
            let version: i64 = row.get(0).map_err(store_error)?;
            let position: i64 = row.get(1).map_err(store_error)?;
            let hash: String = row.get(2).map_err(store_error)?;
            head = Some((to_u64(version)?, to_u64(position)?, hash));
        }
        newest_first.push(id_at(row, 3)?);
    }
    let mut ids = RecentIds::default();
    ids.extend(newest_first.into_iter().rev());
    Ok(head.map(|(version, position, hash)| StreamState {
        version,
        position,
        hash,
        ids,
        used: 0,
    }))
}

/// The event id in column `index` of `row`, read in place.
fn id_at(row: &rusqlite::Row<'_>, index: usize) -> Result<Uuid, LogError> {
    let bytes = row
        .get_ref(index)
        .and_then(|value| value.as_blob().map_err(Into::into))
        .map_err(store_error)?;
    Uuid::from_slice(bytes).map_err(|e| LogError::Corrupt(format!("stored event id: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_keeps_the_ids_of_its_last_events_and_of_its_last_append() {
        let mut ids = RecentIds::default();
        let one_by_one: Vec<Uuid> = (0..DEDUP_WINDOW + 10).map(|_| Uuid::new_v4()).collect();
        for id in &one_by_one {
            ids.extend([*id]);
        }
        assert_eq!(ids.len(), DEDUP_WINDOW);
        assert!(!ids.contains(&one_by_one[9]));
        assert!(one_by_one[10..].iter().all(|id| ids.contains(id)));
        let big: Vec<Uuid> = (0..DEDUP_WINDOW * 2).map(|_| Uuid::new_v4()).collect();
        ids.extend(big.iter().copied());
        assert_eq!(ids.len(), DEDUP_WINDOW * 2);
        assert!(big.iter().all(|id| ids.contains(id)));
        ids.extend([Uuid::new_v4()]);
        assert_eq!(ids.len(), DEDUP_WINDOW);
    }

    #[test]
    fn past_the_bound_the_least_recently_used_half_is_forgotten() {
        let conn = Connection::open_in_memory().expect("sqlite");
        let mut heads = Heads::default();
        // One stream and one id each: twice the bound.
        let streams = 2 * MAX_BYTES / (STREAM_BYTES + ID_BYTES);
        for n in 0..streams {
            heads.sync(&conn, 0).expect("sync");
            let id = std::iter::once(Uuid::new_v4());
            heads.create(&format!("s-{n}"), id, 0, 0, String::new());
            assert!(heads.bytes() <= MAX_BYTES + STREAM_BYTES + ID_BYTES);
        }
        assert!(heads.streams.contains_key(&format!("s-{}", streams - 1)));
        assert!(heads.streams.contains_key(&format!("s-{}", streams - 100)));
        assert!(!heads.streams.contains_key("s-0"));
        assert!(heads.streams.len() <= streams / 2 + 1);
    }
}
