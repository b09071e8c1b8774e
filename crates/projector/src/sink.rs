//! Where decoded batches go: applied to the view store with retry and backoff; an event that keeps
//! failing is isolated (the batch is applied event by event) and parked as a dead letter, so the
//! projection goes on (R8). A store that is down is waited for, never blamed on an event.

use std::sync::Arc;
use std::time::Duration;

use eventlog::RawRecordedEvent;
use readmodel::{DeadLetter, ProjectionTarget, ViewError, ViewEvent};
use tokio_util::sync::CancellationToken;

use crate::decode::decode_raw;
use crate::ProjectorStatus;

/// How failures of the view store are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts of a batch that fails because of its content before it is isolated (>= 1).
    pub attempts: u32,
    /// First pause between attempts; doubled each attempt.
    pub base: Duration,
    /// Longest pause between attempts.
    pub max: Duration,
    /// Attempts while the store is unavailable before giving up; `None` = wait for it forever.
    pub unavailable_attempts: Option<u32>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            base: Duration::from_millis(50),
            max: Duration::from_secs(5),
            unavailable_attempts: None,
        }
    }
}

impl RetryPolicy {
    fn pause(&self, attempt: u32) -> Duration {
        let factor = 1_u32 << attempt.saturating_sub(1).min(16);
        self.base.saturating_mul(factor).min(self.max)
    }
}

/// Why a batch was not (fully) handled.
#[derive(Debug)]
pub(crate) enum Halt {
    Shutdown,
    Failed(ViewError),
}

/// An event ready for the views, or one that is already known to be poison.
#[derive(Clone)]
pub(crate) enum Item {
    View { view: ViewEvent, event_type: String },
    Poison(DeadLetter),
}

impl Item {
    /// Its position in the log.
    pub(crate) fn position(&self) -> u64 {
        match self {
            Self::View { view, .. } => view.position,
            Self::Poison(dead) => dead.position,
        }
    }
}

/// Decode a page read with its payloads as text (as the projector follows the log and a rebuild
/// reads it), consuming it.
pub(crate) fn decode_all_raw(page: Vec<RawRecordedEvent>) -> Vec<Item> {
    page.into_iter()
        .map(|recorded| match decode_raw(recorded) {
            Ok((view, event_type)) => Item::View { view, event_type },
            Err(dead) => Item::Poison(dead),
        })
        .collect()
}

enum ApplyError {
    /// The batch's content cannot be applied (after the bounded retries).
    Rejected(ViewError),
    Halt(Halt),
}

#[derive(Clone)]
pub(crate) struct Sink {
    pub(crate) id: String,
    pub(crate) store: Arc<dyn ProjectionTarget>,
    pub(crate) status: ProjectorStatus,
    pub(crate) retry: RetryPolicy,
}

impl Sink {
    /// Apply decoded items in log order: runs of good events in one call each, poison parked.
    pub(crate) async fn handle(
        &self,
        items: Vec<Item>,
        shutdown: &CancellationToken,
    ) -> Result<(), Halt> {
        let mut views = Vec::with_capacity(items.len());
        let mut types = Vec::with_capacity(items.len());
        for item in items {
            match item {
                Item::View { view, event_type } => {
                    views.push(view);
                    types.push(event_type);
                }
                Item::Poison(dead) => {
                    self.project(std::mem::take(&mut views).into(), &types, shutdown)
                        .await?;
                    types.clear();
                    self.park(&dead, shutdown).await?;
                }
            }
        }
        self.project(views.into(), &types, shutdown).await
    }

    /// Apply a run; if its content is rejected, apply it event by event and park what fails.
    async fn project(
        &self,
        views: Arc<[ViewEvent]>,
        types: &[String],
        shutdown: &CancellationToken,
    ) -> Result<(), Halt> {
        match self.apply(&views, shutdown).await {
            Ok(()) => return Ok(()),
            Err(ApplyError::Halt(halt)) => return Err(halt),
            Err(ApplyError::Rejected(_)) if views.len() == 1 => {}
            Err(ApplyError::Rejected(error)) => {
                tracing::warn!(projector = %self.id, %error, events = views.len(), "batch rejected: isolating the poison event");
            }
        }
        for (view, event_type) in views.iter().zip(types) {
            match self.apply(&Arc::from([view.clone()]), shutdown).await {
                Ok(()) => {}
                Err(ApplyError::Halt(halt)) => return Err(halt),
                Err(ApplyError::Rejected(error)) => {
                    let dead = DeadLetter {
                        position: view.position,
                        event_id: view.event_id,
                        stream: view.stream.clone(),
                        event_type: event_type.clone(),
                        error: error.to_string(),
                    };
                    self.park(&dead, shutdown).await?;
                }
            }
        }
        Ok(())
    }

    /// Apply with retries: content failures a bounded number of times, an unavailable store
    /// as long as the policy says.
    async fn apply(
        &self,
        views: &Arc<[ViewEvent]>,
        shutdown: &CancellationToken,
    ) -> Result<(), ApplyError> {
        let Some(last) = views.last().map(|v| v.position) else {
            return Ok(());
        };
        let (mut rejected, mut unavailable) = (0, 0);
        loop {
            let error = match self.store.apply_shared(&self.id, Arc::clone(views)).await {
                Ok(()) => {
                    self.status.record_applied(last, views.len());
                    return Ok(());
                }
                Err(error) => error,
            };
            self.status.record_error(&error);
            let attempt = if error.is_transient() {
                unavailable += 1;
                if self
                    .retry
                    .unavailable_attempts
                    .is_some_and(|limit| unavailable >= limit)
                {
                    return Err(ApplyError::Halt(Halt::Failed(error)));
                }
                unavailable
            } else {
                rejected += 1;
                let deterministic = matches!(error, ViewError::Unprocessable { .. });
                if deterministic || rejected >= self.retry.attempts {
                    return Err(ApplyError::Rejected(error));
                }
                rejected
            };
            tracing::warn!(projector = %self.id, %error, attempt, "applying to the views failed; retrying");
            self.pause(attempt, shutdown)
                .await
                .map_err(ApplyError::Halt)?;
        }
    }

    async fn pause(&self, attempt: u32, shutdown: &CancellationToken) -> Result<(), Halt> {
        tokio::select! {
            () = shutdown.cancelled() => Err(Halt::Shutdown),
            () = tokio::time::sleep(self.retry.pause(attempt)) => Ok(()),
        }
    }

    /// Park a poison event (retrying while the store is unavailable) and move past it.
    async fn park(&self, dead: &DeadLetter, shutdown: &CancellationToken) -> Result<(), Halt> {
        tracing::error!(
            projector = %self.id, position = dead.position, stream = %dead.stream,
            event_type = %dead.event_type, error = %dead.error, "parking an event the views cannot handle"
        );
        let mut attempt = 0;
        loop {
            match self.store.record_dead_letter(&self.id, dead).await {
                Ok(()) => {
                    self.status.record_parked(dead);
                    return Ok(());
                }
                Err(error) if error.is_transient() => {
                    self.status.record_error(&error);
                    attempt += 1;
                    if self
                        .retry
                        .unavailable_attempts
                        .is_some_and(|limit| attempt >= limit)
                    {
                        return Err(Halt::Failed(error));
                    }
                    self.pause(attempt, shutdown).await?;
                }
                Err(error) => return Err(Halt::Failed(error)),
            }
        }
    }
}
