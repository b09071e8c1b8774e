//! The layers every route of both APIs goes through: a tracing span per request (with a request id, also
//! sent back as `x-request-id`), a body size limit, panic containment, the rewrite of any bare
//! error response into problem+json, and `Connection: close` on an error answer to a request that
//! sent a body (the body may be unread: a client must not send its next request on that socket).

use std::time::Instant;

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tracing::Instrument;
use uuid::Uuid;

use crate::body::MAX_BODY_BYTES;
use crate::problem;

/// The id of one request: the causation id of the events it writes when it has no Idempotency-Key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<RequestId>()
            .copied()
            .unwrap_or_else(|| RequestId(Uuid::new_v4())))
    }
}

/// Wrap `router`'s routes in the edge layers.
pub fn apply<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router.layer(
        ServiceBuilder::new()
            .layer(middleware::from_fn(close_after_refused_body))
            .layer(middleware::map_response(problem::ensure_problem))
            .layer(middleware::from_fn(trace_request))
            .layer(CatchPanicLayer::new())
            .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES)),
    )
}

/// One span per request; 5xx answers are logged at error level inside it by whoever produced them.
async fn trace_request(mut request: Request, next: Next) -> Response {
    let request_id = RequestId(Uuid::new_v4());
    request.extensions_mut().insert(request_id);
    let span = tracing::info_span!(
        "http",
        request_id = %request_id.0,
        method = %request.method(),
        path = %request.uri().path(),
        status = tracing::field::Empty,
    );
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    span.record("status", response.status().as_u16());
    let elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    tracing::debug!(parent: &span, elapsed_us, "answered");
    if let Ok(value) = HeaderValue::from_str(&request_id.0.to_string()) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// An error answered before the handler read the body (413 on the declared length, 401 before the
/// body arrived...) leaves unread bytes on the socket, and the server closes it after the answer. Saying
/// `Connection: close` lets the client know not to reuse the socket, so its next request (maybe a
/// non-idempotent POST) is never sent into a connection that is going away.
pub(crate) async fn close_after_refused_body(request: Request, next: Next) -> Response {
    let sent_a_body = has_body(request.headers());
    let mut response = next.run(request).await;
    let status = response.status();
    if sent_a_body && (status.is_client_error() || status.is_server_error()) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}
