//! The newest events this process's writer committed, kept in memory for subscriptions.
//!
//! A live subscription reads what was just committed. Reading it back from the file costs a reader
//! connection (whose page cache SQLite discards after every commit), the row fetch, and a hand-off to a
//! blocking thread; the writer already had those rows. So the acknowledging thread keeps each committed
//! batch here (the rows as stored: the same text, decoded the same way as a row read from the file),
//! and a subscription whose next position is here reads from here.
//!
//! Only what this writer committed is here. Positions are contiguous within one transaction; between
//! two of ours, another process may have committed: such a gap ends a page read from here, and the
//! subscription reads the gap from the file. A position that is not here (older than what is kept, or
//! written by another process) is read from the file too: the tail only ever answers with rows that are
//! in the file at those positions.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::reader::RawEvent;
use crate::{LogError, Position, Recorded};

/// Events kept (whole batches; the oldest are dropped first).
pub(crate) const KEEP_EVENTS: usize = 8_192;

/// A committed transaction's rows, positions `first..first + rows.len()`.
struct Batch {
    first: Position,
    rows: Vec<RawEvent>,
}

impl Batch {
    fn end(&self) -> Position {
        self.first + self.rows.len() as u64
    }
}

#[derive(Default)]
pub(crate) struct Tail {
    kept: Mutex<Kept>,
    /// Live subscriptions of this log: with none, nothing is kept (an append-only workload pays nothing).
    followers: AtomicUsize,
}

/// Counts a subscription as a follower of the tail while it lives.
pub(crate) struct Following(Arc<Tail>);

impl Drop for Following {
    fn drop(&mut self) {
        self.0.followers.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Default)]
struct Kept {
    batches: VecDeque<Batch>,
    events: usize,
}

impl Tail {
    /// Count a subscription until the returned guard is dropped.
    pub(crate) fn follow(self: &Arc<Self>) -> Following {
        self.followers.fetch_add(1, Ordering::Relaxed);
        Following(Arc::clone(self))
    }

    /// Whether any subscription follows the log (else the writer need not hand over its rows). One
    /// that starts meanwhile reads what was not kept from the file.
    pub(crate) fn followed(&self) -> bool {
        self.followers.load(Ordering::Relaxed) > 0
    }

    /// Keep the rows of a committed transaction (in position order, contiguous).
    pub(crate) fn push(&self, rows: Vec<RawEvent>) {
        let Some(first) = rows.first().map(RawEvent::position) else {
            return;
        };
        let Ok(mut kept) = self.kept.lock() else {
            return;
        };
        // A batch older than what is kept (cannot happen with one writer) would break the order.
        if kept.batches.back().is_some_and(|last| first < last.end()) {
            kept.batches.clear();
            kept.events = 0;
        }
        kept.events += rows.len();
        kept.batches.push_back(Batch { first, rows });
        while kept.events > KEEP_EVENTS && kept.batches.len() > 1 {
            if let Some(dropped) = kept.batches.pop_front() {
                kept.events -= dropped.rows.len();
            }
        }
    }

    /// Up to `limit` events from `from` on, decoded by `decode`, if `from` is kept: the page stops at
    /// the first position that is not (the end, or a gap another process wrote). `None` if `from` is not
    /// kept (read the file).
    pub(crate) fn page<D>(
        &self,
        from: Position,
        limit: usize,
        decode: fn(RawEvent) -> Result<Recorded<D>, LogError>,
    ) -> Option<Result<Vec<Recorded<D>>, LogError>> {
        let rows = self.rows(from, limit)?;
        let page = rows.into_iter().map(decode).collect();
        Some(page)
    }

    /// Up to `limit` kept rows from `from` on, cloned under the lock (decoding happens after it, so
    /// the acknowledging thread never waits on a subscription's decoding).
    fn rows(&self, from: Position, limit: usize) -> Option<Vec<RawEvent>> {
        let kept = self.kept.lock().ok()?;
        let start = kept.batches.partition_point(|b| b.end() <= from);
        let first = kept.batches.get(start)?;
        if from < first.first {
            return None;
        }
        let kept_from = kept.batches.back().map_or(0, |last| last.end() - from);
        let mut rows = Vec::with_capacity(limit.min(usize::try_from(kept_from).unwrap_or(limit)));
        let mut next = from;
        for batch in kept.batches.range(start..) {
            if batch.first > next {
                break; // another process committed the positions in between
            }
            let skip = usize::try_from(next - batch.first).unwrap_or(usize::MAX);
            let take = limit - rows.len();
            rows.extend(batch.rows.iter().skip(skip).take(take).cloned());
            next = batch.first + (skip + take).min(batch.rows.len()) as u64;
            if rows.len() >= limit {
                break;
            }
        }
        Some(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RawRecordedEvent;

    fn row(position: i64) -> RawEvent {
        RawEvent {
            position,
            stream: format!("s-{position}"),
            version: 0,
            event_id: uuid::Uuid::from_u128(position as u128).as_bytes().to_vec(),
            event_type: "Counted".into(),
            schema_version: 1,
            data: format!("{{\"n\":{position}}}"),
            metadata: r#"{"correlation_id":"00000000-0000-0000-0000-000000000001","causation_id":"00000000-0000-0000-0000-000000000002","actor":"test"}"#.into(),
            recorded_at: "2030-01-01T00:00:00.000000Z".into(),
            hash: "h".into(),
        }
    }

    fn rows(positions: std::ops::RangeInclusive<i64>) -> Vec<RawEvent> {
        positions.map(row).collect()
    }

    fn page(tail: &Tail, from: Position, limit: usize) -> Option<Vec<Position>> {
        let decode: fn(RawEvent) -> Result<RawRecordedEvent, LogError> =
            super::super::reader::decode_raw;
        tail.page(from, limit, decode)
            .map(|page| page.expect("decodes").iter().map(|e| e.position).collect())
    }

    #[test]
    fn pages_stop_at_a_gap_and_at_the_limit_and_miss_what_is_not_kept() {
        let tail = Tail::default();
        assert_eq!(page(&tail, 1, 10), None);
        tail.push(rows(1..=3));
        tail.push(rows(4..=5));
        // 6 and 7 were committed by another process.
        tail.push(rows(8..=9));
        assert_eq!(page(&tail, 1, 10), Some(vec![1, 2, 3, 4, 5]));
        assert_eq!(page(&tail, 2, 2), Some(vec![2, 3]));
        assert_eq!(page(&tail, 3, 10), Some(vec![3, 4, 5]));
        assert_eq!(page(&tail, 6, 10), None);
        assert_eq!(page(&tail, 7, 10), None);
        assert_eq!(page(&tail, 8, 10), Some(vec![8, 9]));
        assert_eq!(page(&tail, 10, 10), None);
        assert_eq!(page(&tail, 0, 10), None);
    }

    #[test]
    fn rows_decode_as_stored() {
        let tail = Tail::default();
        tail.push(rows(1..=1));
        let decode: fn(RawEvent) -> Result<RawRecordedEvent, LogError> =
            super::super::reader::decode_raw;
        let event = &tail.page(1, 1, decode).expect("kept").expect("decodes")[0];
        assert_eq!(event.data, r#"{"n":1}"#);
        assert_eq!(event.stream, "s-1");
        assert_eq!(event.metadata.actor, "test");
        let mut bad = row(2);
        bad.metadata = "{".into();
        tail.push(vec![bad]);
        assert!(tail.page(2, 1, decode).expect("kept").is_err());
    }

    #[test]
    fn followed_while_a_subscription_lives() {
        let tail = Arc::new(Tail::default());
        assert!(!tail.followed());
        let (one, two) = (tail.follow(), tail.follow());
        assert!(tail.followed());
        drop(one);
        assert!(tail.followed());
        drop(two);
        assert!(!tail.followed());
    }

    #[test]
    fn the_oldest_batches_are_dropped_beyond_the_bound() {
        let tail = Tail::default();
        let per_batch = 1_000_i64;
        let batches = (KEEP_EVENTS as i64 / per_batch) + 3;
        for b in 0..batches {
            tail.push(rows(b * per_batch + 1..=(b + 1) * per_batch));
        }
        assert_eq!(page(&tail, 1, 10), None);
        let last = batches * per_batch;
        assert_eq!(page(&tail, last as u64, 10), Some(vec![last as u64]));
        let kept = tail.kept.lock().unwrap().events;
        assert!(
            kept <= KEEP_EVENTS && kept > KEEP_EVENTS - per_batch as usize,
            "{kept}"
        );
    }
}
