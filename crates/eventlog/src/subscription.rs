//! Catch-up-then-live subscriptions built on `read_all` pages.
//!
//! The subscriber only ever reads committed pages from the store (the SQLite adapter serves the newest
//! from memory, see `sqlite/tail.rs`), from the position after the last event
//! it delivered, so it cannot skip, reorder or repeat; a slow consumer simply reads more later. It is woken
//! by the writer's head notification (same process) and by a poll timer (a writer in another process).

use std::collections::VecDeque;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::StreamExt;
use tokio::sync::watch;

use futures::stream::BoxStream;

use crate::{LogError, Position, Recorded};

/// Events fetched per page while catching up.
pub(crate) const PAGE: usize = 512;
/// Wait after a failed read before trying again.
const RETRY_AFTER: Duration = Duration::from_millis(250);

/// Reads one page of the global log from a position (inclusive), payloads as `D`.
pub(crate) type PageReader<D> = Box<
    dyn Fn(Position, usize) -> BoxFuture<'static, Result<Vec<Recorded<D>>, LogError>> + Send + Sync,
>;

struct Follow<D> {
    read: PageReader<D>,
    next: Position,
    buffer: VecDeque<Recorded<D>>,
    wake: Option<watch::Receiver<u64>>,
    poll: Duration,
    failed: bool,
}

/// Follow the log from `from` (inclusive). A read error is yielded as an `Err` item; the subscription then
/// keeps trying from where it was, so a consumer may log it and go on polling.
pub(crate) fn follow<D: Send + 'static>(
    read: PageReader<D>,
    from: Position,
    wake: Option<watch::Receiver<u64>>,
    poll: Duration,
) -> BoxStream<'static, Result<Recorded<D>, LogError>> {
    let state = Follow {
        read,
        next: from,
        buffer: VecDeque::new(),
        wake,
        poll,
        failed: false,
    };
    futures::stream::unfold(state, |mut s| async move {
        let item = s.next_item().await;
        Some((item, s))
    })
    .boxed()
}

impl<D> Follow<D> {
    async fn next_item(&mut self) -> Result<Recorded<D>, LogError> {
        loop {
            if let Some(event) = self.buffer.pop_front() {
                return Ok(event);
            }
            if std::mem::take(&mut self.failed) {
                tokio::time::sleep(RETRY_AFTER).await;
            }
            // Mark the current head as seen before reading, so a commit after the read wakes us.
            if let Some(wake) = self.wake.as_mut() {
                wake.borrow_and_update();
            }
            let page = match (self.read)(self.next, PAGE).await {
                Ok(page) => page,
                Err(e) => {
                    self.failed = true;
                    return Err(e);
                }
            };
            let next = self.next;
            self.buffer
                .extend(page.into_iter().filter(|e| e.position >= next));
            match self.buffer.back() {
                Some(last) => self.next = last.position + 1,
                None => self.wait().await,
            }
        }
    }

    /// Sleep until the in-process writer reports a new head, or the poll interval passes.
    async fn wait(&mut self) {
        let poll = tokio::time::sleep(self.poll);
        let Some(wake) = self.wake.as_mut() else {
            return poll.await;
        };
        tokio::select! {
            changed = wake.changed() => {
                if changed.is_err() {
                    // The writer is gone (log dropped): keep polling the file.
                    self.wake = None;
                }
            }
            () = poll => {}
        }
    }
}
