//! The HTTP inbound adapter of the command side: the command routes of the HTTP contract (docs/api.md). Every route is
//! one skeleton, [`command`]: authenticate, take the `Idempotency-Key`, check the caller's role,
//! read the body, read the path, call the application service, answer. What differs per route (its
//! input, path, service call, status and `Location`) is its [`Route`]; the catalog's are in `catalog`.

/// The routes with no path: those that create something (their status and `Location` given), and
/// those on the caller themselves (My Page). The input is handed to the service, or (for routes
/// whose body carries nothing) not. Defined before `catalog`, whose listing route is one of them.
macro_rules! no_path_route {
    (
        $input:ty,
        |$services:ident, $caller:ident, $body:pat_param| $call:expr
        $(, status: $status:expr)?
        $(, location: $location:literal)?
    ) => {
        impl Route for $input {
            type Path = ();
            type Target = ();
            $(const STATUS: StatusCode = $status;)?

            fn read(body: &Map<String, Value>) -> Result<Self, Problem> {
                Self::parse(body)
            }

            fn target((): ()) -> Result<(), CommandError> {
                Ok(())
            }

            async fn call(
                $services: &CommandServices,
                $caller: &Permitted<Self>,
                (): (),
                $body: Self,
            ) -> Result<Accepted, CommandError> {
                $call.await
            }

            $(fn location(accepted: &Accepted) -> Option<String> {
                Some(format!(concat!($location, "/{}"), accepted.id))
            })?
        }
    };
}

mod catalog;

use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequestParts, Path, State};
use axum::http::header::LOCATION;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, post, put};
use axum::{Json, Router};
use domain::ReservationId;
use eventlog::Repositories;
use http_edge::{body::parse_object, Auth, FieldError, Principal, Problem, RequestId};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::error::CommandError;
use crate::idempotency::IdempotencyKey;
use crate::input::{
    ApproveListing, ApproveRequest, CancelReservation, CancelStay, CloseLodging, CompleteStay,
    EraseCustomer, EraseMe, RecordProfile, RegisterLodging, RejectListing, RejectRequest,
    RequestReservation, RetryPayment, RetryPayout, SubmitListing, UpdateLodging,
};
use crate::services::{Accepted, Command, CommandOptions, CommandServices, Invocation, Permitted};

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

    /// The routes' state, sealing customers' profiles with data keys from `keys`.
    #[must_use]
    pub fn with_keys(
        repositories: Repositories,
        auth: Arc<Auth>,
        options: CommandOptions,
        keys: Arc<dyn keys::KeyStore>,
    ) -> Self {
        let services = CommandServices::new(repositories, options).with_keys(keys);
        Self {
            services: Arc::new(services),
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
        .route("/lodgings", post(command::<RegisterLodging>))
        .route("/lodgings/{id}", patch(command::<UpdateLodging>))
        .route("/lodgings/{id}/close", post(command::<CloseLodging>))
        .route("/listings", post(command::<SubmitListing>))
        .route("/listings/{id}/approve", post(command::<ApproveListing>))
        .route("/listings/{id}/reject", post(command::<RejectListing>))
        .route("/reservations", post(command::<RequestReservation>))
        .route(
            "/reservations/{id}/cancel",
            post(command::<CancelReservation>),
        )
        .route(
            "/management/requests/{id}/approve",
            post(command::<ApproveRequest>),
        )
        .route(
            "/management/requests/{id}/reject",
            post(command::<RejectRequest>),
        )
        .route(
            "/management/requests/{id}/cancel",
            post(command::<CancelStay>),
        )
        .route(
            "/management/requests/{id}/complete",
            post(command::<CompleteStay>),
        )
        .route("/payments/{id}/retry", post(command::<RetryPayment>))
        .route("/payouts/{id}/retry", post(command::<RetryPayout>))
        .route("/me/profile", put(command::<RecordProfile>))
        .route("/me/erase", post(command::<EraseMe>))
        .route("/customers/{id}/erase", post(command::<EraseCustomer>))
        .with_state(state);
    http_edge::apply(routes)
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

/// What one command route adds to the skeleton of [`command`].
trait Route: Command + Sized + 'static {
    /// What the path carries: nothing, or the reservation's id.
    type Path: FromRequestParts<CommandState> + Send;
    type Target: Send;
    /// The status of a success.
    const STATUS: StatusCode = StatusCode::ACCEPTED;

    /// The input, from the body's JSON object (400 naming every invalid field).
    fn read(body: &Map<String, Value>) -> Result<Self, Problem>;

    /// What the command is about, from the path (404 if it names nothing).
    fn target(path: Self::Path) -> Result<Self::Target, CommandError>;

    /// The application service of the command.
    fn call(
        services: &CommandServices,
        caller: &Permitted<Self>,
        target: Self::Target,
        input: Self,
    ) -> impl Future<Output = Result<Accepted, CommandError>> + Send;

    /// The `Location` of what a success created, if anything.
    fn location(_accepted: &Accepted) -> Option<String> {
        None
    }
}

/// Every command route: the role is checked before the body is read, so a caller who may not ask
/// learns 403 whatever they sent.
async fn command<R: Route>(
    State(state): State<CommandState>,
    principal: Principal,
    key: IdempotencyHeader,
    request_id: RequestId,
    path: R::Path,
    body: Bytes,
) -> Result<Response, CommandError> {
    let caller = invocation(principal, request_id, key).permit::<R>()?;
    let input = R::read(&parse_object(&body)?)?;
    let target = R::target(path)?;
    let accepted = R::call(&state.services, &caller, target, input).await?;
    Ok(answer(R::STATUS, &accepted, R::location(&accepted)))
}

no_path_route!(
    RegisterLodging,
    |services, caller, input| services.register_lodging(caller, input),
    status: StatusCode::CREATED,
    location: "/lodgings"
);
no_path_route!(
    RequestReservation,
    |services, caller, input| services.request_reservation(caller, input),
    location: "/reservations"
);

/// The routes on a reservation: its id from the path, then the call with the caller, the id and the
/// input read from the body (routes whose body carries nothing ignore it).
macro_rules! reservation_route {
    ($input:ty, |$services:ident, $caller:ident, $id:ident, $body:pat_param| $call:expr) => {
        impl Route for $input {
            type Path = Path<String>;
            type Target = ReservationId;

            fn read(body: &Map<String, Value>) -> Result<Self, Problem> {
                Self::parse(body)
            }

            fn target(Path(id): Path<String>) -> Result<ReservationId, CommandError> {
                reservation_id(&id)
            }

            async fn call(
                $services: &CommandServices,
                $caller: &Permitted<Self>,
                $id: ReservationId,
                $body: Self,
            ) -> Result<Accepted, CommandError> {
                $call.await
            }
        }
    };
}

reservation_route!(CancelReservation, |s, caller, id, input| s
    .cancel_reservation(caller, id, input));
reservation_route!(RejectRequest, |s, caller, id, input| s
    .reject_request(caller, id, input));
reservation_route!(CancelStay, |s, caller, id, input| s
    .cancel_stay(caller, id, input));
reservation_route!(ApproveRequest, |s, caller, id, _input| s
    .approve_request(caller, id));
reservation_route!(RetryPayment, |s, caller, id, _input| s
    .retry_payment(caller, id));
reservation_route!(CompleteStay, |s, caller, id, _input| s
    .complete_stay(caller, id));
reservation_route!(RetryPayout, |s, caller, id, _input| s
    .retry_payout(caller, id));

no_path_route!(RecordProfile, |services, caller, input| services
    .record_profile(caller, input));
no_path_route!(EraseMe, |services, caller, _input| services
    .erase_me(caller));

impl Route for EraseCustomer {
    type Path = Path<String>;
    type Target = String;

    fn read(body: &Map<String, Value>) -> Result<Self, Problem> {
        Self::parse(body)
    }

    /// Any customer id a token may carry: 1 to 255 characters, not blank, no control characters.
    fn target(Path(id): Path<String>) -> Result<String, CommandError> {
        let valid =
            !id.trim().is_empty() && id.chars().count() <= 255 && !id.chars().any(char::is_control);
        if valid {
            Ok(id)
        } else {
            Err(CommandError::NotFound(format!("no customer {id:?}")))
        }
    }

    async fn call(
        services: &CommandServices,
        caller: &Permitted<Self>,
        customer_id: String,
        input: Self,
    ) -> Result<Accepted, CommandError> {
        services.erase_customer(caller, &customer_id, input).await
    }
}
