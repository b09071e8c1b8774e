//! The command side's use of the event log: the process's repositories ([`Repositories`], shared
//! with the saga when both run in one process; load -> decide -> append with optimistic concurrency,
//! re-deciding on fresh state after a conflict, with jittered backoff, as many times as the command
//! side's own setting), the look-up of what an earlier request (by causation id) wrote, and the
//! mapping of a repository's [`Failure`] to a [`CommandError`].

use std::sync::Arc;

use domain::customer::CustomerAggregate;
use domain::lodging::LodgingAggregate;
use domain::payment::PaymentAggregate;
use domain::payout::PayoutAggregate;
use domain::reservation::{Reservation, ReservationAggregate};
use domain::{Aggregate, ReservationId};
use eventlog::{
    CommandContext, EventLog, Executed, Failure, RecordedEvent, Repositories, Repository,
    RepositoryError, Retry,
};
use uuid::Uuid;

use crate::error::CommandError;

/// Page size when scanning a stream for an earlier request's events.
const SCAN_PAGE: usize = 512;

pub(crate) struct Store {
    pub log: Arc<dyn EventLog>,
    pub reservations: Repository<ReservationAggregate>,
    pub lodgings: Repository<LodgingAggregate>,
    pub payments: Repository<PaymentAggregate>,
    pub payouts: Repository<PayoutAggregate>,
    pub customers: Repository<CustomerAggregate>,
}

impl Store {
    /// The command side's clones of `repositories`; `retries`: re-decisions after a conflict before
    /// a command of this side answers 409 (the other users of the repositories keep theirs).
    pub fn new(repositories: Repositories, retries: u32) -> Self {
        let Repositories {
            reservations,
            lodgings,
            payments,
            payouts,
            customers,
            ..
        } = repositories.max_retries(retries);
        Self {
            log: Arc::clone(reservations.log()),
            reservations,
            lodgings,
            payments,
            payouts,
            customers,
        }
    }

    /// The reservation's state as this process last saw it (read from the log if it keeps none);
    /// 404 if it was never requested. Its lodging, stay and customer never change once requested;
    /// its status may be behind the log, never ahead of it, so what is decided on it is decided
    /// again on the current state by the command that follows (the desk has the last word).
    pub async fn reservation(&self, id: ReservationId) -> Result<Reservation, CommandError> {
        let loaded = self
            .reservations
            .load_recent(&id.to_string())
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
    result.map_err(|error| match error.classify() {
        Failure::Rejected(error) => error.into(),
        other => failed::<A>(other),
    })
}

/// A repository failure that is not the aggregate's own answer to a command (a rejection here
/// comes from a load, which decides nothing: 500).
pub(crate) fn infrastructure<A: Aggregate>(error: RepositoryError<A::Error>) -> CommandError {
    failed::<A>(error.classify())
}

fn failed<A: Aggregate>(failure: Failure<A::Error>) -> CommandError {
    match failure {
        Failure::Retry(Retry::Log(log)) => CommandError::Store(log),
        Failure::Retry(Retry::Conflict { stream }) => CommandError::Contention { stream },
        Failure::Rejected(domain) => CommandError::Internal(domain.to_string()),
        Failure::Poison(poison) => CommandError::Internal(poison.0.to_string()),
    }
}
