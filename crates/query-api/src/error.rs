//! Why a query failed, mapped once to problem+json: the request (400), access (403), absence (404),
//! the views not catching up in time (504), and the stores (503 unavailable, 500 corrupt; causes are
//! logged inside the request span, never sent).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use eventlog::LogError;
use http_edge::{FieldError, Problem};
use readmodel::ViewError;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// 400: a malformed parameter.
    #[error("{0}")]
    Request(Problem),
    /// 403: wrong role, or not the caller's reservation or lodging.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such document.
    #[error("{0}")]
    NotFound(String),
    /// 504: the views did not reflect `position` within the wait.
    #[error("the views did not reach position {position} within {waited_ms} ms")]
    NotCaughtUp { position: u64, waited_ms: u64 },
    #[error(transparent)]
    View(#[from] ViewError),
    #[error(transparent)]
    Log(#[from] LogError),
    /// 500: stored data that cannot be read back.
    #[error("{0}")]
    Internal(String),
}

impl QueryError {
    /// 400 naming the parameter.
    pub(crate) fn parameter(name: &str, message: impl Into<String>) -> Self {
        let error = FieldError::new(name, message);
        let detail = format!("invalid query parameter {name}: {}", error.message);
        Self::Request(Problem::bad_request(detail).with_errors(vec![error]))
    }

    #[must_use]
    pub fn to_problem(&self) -> Problem {
        match self {
            Self::Request(problem) => problem.clone(),
            Self::Forbidden(detail) => Problem::forbidden(detail),
            Self::NotFound(detail) => Problem::not_found(detail),
            Self::NotCaughtUp { .. } => Problem::new(
                StatusCode::GATEWAY_TIMEOUT,
                "views-behind",
                self.to_string(),
            ),
            Self::View(error) if error.is_client_error() => Problem::bad_request(error.to_string()),
            Self::View(ViewError::Unavailable(cause)) | Self::Log(LogError::Unavailable(cause)) => {
                http_edge::error_throttled!(%cause, "store unavailable");
                Problem::unavailable()
            }
            Self::View(error) => {
                http_edge::error_throttled!(cause = %error, "view store failure");
                Problem::internal()
            }
            Self::Log(error) => {
                http_edge::error_throttled!(cause = %error, "event log failure");
                Problem::internal()
            }
            Self::Internal(cause) => {
                http_edge::error_throttled!(%cause, "internal error");
                Problem::internal()
            }
        }
    }
}

impl From<Problem> for QueryError {
    fn from(problem: Problem) -> Self {
        Self::Request(problem)
    }
}

impl IntoResponse for QueryError {
    fn into_response(self) -> Response {
        self.to_problem().into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_status_and_hides_store_causes() {
        let status = |e: QueryError| e.to_problem().status;
        assert_eq!(status(QueryError::parameter("limit", "too big")), 400);
        assert_eq!(status(ViewError::BadCursor("x".into()).into()), 400);
        assert_eq!(
            status(QueryError::NotCaughtUp {
                position: 9,
                waited_ms: 5
            }),
            504
        );
        let down =
            QueryError::View(ViewError::Unavailable("/var/secret.db locked".into())).to_problem();
        assert_eq!(down.status, 503);
        assert!(!down.detail.contains("secret"));
        let corrupt = QueryError::Log(LogError::Corrupt("row 7".into())).to_problem();
        assert_eq!(
            (corrupt.status, corrupt.detail.contains("row 7")),
            (500, false)
        );
    }
}
