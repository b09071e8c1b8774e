//! The query parameters each route of the query API takes ([`ROUTES`]): [`refuse_unknown`], a
//! layer over every query route, answers 400 naming any other parameter, and any parameter given
//! more than once, before the handler runs (docs/decisions/0018).

use axum::extract::{MatchedPath, Query, Request};
use axum::http::Uri;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_edge::{FieldError, Problem};

use crate::error::QueryError;

/// The query parameters of every route of the query API, by route as the router names it.
/// Adding a parameter to a route is one word here (beside its read in the handler and its
/// entry in the OpenAPI document, which a test compares with this table).
pub const ROUTES: &[(&str, &[&str])] = &[
    (
        "/lodgings",
        &[
            "q",
            "approval_mode",
            "admin_id",
            "status",
            "available_from",
            "available_to",
            "rooms",
            "limit",
            "cursor",
            "min_position",
            "wait_ms",
        ],
    ),
    (
        "/lodgings/{id}/availability",
        &["from", "to", "min_position", "wait_ms"],
    ),
    (
        "/listings",
        &[
            "q",
            "approval_mode",
            "admin_id",
            "status",
            "limit",
            "cursor",
            "min_position",
            "wait_ms",
        ],
    ),
    ("/lodgings/{id}", &["min_position", "wait_ms"]),
    (
        "/reservations",
        &[
            "lodging_id",
            "customer_id",
            "status",
            "check_in_from",
            "check_in_to",
            "limit",
            "cursor",
            "min_position",
            "wait_ms",
        ],
    ),
    ("/reservations/{id}", &["min_position", "wait_ms"]),
    (
        "/management/requests",
        &[
            "lodging_id",
            "status",
            "limit",
            "cursor",
            "min_position",
            "wait_ms",
        ],
    ),
    (
        "/payouts",
        &[
            "lodging_id",
            "status",
            "limit",
            "cursor",
            "min_position",
            "wait_ms",
        ],
    ),
    (
        "/payouts/summary",
        &["lodging_id", "status", "min_position", "wait_ms"],
    ),
    ("/audit/reservations/{id}/history", &[]),
    (
        "/audit/reservations/{id}/state",
        &["as_of_position", "as_of_time"],
    ),
    ("/audit/events", &["from_position", "limit", "cursor"]),
    (
        "/audit/streams/{stream}",
        &["from_version", "limit", "cursor"],
    ),
    ("/audit/verify", &["anchor_position", "anchor_mac"]),
    ("/audit/anchor", &[]),
    ("/me", &["min_position", "wait_ms"]),
    ("/stream", &["access_token"]),
    (
        "/me/notifications",
        &["limit", "cursor", "min_position", "wait_ms"],
    ),
];

/// At most this many offending parameters are named in one answer.
const MAX_REPORTED: usize = 10;

/// The parameters `route` takes; `None` for a route [`ROUTES`] does not list.
#[must_use]
pub fn accepted(route: &str) -> Option<&'static [&'static str]> {
    ROUTES
        .iter()
        .find(|(path, _)| *path == route)
        .map(|(_, names)| *names)
}

/// Check a query string against the parameters its route takes: 400 naming every parameter the
/// route does not take (a route missing from [`ROUTES`] takes none) and every one given twice.
pub fn check_names(route: Option<&str>, uri: &Uri) -> Result<(), QueryError> {
    let pairs = Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map_err(|e| Problem::bad_request(format!("malformed query string: {e}")))?
        .0;
    let takes = route.and_then(accepted).unwrap_or(&[]);
    let mut seen: Vec<&str> = Vec::new();
    let mut errors = Vec::new();
    for (name, _) in &pairs {
        if errors.iter().any(|e: &FieldError| e.field == *name) {
            continue;
        }
        if !takes.contains(&name.as_str()) {
            let message = if takes.is_empty() {
                "is not a parameter of this route (it takes none)".to_string()
            } else {
                format!(
                    "is not a parameter of this route (it takes: {})",
                    takes.join(", ")
                )
            };
            errors.push(FieldError::new(name.as_str(), message));
        } else if seen.contains(&name.as_str()) {
            errors.push(FieldError::new(name.as_str(), "must be given at most once"));
        } else {
            seen.push(name.as_str());
        }
    }
    if errors.is_empty() {
        return Ok(());
    }
    errors.truncate(MAX_REPORTED);
    let names: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    let detail = format!("invalid query parameters: {}", names.join(", "));
    Err(QueryError::Request(
        Problem::bad_request(detail).with_errors(errors),
    ))
}

/// Middleware of the query routes: refuse unknown and repeated parameters (see [`check_names`]).
pub async fn refuse_unknown(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    match check_names(route, request.uri()) {
        Ok(()) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(route: &str, query: &str) -> Vec<String> {
        let uri: Uri = format!("/any?{query}").parse().expect("uri");
        match check_names(Some(route), &uri) {
            Ok(()) => Vec::new(),
            Err(error) => {
                let problem = error.to_problem();
                assert_eq!(problem.status, 400);
                problem.errors.into_iter().map(|e| e.field).collect()
            }
        }
    }

    #[test]
    fn unknown_and_repeated_parameters_are_refused_by_name() {
        assert!(refused("/reservations", "status=confirmed&lodging_id=a&limit=5").is_empty());
        assert_eq!(
            refused("/reservations", "rooms=2&status=confirmed"),
            ["rooms"]
        );
        assert_eq!(refused("/reservations", "limit=1&limit=2"), ["limit"]);
        assert_eq!(
            refused("/reservations", "limit=1&limit=2&limit=3"),
            ["limit"]
        );
        assert_eq!(refused("/lodgings/{id}", "status=x&wait_ms=1"), ["status"]);
        assert_eq!(refused("/audit/verify", "full=1"), ["full"]);
        assert_eq!(refused("/not/listed", "limit=1"), ["limit"]);
        assert!(refused("/audit/verify", "").is_empty());
        let many: Vec<String> = (0..50).map(|i| format!("p{i}=1")).collect();
        assert_eq!(refused("/lodgings", &many.join("&")).len(), MAX_REPORTED);
    }
}
