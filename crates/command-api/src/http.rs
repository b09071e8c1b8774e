//! The HTTP inbound adapter of the command side: routes of API.md "Command routes", each a thin
//! handler: authenticate, check the role, read the body, call the application service, answer.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequestParts, Path, State};
use axum::http::header::LOCATION;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use domain::ReservationId;
use eventlog::Repositories;
use uuid::Uuid;

use crate::auth::{Auth, Principal};
use crate::body::parse_object;
use crate::edge::{self, RequestId};
use crate::error::CommandError;
use crate::idempotency::IdempotencyKey;
use crate::input::{CancelReservation, RegisterLodging, RejectRequest, RequestReservation};
use crate::problem::{FieldError, Problem};
use crate::services::{permit, Accepted, CommandOptions, CommandServices, Invocation, Operation};

/// Header set on an answer that repeats the first answer to the same Idempotency-Key.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// Shared state of the command routes.
#[derive(Clone)]
pub struct CommandState {
    pub services: Arc<CommandServices>,
    pub auth: Arc<Auth>,
}

impl CommandState {
    /// The routes' state over the process's `repositories`.
    #[must_use]
    pub fn new(repositories: Repositories, auth: Arc<Auth>) -> Self {
        Self::with_options(repositories, auth, CommandOptions::default())
    }

    #[must_use]
    pub fn with_options(
        repositories: Repositories,
        auth: Arc<Auth>,
        options: CommandOptions,
    ) -> Self {
        Self {
            services: Arc::new(CommandServices::new(repositories, options)),
            auth,
        }
    }
}

impl FromRef<CommandState> for Arc<Auth> {
    fn from_ref(state: &CommandState) -> Self {
        Arc::clone(&state.auth)
    }
}

/// The command routes, with the edge layers (tracing, body limit, problem+json), and no fallback,
/// so they merge with other routers; add `.fallback(problem::not_found)` to the merged router.
pub fn router(state: CommandState) -> Router {
    let routes = Router::new()
        .route("/lodgings", post(register_lodging))
        .route("/reservations", post(request_reservation))
        .route("/reservations/{id}/cancel", post(cancel_reservation))
        .route("/management/requests/{id}/approve", post(approve_request))
        .route("/management/requests/{id}/reject", post(reject_request))
        .route("/payments/{id}/retry", post(retry_payment))
        .with_state(state);
    edge::apply(routes)
}

/// The `Idempotency-Key` header, if any (400 if malformed).
#[derive(Debug, Clone)]
pub struct IdempotencyHeader(pub Option<IdempotencyKey>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyHeader {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get("idempotency-key") else {
            return Ok(Self(None));
        };
        let invalid = |e: FieldError| Problem::invalid_fields(vec![e]);
        let text = value
            .to_str()
            .map_err(|_| invalid(FieldError::new("Idempotency-Key", "must be visible ASCII")))?;
        IdempotencyKey::parse(text)
            .map(|key| Self(Some(key)))
            .map_err(invalid)
    }
}

fn invocation(principal: Principal, request_id: RequestId, key: IdempotencyHeader) -> Invocation {
    Invocation {
        principal,
        request_id: request_id.0,
        idempotency_key: key.0,
    }
}

/// A reservation id from the path; anything but a UUID names no reservation (404).
fn reservation_id(raw: &str) -> Result<ReservationId, CommandError> {
    Uuid::parse_str(raw).map_err(|_| CommandError::NotFound(format!("no reservation {raw}")))
}

fn answer(status: StatusCode, accepted: &Accepted, location: Option<String>) -> Response {
    let mut response = (status, Json(accepted)).into_response();
    let headers = response.headers_mut();
    if let Some(value) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        headers.insert(LOCATION, value);
    }
    if accepted.replayed {
        headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    }
    response
}

async fn register_lodging(
    State(state): State<CommandState>,
    principal: Principal,
    key: IdempotencyHeader,
    request_id: RequestId,
    body: Bytes,
) -> Result<Response, CommandError> {
    permit(&principal, Operation::RegisterLodging)?;
    let input = RegisterLodging::parse(&parse_object(&body)?)?;
    let invocation = invocation(principal, request_id, key);
    let accepted = state.services.register_lodging(&invocation, input).await?;
    let location = format!("/lodgings/{}", accepted.id);
    Ok(answer(StatusCode::CREATED, &accepted, Some(location)))
}

async fn request_reservation(
    State(state): State<CommandState>,
    principal: Principal,
    key: IdempotencyHeader,
    request_id: RequestId,
    body: Bytes,
) -> Result<Response, CommandError> {
    permit(&principal, Operation::RequestReservation)?;
    let input = RequestReservation::parse(&parse_object(&body)?)?;
    let invocation = invocation(principal, request_id, key);
    let accepted = state
        .services
        .request_reservation(&invocation, input)
        .await?;
    let location = format!("/reservations/{}", accepted.id);
    Ok(answer(StatusCode::ACCEPTED, &accepted, Some(location)))
}

async fn cancel_reservation(
    State(state): State<CommandState>,
    principal: Principal,
    key: IdempotencyHeader,
    request_id: RequestId,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, CommandError> {
    permit(&principal, Operation::CancelReservation)?;
    let input = CancelReservation::parse(&parse_object(&body)?)?;
    let id = reservation_id(&id)?;
    let invocation = invocation(principal, request_id, key);
    let accepted = state
        .services
        .cancel_reservation(&invocation, id, input)
        .await?;
    Ok(answer(StatusCode::ACCEPTED, &accepted, None))
}

async fn approve_request(
    State(state): State<CommandState>,
    principal: Principal,
    key: IdempotencyHeader,
    request_id: RequestId,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, CommandError> {
    permit(&principal, Operation::DecideRequest)?;
    parse_object(&body)?;
    let id = reservation_id(&id)?;
    let invocation = invocation(principal, request_id, key);
    let accepted = state.services.approve_request(&invocation, id).await?;
    Ok(answer(StatusCode::ACCEPTED, &accepted, None))
}

async fn reject_request(
    State(state): State<CommandState>,
    principal: Principal,
    key: IdempotencyHeader,
    request_id: RequestId,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, CommandError> {
    permit(&principal, Operation::DecideRequest)?;
    let input = RejectRequest::parse(&parse_object(&body)?)?;
    let id = reservation_id(&id)?;
    let invocation = invocation(principal, request_id, key);
    let accepted = state
        .services
        .reject_request(&invocation, id, input)
        .await?;
    Ok(answer(StatusCode::ACCEPTED, &accepted, None))
}

async fn retry_payment(
    State(state): State<CommandState>,
    principal: Principal,
    key: IdempotencyHeader,
    request_id: RequestId,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, CommandError> {
    permit(&principal, Operation::RetryPayment)?;
    parse_object(&body)?;
    let id = reservation_id(&id)?;
    let invocation = invocation(principal, request_id, key);
    let accepted = state.services.retry_payment(&invocation, id).await?;
    Ok(answer(StatusCode::ACCEPTED, &accepted, None))
}
