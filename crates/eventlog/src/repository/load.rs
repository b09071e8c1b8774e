//! Loading a stream's state for a command: from the repository's cache, from a snapshot and the
//! events after it, or from the whole stream, in pages; and saving snapshots as a stream grows.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::{Aggregate, DomainEvent};

use super::{Current, Repository, RepositoryError, LOAD_PAGE};
use crate::{LogError, RecordedEvent};

impl<A: Aggregate> Repository<A> {
    /// Save a snapshot at `version` if the stream has grown by `snapshot_every` (or the state's
    /// [`Aggregate::snapshot_weight`], if more) since the last one; the version of the stream's
    /// latest snapshot afterwards.
    pub(super) async fn snapshot_if_due(
        &self,
        stream: &str,
        snapshot_version: Option<u64>,
        version: u64,
        state: &A::State,
    ) -> Option<u64> {
        let every = self
            .snapshotting()
            .map_or(0, |(_, every)| every.max(A::snapshot_weight(state)));
        let since = snapshot_version.map_or(version + 1, |v| version.saturating_sub(v));
        if every > 0 && since >= every {
            self.save_snapshot(stream, version, state).await;
            return Some(version);
        }
        snapshot_version
    }

    async fn save_snapshot(&self, stream: &str, version: u64, state: &A::State) {
        let Some((snapshots, _)) = self.snapshotting() else {
            return;
        };
        // A missing snapshot only costs a longer load, so failing to save one is logged, not returned.
        let saved = match serde_json::to_value(state) {
            Ok(json) => snapshots.save(stream, version, json).await,
            Err(e) => Err(LogError::Corrupt(e.to_string())),
        };
        if let Err(e) = saved {
            tracing::warn!(stream, version, error = %e, "could not save a snapshot");
        }
    }

    /// The state to decide a command on. Unless `verify`, a cached state is taken as it is, without
    /// reading the store for events after it: the append's expected version checks it, and a
    /// conflict sends the command back here with `verify`. Only this process's appends through this
    /// repository keep a cached state current, so on a busy stream written by one process (a
    /// lodging's desk) that saves a read per command; elsewhere it costs a conflict now and then.
    /// `fresh` (and not `verify`): the empty state, unread, for a command that opens its stream.
    pub(super) async fn load_for_update(
        &self,
        stream: &str,
        now: DateTime<Utc>,
        verify: bool,
        fresh: bool,
    ) -> Result<Current<A::State>, RepositoryError<A::Error>> {
        if fresh && !verify {
            // Assumed, not read: the append's expected version `NoStream` checks it.
            return Ok(Current {
                state: A::State::default(),
                version: None,
                snapshot_version: None,
                verified: false,
            });
        }
        if !verify {
            if let Some(hit) = self.cache.get(stream) {
                return Ok(Current {
                    state: A::compact(hit.state, now),
                    version: Some(hit.version),
                    snapshot_version: hit.snapshot_version,
                    verified: false,
                });
            }
        }
        self.load_at(stream, now).await
    }

    pub(super) async fn load_at(
        &self,
        stream: &str,
        now: DateTime<Utc>,
    ) -> Result<Current<A::State>, RepositoryError<A::Error>> {
        let hit = self.cache.get(stream);
        let cached_version = hit.as_ref().map(|hit| hit.version);
        let (mut state, mut version, snapshot_version, mut complete) = match hit {
            Some(hit) => (hit.state, Some(hit.version), hit.snapshot_version, false),
            None => self.load_uncached_start(stream).await?,
        };
        while !complete {
            let from = version.map_or(0, |v| v + 1);
            let page = self.read_page(stream, from, LOAD_PAGE).await?;
            (state, version) = fold_page::<A>(state, version, &page)?;
            complete = page.len() < LOAD_PAGE;
        }
        let state = A::compact(state, now);
        if let Some(version) = version.filter(|v| Some(*v) != cached_version) {
            let cached = Arc::new(state.clone());
            self.cache.put(stream, cached, version, snapshot_version);
        }
        Ok(Current {
            state,
            version,
            snapshot_version,
            verified: true,
        })
    }

    /// Where loading a stream that is not cached starts: a stream shorter than `snapshot_every` has
    /// no snapshot of this repository's making, so its first page is all of it (one read instead of
    /// a snapshot query and a read). A longer one starts from its latest snapshot.
    /// Returns (state, version, snapshot version, whether the stream is fully read).
    async fn load_uncached_start(
        &self,
        stream: &str,
    ) -> Result<(A::State, Option<u64>, Option<u64>, bool), RepositoryError<A::Error>> {
        let probe = self.snapshotting().map_or(LOAD_PAGE, |(_, every)| {
            usize::try_from(every).map_or(LOAD_PAGE, |n| n.min(LOAD_PAGE))
        });
        let page = self.read_page(stream, 0, probe).await?;
        if page.len() < probe {
            let (state, version) = fold_page::<A>(A::State::default(), None, &page)?;
            return Ok((state, version, None, true));
        }
        let (state, snapshot_version) = self.snapshot(stream).await?;
        Ok((state, snapshot_version, snapshot_version, false))
    }

    async fn read_page(
        &self,
        stream: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, RepositoryError<A::Error>> {
        self.log
            .read_stream(stream, from, limit)
            .await
            .map_err(RepositoryError::Log)
    }

    /// The latest usable snapshot; one that no longer deserializes (the state shape changed) is ignored.
    async fn snapshot(
        &self,
        stream: &str,
    ) -> Result<(A::State, Option<u64>), RepositoryError<A::Error>> {
        let Some((snapshots, _)) = self.snapshotting() else {
            return Ok((A::State::default(), None));
        };
        let Some((version, json)) = snapshots.load(stream).await.map_err(RepositoryError::Log)?
        else {
            return Ok((A::State::default(), None));
        };
        match serde_json::from_value(json) {
            Ok(state) => Ok((state, Some(version))),
            Err(e) => {
                tracing::warn!(stream, version, error = %e, "ignoring an unreadable snapshot");
                Ok((A::State::default(), None))
            }
        }
    }
}

/// A state and the version it reflects.
type Folded<S> = (S, Option<u64>);

/// Apply a page of a stream's events to `state` (at `version`).
fn fold_page<A: Aggregate>(
    mut state: A::State,
    mut version: Option<u64>,
    page: &[RecordedEvent],
) -> Result<Folded<A::State>, RepositoryError<A::Error>> {
    for recorded in page {
        let event = A::Event::decode(
            &recorded.event_type,
            recorded.schema_version,
            &recorded.data,
        )
        .map_err(RepositoryError::Decode)?;
        state = A::evolve(state, &event);
        version = Some(recorded.version);
    }
    Ok((state, version))
}
