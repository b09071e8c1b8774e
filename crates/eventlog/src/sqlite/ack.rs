//! The acknowledging thread: what the writer hands over per committed batch, and how its callers
//! are answered. It keeps the batch's rows in the tail, moves the log's head (waking the
//! subscriptions), then answers each append, so the writer's thread goes straight on to its next
//! transaction.

use std::sync::mpsc;

use tokio::sync::watch;

use super::command::Command;
use super::reader::RawEvent;
use super::tail::Tail;
use super::writer::Answer;
use crate::{AppendError, LogError};

/// The rows one append inserted: positions and versions from these on, with their hashes.
pub(crate) struct Inserted {
    /// The append's index in its batch.
    pub(crate) command: usize,
    pub(crate) first_position: u64,
    pub(crate) first_version: u64,
    pub(crate) hashes: Vec<String>,
}

/// What the writer hands the acknowledging thread per committed batch.
pub(crate) struct Acks {
    pub(crate) answered: Vec<(Command, Answer)>,
    pub(crate) inserted: Vec<Inserted>,
    pub(crate) recorded_at: String,
    pub(crate) head: u64,
}

/// The acknowledging thread, until the writer is gone: per committed batch, keeps its rows in the
/// tail, then moves the head (waking the subscriptions, which find the rows there), then answers
/// the callers.
pub(crate) fn acknowledge(batches: mpsc::Receiver<Acks>, tail: &Tail, head: &watch::Sender<u64>) {
    for mut batch in batches {
        if !batch.inserted.is_empty() {
            tail.push(committed_rows(&mut batch));
        }
        release(batch, head);
    }
}

/// Move the head past a committed batch, then answer its callers (by the acknowledging thread, or
/// by the writer itself once that thread is gone).
pub(crate) fn release(batch: Acks, head: &watch::Sender<u64>) {
    move_head(head, batch.head);
    let answered = batch.answered.into_iter();
    answered.for_each(|(c, a)| answer_command(c, a));
}

/// Move the head watch forward to `to` (never back), waking the subscriptions if it moved.
fn move_head(head: &watch::Sender<u64>, to: u64) {
    head.send_if_modified(|current| {
        let moved = to > *current;
        *current = to.max(*current);
        moved
    });
}

/// The rows a batch inserted, as stored, in position order (taking the texts out of its commands).
fn committed_rows(batch: &mut Acks) -> Vec<RawEvent> {
    let mut rows = Vec::new();
    for inserted in std::mem::take(&mut batch.inserted) {
        let Some((Command::Append { stream, events, .. }, _)) =
            batch.answered.get_mut(inserted.command)
        else {
            continue;
        };
        for (i, (event, hash)) in events.iter_mut().zip(inserted.hashes).enumerate() {
            let offset = i as u64;
            rows.push(RawEvent {
                position: to_i64_lossy(inserted.first_position + offset),
                stream: stream.clone(),
                version: to_i64_lossy(inserted.first_version + offset),
                event_id: event.event_id.as_bytes().to_vec(),
                event_type: std::mem::take(&mut event.event_type),
                schema_version: i64::from(event.schema_version),
                data: std::mem::take(&mut event.data),
                metadata: std::mem::take(&mut event.metadata),
                recorded_at: batch.recorded_at.clone(),
                hash,
            });
        }
    }
    rows
}

/// Positions and versions were written as `i64` (`to_i64` checked them), so this never saturates.
fn to_i64_lossy(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Send `answer` to the caller of `command`.
fn answer_command(command: Command, answer: Answer) {
    // A caller that gave up waiting has dropped its receiver; the write stands regardless.
    match command {
        Command::Append { reply, .. } => {
            let _ = reply.send(answer);
        }
        Command::Snapshot { reply, .. } => {
            let _ = reply.send(answer.map(|_| ()));
        }
    }
}

/// Answer the caller of `command` with `error` (its append, or the whole batch, was not written).
pub(crate) fn fail_command(command: Command, error: &LogError) {
    let error = match error {
        LogError::Unavailable(m) => LogError::Unavailable(m.clone()),
        LogError::Corrupt(m) => LogError::Corrupt(m.clone()),
    };
    answer_command(command, Err(AppendError::Log(error)));
}
