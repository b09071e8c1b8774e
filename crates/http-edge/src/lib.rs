//! The HTTP edge both APIs share, so a command and a query answer alike: bearer-token auth ([`auth`]:
//! JWT verification, [`Auth`], [`Principal`], [`Role`] and the `Principal` extractor), problem+json
//! ([`problem`]: [`Problem`], [`FieldError`], the 404 fallback, the rewrite of bare 4xx/5xx answers
//! such as axum's 405, and the one `IntoResponse`), the layers every route goes through ([`layers`]:
//! request ids, tracing span, body size limit, panic containment), JSON request bodies ([`body`]:
//! [`body::parse_object`] and the field reader [`body::Fields`]), and the request-shape bounds the
//! OpenAPI document publishes ([`limits`]), and the server loop every listener runs ([`server`]:
//! header, body and request timeouts, a connection cap below the file limit).
//!
//! Owns: how a request is authenticated, how its body is read and bounded, how any error looks on
//! the wire.
//! Must not: decide business rules (what a role may do, which stays are valid: `domain` and the
//! services), know any store (event log, views), or depend on `command-api` / `query-api`: they
//! depend on it.

pub mod auth;
pub mod body;
pub mod layers;
pub mod limits;
pub mod problem;
pub mod server;
pub mod throttle;

pub use auth::{Auth, AuthError, Claims, Principal, Role, ALL_LODGINGS};
pub use layers::{apply, outermost, RequestId};
pub use problem::{FieldError, Problem};
pub use server::{ServerLimits, ServerStats};
