//! The webhook store port: subscriptions, their deliveries, and the dispatcher's cursor over the
//! inbox. Deliveries are state of the outside world (who answered what, when), not facts of the
//! log, so this store is never rebuilt: an inbox rebuilt from zero makes the same entries (same
//! `seq`), and a delivery already queued stays as it is. Every adapter passes
//! [`crate::conformance`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use readmodel::{Page, PageRequest, ViewError};
use uuid::Uuid;

use crate::model::{Delivery, Redrive, Subscription};

#[async_trait]
pub trait WebhookStore: Send + Sync + 'static {
    /// Keep a new subscription (its id is new).
    async fn add_subscription(&self, subscription: &Subscription) -> Result<(), ViewError>;

    /// Every subscription, oldest first.
    async fn subscriptions(&self) -> Result<Vec<Subscription>, ViewError>;

    async fn subscription(&self, id: Uuid) -> Result<Option<Subscription>, ViewError>;

    /// Forget a subscription and its deliveries; `false` if there was none.
    async fn remove_subscription(&self, id: Uuid) -> Result<bool, ViewError>;

    /// The `seq` of the last inbox entry the dispatcher has queued deliveries for (0 at first).
    async fn cursor(&self) -> Result<u64, ViewError>;

    /// Queue `deliveries` and move the cursor to `cursor`, in one write: a delivery already
    /// queued (same subscription and `seq`) is left as it is, one of a subscription no longer
    /// kept is dropped, and the cursor never moves back.
    async fn enqueue(&self, deliveries: &[Delivery], cursor: u64) -> Result<(), ViewError>;

    /// The first `limit` open (pending or retrying) deliveries of a subscription, by `seq`.
    async fn open_deliveries(
        &self,
        subscription_id: Uuid,
        limit: usize,
    ) -> Result<Vec<Delivery>, ViewError>;

    /// Save an attempt's outcome (state, attempts, codes, times) over an open delivery; a
    /// delivery no longer open (or no longer kept) is left as it is. `true` if it was saved.
    async fn record_attempt(&self, delivery: &Delivery) -> Result<bool, ViewError>;

    /// [`Self::record_attempt`] for each of `deliveries`, in one write where the store can (a
    /// sender's window of attempts costs one commit): how many were saved.
    async fn record_attempts(&self, deliveries: &[Delivery]) -> Result<usize, ViewError> {
        let mut saved = 0;
        for delivery in deliveries {
            saved += usize::from(self.record_attempt(delivery).await?);
        }
        Ok(saved)
    }

    /// A subscription's deliveries, newest first (cursor: `readmodel::encode_delivery_cursor`).
    async fn deliveries(
        &self,
        subscription_id: Uuid,
        page: &PageRequest,
    ) -> Result<Page<Delivery>, ViewError>;

    /// Queue a parked delivery again (state pending, attempts and the parking clock start over,
    /// due at `now`).
    async fn redrive(
        &self,
        subscription_id: Uuid,
        delivery_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Redrive, ViewError>;
}
