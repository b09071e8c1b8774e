//! The application services of the command side, usable without HTTP: each takes a caller whose role
//! was checked once for its command ([`Permitted`], see `access`), looks up what its decision needs,
//! checks the caller owns the resource, runs the aggregate through the repository and answers with
//! the position of the last event written.
//!
//! Access (docs/requirements.md, "Access rules"): a customer requests and cancels only their own reservations;
//! an admin decides requests and retries payments only of lodgings in their `lodgings` claim (`*` =
//! all, and only `*` may register lodgings); an auditor changes nothing. Another customer's
//! reservation answers 403 (it exists, it is not yours), an unknown one 404; the query API does the same.

mod access;
mod customers;
mod decisions;
mod lodgings;
mod payouts;
mod reservations;

use std::future::Future;
use std::sync::Arc;

use chrono::Utc;
use domain::{Timestamp, Tz};
use eventlog::{CommandContext, RecordedEvent, Repositories};
use http_edge::Principal;
use serde::Serialize;
use uuid::Uuid;

pub use access::{Command, Operation, Permitted};

use crate::catalog::{Listing, LodgingCatalog, CATALOG_TTL};
use crate::error::CommandError;
use crate::idempotency::{self, IdempotencyKey, Replay, ReplayCache};
use crate::store::Store;

/// Tuning of the command side.
#[derive(Debug, Clone, Copy)]
pub struct CommandOptions {
    /// Re-decisions of a command whose stream keeps moving before it answers 409.
    pub conflict_retries: u32,
    /// First answers to idempotent requests kept in memory (the log keeps them durably).
    pub replay_cache_capacity: usize,
    /// The time zone of a lodging registered without one (`--default-timezone`).
    pub default_timezone: Tz,
    /// The platform's fee on a lodging registered or approved without one (`--platform-fee-bps`).
    pub platform_fee_bps: u32,
    /// The instant commands are decided at (and their events are stamped with): the system clock
    /// outside tests.
    pub clock: fn() -> Timestamp,
}

impl Default for CommandOptions {
    fn default() -> Self {
        Self {
            conflict_retries: 12,
            replay_cache_capacity: 20_000,
            default_timezone: domain::WAVE1_TIMEZONE,
            platform_fee_bps: domain::lodging::PLATFORM_FEE_BPS_DEFAULT,
            clock: Utc::now,
        }
    }
}

/// Who asks, under which request id, with which `Idempotency-Key`.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub principal: Principal,
    /// Causation id of the events written when no key is given.
    pub request_id: Uuid,
    pub idempotency_key: Option<IdempotencyKey>,
}

/// A command that was carried out (or, `replayed`, had been carried out by an earlier request).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Accepted {
    pub id: String,
    pub status: &'static str,
    /// Global position of the last event written: pass it to a query as `min_position`.
    pub position: u64,
    #[serde(skip)]
    pub replayed: bool,
}

impl Accepted {
    fn new(id: impl ToString, status: &'static str, position: u64) -> Self {
        Self {
            id: id.to_string(),
            status,
            position,
            replayed: false,
        }
    }

    fn replayed(mut self) -> Self {
        self.replayed = true;
        self
    }
}

/// The causation id a command's events carry, and whether it came from an Idempotency-Key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cause {
    pub id: Uuid,
    pub keyed: bool,
}

/// The command side's application services.
pub struct CommandServices {
    store: Store,
    catalog: LodgingCatalog,
    replays: ReplayCache<Accepted>,
    default_timezone: Tz,
    platform_fee_bps: u32,
    clock: fn() -> Timestamp,
    /// Customers' data keys (profiles are refused without a key store).
    keys: Option<Arc<dyn keys::KeyStore>>,
}

impl CommandServices {
    /// The services over the process's `repositories` (shared with the saga where it runs too).
    #[must_use]
    pub fn new(repositories: Repositories, options: CommandOptions) -> Self {
        Self {
            catalog: LodgingCatalog::new(repositories.lodgings.clone(), CATALOG_TTL),
            store: Store::new(repositories, options.conflict_retries),
            replays: ReplayCache::new(options.replay_cache_capacity),
            default_timezone: options.default_timezone,
            platform_fee_bps: options.platform_fee_bps,
            clock: options.clock,
            keys: None,
        }
    }

    /// These services, sealing customers' profiles with data keys from `keys`.
    #[must_use]
    pub fn with_keys(mut self, keys: Arc<dyn keys::KeyStore>) -> Self {
        self.keys = Some(keys);
        self
    }

    /// The lodging `lodging_id` if `invocation`'s caller is its admin: its `admin_id` (the host),
    /// an admin whose `lodgings` claim lists it, or the platform admin. 404 if there is none.
    async fn admin_of(
        &self,
        invocation: &Invocation,
        lodging_id: &str,
    ) -> Result<Arc<Listing>, CommandError> {
        let listing = self
            .catalog
            .listing(lodging_id)
            .await?
            .ok_or_else(|| CommandError::NotFound(format!("no lodging {lodging_id}")))?;
        if is_admin_of(&invocation.principal, &listing) {
            Ok(listing)
        } else {
            Err(CommandError::Forbidden(format!(
                "you do not manage lodging {lodging_id}"
            )))
        }
    }

    /// Metadata of the events a command writes, stamped with the service's clock.
    fn context(
        &self,
        invocation: &Invocation,
        correlation_id: Uuid,
        cause: Cause,
    ) -> CommandContext {
        CommandContext {
            correlation_id,
            causation_id: cause.id,
            actor: invocation.principal.actor(),
            now: (self.clock)(),
        }
    }

    /// Run `command` once per (caller, operation, Idempotency-Key): a repeat with the same input
    /// answers the first result; with another input, 422.
    async fn idempotent<I, F, Fut>(
        &self,
        invocation: &Invocation,
        operation: &str,
        input: &I,
        command: F,
    ) -> Result<Accepted, CommandError>
    where
        I: Serialize,
        F: FnOnce(Cause) -> Fut,
        Fut: Future<Output = Result<Accepted, CommandError>>,
    {
        let Some(key) = &invocation.idempotency_key else {
            return command(Cause {
                id: invocation.request_id,
                keyed: false,
            })
            .await;
        };
        let cause = Cause {
            id: idempotency::causation_id(&invocation.principal.sub, operation, key),
            keyed: true,
        };
        let canonical =
            serde_json::to_string(input).map_err(|e| CommandError::Internal(e.to_string()))?;
        let fingerprint = idempotency::fingerprint(operation, &canonical);
        match self.replays.lookup(cause.id, &fingerprint) {
            Replay::Same(answer) => return Ok(answer.replayed()),
            Replay::Different => return Err(CommandError::key_reused()),
            Replay::Miss => {}
        }
        let answer = command(cause).await?;
        let mut first = answer.clone();
        first.replayed = false;
        self.replays.remember(cause.id, fingerprint, first);
        Ok(answer)
    }

    /// The events of `stream` that an earlier request with `cause` wrote (none without a key).
    async fn written_by(
        &self,
        stream: &str,
        cause: Cause,
    ) -> Result<Vec<RecordedEvent>, CommandError> {
        if cause.keyed {
            self.store.caused_by(stream, cause.id).await
        } else {
            Ok(Vec::new())
        }
    }
}

/// Whether `principal` is an admin of `listing` (see [`CommandServices::admin_of`]).
pub(crate) fn is_admin_of(principal: &Principal, listing: &Listing) -> bool {
    principal.manages(&listing.profile.lodging_id)
        || (principal.role == http_edge::Role::Admin && listing.profile.admin_id == principal.sub)
}

/// The answer of an earlier request, rebuilt from the events it `written`: `None` if it wrote none;
/// 422 if they are not what this request would have written.
fn replay(
    written: &[RecordedEvent],
    answer: (&str, &'static str),
    same_request: impl Fn(&RecordedEvent) -> bool,
) -> Result<Option<Accepted>, CommandError> {
    let Some(last) = written.last() else {
        return Ok(None);
    };
    if !written.iter().any(same_request) {
        return Err(CommandError::key_reused());
    }
    Ok(Some(
        Accepted::new(answer.0, answer.1, last.position).replayed(),
    ))
}
