//! RFC 9457 problem details: the one error body both APIs answer with (`application/problem+json`),
//! plus the edge pieces that keep every error in that shape: the unknown-route fallback and a
//! middleware that rewrites any bare error response (413 from the body limit, 405, ...) as a problem.

use axum::body::Body;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// Media type of a problem body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Prefix of every problem `type` URI.
pub const TYPE_PREFIX: &str = "urn:stayledger:problem:";

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    #[must_use]
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A problem details document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// `urn:stayledger:problem:<slug>`, e.g. `urn:stayledger:problem:no-room`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl Problem {
    /// A problem of `status`, kind `slug` (a short kebab-case name), with a human `detail`.
    #[must_use]
    pub fn new(status: StatusCode, slug: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("{TYPE_PREFIX}{slug}"),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    #[must_use]
    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    /// 400 with the invalid fields listed.
    #[must_use]
    pub fn invalid_fields(errors: Vec<FieldError>) -> Self {
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        let detail = format!("invalid request fields: {}", fields.join(", "));
        Self::new(StatusCode::BAD_REQUEST, "invalid-request", detail).with_errors(errors)
    }

    #[must_use]
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid-request", detail)
    }

    #[must_use]
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    #[must_use]
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", detail)
    }

    /// 503: the store did not answer. The cause is logged by the caller, never sent.
    #[must_use]
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "a store is unavailable; try again shortly",
        )
    }

    /// 500: the cause is logged by the caller, never sent.
    #[must_use]
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; it has been logged",
        )
    }

    /// The generic problem for a bare status (used where no handler wrote a body).
    #[must_use]
    pub fn for_status(status: StatusCode) -> Self {
        let (slug, detail) = match status {
            StatusCode::NOT_FOUND => ("not-found", "no such route"),
            StatusCode::METHOD_NOT_ALLOWED => (
                "method-not-allowed",
                "this method is not allowed on this route",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => ("body-too-large", "the request body is too large"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported-media-type", "send a JSON body"),
            StatusCode::REQUEST_TIMEOUT => (
                "request-timeout",
                "the request took too long to arrive or to answer; repeat a command with the same Idempotency-Key to learn its outcome",
            ),
            s if s.is_server_error() => ("internal", "internal error; it has been logged"),
            _ => ("error", "the request failed"),
        };
        Self::new(status, slug, detail)
    }

    #[must_use]
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.title, self.detail)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let body = serde_json::to_vec(&self).unwrap_or_else(|_| b"{}".to_vec());
        let mut response = (status, body).into_response();
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}

/// Fallback for unknown routes: 404 problem.
pub async fn not_found(uri: Uri) -> Problem {
    Problem::not_found(format!("no route {}", uri.path()))
}

/// Middleware (`axum::middleware::map_response`): any 4xx/5xx answer whose body is not already a
/// problem (axum's 405, tower-http's 413, a caught panic...) becomes one of the same status.
pub async fn ensure_problem(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_problem = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if is_problem {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let problem = Problem::for_status(status);
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    parts.headers.remove(CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_serialize_with_type_and_optional_errors() {
        let plain = serde_json::to_value(Problem::not_found("no reservation x")).expect("json");
        assert_eq!(plain["type"], "urn:stayledger:problem:not-found");
        assert_eq!(plain["title"], "Not Found");
        assert_eq!(plain["status"], 404);
        assert!(plain.get("errors").is_none());
        let invalid =
            Problem::invalid_fields(vec![FieldError::new("guests", "must be at least 1")]);
        let json = serde_json::to_value(&invalid).expect("json");
        assert_eq!(json["errors"][0]["field"], "guests");
        assert!(invalid.detail.contains("guests"));
    }

    #[tokio::test]
    async fn bare_error_responses_become_problems() {
        let bare = (StatusCode::PAYLOAD_TOO_LARGE, "length limit exceeded").into_response();
        let fixed = ensure_problem(bare).await;
        assert_eq!(fixed.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(fixed.headers()[CONTENT_TYPE], PROBLEM_JSON);
        let ok = ensure_problem(StatusCode::ACCEPTED.into_response()).await;
        assert!(ok.headers().get(CONTENT_TYPE).is_none());
    }
}
