//! **SANDBOX** payment gateway: a stand-in for a third-party gateway, for demos, tests and
//! benchmarks. No real money moves. Every answer carries the header `x-sandbox: true`, and every
//! JSON object it answers with (but the `GET /charges` array) has `"sandbox": true`.
//!
//! Routes (relative, so a binary can `nest("/sandbox", router(state))` or serve them standalone):
//! - `POST /charges {idempotency_key, amount, currency}` -> 201 `{charge_ref}`; a repeated key returns
//!   the first charge (and counts the attempt); 402 problem when declined; 503 when overloaded;
//!   409 when a key is reused for another amount; 422 for a bad amount or currency.
//! - `POST /refunds {charge_ref, amount}` -> 201 `{refund_ref}`; a charge is refunded at most once
//!   (a repeat returns the first refund); 404 unknown charge; 422 amount above the charge.
//! - `GET /charges` -> every charge: `charge_ref, idempotency_key, amount, currency, refunded,
//!   refunded_amount, refund_ref, attempts, refund_attempts`.
//! - `GET /config`, `PUT /config {latency_ms?, decline_rate?, overloaded?}` -> 200 with the config.
//!
//! Auth: [`router`] has none. A binary that must protect `PUT /config` (the HTTP contract, docs/api.md: platform admin in
//! `serve`) builds the router from [`payments_router`] and [`config_router`] and wraps the latter:
//! `payments_router(s.clone()).merge(config_router(s).route_layer(auth))`.

mod ledger;
mod routes;

use std::sync::{Arc, Mutex, MutexGuard};

use axum::http::HeaderValue;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use ledger::{SandboxCharge, SandboxConfig};

use ledger::Ledger;

/// The sandbox's shared state: its charges, refunds and runtime configuration.
#[derive(Debug, Clone, Default)]
pub struct SandboxState {
    ledger: Arc<Mutex<Ledger>>,
}

impl SandboxState {
    /// A sandbox starting with `config` instead of the default (no latency, no declines).
    #[must_use]
    pub fn with_config(config: SandboxConfig) -> Self {
        let state = Self::default();
        state.ledger().config = config;
        state
    }

    /// The current configuration.
    #[must_use]
    pub fn config(&self) -> SandboxConfig {
        self.ledger().config
    }

    /// Every charge so far, oldest first.
    #[must_use]
    pub fn charges(&self) -> Vec<SandboxCharge> {
        self.ledger().charges().to_vec()
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        // Every ledger update is a few plain assignments done under the lock; a panic cannot
        // happen midway, so a poisoned lock still holds a consistent ledger.
        self.ledger
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The whole sandbox: payments and config, without auth.
pub fn router(state: SandboxState) -> Router {
    payments_router(state.clone()).merge(config_router(state))
}

/// `POST /charges`, `GET /charges`, `POST /refunds` and `GET /`.
pub fn payments_router(state: SandboxState) -> Router {
    Router::new()
        .route("/", get(routes::describe))
        .route("/charges", post(routes::charge).get(routes::list_charges))
        .route("/refunds", post(routes::refund))
        .layer(axum::middleware::map_response(label_sandbox))
        .with_state(state)
}

/// `GET /config` and `PUT /config`: wrap this one with the caller's auth.
pub fn config_router(state: SandboxState) -> Router {
    Router::new()
        .route(
            "/config",
            get(routes::show_config).put(routes::update_config),
        )
        .layer(axum::middleware::map_response(label_sandbox))
        .with_state(state)
}

async fn label_sandbox(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert("x-sandbox", HeaderValue::from_static("true"));
    response
}

/// Serve a fresh sandbox on `listener` (routes at the root) until `shutdown` is cancelled.
pub async fn serve_sandbox(
    listener: TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    serve_sandbox_with(listener, SandboxState::default(), shutdown).await
}

/// Serve the sandbox with a given state (e.g. a starting config) until `shutdown` is cancelled.
pub async fn serve_sandbox_with(
    listener: TcpListener,
    state: SandboxState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}
