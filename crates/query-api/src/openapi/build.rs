//! Small builders for OpenAPI operations, parameters and responses.

use serde_json::{json, Map, Value};

use super::schemas::{idempotency_key, schema_ref};

/// A JSON response described by `schema`.
pub fn json_response(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

/// A problem+json response.
pub fn problem(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/problem+json": {"schema": schema_ref("Problem")}},
    })
}

/// Responses keyed by status, plus a problem+json `default` for any other error.
pub fn responses(entries: Vec<(&str, Value)>) -> Value {
    let mut map: Map<String, Value> = entries
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    map.insert("default".into(), problem("any other error (problem+json)"));
    Value::Object(map)
}

/// The errors every authenticated route may answer.
pub fn guarded(mut entries: Vec<(&str, Value)>) -> Value {
    entries.push(("401", problem("missing, invalid or expired bearer token")));
    entries.push(("503", problem("a store is unavailable")));
    responses(entries)
}

pub fn with_header(mut response: Value, name: &str, description: &str) -> Value {
    response["headers"][name] = json!({"description": description, "schema": {"type": "string"}});
    response
}

pub fn query(name: &str, schema: Value, description: &str) -> Value {
    json!({"name": name, "in": "query", "required": false, "schema": schema, "description": description})
}

pub fn path(name: &str, schema: Value, description: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "schema": schema, "description": description})
}

pub fn idempotency_header() -> Value {
    json!({
        "name": "Idempotency-Key", "in": "header", "required": false, "schema": idempotency_key(),
        "description": "a repeat with the same key and body gets the first answer and writes nothing; \
                        the same key with another body is 422",
    })
}

pub fn if_none_match() -> Value {
    json!({"name": "If-None-Match", "in": "header", "required": false, "schema": {"type": "string"},
        "description": "an ETag from an earlier answer: 304 if the document did not change"})
}

/// Cursors of the view lists (opaque, hex) and of the audit pages (a position or version).
/// A view list's cursor: hex (either case) of the list's tag, `:` and its sort key (readmodel's
/// `decode_cursor` takes exactly this grammar); empty = the first page.
pub const RESERVATION_CURSOR: &str = "^(723[aA](3[0-9]){1,19})?$";
pub const REQUEST_CURSOR: &str = "^(713[aA](3[0-9]){1,19})?$";
pub const PAYOUT_CURSOR: &str = "^(703[aA](3[0-9]){1,19})?$";
pub const INBOX_CURSOR: &str = "^(6[eE]3[aA](3[0-9]){1,19})?$";
pub const LODGING_CURSOR: &str =
    "^(6[cC]3[aA](3[0-9]|2[dDeE]|5[0-9aAfF]|4[1-9a-fA-F]|6[1-9a-fA-F]|7[0-9aA]){0,64})?$";
pub const LOG_CURSOR: &str = "^[0-9]{0,19}$";
/// A webhook's deliveries (`w:` and a sequence number); empty = the first page.
pub const DELIVERY_CURSOR: &str = "^(773[aA](3[0-9]){1,19})?$";

/// `limit` (1 to 500, default 50) and a `cursor` of the given shape.
pub fn paging(cursor_pattern: &str) -> Vec<Value> {
    vec![
        query(
            "limit",
            json!({"type": "integer", "minimum": 1, "maximum": 500, "default": 50}),
            "page size",
        ),
        query(
            "cursor",
            json!({"type": "string", "pattern": cursor_pattern}),
            "the next_cursor of the previous page (opaque)",
        ),
    ]
}

/// `min_position` and `wait_ms`.
pub fn consistency() -> Vec<Value> {
    vec![
        query(
            "min_position",
            json!({"type": "integer", "minimum": 0, "maximum": u64::MAX}),
            "wait until the views reflect this log position (from a command's answer)",
        ),
        query(
            "wait_ms",
            json!({"type": "integer", "minimum": 0, "maximum": 30000, "default": 5000}),
            "how long min_position may wait before 504",
        ),
    ]
}

/// One operation.
pub struct Operation<'a> {
    pub id: &'a str,
    pub tag: &'a str,
    pub summary: &'a str,
    pub parameters: Vec<Value>,
    /// The request body schema and whether the body is required (an empty body reads as `{}`).
    pub body: Option<(&'a str, bool)>,
    pub responses: Value,
    pub open: bool,
}

impl Operation<'_> {
    pub fn build(self) -> Value {
        let mut operation = json!({
            "operationId": self.id,
            "tags": [self.tag],
            "summary": self.summary,
            "parameters": self.parameters,
            "responses": self.responses,
        });
        if let Some((schema, required)) = self.body {
            operation["requestBody"] = json!({
                "required": required,
                "content": {"application/json": {"schema": schema_ref(schema)}},
            });
        }
        if self.open {
            operation["security"] = json!([]);
        }
        operation
    }
}
