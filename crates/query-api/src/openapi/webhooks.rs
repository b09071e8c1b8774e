//! The webhook routes (the notifier's `/webhooks`) in the OpenAPI document, and what a subscribed
//! URL receives (the document's `webhooks` section).

use serde_json::{json, Value};

use super::build::{
    guarded, json_response, paging, path, problem, responses, with_header, Operation,
    DELIVERY_CURSOR,
};
use super::schemas::{schema_ref, WEBHOOKS_PER_OWNER};

const TAG: &str = "notifications";
const AUDITORS: &str = "an auditor (webhooks are for customers and admins)";
const NO_WEBHOOK: &str =
    "no webhook of the caller with this id (unknown, not a uuid, or another owner's)";

fn webhook_id() -> Value {
    path(
        "id",
        json!({"type": "string", "format": "uuid"}),
        "webhook id (from POST /webhooks)",
    )
}

fn create() -> Value {
    let created = with_header(
        json_response(
            "subscribed: the answer is the only one that shows the secret",
            schema_ref("WebhookCreated"),
        ),
        "Location",
        "/webhooks/{id}",
    );
    Operation {
        id: "createWebhook",
        tag: TAG,
        summary: "Subscribe a URL to the status changes of the caller's reservations (a customer) or of \
                  their lodgings' (an admin), from now on; deliveries are signed with the secret shown once here",
        parameters: vec![],
        body: Some(("CreateWebhook", true)),
        responses: guarded(vec![
            ("201", created),
            (
                "400",
                problem(
                    "malformed JSON, invalid fields (a url that is not an http or https URL, does not resolve, or \
                     resolves to a loopback or private address; an unknown event type), or a field the request \
                     does not take",
                ),
            ),
            ("403", problem(AUDITORS)),
            (
                "409",
                problem(&format!(
                    "the caller already has {WEBHOOKS_PER_OWNER} webhooks (too-many-webhooks)"
                )),
            ),
            ("413", problem("body too large")),
        ]),
        open: false,
    }
    .build()
}

fn list() -> Value {
    Operation {
        id: "listWebhooks",
        tag: TAG,
        summary: "The caller's webhooks (never their secrets)",
        parameters: vec![],
        body: None,
        responses: guarded(vec![
            (
                "200",
                json_response("every webhook of the caller", schema_ref("WebhookPage")),
            ),
            ("403", problem(AUDITORS)),
        ]),
        open: false,
    }
    .build()
}

fn delete() -> Value {
    Operation {
        id: "deleteWebhook",
        tag: TAG,
        summary: "Delete one of the caller's webhooks: nothing more is sent to it, and its secret's key is destroyed",
        parameters: vec![webhook_id()],
        body: None,
        responses: guarded(vec![
            ("204", json!({"description": "deleted"})),
            ("403", problem(AUDITORS)),
            ("404", problem(NO_WEBHOOK)),
        ]),
        open: false,
    }
    .build()
}

fn deliveries() -> Value {
    let mut parameters = vec![webhook_id()];
    parameters.extend(paging(DELIVERY_CURSOR));
    Operation {
        id: "listWebhookDeliveries",
        tag: TAG,
        summary: "A webhook's deliveries, newest first: one per status change it takes, with its attempts",
        parameters,
        body: None,
        responses: guarded(vec![
            (
                "200",
                json_response("one page", schema_ref("DeliveryPage")),
            ),
            (
                "400",
                problem(
                    "invalid limit or cursor, a parameter the route does not take, or one given twice",
                ),
            ),
            ("403", problem(AUDITORS)),
            ("404", problem(NO_WEBHOOK)),
        ]),
        open: false,
    }
    .build()
}

fn retry() -> Value {
    let delivery_id = path(
        "delivery_id",
        json!({"type": "string", "format": "uuid"}),
        "delivery id (from GET /webhooks/{id}/deliveries)",
    );
    Operation {
        id: "retryWebhookDelivery",
        tag: TAG,
        summary: "Re-drive a parked delivery: it is queued again, its attempts starting over",
        parameters: vec![webhook_id(), delivery_id],
        body: None,
        responses: guarded(vec![
            ("202", json_response("queued again", schema_ref("Delivery"))),
            ("403", problem(AUDITORS)),
            (
                "404",
                problem("no such webhook of the caller, or no such delivery of it"),
            ),
            ("409", problem("the delivery is not parked (not-parked)")),
        ]),
        open: false,
    }
    .build()
}

/// The `paths` entries of the webhook routes.
pub fn paths() -> Vec<(String, Value)> {
    vec![
        ("/webhooks".into(), json!({"post": create(), "get": list()})),
        ("/webhooks/{id}".into(), json!({"delete": delete()})),
        (
            "/webhooks/{id}/deliveries".into(),
            json!({"get": deliveries()}),
        ),
        (
            "/webhooks/{id}/deliveries/{delivery_id}/retry".into(),
            json!({"post": retry()}),
        ),
    ]
}

/// What a subscribed URL receives (OpenAPI 3.1 `webhooks`).
pub fn received() -> Value {
    let header = |name: &str, schema: Value, description: &str| json!({"name": name, "in": "header", "required": true, "schema": schema, "description": description});
    let mut event = Operation {
        id: "reservationEvent",
        tag: TAG,
        summary: "One status change of a reservation the subscription's owner follows (a customer: their own; \
                  an admin: those at the lodgings of their token's lodgings claim, or whose catalog admin they are), \
                  of a type it takes, made after it subscribed",
        parameters: vec![
            header(
                "Stayledger-Signature",
                json!({"type": "string", "pattern": "^t=-?[0-9]+,v1=[0-9a-f]{64}$"}),
                "`t=<unix seconds>,v1=<hex HMAC-SHA256 keyed with the webhook's secret over \"<t>.<raw body>\">`: \
                 recompute it over the raw body, compare in constant time, and refuse a `t` too far from your clock",
            ),
            header(
                "Stayledger-Delivery",
                json!({"type": "string", "format": "uuid"}),
                "the delivery id, the same at every attempt of one delivery (to drop repeats)",
            ),
        ],
        body: Some(("WebhookEvent", true)),
        responses: responses(vec![(
            "2XX",
            json!({"description": "delivered"}),
        )]),
        open: true,
    }
    .build();
    event["description"] = json!(
        "`POST` with `Content-Type: application/json` and `User-Agent: stayledger-webhooks/1`; the body is the same \
         bytes at every attempt. A URL's deliveries go out one at a time, in log order. A 2xx answer delivers it. \
         Timeouts (--webhook-timeout, default 10 s), connection errors, 5xx, 408 and 429 are retried with exponential \
         backoff and jitter (from --webhook-retry-base, default 5 s, doubling up to --webhook-max-delay, default 1 h), \
         a retried delivery holding back the ones after it; once the next attempt would come more than \
         --webhook-park-after (default 24 h) after the first, the delivery is parked. Any other answer (3xx: redirects \
         are not followed; 4xx) parks it at once, as does a target that now resolves to a refused address. \
         The owner re-drives a parked delivery with POST /webhooks/{id}/deliveries/{delivery_id}/retry."
    );
    event["responses"]["default"] =
        json!({"description": "not delivered: retried or parked, as above"});
    json!({"reservationEvent": {"post": event}})
}
