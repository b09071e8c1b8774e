//! The writer's memory of streams: for each stream it touched, the last version, position and hash (to
//! chain the next event) and the ids of its events (to deduplicate without an index on random event ids,
//! which would cost one random B-tree page write per event).
//!
//! It stays exact across processes: at the start of every write transaction the writer compares the
//! file's `MAX(position)` with the last position it knows and folds in whatever another process wrote in
//! between (positions are gap-free, so `position > known` is exactly the missing part).

use std::collections::{HashMap, HashSet};

use rusqlite::Connection;
use uuid::Uuid;

use super::{store_error, to_i64, to_u64};
use crate::LogError;

/// Cached streams plus event ids above which the less recently used half of the streams is forgotten
/// (a forgotten stream is read back on its next append: two indexed reads). It bounds
/// the writer's memory to a few MiB (about 200 bytes a stream and 20 an id); it was 1,000,000 ids,
/// which under a long load held tens of MiB (issue 18: B7 under load).
const MAX_CACHED: usize = 65_536;
/// A foreign write larger than this clears the cache instead of being folded in.
const MAX_CATCH_UP: u64 = 50_000;

pub(crate) struct StreamState {
    pub version: u64,
    pub position: u64,
    pub hash: String,
    pub ids: HashSet<Uuid>,
    used: u64,
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
        if self.streams.len() + self.ids > MAX_CACHED {
            self.forget_older_half();
        }
        self.known = Some(head);
        Ok(())
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
    pub(crate) fn get(
        &mut self,
        conn: &Connection,
        stream: &str,
    ) -> Result<Option<&mut StreamState>, LogError> {
        if !self.streams.contains_key(stream) {
            let Some(state) = load(conn, stream)? else {
                return Ok(None);
            };
            self.ids += state.ids.len();
            self.streams.insert(stream.to_owned(), state);
        }
        let batch = self.batch;
        let Some(state) = self.streams.get_mut(stream) else {
            return Ok(None);
        };
        state.used = batch;
        Ok(Some(state))
    }

    /// Account for `count` events this writer just appended to a cached stream, up to `position`.
    pub(crate) fn added(&mut self, count: usize, position: u64) {
        self.ids += count;
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
        let ids: HashSet<Uuid> = ids.collect();
        self.added(ids.len(), position);
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
            state.ids.insert(id_at(row, 4)?);
            self.ids += 1;
        }
        Ok(())
    }
}

/// A stream's state as the file holds it: one pass over its rows, newest first, through the
/// `(stream, version)` index (the first row gives the head, every row its event id).
fn load(conn: &Connection, stream: &str) -> Result<Option<StreamState>, LogError> {
    let mut statement = conn
        .prepare_cached(
            "SELECT version, position, hash, event_id FROM events WHERE stream = ?1 ORDER BY version DESC",
        )
        .map_err(store_error)?;
    let mut rows = statement.query([stream]).map_err(store_error)?;
    let mut head = None;
    let mut ids = HashSet::new();
    while let Some(row) = rows.next().map_err(store_error)? {
        if head.is_none() {
            let version: i64 = row.get(0).map_err(store_error)?;
            let position: i64 = row.get(1).map_err(store_error)?;
            let hash: String = row.get(2).map_err(store_error)?;
            head = Some((to_u64(version)?, to_u64(position)?, hash));
        }
        ids.insert(id_at(row, 3)?);
    }
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
    fn past_the_bound_the_least_recently_used_half_is_forgotten() {
        let conn = Connection::open_in_memory().expect("sqlite");
        let mut heads = Heads::default();
        let streams = MAX_CACHED; // one stream and one id each: twice the bound
        for n in 0..streams {
            heads.sync(&conn, 0).expect("sync");
            let id = std::iter::once(Uuid::new_v4());
            heads.create(&format!("s-{n}"), id, 0, 0, String::new());
            assert!(heads.streams.len() + heads.ids <= MAX_CACHED + 2);
        }
        assert!(heads.streams.contains_key(&format!("s-{}", streams - 1)));
        assert!(heads.streams.contains_key(&format!("s-{}", streams - 100)));
        assert!(!heads.streams.contains_key("s-0"));
        assert!(heads.streams.len() <= MAX_CACHED / 2 + 1);
    }
}
