//! Recently loaded states of long streams, kept by the [`crate::Repository`] so that loading one again
//! reads only the events appended after it. A lodging's approval desk grows with every request:
//! without this, every command on it parses its snapshot and replays up to `snapshot_every` events
//! (measured: about half the CPU of `stayledger bench` B2 and B3 went there).
//!
//! The log stays the source of truth: an entry is a state *at a version*, and a load still reads
//! whatever follows that version from the store, so appends by other processes or other repositories
//! are never missed. Only streams of at least `min_events` events are kept, at most `capacity` of them
//! (least recently used out first, an eighth of them at a time).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// A cached state, as of `version`.
pub(crate) struct Hit<S> {
    pub state: S,
    pub version: u64,
    /// Version of the stream's latest snapshot when this state was loaded or saved.
    pub snapshot_version: Option<u64>,
}

struct Entry<S> {
    state: Arc<S>,
    version: u64,
    snapshot_version: Option<u64>,
    used: u64,
}

struct Entries<S> {
    map: HashMap<String, Entry<S>>,
    clock: u64,
}

pub(crate) struct StateCache<S> {
    entries: Mutex<Entries<S>>,
    capacity: usize,
    min_events: u64,
}

impl<S: Clone> StateCache<S> {
    /// `capacity` 0 disables the cache.
    pub fn new(capacity: usize, min_events: u64) -> Self {
        Self {
            entries: Mutex::new(Entries {
                map: HashMap::new(),
                clock: 0,
            }),
            capacity,
            min_events,
        }
    }

    /// A copy of the cached state of `stream`, if any.
    pub fn get(&self, stream: &str) -> Option<Hit<S>> {
        if self.capacity == 0 {
            return None;
        }
        let (state, version, snapshot_version) = {
            let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            entries.clock += 1;
            let clock = entries.clock;
            let entry = entries.map.get_mut(stream)?;
            entry.used = clock;
            (
                Arc::clone(&entry.state),
                entry.version,
                entry.snapshot_version,
            )
        };
        Some(Hit {
            state: (*state).clone(),
            version,
            snapshot_version,
        })
    }

    /// Keep `state` as of `version`, unless the stream is short or a later state is already kept.
    pub fn put(&self, stream: &str, state: Arc<S>, version: u64, snapshot_version: Option<u64>) {
        if self.capacity == 0 || version + 1 < self.min_events {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries
            .map
            .get(stream)
            .is_some_and(|kept| kept.version > version)
        {
            return;
        }
        entries.clock += 1;
        let entry = Entry {
            state,
            version,
            snapshot_version,
            used: entries.clock,
        };
        entries.map.insert(stream.to_owned(), entry);
        if entries.map.len() > self.capacity {
            entries.evict(self.capacity / 8 + 1);
        }
    }
}

impl<S> Entries<S> {
    /// Drop the `n` least recently used entries: a batch at a time, so a full cache of thousands
    /// of short streams pays one pass over its entries per `n` insertions, not one per insertion.
    fn evict(&mut self, n: usize) {
        let mut uses: Vec<u64> = self.map.values().map(|e| e.used).collect();
        let n = n.min(uses.len());
        if n == 0 {
            return;
        }
        let (_, &mut cutoff, _) = uses.select_nth_unstable(n - 1);
        self.map.retain(|_, e| e.used > cutoff);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_long_streams_newest_state_and_evicts_the_least_recently_used() {
        let cache = StateCache::new(2, 3);
        cache.put("short", Arc::new(1), 1, None);
        assert!(cache.get("short").is_none(), "2 events: below min_events");
        cache.put("a", Arc::new(10), 5, None);
        cache.put("a", Arc::new(9), 4, None);
        let hit = cache.get("a").map(|h| (h.state, h.version));
        assert_eq!(
            hit,
            Some((10, 5)),
            "an older state never replaces a newer one"
        );
        cache.put("b", Arc::new(20), 5, Some(3));
        assert!(cache.get("a").is_some(), "a used after b was put");
        cache.put("c", Arc::new(30), 5, None);
        assert!(cache.get("b").is_none(), "b was the least recently used");
        assert!(cache.get("a").is_some() && cache.get("c").is_some());
        let off = StateCache::new(0, 0);
        off.put("a", Arc::new(1), 10, None);
        assert!(off.get("a").is_none());
    }

    #[test]
    fn a_full_cache_drops_an_eighth_of_its_least_recently_used_at_once() {
        let cache = StateCache::new(16, 0);
        for n in 0..16u64 {
            cache.put(&format!("s{n}"), Arc::new(n), n, None);
        }
        assert!(
            cache.get("s0").is_some(),
            "s0 used again: now the most recent"
        );
        cache.put("s16", Arc::new(16), 16, None);
        let kept: Vec<u64> = (0..=16u64)
            .filter(|n| cache.get(&format!("s{n}")).is_some())
            .collect();
        let mut expected = vec![0];
        expected.extend(4..=16);
        assert_eq!(kept, expected, "s1, s2 and s3 (16 / 8 + 1) out together");
    }
}
