//! The command side of stayledger: application services for every command (register a lodging,
//! request / cancel a reservation, approve / reject a request, retry a deferred payment) and their
//! axum HTTP adapter. Auth, problem+json, request ids and body reading come from `http_edge`, which
//! the query API shares.
//!
//! Owns: who may run which command, input validation, idempotency (`Idempotency-Key`), the mapping of
//! domain rejections / conflicts / store failures to HTTP statuses.
//! Must not: decide business rules (that is `domain`), know how events are stored (only the
//! `eventlog` port and repository), read or write views, or call the payment gateway.

mod catalog;
pub mod error;
mod http;
pub mod idempotency;
pub mod input;
pub mod services;
mod store;

use std::sync::Arc;

use eventlog::Repositories;
use http_edge::Auth;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use error::CommandError;
pub use http::{router, CommandState, IdempotencyHeader, REPLAYED_HEADER};
pub use services::{
    Accepted, Command, CommandOptions, CommandServices, Invocation, Operation, Permitted,
};

/// What the standalone command service runs on.
#[derive(Clone)]
pub struct CommandConfig {
    /// The process's write model (built once where the process is wired).
    pub repositories: Repositories,
    pub auth: Arc<Auth>,
    pub options: CommandOptions,
}

impl CommandConfig {
    #[must_use]
    pub fn new(repositories: Repositories, auth: Arc<Auth>) -> Self {
        Self {
            repositories,
            auth,
            options: CommandOptions::default(),
        }
    }
}

/// Serve the command routes on `listener` until `shutdown` is cancelled (in-flight requests finish), within
/// the default [`http_edge::ServerLimits`].
pub async fn run(
    config: CommandConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let state = CommandState::with_options(config.repositories, config.auth, config.options);
    http_edge::server::serve_alone("command API", listener, router(state), shutdown).await
}
