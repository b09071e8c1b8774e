//! A stream's worker deciding its queued commands: together on one load and one append where it can,
//! one at a time where it cannot (a conflict that persists, a command already recorded), with the
//! retries and the answers each command gets.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::Aggregate;
use rand::Rng;

use super::{
    encode, event_id, Answer, Counters, Current, Decided, DecidedBatch, Executed, Pending,
    Repository, RepositoryError,
};
use crate::{AppendError, AppendOutcome, ExpectedVersion, NewEvent};

impl<A: Aggregate> Repository<A> {
    /// Decide a batch together; if that cannot be done (the store failed, a conflict persisted, or
    /// some of it was already recorded: a re-executed command), one command at a time.
    pub(super) async fn run_batch(&self, stream: &str, batch: Vec<Pending<A>>) {
        if batch.len() > 1 {
            if let Some(answers) = self.execute_together(stream, &batch).await {
                for (pending, answer) in batch.into_iter().zip(answers) {
                    let _ = pending.reply.send(answer);
                }
                return;
            }
        }
        for pending in batch {
            let answer = self.execute_one(stream, &pending).await;
            let _ = pending.reply.send(answer);
        }
    }

    /// Decide every command of `batch` in order, each on the state the previous ones left, and append
    /// all their events at once. `None` if the batch must be executed one command at a time.
    async fn execute_together(&self, stream: &str, batch: &[Pending<A>]) -> Option<Vec<Answer<A>>> {
        let now = batch.first()?.ctx.now;
        let max_retries = batch.iter().map(|p| p.max_retries).min()?;
        let mut verify = false;
        let mut attempt = 0;
        while attempt <= max_retries {
            let Current {
                state,
                version,
                snapshot_version,
                verified,
            } = self
                .load_for_update(stream, now, verify, false)
                .await
                .ok()?;
            let mut batch = decide_in_turn::<A>(stream, state, batch);
            if !verified && !batch.all_append() {
                // Answers that append nothing must come from the stream as it is.
                verify = true;
                continue;
            }
            if batch.new_events.is_empty() {
                return Some(nothing_appended(batch.decided, batch.state));
            }
            let new_events = std::mem::take(&mut batch.new_events);
            let count = new_events.len() as u64;
            let expected = ExpectedVersion::from_current(version);
            let appended = self.append(stream, expected, new_events).await;
            match appended {
                Ok(outcome) => {
                    let first_version = version.map_or(0, |v| v + 1);
                    if outcome.last_version + 1 != first_version + count {
                        return None; // deduplicated: already recorded, the states above are not the stream's
                    }
                    let settled = self
                        .settle_batch(stream, snapshot_version, batch, outcome, first_version)
                        .await;
                    return Some(settled);
                }
                // The stream did not move: some of the events are already there, the rest not.
                Err(AppendError::Conflict { actual, .. }) if actual == version => return None,
                Err(AppendError::Conflict { .. }) if !verified => verify = true,
                Err(AppendError::Conflict { .. }) => {
                    attempt += 1;
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(AppendError::Log(_)) => return None,
            }
        }
        None
    }

    /// The answers of a batch written in one append: each command gets its events, the state after
    /// the batch and its own last version; the position is the append's (at or after the command's own).
    async fn settle_batch(
        &self,
        stream: &str,
        snapshot_version: Option<u64>,
        DecidedBatch { decided, state, .. }: DecidedBatch<A>,
        outcome: AppendOutcome,
        first_version: u64,
    ) -> Vec<Answer<A>> {
        let snapshot_version = self
            .snapshot_if_due(stream, snapshot_version, outcome.last_version, &state)
            .await;
        let state = Arc::new(state);
        self.cache.put(
            stream,
            Arc::clone(&state),
            outcome.last_version,
            snapshot_version,
        );
        let mut next_version = first_version;
        decided
            .into_iter()
            .map(|d| match d {
                Decided::Rejected(error) => Err(RepositoryError::Domain(error)),
                Decided::Events(events) => {
                    next_version += events.len() as u64;
                    let outcome = (!events.is_empty()).then_some(AppendOutcome {
                        last_version: next_version.saturating_sub(1),
                        position: outcome.position,
                    });
                    Ok(Executed {
                        events,
                        outcome,
                        state: Arc::clone(&state),
                    })
                }
            })
            .collect()
    }

    /// The log's append, counted.
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, AppendError> {
        let appended = self.log.append(stream, expected, events).await;
        match &appended {
            Ok(_) => Counters::add(&self.counters.appends),
            Err(AppendError::Conflict { .. }) => Counters::add(&self.counters.conflicts),
            Err(AppendError::Log(_)) => {}
        }
        appended
    }

    /// One command alone: decide, append, and on a conflict reload and decide again (as many
    /// times as the clone that submitted it allows).
    async fn execute_one(&self, stream: &str, pending: &Pending<A>) -> Answer<A> {
        let Pending {
            command,
            ctx,
            fresh,
            max_retries,
            ..
        } = pending;
        let (fresh, max_retries) = (*fresh, *max_retries);
        let stream = stream.to_owned();
        let mut attempt = 0;
        let mut verify = false;
        loop {
            let current = self
                .load_for_update(&stream, ctx.now, verify, fresh)
                .await?;
            let decided = A::decide(&current.state, command, ctx.now);
            if !current.verified && decided.as_ref().map_or(true, Vec::is_empty) {
                // An answer that appends nothing must come from the stream as it is.
                verify = true;
                continue;
            }
            let events = decided.map_err(RepositoryError::Domain)?;
            if events.is_empty() {
                return Ok(Executed {
                    events,
                    outcome: None,
                    state: Arc::new(current.state),
                });
            }
            let new_events = events
                .iter()
                .enumerate()
                .map(|(index, event)| encode(event, event_id(ctx, &stream, index), ctx.metadata()))
                .collect();
            let expected = ExpectedVersion::from_current(current.version);
            match self.append(&stream, expected, new_events).await {
                Ok(outcome) => {
                    return self
                        .applied(&stream, current, events, outcome, ctx.now)
                        .await
                }
                Err(AppendError::Conflict { .. }) if !current.verified => verify = true,
                Err(AppendError::Conflict { .. }) if attempt < max_retries => {
                    attempt += 1;
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(AppendError::Conflict { .. }) => {
                    return Err(RepositoryError::Conflict { stream })
                }
                Err(AppendError::Log(e)) => return Err(RepositoryError::Log(e)),
            }
        }
    }

    /// The state after a successful append, and a snapshot if one is due.
    async fn applied(
        &self,
        stream: &str,
        current: Current<A::State>,
        events: Vec<A::Event>,
        outcome: AppendOutcome,
        now: DateTime<Utc>,
    ) -> Result<Executed<A>, RepositoryError<A::Error>> {
        let appended_at = current.version.map_or(0, |v| v + 1);
        let appended = outcome.last_version + 1 == appended_at + events.len() as u64;
        let state = if appended {
            A::compact(A::fold(current.state, &events), now)
        } else {
            // Deduplicated: these events were already recorded (a re-executed command), so the stream is
            // not what `current + events` says. Read it back.
            self.load_at(stream, now).await?.state
        };
        let snapshot_version = self
            .snapshot_if_due(
                stream,
                current.snapshot_version,
                outcome.last_version,
                &state,
            )
            .await;
        let state = Arc::new(state);
        if appended {
            let cached = Arc::clone(&state);
            self.cache
                .put(stream, cached, outcome.last_version, snapshot_version);
        }
        Ok(Executed {
            events,
            outcome: Some(outcome),
            state,
        })
    }
}

/// Decide each command of `batch` on the state the ones before it left: each command's decision, the
/// state after all of them, and all their events, encoded with each command's own ids and metadata.
fn decide_in_turn<A: Aggregate>(
    stream: &str,
    mut state: A::State,
    batch: &[Pending<A>],
) -> DecidedBatch<A> {
    let mut new_events = Vec::new();
    let decided = batch
        .iter()
        .map(|pending| {
            let ctx = &pending.ctx;
            match A::decide(&state, &pending.command, ctx.now) {
                Err(error) => Decided::Rejected(error),
                Ok(events) => {
                    new_events.extend(events.iter().enumerate().map(|(index, event)| {
                        encode(event, event_id(ctx, stream, index), ctx.metadata())
                    }));
                    if !events.is_empty() {
                        state = A::fold(std::mem::take(&mut state), &events);
                    }
                    Decided::Events(events)
                }
            }
        })
        .collect();
    // Compacted once for the batch (its commands are decided within moments of each other, on a
    // state compacted when loaded): compaction walks the whole state, e.g. every request of a desk.
    if let Some(last) = batch.last() {
        state = A::compact(state, last.ctx.now);
    }
    DecidedBatch {
        decided,
        state,
        new_events,
    }
}

/// The answers of a batch that appended nothing at all.
fn nothing_appended<A: Aggregate>(decided: Vec<Decided<A>>, state: A::State) -> Vec<Answer<A>> {
    let state = Arc::new(state);
    decided
        .into_iter()
        .map(|d| match d {
            Decided::Rejected(error) => Err(RepositoryError::Domain(error)),
            Decided::Events(events) => Ok(Executed {
                events,
                outcome: None,
                state: Arc::clone(&state),
            }),
        })
        .collect()
}

/// 2^attempt ms, up to 64 ms, with random jitter of the same size.
fn backoff(attempt: u32) -> Duration {
    let base = 1u64 << attempt.min(6);
    Duration::from_millis(base + rand::thread_rng().gen_range(0..=base))
}
