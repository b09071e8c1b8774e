//! What the query routes run on: the event log (audit), the view store (views), the token checker,
//! and how far the views have got ([`ViewProgress`], for `min_position`).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use eventlog::EventLog;
use http_edge::Auth;
use readmodel::inbox::InboxStore;
use readmodel::{ProjectionTarget, ViewError, ViewStore};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::stream_hub::{self, StreamHub};

/// How to learn the log position the views reflect.
#[derive(Debug, Clone)]
pub enum ViewProgress {
    /// Published by a projector in this process (`ProjectorStatus::subscribe()`).
    Watch(watch::Receiver<u64>),
    /// The projector runs elsewhere: poll its checkpoint in the view store every `every`.
    Checkpoint {
        projector_id: String,
        every: Duration,
    },
}

impl ViewProgress {
    /// The position the target (the views, the inbox) reflects now.
    pub async fn current(&self, views: &dyn ProjectionTarget) -> Result<u64, ViewError> {
        match self {
            Self::Watch(applied) => Ok(*applied.borrow()),
            Self::Checkpoint { projector_id, .. } => views.checkpoint(projector_id).await,
        }
    }

    /// Wait until the views reflect `position`; `false` if they do not within `timeout`.
    pub async fn wait_for(
        &self,
        views: &dyn ProjectionTarget,
        position: u64,
        timeout: Duration,
    ) -> Result<bool, ViewError> {
        match self {
            Self::Watch(applied) => {
                let mut applied = applied.clone();
                let reached = tokio::time::timeout(timeout, applied.wait_for(|p| *p >= position))
                    .await
                    .is_ok_and(|r| r.is_ok());
                // A closed channel (projector gone) keeps its last value.
                Ok(reached || *applied.borrow() >= position)
            }
            Self::Checkpoint {
                projector_id,
                every,
            } => {
                let deadline = Instant::now() + timeout;
                loop {
                    if views.checkpoint(projector_id).await? >= position {
                        return Ok(true);
                    }
                    let now = Instant::now();
                    if now >= deadline {
                        return Ok(false);
                    }
                    tokio::time::sleep((*every).min(deadline - now)).await;
                }
            }
        }
    }
}

/// Shared state of the query routes.
#[derive(Clone)]
pub struct QueryState {
    pub log: Arc<dyn EventLog>,
    pub views: Arc<dyn ViewStore>,
    pub auth: Arc<Auth>,
    pub progress: ViewProgress,
    /// Customers' data keys, to open a profile for `GET /me` (without it, `GET /me` answers 500
    /// for a customer with a profile).
    pub keys: Option<Arc<dyn keys::KeyStore>>,
    /// The inbox (`GET /me/notifications`) and how far its notifier got; without it the route
    /// answers an empty inbox.
    pub inbox: Option<(Arc<dyn InboxStore>, ViewProgress)>,
    /// Cancelled when the process stops: open live streams end then, so that shutdown does not
    /// wait for their clients.
    pub closing: CancellationToken,
    /// The one follower of the log behind this process's live streams.
    pub stream_hub: Arc<StreamHub>,
}

impl QueryState {
    #[must_use]
    pub fn new(
        log: Arc<dyn EventLog>,
        views: Arc<dyn ViewStore>,
        auth: Arc<Auth>,
        progress: ViewProgress,
    ) -> Self {
        Self {
            log,
            views,
            auth,
            progress,
            keys: None,
            inbox: None,
            closing: CancellationToken::new(),
            stream_hub: Arc::new(StreamHub::new(stream_hub::QUEUE)),
        }
    }

    /// This state, opening profiles with data keys from `keys`.
    #[must_use]
    pub fn with_keys(mut self, keys: Arc<dyn keys::KeyStore>) -> Self {
        self.keys = Some(keys);
        self
    }

    /// This state, ending live streams when `closing` is cancelled.
    #[must_use]
    pub fn closing_with(mut self, closing: CancellationToken) -> Self {
        self.closing = closing;
        self
    }

    /// This state, its live streams queueing at most `frames` frames each before the hub drops
    /// one (which then catches up from the log): a small queue makes that path easy to test.
    #[must_use]
    pub fn with_stream_queue(mut self, frames: usize) -> Self {
        self.stream_hub = Arc::new(StreamHub::new(frames));
        self
    }

    /// This state, reading the inbox from `inbox`, which the notifier's `progress` follows.
    #[must_use]
    pub fn with_inbox(mut self, inbox: Arc<dyn InboxStore>, progress: ViewProgress) -> Self {
        self.inbox = Some((inbox, progress));
        self
    }
}

impl FromRef<QueryState> for Arc<Auth> {
    fn from_ref(state: &QueryState) -> Self {
        Arc::clone(&state.auth)
    }
}
