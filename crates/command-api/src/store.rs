//! The command side's use of the event log: the generic repository per aggregate (load -> decide ->
//! append with optimistic concurrency; it re-decides on fresh state after a conflict, with jittered
//! backoff, a bounded number of times), and the look-up of what an earlier request (by causation id)
//! wrote.

use std::sync::Arc;

use domain::lodging::LodgingAggregate;
use domain::payment::PaymentAggregate;
use domain::reservation::{Reservation, ReservationAggregate};
use domain::{Aggregate, ReservationId};
use eventlog::{CommandContext, EventLog, Executed, RecordedEvent, Repository, RepositoryError};
use uuid::Uuid;

use crate::error::CommandError;

/// Page size when scanning a stream for an earlier request's events.
const SCAN_PAGE: usize = 512;

pub(crate) struct Store {
    pub log: Arc<dyn EventLog>,
    pub reservations: Repository<ReservationAggregate>,
    pub lodgings: Repository<LodgingAggregate>,
    pub payments: Repository<PaymentAggregate>,
}

impl Store {
    /// `retries`: re-decisions after a conflict before the command answers 409.
    pub fn new(log: Arc<dyn EventLog>, retries: u32) -> Self {
        Self {
            reservations: Repository::new(Arc::clone(&log))
                .with_snapshots(log.snapshots())
                .max_retries(retries),
            lodgings: Repository::new(Arc::clone(&log))
                .with_snapshots(log.snapshots())
                .max_retries(retries),
            payments: Repository::new(Arc::clone(&log))
                .with_snapshots(log.snapshots())
                .max_retries(retries),
            log,
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

/// Run `command` on aggregate `id`, the three kinds of failure kept apart.
pub(crate) async fn execute<A>(
    repository: &Repository<A>,
    id: &str,
    command: &A::Command,
    context: &CommandContext,
) -> Result<Executed<A>, CommandError>
where
    A: Aggregate,
    CommandError: From<A::Error>,
{
    answer(repository.execute(id, command, context).await)
}

/// A repository's answer, the three kinds of failure kept apart.
pub(crate) fn answer<A>(
    result: Result<Executed<A>, RepositoryError<A::Error>>,
) -> Result<Executed<A>, CommandError>
where
    A: Aggregate,
    CommandError: From<A::Error>,
{
    match result {
        Ok(executed) => Ok(executed),
        Err(RepositoryError::Domain(error)) => Err(error.into()),
        Err(other) => Err(infrastructure::<A>(other)),
    }
}

/// A repository failure that is not the aggregate's own rejection.
fn infrastructure<A: Aggregate>(error: RepositoryError<A::Error>) -> CommandError {
    match error {
        RepositoryError::Log(log) => CommandError::Store(log),
        RepositoryError::Conflict { stream } => CommandError::Contention { stream },
        RepositoryError::Domain(domain) => CommandError::Internal(domain.to_string()),
        RepositoryError::Decode(decode) => CommandError::Internal(decode.to_string()),
    }
}
