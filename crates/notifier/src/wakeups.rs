//! Who the webhooks wake in one process, and for what. The dispatcher wakes only the senders of the
//! subscriptions it queued deliveries for; a change to the subscriptions wakes the supervisor, which
//! starts and stops senders. Waking every sender after every batch made each of them read its open
//! deliveries, mostly none, dozens of times a second under load (B9: 64 subscriptions).
//!
//! A wakeup is a permit ([`Notify::notify_one`]): one that comes while its sender is busy is kept
//! for when it waits again, so none is lost. Every waiter also looks again on its own every second,
//! for what other processes queue.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;
use uuid::Uuid;

#[derive(Debug, Default)]
pub struct Wakeups {
    senders: Mutex<HashMap<Uuid, Arc<Notify>>>,
    supervisor: Notify,
}

impl Wakeups {
    /// What wakes `subscription`'s sender (made on first use).
    #[must_use]
    pub fn sender(&self, subscription: Uuid) -> Arc<Notify> {
        let mut senders = self.senders.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(senders.entry(subscription).or_default())
    }

    /// `subscription`'s sender has stopped.
    pub fn forget(&self, subscription: Uuid) {
        let mut senders = self.senders.lock().unwrap_or_else(PoisonError::into_inner);
        senders.remove(&subscription);
    }

    /// Deliveries were queued (or re-driven) for these subscriptions: wake their senders.
    pub fn queued(&self, subscriptions: impl IntoIterator<Item = Uuid>) {
        let subscriptions: HashSet<Uuid> = subscriptions.into_iter().collect();
        let senders = self.senders.lock().unwrap_or_else(PoisonError::into_inner);
        for subscription in subscriptions {
            if let Some(notify) = senders.get(&subscription) {
                notify.notify_one();
            }
        }
    }

    /// What wakes the supervisor of the senders.
    #[must_use]
    pub fn supervisor(&self) -> &Notify {
        &self.supervisor
    }

    /// A subscription was added or removed: the supervisor looks again.
    pub fn subscriptions_changed(&self) {
        self.supervisor.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn woken(notify: &Notify) -> bool {
        tokio::time::timeout(Duration::from_millis(50), notify.notified())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn only_the_senders_of_the_queued_subscriptions_are_woken_and_none_is_lost() {
        let wakeups = Wakeups::default();
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let (to_a, to_b) = (wakeups.sender(a), wakeups.sender(b));
        // Queued while neither waits: a's wakeup is kept for when it waits, once.
        wakeups.queued([a, a]);
        assert!(woken(&to_a).await);
        assert!(!woken(&to_a).await, "one wakeup, however many deliveries");
        assert!(!woken(&to_b).await, "b had nothing queued");
        wakeups.queued([b]);
        assert!(woken(&to_b).await);

        wakeups.forget(a);
        wakeups.queued([a]);
        assert!(!woken(&to_a).await, "a stopped sender is not woken");
        wakeups.subscriptions_changed();
        assert!(woken(wakeups.supervisor()).await);
    }
}
