//! **SANDBOX** payment gateway: a stand-in for a third-party gateway, for demos, tests and
//! benchmarks. No real money moves. Every answer carries the header `x-sandbox: true`, and every
//! JSON object it answers with (but the `GET /charges` and `GET /payouts` arrays) has
//! `"sandbox": true`.
//!
//! Routes (relative, so a binary can `nest("/sandbox", router(state))` or serve them standalone):
//! - `POST /charges {idempotency_key, amount, currency}` -> 201 `{charge_ref}`; a repeated key returns
//!   the first charge (and counts the attempt); 402 problem when declined; 503 when overloaded;
//!   409 when a key is reused for another amount; 422 for a bad amount or currency.
//! - `POST /refunds {charge_ref, amount}` -> 201 `{refund_ref}`; a charge is refunded at most once
//!   (a repeat returns the first refund); 404 unknown charge; 422 amount above the charge.
//! - `GET /charges` -> every charge: `charge_ref, idempotency_key, amount, currency, refunded,
//!   refunded_amount, refund_ref, attempts, refund_attempts`.
//! - `POST /payouts {idempotency_key, payee, amount, currency}` -> 201 `{payout_ref}`; a repeated
//!   key returns the first payout (header `idempotent-replayed: true`; the attempt is counted);
//!   409 when a key is reused for another payee, amount or currency; 422 for an amount below 1, a
//!   bad currency or payee; 503 when overloaded; never declined. Payout keys are apart from charge
//!   keys.
//! - `GET /payouts` -> every payout, oldest first: `payout_ref, idempotency_key, payee, amount,
//!   currency, attempts`.
//! - `GET /config`, `PUT /config {latency_ms?, decline_rate?, overloaded?}` -> 200 with the config.
//!   `latency_ms` and `overloaded` apply to every payment call; `decline_rate` to charges only:
//!   payouts are never declined.
//!
//! Access ([`SandboxAccess`]): payment calls with the gateway key the saga's client is configured
//! with; every route with the platform admin's token; anyone else 401/403 problem+json.
//! The ledger is kept in an SQLite file ([`SandboxState::open`]) so it outlives a restart, as a
//! real gateway's does; the runtime config is not kept.

mod access;
mod book;
mod ledger;
mod payouts;
mod routes;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::http::HeaderValue;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use access::SandboxAccess;
pub use book::LedgerStoreError;
pub use ledger::{SandboxCharge, SandboxConfig};
pub use payouts::SandboxPayout;

use book::Book;

/// The sandbox's shared state: its charges, refunds, payouts and runtime configuration.
#[derive(Debug, Clone, Default)]
pub struct SandboxState {
    book: Arc<Mutex<Book>>,
}

impl SandboxState {
    /// A sandbox whose ledger is kept in the SQLite file at `path` (created if missing).
    pub fn open(path: &Path) -> Result<Self, LedgerStoreError> {
        Ok(Self {
            book: Arc::new(Mutex::new(Book::open(path)?)),
        })
    }

    /// An in-memory sandbox starting with `config` instead of the default (no latency, no
    /// declines).
    #[must_use]
    pub fn with_config(config: SandboxConfig) -> Self {
        let state = Self::default();
        state.book().ledger.config = config;
        state
    }

    /// The current configuration.
    #[must_use]
    pub fn config(&self) -> SandboxConfig {
        self.book().ledger.config
    }

    /// Every charge so far, oldest first.
    #[must_use]
    pub fn charges(&self) -> Vec<SandboxCharge> {
        self.book().ledger.charges().to_vec()
    }

    /// Every payout so far, oldest first.
    #[must_use]
    pub fn payouts(&self) -> Vec<SandboxPayout> {
        self.book().ledger.payouts().all().to_vec()
    }

    fn book(&self) -> MutexGuard<'_, Book> {
        // Every ledger update is a few plain assignments done under the lock (a failed write is
        // undone before the lock is released), so a poisoned lock still holds a consistent ledger.
        self.book
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Run `work` on the book off the async threads (it may wait for an fsync).
    async fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Book) -> T + Send + 'static,
    ) -> T {
        let state = self.clone();
        tokio::task::spawn_blocking(move || work(&mut state.book()))
            .await
            .unwrap_or_else(|joined| std::panic::resume_unwind(joined.into_panic()))
    }
}

/// Every sandbox route, each behind `access`; every answer is labelled `x-sandbox: true`.
pub fn router(state: SandboxState, access: SandboxAccess) -> Router {
    Router::new()
        .route("/", get(routes::describe))
        .route("/charges", post(routes::charge).get(routes::list_charges))
        .route("/refunds", post(routes::refund))
        .route("/payouts", post(routes::payout).get(routes::list_payouts))
        .route(
            "/config",
            get(routes::show_config).put(routes::update_config),
        )
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(access, access::check))
        .layer(axum::middleware::map_response(label_sandbox))
}

async fn label_sandbox(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert("x-sandbox", HeaderValue::from_static("true"));
    response
}

/// Serve the sandbox (routes at the root) until `shutdown` is cancelled.
pub async fn serve_sandbox(
    listener: TcpListener,
    state: SandboxState,
    access: SandboxAccess,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(state, access))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}
