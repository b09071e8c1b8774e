//! The OpenAPI 3.1 document of every route of the platform: commands, queries and audit, the
//! webhooks, the sandbox payment gateway and the ops probes. Hand-written with `serde_json` next to
//! the code it describes, so the bounds it publishes are the constants the validation uses.

mod build;
mod commands;
mod queries;
mod schemas;
mod webhooks;

use serde_json::{json, Map, Value};

use build::{guarded, json_response, problem, responses, Operation};
use schemas::schema_ref;

/// A small page pointing at the OpenAPI document.
pub const DOCS_HTML: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>stayledger API</title></head>
<body>
<h1>stayledger API</h1>
<p>The OpenAPI 3.1 description of every route is at <a href="/openapi.json">/openapi.json</a>.
Load it in any OpenAPI viewer or client generator.</p>
<p>Every route but <code>/healthz</code>, <code>/readyz</code>, <code>/metrics</code>, <code>/openapi.json</code>
and <code>/docs</code> takes <code>Authorization: Bearer &lt;jwt&gt;</code> (mint one with <code>stayledger token</code>).
Errors are <code>application/problem+json</code>.</p>
</body>
</html>
"#;

fn open_get(id: &str, tag: &str, summary: &str, answers: Vec<(&str, Value)>) -> Value {
    Operation {
        id,
        tag,
        summary,
        parameters: vec![],
        body: None,
        responses: responses(answers),
        open: true,
    }
    .build()
}

fn ops_paths() -> Vec<(String, Value)> {
    let text = json!({"description": "Prometheus text exposition", "content": {"text/plain": {"schema": {"type": "string"}}}});
    let html =
        json!({"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}});
    let spec = json_response("this document", json!({"type": "object"}));
    vec![
        (
            "/healthz".into(),
            json!({"get": open_get("healthz", "ops", "Liveness", vec![("200", json_response("alive", schema_ref("Health")))])}),
        ),
        (
            "/readyz".into(),
            json!({"get": open_get("readyz", "ops", "Readiness: stores answer, projector lag under its bound", vec![
                ("200", json_response("ready", schema_ref("Readiness"))),
                ("503", problem("not ready, with the reasons")),
            ])}),
        ),
        (
            "/metrics".into(),
            json!({"get": open_get("metrics", "ops", "Prometheus metrics", vec![("200", text)])}),
        ),
        (
            "/openapi.json".into(),
            json!({"get": open_get("openapi", "ops", "This OpenAPI document", vec![("200", spec)])}),
        ),
        (
            "/docs".into(),
            json!({"get": open_get("docs", "ops", "A page pointing at the OpenAPI document", vec![("200", html)])}),
        ),
    ]
}

fn sandbox_post(
    id: &str,
    summary: &str,
    body: &str,
    created: &str,
    errors: Vec<(&str, Value)>,
) -> Value {
    let mut answers = vec![
        ("201", json_response("done", schema_ref(created))),
        (
            "400",
            problem("malformed JSON or a field the request does not take"),
        ),
    ];
    answers.extend(errors);
    answers.push((
        "403",
        problem("neither the payment gateway key nor a platform admin's token"),
    ));
    Operation {
        id,
        tag: "sandbox",
        summary,
        parameters: vec![],
        body: Some((body, true)),
        responses: guarded(answers),
        open: false,
    }
    .build()
}

/// A sandbox read: the platform admin's token only (the gateway key makes payment calls).
fn sandbox_get(id: &str, summary: &str, answer: Value) -> Value {
    Operation {
        id,
        tag: "sandbox",
        summary,
        parameters: vec![],
        body: None,
        responses: guarded(vec![
            ("200", answer),
            ("403", problem("not a platform admin")),
        ]),
        open: false,
    }
    .build()
}

fn sandbox_paths() -> Vec<(String, Value)> {
    let charges = json_response(
        "every charge",
        json!({"type": "array", "items": schema_ref("SandboxCharge")}),
    );
    let payouts = json_response(
        "every payout",
        json!({"type": "array", "items": schema_ref("SandboxPayout")}),
    );
    let config = json_response("the configuration", schema_ref("SandboxConfig"));
    let update = Operation {
        id: "configureSandbox",
        tag: "sandbox",
        summary: "Set latency, decline rate, overload (platform admin in `serve`)",
        parameters: vec![],
        body: Some(("SandboxConfigUpdate", true)),
        responses: guarded(vec![
            ("200", config.clone()),
            ("400", problem("malformed JSON or unknown field")),
            ("403", problem("not a platform admin")),
            ("422", problem("out of range")),
        ]),
        open: false,
    }
    .build();
    let show = Operation {
        id: "showSandboxConfig",
        tag: "sandbox",
        summary: "The sandbox configuration",
        parameters: vec![],
        body: None,
        responses: guarded(vec![
            ("200", config),
            ("403", problem("not a platform admin")),
        ]),
        open: false,
    }
    .build();
    vec![
        (
            "/sandbox".into(),
            json!({"get": sandbox_get("describeSandbox", "What the sandbox is", json_response("description", schema_ref("SandboxInfo")))}),
        ),
        (
            "/sandbox/charges".into(),
            json!({
                "post": sandbox_post("sandboxCharge", "Charge (a repeated key returns the first charge)", "SandboxChargeRequest", "SandboxChargeRef", vec![
                    ("402", problem("declined")), ("409", problem("key reused for another amount")),
                    ("422", problem("bad amount or currency")), ("503", problem("overloaded")),
                ]),
                "get": sandbox_get("listSandboxCharges", "Every charge", charges),
            }),
        ),
        (
            "/sandbox/refunds".into(),
            json!({"post": sandbox_post("sandboxRefund", "Refund a charge (at most once)", "SandboxRefundRequest", "SandboxRefundRef", vec![
                ("404", problem("unknown charge")), ("422", problem("amount above the charge")), ("503", problem("overloaded")),
            ])}),
        ),
        (
            "/sandbox/payouts".into(),
            json!({
                "post": sandbox_post("sandboxPayout", "Pay a host out (a repeated key returns the first payout; never declined)", "SandboxPayoutRequest", "SandboxPayoutRef", vec![
                    ("409", problem("key reused for another payee, amount or currency")),
                    ("422", problem("bad amount, currency or payee")), ("503", problem("overloaded")),
                ]),
                "get": sandbox_get("listSandboxPayouts", "Every payout", payouts),
            }),
        ),
        (
            "/sandbox/config".into(),
            json!({"get": show, "put": update}),
        ),
    ]
}

/// Merge path items that share a path (e.g. `GET /lodgings` and `POST /lodgings`).
fn merge_paths(groups: Vec<Vec<(String, Value)>>) -> Value {
    let mut paths = Map::new();
    for (path, item) in groups.into_iter().flatten() {
        let entry = paths.entry(path).or_insert_with(|| json!({}));
        if let (Some(entry), Value::Object(methods)) = (entry.as_object_mut(), item) {
            entry.extend(methods);
        }
    }
    Value::Object(paths)
}

/// The OpenAPI document of every route.
#[must_use]
pub fn openapi() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "stayledger",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Event-sourced CQRS lodging reservations. Commands answer with the log `position` \
                            of their last event; pass it to a query as `min_position` to read your own write. \
                            Errors are RFC 9457 problem+json. Webhooks (POST /webhooks) push status changes, signed: \
                            what a subscribed URL receives is the `reservationEvent` of the `webhooks` section.",
        },
        "tags": [
            {"name": "commands", "description": "command-api"},
            {"name": "queries", "description": "query-api: views"},
            {"name": "audit", "description": "query-api: the event log (auditors)"},
            {"name": "notifications", "description": "notifier: webhook subscriptions and their deliveries"},
            {"name": "sandbox", "description": "the sandbox payment gateway (no real money)"},
            {"name": "ops", "description": "probes, metrics, documentation"},
        ],
        "security": [{"bearerAuth": []}],
        "paths": merge_paths(vec![
            commands::paths(),
            queries::paths(),
            webhooks::paths(),
            sandbox_paths(),
            ops_paths(),
        ]),
        "webhooks": webhooks::received(),
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": schemas::all(),
        },
    })
}

#[cfg(test)]
mod tests;
