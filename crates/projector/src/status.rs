//! The projector's progress, shared with `/readyz`, `/metrics` and `min_position` waits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

#[derive(Debug)]
struct Shared {
    applied: watch::Sender<u64>,
    head: AtomicU64,
    dead_letters: AtomicU64,
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

    /// The highest log position the projector has seen.
    #[must_use]
    pub fn head_position(&self) -> u64 {
        self.shared.head.load(Ordering::Relaxed).max(self.applied_position())
    }

    /// Events in the log not yet reflected by the views.
    #[must_use]
    pub fn lag(&self) -> u64 {
        self.head_position().saturating_sub(self.applied_position())
    }

    /// Events parked as dead letters.
    #[must_use]
    pub fn dead_letter_count(&self) -> u64 {
        self.shared.dead_letters.load(Ordering::Relaxed)
    }

    /// The last error the projector met, until it next applies a batch.
    #[must_use]
    pub fn last_error(&self) -> Option<String> {
        self.shared
            .last_error
            .lock()
            .map_or_else(|poisoned| poisoned.into_inner().clone(), |e| e.clone())
    }

    /// A receiver of the applied position, to await progress.
    #[must_use]
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.applied.subscribe()
    }

    /// Wait until the views reflect `position`; `false` if they do not within `timeout`.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> bool {
        let mut applied = self.subscribe();
        let reached = async move { applied.wait_for(|applied| *applied >= position).await.is_ok() };
        tokio::time::timeout(timeout, reached).await.unwrap_or(false)
    }
}
