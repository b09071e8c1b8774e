//! The projector's progress, shared with `/readyz`, `/metrics` and `min_position` waits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use readmodel::DeadLetter;
use tokio::sync::watch;

#[derive(Debug)]
struct Shared {
    applied: watch::Sender<u64>,
    head: AtomicU64,
    dead_letters: AtomicU64,
    events: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// A cheap, cloneable handle on a projector's progress.
#[derive(Debug, Clone)]
pub struct ProjectorStatus {
    shared: Arc<Shared>,
}

impl Default for ProjectorStatus {
    fn default() -> Self {
        let (applied, _) = watch::channel(0);
        Self {
            shared: Arc::new(Shared {
                applied,
                head: AtomicU64::new(0),
                dead_letters: AtomicU64::new(0),
                events: AtomicU64::new(0),
                last_error: Mutex::new(None),
            }),
        }
    }
}

impl ProjectorStatus {
    /// Position of the last event the views reflect (applied or parked).
    #[must_use]
    pub fn applied_position(&self) -> u64 {
        *self.shared.applied.borrow()
    }

    /// The highest log position the projector has seen (at least the applied position).
    #[must_use]
    pub fn head_position(&self) -> u64 {
        self.shared
            .head
            .load(Ordering::Relaxed)
            .max(self.applied_position())
    }

    /// Events in the log not yet reflected by the views.
    #[must_use]
    pub fn lag(&self) -> u64 {
        self.head_position().saturating_sub(self.applied_position())
    }

    /// Events parked as dead letters in the view store.
    #[must_use]
    pub fn dead_letter_count(&self) -> u64 {
        self.shared.dead_letters.load(Ordering::Relaxed)
    }

    /// Events applied or parked since this projector started.
    #[must_use]
    pub fn events_projected(&self) -> u64 {
        self.shared.events.load(Ordering::Relaxed)
    }

    /// The last error the projector met; cleared when a batch is applied again.
    #[must_use]
    pub fn last_error(&self) -> Option<String> {
        self.shared
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A receiver of the applied position, to await progress.
    #[must_use]
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.applied.subscribe()
    }

    /// Wait until the views reflect `position`; `false` if they do not within `timeout`.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> bool {
        let mut applied = self.subscribe();
        let reached = async move {
            applied
                .wait_for(|applied| *applied >= position)
                .await
                .is_ok()
        };
        tokio::time::timeout(timeout, reached)
            .await
            .unwrap_or(false)
    }

    /// The views reflect everything up to `position`.
    pub(crate) fn set_applied(&self, position: u64) {
        self.shared.applied.send_if_modified(|applied| {
            let moved = position > *applied;
            *applied = (*applied).max(position);
            moved
        });
    }

    /// Start over from `position`, the checkpoint of the store a (re)started projector writes to.
    /// Unlike [`Self::set_applied`] this may move back: after a swap to a rebuilt store that is
    /// behind, waiters must wait for that store.
    pub(crate) fn reset_applied(&self, position: u64) {
        self.shared.applied.send_if_modified(|applied| {
            let moved = position != *applied;
            *applied = position;
            moved
        });
    }

    pub(crate) fn set_head(&self, position: u64) {
        self.shared.head.fetch_max(position, Ordering::Relaxed);
    }

    pub(crate) fn set_dead_letters(&self, count: u64) {
        self.shared.dead_letters.store(count, Ordering::Relaxed);
    }

    pub(crate) fn record_applied(&self, last: u64, events: usize) {
        self.shared
            .events
            .fetch_add(u64::try_from(events).unwrap_or(u64::MAX), Ordering::Relaxed);
        // Publish the position last, so whoever it wakes sees the rest of this update.
        self.set_error(None);
        self.set_applied(last);
    }

    pub(crate) fn record_parked(&self, dead: &DeadLetter) {
        self.shared.dead_letters.fetch_add(1, Ordering::Relaxed);
        self.shared.events.fetch_add(1, Ordering::Relaxed);
        self.set_error(Some(format!(
            "parked event {} at position {}: {}",
            dead.event_type, dead.position, dead.error
        )));
        self.set_applied(dead.position);
    }

    pub(crate) fn record_error(&self, error: &impl std::fmt::Display) {
        self.set_error(Some(error.to_string()));
    }

    fn set_error(&self, error: Option<String>) {
        *self
            .shared
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = error;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wait_for_returns_once_the_position_is_applied() {
        let status = ProjectorStatus::default();
        assert!(!status.wait_for(3, Duration::from_millis(20)).await);
        let waiter = {
            let status = status.clone();
            tokio::spawn(async move { status.wait_for(3, Duration::from_secs(5)).await })
        };
        status.set_head(10);
        status.record_applied(3, 3);
        assert_eq!(waiter.await.ok(), Some(true));
        assert_eq!((status.applied_position(), status.lag()), (3, 7));
        assert!(status.wait_for(2, Duration::ZERO).await);
        status.set_applied(1);
        assert_eq!(status.applied_position(), 3, "never moves back");
        status.reset_applied(1);
        assert_eq!(
            status.applied_position(),
            1,
            "unless a projector starts on a store behind"
        );
        assert!(!status.wait_for(2, Duration::from_millis(10)).await);
    }
}
