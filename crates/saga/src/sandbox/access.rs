//! Who may call the sandbox gateway, as a real gateway takes only authenticated calls: the saga's
//! client with the gateway key (`Authorization: Bearer <key>`) makes payment calls (POST: charges,
//! refunds, payouts); the platform admin's token (an admin JWT whose `lodgings` holds `*`) may call every
//! route, reading the ledger and configuring the sandbox included. Anyone else: 401 (no or a bad
//! token) or 403 (a valid token of someone else, or the key on a route that is not a payment call),
//! as problem+json.

use std::fmt;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_edge::{Auth, AuthError, Problem};

use crate::gateway_key::GatewayKey;

/// The gateway key and the platform's token checker.
#[derive(Clone)]
pub struct SandboxAccess {
    key: GatewayKey,
    auth: Arc<Auth>,
}

impl fmt::Debug for SandboxAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxAccess")
            .field("key", &self.key)
            .field("auth", &self.auth)
            .finish()
    }
}

impl SandboxAccess {
    /// Payment calls with `key`; every call with a platform admin token `auth` verifies.
    #[must_use]
    pub fn new(key: GatewayKey, auth: Arc<Auth>) -> Self {
        Self { key, auth }
    }

    /// Why a call is refused; `None` when it is admitted.
    fn refusal(&self, method: &Method, headers: &HeaderMap) -> Option<Response> {
        let Some(token) = bearer(headers) else {
            return Some(AuthError::Missing.into_response());
        };
        if self.key.matches(token) {
            if method == Method::POST {
                return None;
            }
            return Some(
                Problem::forbidden(
                    "the payment gateway key makes payment calls (POST charges, refunds and payouts); \
                     reading the ledger and configuring the sandbox take the platform admin's token",
                )
                .into_response(),
            );
        }
        match self.auth.verify(token) {
            Err(refused) => Some(refused.into_response()),
            Ok(principal) if principal.is_platform_admin() => None,
            Ok(_) => Some(
                Problem::forbidden(
                    "the sandbox gateway takes the payment gateway key or a platform admin's token \
                     (lodgings '*')",
                )
                .into_response(),
            ),
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let text = headers.get(AUTHORIZATION)?.to_str().ok()?;
    text.strip_prefix("Bearer ")
        .or_else(|| text.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The middleware in front of every sandbox route.
pub(super) async fn check(
    State(access): State<SandboxAccess>,
    request: Request,
    next: Next,
) -> Response {
    match access.refusal(request.method(), request.headers()) {
        None => next.run(request).await,
        Some(refused) => refused,
    }
}
