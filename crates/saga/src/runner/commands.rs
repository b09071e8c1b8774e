//! Executing commands on the aggregates through the process's repositories (shared with the
//! command API when both run in one process), with the runner's retry rule on each [`Failure`]:
//! infrastructure failures and conflicts (`Retry`) are retried with backoff until they pass (or
//! shutdown); a domain rejection or an unreadable stream (`Poison`) is returned, never retried.

use std::sync::Arc;

use domain::lodging::LodgingAggregate;
use domain::payment::PaymentAggregate;
use domain::payout::PayoutAggregate;
use domain::reservation::ReservationAggregate;
use domain::saga::ReservationSaga;
use domain::Aggregate;
use eventlog::{CommandContext, EventLog, Executed, Failure, Repositories, Repository};
use tokio_util::sync::CancellationToken;

use super::retry::{pause, Backoff, Stopped};

/// How a command ended, once the infrastructure let it through.
pub enum Outcome<A: Aggregate> {
    Done(Executed<A>),
    /// The aggregate said no.
    Rejected(A::Error),
    /// The stream cannot be read back (a poison event): the command cannot be decided.
    Poison(String),
}

/// The saga runner's clones of the process's repositories (they share workers and caches with
/// every other clone, keeping [`Repository::new`]'s retry count for the saga's commands).
pub struct Commands {
    pub log: Arc<dyn EventLog>,
    pub sagas: Repository<ReservationSaga>,
    pub reservations: Repository<ReservationAggregate>,
    pub lodgings: Repository<LodgingAggregate>,
    pub payments: Repository<PaymentAggregate>,
    pub payouts: Repository<PayoutAggregate>,
    backoff: Backoff,
    shutdown: CancellationToken,
}

impl Commands {
    pub fn new(repositories: Repositories, backoff: Backoff, shutdown: CancellationToken) -> Self {
        let Repositories {
            reservations,
            lodgings,
            payments,
            payouts,
            sagas,
            ..
        } = repositories;
        Self {
            log: Arc::clone(sagas.log()),
            sagas,
            reservations,
            lodgings,
            payments,
            payouts,
            backoff,
            shutdown,
        }
    }

    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    pub fn backoff(&self) -> Backoff {
        self.backoff
    }

    /// Execute `command` on aggregate `id`, retrying infrastructure failures.
    pub async fn execute<A: Aggregate>(
        &self,
        repository: &Repository<A>,
        id: &str,
        command: &A::Command,
        ctx: &CommandContext,
    ) -> Result<Outcome<A>, Stopped> {
        self.execute_with(repository, id, command, ctx, false).await
    }

    /// As `execute`; `opens`: the command most likely opens its stream, so it is decided without
    /// reading it first ([`Repository::execute_new`], which reads it if it exists after all).
    pub async fn execute_with<A: Aggregate>(
        &self,
        repository: &Repository<A>,
        id: &str,
        command: &A::Command,
        ctx: &CommandContext,
        opens: bool,
    ) -> Result<Outcome<A>, Stopped> {
        let mut attempt = 0;
        loop {
            let executed = if opens {
                repository.execute_new(id, command, ctx).await
            } else {
                repository.execute(id, command, ctx).await
            };
            let failure = match executed {
                Ok(executed) => return Ok(Outcome::Done(executed)),
                Err(error) => error.classify(),
            };
            match failure {
                Failure::Rejected(error) => return Ok(Outcome::Rejected(error)),
                Failure::Poison(poison) => return Ok(Outcome::Poison(poison.to_string())),
                Failure::Retry(error) => {
                    attempt += 1;
                    tracing::warn!(%error, stream = %A::stream_name(id), attempt, "command failed, retrying");
                    pause(self.backoff.delay(attempt), &self.shutdown).await?;
                }
            }
        }
    }

    /// Load aggregate `id`'s state, retrying infrastructure failures; `Err(poison)` if unreadable.
    pub async fn load<A: Aggregate>(
        &self,
        repository: &Repository<A>,
        id: &str,
    ) -> Result<Result<A::State, String>, Stopped> {
        let mut attempt = 0;
        loop {
            let failure = match repository.load(id).await {
                Ok(loaded) => return Ok(Ok(loaded.state)),
                Err(error) => error.classify(),
            };
            match failure {
                Failure::Rejected(error) => return Ok(Err(error.to_string())),
                Failure::Poison(poison) => return Ok(Err(poison.to_string())),
                Failure::Retry(error) => {
                    attempt += 1;
                    tracing::warn!(%error, stream = %A::stream_name(id), attempt, "load failed, retrying");
                    pause(self.backoff.delay(attempt), &self.shutdown).await?;
                }
            }
        }
    }
}
