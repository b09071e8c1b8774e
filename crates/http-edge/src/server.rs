//! The HTTP/1.1 server loop every listener of stayledger runs (`serve`, each service, the sandbox
//! gateway), with the bounds a public socket needs and `axum::serve` does not set:
//! - a header-read timeout, which hyper also applies to a keep-alive connection waiting for its next
//!   request (so an idle socket, or a slowloris sending one header byte at a time, is closed);
//! - a body-read timeout between two chunks of a body, and a timeout of the whole request (408);
//! - a cap on open connections kept below the process's file limit, with room left for the stores:
//!   at the cap the server stops accepting (new sockets wait in the kernel's backlog) until one closes,
//!   so sockets can never take the files the event log, the views and the saga need.
//!
//! Owns: accepting, the per-connection protocol settings, graceful shutdown. Routes and their layers
//! are the caller's ([`crate::apply`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

use crate::{layers, problem};

/// File descriptors kept for everything that is not a client socket (SQLite files and their WAL,
/// the saga's and the projector's stores, logs, outbound HTTP to the gateway).
pub const RESERVED_FILES: u64 = 256;
/// Fewest connections the cap allows, whatever the file limit.
pub const MIN_CONNECTIONS: usize = 16;
/// Most connections by default, on a machine with a very high file limit.
pub const MAX_CONNECTIONS: usize = 16_384;

/// The bounds of one listener. Defaults: 20 s to read a request's headers (and to wait idle for the
/// next request on a keep-alive connection), 20 s between two chunks of a body, 60 s for a whole
/// request (longer than the longest wait a query may ask for, 30 s), and the connection cap from
/// [`default_max_connections`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub request_timeout: Duration,
    pub max_connections: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(20),
            body_read_timeout: Duration::from_secs(20),
            request_timeout: Duration::from_secs(60),
            max_connections: default_max_connections(),
        }
    }
}

/// The connection cap for this process: its soft file limit less [`RESERVED_FILES`], within
/// [`MIN_CONNECTIONS`]..=[`MAX_CONNECTIONS`].
#[must_use]
pub fn default_max_connections() -> usize {
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX);
    cap_for_file_limit(soft)
}

fn cap_for_file_limit(soft_limit: u64) -> usize {
    let room = soft_limit.saturating_sub(RESERVED_FILES);
    usize::try_from(room)
        .unwrap_or(usize::MAX)
        .clamp(MIN_CONNECTIONS, MAX_CONNECTIONS)
}

/// What a listener has done, for `/metrics`.
#[derive(Debug, Default)]
pub struct ServerStats {
    open: AtomicU64,
    accepted: AtomicU64,
    accept_errors: AtomicU64,
    at_cap: AtomicU64,
}

impl ServerStats {
    /// Connections open now.
    #[must_use]
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    /// Connections accepted since start.
    #[must_use]
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Failed `accept` calls (e.g. out of file descriptors) since start.
    #[must_use]
    pub fn accept_errors(&self) -> u64 {
        self.accept_errors.load(Ordering::Relaxed)
    }

    /// Times the listener reached its connection cap and waited for a connection to close.
    #[must_use]
    pub fn times_at_cap(&self) -> u64 {
        self.at_cap.load(Ordering::Relaxed)
    }
}

/// One API served alone (`stayledger command-api`, `query-api`): `app` with the problem+json 404 for
/// unknown paths, on `listener` with the default limits, until `shutdown`.
pub async fn serve_alone(
    name: &str,
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "{name} listening");
    }
    let app = app.fallback(problem::not_found);
    serve(
        listener,
        app,
        ServerLimits::default(),
        Arc::default(),
        shutdown,
    )
    .await
}

/// Serve `app` on `listener` within `limits` until `shutdown` is cancelled; then stop accepting and
/// give open connections up to the request timeout to finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServerLimits,
    stats: Arc<ServerStats>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = with_timeouts(app, limits);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut last_accept_error: Option<Instant> = None;
    loop {
        if slots.available_permits() == 0 {
            stats.at_cap.fetch_add(1, Ordering::Relaxed);
        }
        let slot = tokio::select! {
            () = shutdown.cancelled() => break,
            slot = Arc::clone(&slots).acquire_owned() => slot.expect("the semaphore is never closed"),
        };
        let stream = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: wait a little rather than
                    // spin, and say it at most once a second.
                    stats.accept_errors.fetch_add(1, Ordering::Relaxed);
                    if last_accept_error.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                        tracing::warn!(error = %e, "accept failed");
                        last_accept_error = Some(Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        stats.open.fetch_add(1, Ordering::Relaxed);
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let connection = graceful.watch(connection);
        let stats = Arc::clone(&stats);
        tokio::spawn(async move {
            // A connection ends with an error when its client goes away or a timeout closes it:
            // that is the client's business, not the server's.
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection closed");
            }
            stats.open.fetch_sub(1, Ordering::Relaxed);
            drop(slot);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.request_timeout) => {
            tracing::warn!("connections still open after the request timeout; closing them");
        }
    }
    Ok(())
}

/// The request and body timeouts, outside every route's own layers; a timed-out request answers a
/// 408 problem.
fn with_timeouts(app: Router, limits: ServerLimits) -> Router {
    app.layer(
        ServiceBuilder::new()
            .layer(axum::middleware::from_fn(layers::finish_errors))
            .layer(TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                limits.request_timeout,
            ))
            .layer(RequestBodyTimeoutLayer::new(limits.body_read_timeout)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_room_for_the_stores() {
        assert_eq!(cap_for_file_limit(512), 256);
        assert_eq!(cap_for_file_limit(100), MIN_CONNECTIONS);
        assert_eq!(cap_for_file_limit(1 << 40), MAX_CONNECTIONS);
        assert!(default_max_connections() >= MIN_CONNECTIONS);
    }
}
