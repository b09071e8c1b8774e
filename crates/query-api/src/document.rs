//! Reading your own writes and not re-reading unchanged documents: the `min_position` wait (up to
//! `wait_ms`, then 504 if the views did not get there; a position no write has reached yet waits
//! too, since another writer may reach it within the wait), and
//! `ETag` / `If-None-Match` (304) on single documents. A document's ETag is the log position it
//! reflects, quoted: `"42"`.

use axum::http::header::{ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use readmodel::{ProjectionTarget, Views};
use serde::Serialize;
use std::sync::Arc;

use crate::error::QueryError;
use crate::params::Params;
use crate::state::{QueryState, ViewProgress};

/// If the request asks for `min_position`, wait until the views reflect it (504 if they do not in time).
pub(crate) async fn await_views(state: &QueryState, params: &Params) -> Result<(), QueryError> {
    let views = Views(Arc::clone(&state.views));
    await_target(&views, &state.progress, params).await
}

/// If the request asks for `min_position`, wait until `target` (followed by `progress`) reflects it
/// (504 if it does not in time).
pub(crate) async fn await_target(
    target: &dyn ProjectionTarget,
    progress: &ViewProgress,
    params: &Params,
) -> Result<(), QueryError> {
    let Some(wanted) = params.min_position()? else {
        return Ok(());
    };
    if progress.current(target).await? >= wanted.position {
        return Ok(());
    }
    let reached = progress
        .wait_for(target, wanted.position, wanted.wait)
        .await?;
    if reached {
        Ok(())
    } else {
        Err(QueryError::NotCaughtUp {
            position: wanted.position,
            waited_ms: u64::try_from(wanted.wait.as_millis()).unwrap_or(u64::MAX),
        })
    }
}

/// The ETag of a document reflecting log position `position`.
#[must_use]
pub fn etag(position: u64) -> String {
    format!("\"{position}\"")
}

/// Whether an `If-None-Match` header names `tag` (or `*`). Weak tags compare by their opaque part.
fn none_match(headers: &HeaderMap, tag: &str) -> bool {
    headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|candidate| candidate == "*" || candidate.trim_start_matches("W/") == tag)
}

/// A single document with its ETag, or 304 if the client already has this version.
pub(crate) fn document<T: Serialize>(request: &HeaderMap, position: u64, body: &T) -> Response {
    let tag = etag(position);
    let mut response = if none_match(request, &tag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Json(body).into_response()
    };
    if let Ok(value) = HeaderValue::from_str(&tag) {
        response.headers_mut().insert(ETAG, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_header(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(IF_NONE_MATCH, value);
        }
        headers
    }

    #[test]
    fn if_none_match_compares_tags_lists_and_star() {
        let tag = etag(42);
        assert!(none_match(&with_header("\"42\""), &tag));
        assert!(none_match(&with_header("\"1\", W/\"42\""), &tag));
        assert!(none_match(&with_header("*"), &tag));
        assert!(!none_match(&with_header("\"41\""), &tag));
        assert!(!none_match(&HeaderMap::new(), &tag));
    }

    #[test]
    fn unchanged_documents_answer_304_with_their_etag() {
        let fresh = document(&with_header("\"7\""), 7, &serde_json::json!({"a": 1}));
        assert_eq!(fresh.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(fresh.headers()[ETAG], "\"7\"");
        let changed = document(&with_header("\"6\""), 7, &serde_json::json!({"a": 1}));
        assert_eq!(changed.status(), StatusCode::OK);
    }
}
