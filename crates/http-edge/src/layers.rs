//! The layers every route of both APIs goes through: a tracing span per request (with a request id, also
//! sent back as `x-request-id`: a well-formed incoming one is echoed), a body size limit, panic containment, the rewrite of any bare
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
            .layer(middleware::from_fn(edge))
            .layer(CatchPanicLayer::new())
            .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES)),
    )
}

/// The layers of a whole served app, outside all its routes: every answer (a probe's, the sandbox's,
/// an unknown route's, a 405) carries `x-request-id`, and a bare error becomes problem+json. The
/// routes wrapped by [`apply`] inside keep the id and the span given here.
pub fn outermost<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router.layer(middleware::from_fn(edge))
}

/// The edge's work on a request, as one layer (each layer of a route costs its clone and boxed
/// futures at every request): [`trace_request`], then [`problem::ensure_problem`] and
/// [`close_if_refused`] on the answer. Done once per request: nested inside another edge
/// layer (a route's inside the app's), it passes the request through and the outer one does it all.
async fn edge(request: Request, next: Next) -> Response {
    if request.extensions().get::<RequestId>().is_some() {
        return next.run(request).await;
    }
    let sent_a_body = has_body(request.headers());
    finish(sent_a_body, trace_request(request, next).await).await
}

/// The longest incoming `X-Request-Id` echoed; a longer one is replaced.
const MAX_INCOMING_ID: usize = 128;

/// An incoming `X-Request-Id` worth echoing: 1 to 128 visible ASCII characters of the kinds ids are
/// made of (letters, digits, `-_.:/+=`), so it cannot break a log line or a header.
fn incoming_request_id(headers: &HeaderMap) -> Option<String> {
    let text = headers.get("x-request-id")?.to_str().ok()?;
    let well_formed = !text.is_empty()
        && text.len() <= MAX_INCOMING_ID
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(&b));
    well_formed.then(|| text.to_owned())
}

/// One span per request; 5xx answers are logged at error level inside it by whoever produced them.
/// The id shown (`x-request-id`, the span) is the caller's well-formed one, else the request's own
/// [`RequestId`]; a caller's id is never the causation id of the events (that would make it an
/// idempotency key nobody asked for).
async fn trace_request(mut request: Request, next: Next) -> Response {
    let request_id = RequestId(Uuid::new_v4());
    let shown = incoming_request_id(request.headers()).unwrap_or_else(|| request_id.0.to_string());
    request.extensions_mut().insert(request_id);
    let span = tracing::info_span!(
        "http",
        request_id = %shown,
        method = %request.method(),
        path = %request.uri().path(),
        status = tracing::field::Empty,
    );
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    span.record("status", response.status().as_u16());
    let elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    tracing::debug!(parent: &span, elapsed_us, "answered");
    if let Ok(value) = HeaderValue::from_str(&shown) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// Outside the server's timeouts (their 408s): a bare error made problem+json, and
/// [`close_if_refused`].
pub(crate) async fn finish_errors(request: Request, next: Next) -> Response {
    let sent_a_body = has_body(request.headers());
    finish(sent_a_body, next.run(request).await).await
}

/// The answer's last touches, wherever the edge ends: a bare error made problem+json, then
/// [`close_if_refused`].
async fn finish(sent_a_body: bool, response: Response) -> Response {
    close_if_refused(sent_a_body, problem::ensure_problem(response).await)
}

/// An error answered before the handler read the body (413 on the declared length, 401 before the
/// body arrived...) leaves unread bytes on the socket, and the server closes it after the answer. Saying
/// `Connection: close` lets the client know not to reuse the socket, so its next request (maybe a
/// non-idempotent POST) is never sent into a connection that is going away.
fn close_if_refused(sent_a_body: bool, mut response: Response) -> Response {
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
