//! The command side's use of the event log: the generic repository per aggregate (load -> decide ->
//! append with optimistic concurrency), retried with jittered backoff when another writer moved the
//! stream first, and the look-up of what an earlier request (by causation id) wrote.

use std::sync::Arc;
use std::time::Duration;

use crate::shim::{CommandContext, Executed, Repository, RepositoryError};
use domain::lodging::LodgingAggregate;
use domain::payment::PaymentAggregate;
use domain::reservation::{Reservation, ReservationAggregate};
use domain::{Aggregate, ReservationId};
use eventlog::{EventLog, RecordedEvent};
use rand::Rng;
use uuid::Uuid;

use crate::error::CommandError;

/// Page size when scanning a stream for an earlier request's events.
const SCAN_PAGE: usize = 512;

pub(crate) struct Store {
    pub log: Arc<dyn EventLog>,
    pub reservations: Repository<ReservationAggregate>,
    pub lodgings: Repository<LodgingAggregate>,
    pub payments: Repository<PaymentAggregate>,
    /// Attempts of one command before a conflict is given up as 409.
    pub attempts: u32,
}

impl Store {
    pub fn new(log: Arc<dyn EventLog>, attempts: u32) -> Self {
        Self {
            reservations: Repository::new(Arc::clone(&log)),
            lodgings: Repository::new(Arc::clone(&log)),
            payments: Repository::new(Arc::clone(&log)),
            log,
            attempts: attempts.max(1),
        }
    }

    /// The reservation's state; 404 if it was never requested.
    pub async fn reservation(&self, id: ReservationId) -> Result<Reservation, CommandError> {
        let loaded = self
            .reservations
            .load(&id.to_string())
            .await
            .map_err(infrastructure::<ReservationAggregate>)?;
        if loaded.state.details.is_none() {
            return Err(CommandError::NotFound(format!("no reservation {id}")));
        }
        Ok(loaded.state)
    }

    /// The events of `stream` written by the request with `causation` (in stream order).
    pub async fn caused_by(
        &self,
        stream: &str,
        causation: Uuid,
    ) -> Result<Vec<RecordedEvent>, CommandError> {
        let mut found = Vec::new();
        let mut from = 0;
        loop {
            let page = self.log.read_stream(stream, from, SCAN_PAGE).await?;
            let Some(last) = page.last() else { break };
            from = last.version + 1;
            let full = page.len() == SCAN_PAGE;
            found.extend(
                page.into_iter()
                    .filter(|e| e.metadata.causation_id == causation),
            );
            if !full {
                break;
            }
        }
        Ok(found)
    }
}

/// Run `command` on aggregate `id`, deciding again on fresh state after each conflict.
pub(crate) async fn execute<A>(
    repository: &Repository<A>,
    attempts: u32,
    id: &str,
    command: &A::Command,
    context: &CommandContext,
) -> Result<Executed<A>, CommandError>
where
    A: Aggregate,
    CommandError: From<A::Error>,
{
    let mut attempt = 1;
    loop {
        match repository.execute(id, command, context).await {
            Ok(executed) => return Ok(executed),
            Err(RepositoryError::Domain(error)) => return Err(error.into()),
            Err(RepositoryError::Conflict { stream }) if attempt >= attempts => {
                return Err(CommandError::Contention { stream })
            }
            Err(RepositoryError::Conflict { .. }) => {
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
            Err(other) => return Err(infrastructure::<A>(other)),
        }
    }
}

/// A repository failure that is not the aggregate's own rejection.
fn infrastructure<A: Aggregate>(error: RepositoryError<A::Error>) -> CommandError {
    match error {
        RepositoryError::Log(log) => CommandError::Store(log),
        RepositoryError::Conflict { stream } => CommandError::Contention { stream },
        RepositoryError::Domain(domain) => CommandError::Internal(domain.to_string()),
        other => CommandError::Internal(other.to_string()),
    }
}

/// Up to `2^attempt` ms, jittered so that racing writers spread out.
fn backoff(attempt: u32) -> Duration {
    let ceiling = 1_u64 << attempt.min(6);
    Duration::from_micros(rand::thread_rng().gen_range(200..=ceiling * 1000))
}
