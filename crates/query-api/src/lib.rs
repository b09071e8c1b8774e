//! The query side of stayledger: axum HTTP for the views (lodging catalog, ReservationList,
//! ManagementList, payouts) and the audit endpoints, plus the OpenAPI document of every route of
//! the platform.
//!
//! Owns: who may read which document, the query parameters each route takes (`route_params::ROUTES`;
//! any other answers 400), list paging parameters, `min_position` waits, ETags, the audit
//! reads of the event log (history, state as of a point, pages of the log, hash-chain check) and
//! `GET /openapi.json` + `GET /docs`.
//! Must not: write anything (no commands, no appends, no view updates), know how views or events are
//! stored (only the `readmodel` and `eventlog` ports), decide business rules, or depend on the command
//! side. Auth, problem+json and the edge layers come from `http_edge`, so both APIs answer alike.

mod audit;
mod availability;
mod catalog;
mod document;
pub mod error;
mod guests;
pub mod history;
mod inbox;
mod me;
pub mod openapi;
pub mod params;
mod payouts;
pub mod route_params;
mod state;
mod stream;
mod stream_frames;
mod stream_hub;
mod views;

use std::sync::Arc;

use axum::response::Html;
use axum::routing::get;
use axum::{Json, Router};
use eventlog::EventLog;
use http_edge::Auth;
use readmodel::ViewStore;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use document::etag;
pub use error::QueryError;
pub use openapi::openapi;
pub use state::{QueryState, ViewProgress};
pub use stream_hub::StreamHub;

/// The query and audit routes plus `/openapi.json` and `/docs`, with the edge layers (tracing,
/// body limit, problem+json) and no fallback, so they merge with other routers; add
/// `.fallback(http_edge::problem::not_found)` to the merged router.
pub fn router(state: QueryState) -> Router {
    let routes = views::routes()
        .merge(catalog::routes())
        .merge(payouts::routes())
        .merge(me::routes())
        .merge(inbox::routes())
        .merge(stream::routes())
        .merge(audit::routes())
        .route_layer(axum::middleware::from_fn(route_params::refuse_unknown))
        .with_state(state)
        .route("/openapi.json", get(|| async { Json(openapi()) }))
        .route("/docs", get(|| async { Html(openapi::DOCS_HTML) }));
    http_edge::apply(routes)
}

/// What the standalone query service runs on.
#[derive(Clone)]
pub struct QueryConfig {
    pub log: Arc<dyn EventLog>,
    pub views: Arc<dyn ViewStore>,
    pub auth: Arc<Auth>,
    pub progress: ViewProgress,
}

/// Serve the query routes on `listener` until `shutdown` is cancelled (in-flight requests finish), within
/// the default [`http_edge::ServerLimits`].
pub async fn run(
    config: QueryConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let state = QueryState::new(config.log, config.views, config.auth, config.progress)
        .closing_with(shutdown.clone());
    http_edge::server::serve_alone("query API", listener, router(state), shutdown).await
}
