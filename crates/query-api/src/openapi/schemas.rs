//! Component schemas of the OpenAPI document: request bodies exactly as the command side validates
//! them, and response documents exactly as the API serializes them. A request body holding a field
//! its request does not take is refused (400 naming it), so request objects are closed
//! (`additionalProperties: false`).

use http_edge::limits::{self, MAX_KEY_LEN, MAX_TEXT_CHARS};
use serde_json::{json, Map, Value};

/// `{"$ref": "#/components/schemas/<name>"}`.
pub fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn nullable(schema: Value) -> Value {
    json!({"oneOf": [schema, {"type": "null"}]})
}

/// A personal field of a guest: opened from their sealed profile at each read; null without a
/// profile and for good once the customer is erased.
fn guest(what: &str) -> Value {
    json!({"oneOf": [{"type": "string"}, {"type": "null"}],
           "description": format!("{what}; null without one, and once the customer is erased")})
}

fn object(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "required": required, "properties": properties})
}

fn closed(required: &[&str], properties: Value) -> Value {
    let mut schema = object(required, properties);
    schema["additionalProperties"] = json!(false);
    schema
}

const ID_PATTERN: &str = "^[A-Za-z0-9._-]{1,64}$";

/// Where a listing stands in the catalog (`status` of a catalog document, and its filter).
pub const LISTING_STATUSES: [&str; 4] = ["pending_review", "active", "rejected", "closed"];
const NOT_BLANK: &str = "\\S";
/// Not blank, and no control character anywhere (names, payees, customer ids).
pub(super) const PRINTABLE: &str =
    "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$";

fn count() -> Value {
    json!({"type": "integer", "minimum": 0})
}

fn text() -> Value {
    json!({"type": "string"})
}

fn date() -> Value {
    json!({"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"})
}

fn timestamp() -> Value {
    json!({"type": "string", "format": "date-time"})
}

fn uuid() -> Value {
    json!({"type": "string", "format": "uuid"})
}

fn one_of(values: &[&str]) -> Value {
    json!({"type": "string", "enum": values})
}

const RESERVATION_STATUSES: [&str; 10] = [
    "requested",
    "approved",
    "payment_pending",
    "paid",
    "completed",
    "confirmed",
    "rejected",
    "cancelled",
    "expired",
    "payment_failed",
];
const APPROVAL_STATUSES: [&str; 7] = [
    "pending",
    "held",
    "approved",
    "rejected",
    "withdrawn",
    "expired",
    "completed",
];
const PAYMENT_STATUSES: [&str; 7] = [
    "none",
    "requested",
    "pending",
    "completed",
    "failed",
    "refunded",
    "voided",
];

/// Where a payout stands (`status` of a payout, and its filter); a ReservationList's
/// `payout_status` may also be `none`.
pub const PAYOUT_STATUSES: [&str; 4] = ["scheduled", "pending", "sent", "failed"];

/// The statuses a `status` filter accepts.
pub fn reservation_statuses() -> Value {
    one_of(&RESERVATION_STATUSES)
}

pub fn approval_statuses() -> Value {
    one_of(&APPROVAL_STATUSES)
}

/// The `Idempotency-Key` header's value.
pub fn idempotency_key() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": MAX_KEY_LEN, "pattern": limits::IDEMPOTENCY_KEY_PATTERN})
}

/// Every IANA time zone name the service knows (what `timezone` parses).
fn time_zones() -> Vec<&'static str> {
    chrono_tz::TZ_VARIANTS
        .iter()
        .map(|zone| zone.name())
        .collect()
}

fn problem() -> Value {
    let field_error = object(
        &["field", "message"],
        json!({"field": text(), "message": text()}),
    );
    object(
        &["type", "title", "status", "detail"],
        json!({
            "type": {"type": "string", "description": "urn:stayledger:problem:<kind>"},
            "title": text(),
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": text(),
            "errors": {"type": "array", "items": field_error},
        }),
    )
}

fn command_bodies(schemas: &mut Map<String, Value>) {
    let name = json!({"type": "string", "minLength": 1, "maxLength": limits::MAX_NAME_CHARS, "pattern": NOT_BLANK});
    let reason = json!({"type": "string", "minLength": 1, "maxLength": MAX_TEXT_CHARS, "pattern": NOT_BLANK});
    let id = json!({"type": "string", "pattern": ID_PATTERN});
    // Optional fields may be null, which reads as absent.
    let rate = json!({"type": "integer", "minimum": 1, "maximum": limits::MAX_NIGHTLY_RATE});
    let rooms = json!({"type": "integer", "minimum": 1, "maximum": limits::MAX_ROOMS});
    let max_guests = json!({"type": "integer", "minimum": 1, "maximum": limits::MAX_GUESTS});
    let mode = json!({"type": "string", "enum": ["manual", "instant", "pay_first"]});
    let zone = json!({"type": "string", "enum": time_zones(), "description": "IANA time zone name, e.g. Asia/Seoul"});
    let fee = json!({"type": "integer", "minimum": 0, "maximum": 10_000,
        "description": "the platform's fee in basis points; default: the service's --platform-fee-bps"});
    let mut lodging = json!({
        "lodging_id": nullable(id.clone()),
        "name": name.clone(),
        "nightly_rate": rate.clone(),
        "currency": nullable(json!({"type": "string", "enum": limits::CURRENCIES.as_slice(), "default": limits::DEFAULT_CURRENCY})),
        "rooms": rooms.clone(),
        "max_guests": nullable(json!({"type": "integer", "minimum": 1, "maximum": limits::MAX_GUESTS,
            "default": limits::DEFAULT_MAX_GUESTS})),
        "approval_mode": nullable(json!({"type": "string", "enum": ["manual", "instant", "pay_first"], "default": "manual"})),
        "timezone": nullable(zone.clone()),
    });
    schemas.insert(
        "SubmitListing".into(),
        closed(&["name", "nightly_rate", "rooms"], lodging.clone()),
    );
    lodging["admin_id"] = nullable(id.clone());
    lodging["fee_bps"] = nullable(fee.clone());
    schemas.insert(
        "RegisterLodging".into(),
        closed(&["name", "nightly_rate", "rooms"], lodging),
    );
    schemas.insert(
        "ApproveListing".into(),
        closed(&[], json!({"fee_bps": nullable(fee)})),
    );
    // A change names only what changes: a field given as null is refused.
    let mut update = closed(
        &[],
        json!({"name": name, "nightly_rate": rate, "rooms": rooms.clone(), "max_guests": max_guests,
               "approval_mode": mode, "timezone": zone}),
    );
    update["minProperties"] = json!(1);
    schemas.insert("UpdateLodging".into(), update);
    schemas.insert(
        "RequestReservation".into(),
        closed(
            &["lodging_id", "check_in", "check_out", "guests"],
            json!({
                "lodging_id": id,
                "check_in": date(),
                "check_out": date(),
                "guests": {"type": "integer", "minimum": 1, "maximum": limits::MAX_GUESTS,
                    "description": "at most rooms x the lodging's max_guests"},
                "rooms": nullable(json!({"type": "integer", "minimum": 1, "maximum": limits::MAX_ROOMS,
                    "default": 1, "description": "rooms taken every night, at most the lodging's"})),
            }),
        ),
    );
    schemas.insert(
        "CancelReservation".into(),
        closed(&[], json!({"reason": reason.clone()})),
    );
    for body in [
        "RejectRequest",
        "RejectListing",
        "CloseLodging",
        "CancelStay",
        "EraseCustomer",
    ] {
        schemas.insert(
            body.into(),
            closed(&["reason"], json!({"reason": reason.clone()})),
        );
    }
    schemas.insert("EmptyBody".into(), closed(&[], json!({})));
    let no_space = "\\s\\x00-\\x1f\\x7f-\\x9f";
    schemas.insert(
        "RecordProfile".into(),
        closed(
            &["name", "email", "phone"],
            json!({
                "name": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": PRINTABLE},
                "email": {"type": "string", "maxLength": 254,
                    "pattern": format!("^[^@{no_space}]+@[^@.{no_space}][^@{no_space}]*\\.[^@{no_space}]*[^@.{no_space}]$")},
                "phone": {"type": "string", "maxLength": 32, "pattern": "^[ +()-]*([0-9][ +()-]*){4,}$",
                    "description": "digits (at least 4), spaces and + - ( )"},
            }),
        ),
    );
    schemas.insert(
        "Accepted".into(),
        object(
            &["id", "status", "position"],
            json!({
                "id": {"type": "string", "description": "the reservation id, or the lodging id of a catalog command"},
                "status": one_of(&["registered", "requested", "cancelled", "approved", "rejected", "retry_requested",
                    "pending_review", "active", "closed", "completed", "recorded", "erased"]),
                "position": {"type": "integer", "minimum": 0,
                    "description": "global log position of the last event written; pass it as min_position"},
            }),
        ),
    );
}

fn view_documents(schemas: &mut Map<String, Value>) {
    schemas.insert(
        "Lodging".into(),
        object(
            &["lodging_id", "name", "nightly_rate", "currency", "rooms", "max_guests", "approval_mode", "admin_id", "timezone",
              "fee_bps", "status", "status_today", "position"],
            json!({
                "lodging_id": text(), "name": text(), "nightly_rate": {"type": "integer"}, "currency": text(),
                "rooms": count(), "max_guests": count(), "approval_mode": one_of(&["manual", "instant", "pay_first"]),
                "admin_id": text(), "timezone": text(), "fee_bps": count(),
                "status": one_of(&LISTING_STATUSES),
                "status_today": one_of(&["available", "fully_booked", "closed"]), "position": count(),
            }),
        ),
    );
    let night = object(
        &["date", "booked", "held", "free"],
        json!({"date": date(), "booked": count(), "held": count(), "free": count()}),
    );
    schemas.insert(
        "Availability".into(),
        object(
            &["lodging_id", "rooms", "timezone", "nights"],
            json!({"lodging_id": text(), "rooms": count(), "timezone": text(),
                   "nights": {"type": "array", "items": night}}),
        ),
    );
    schemas.insert(
        "Reservation".into(),
        object(
            &["reservation_id", "customer_id", "lodging_id", "lodging_name", "check_in", "check_out", "guests",
              "rooms", "nights", "total_amount", "currency", "status", "approval_status", "payment_status", "refund_status",
              "payout_status", "status_reason", "requested_at", "updated_at", "position", "guest_name"],
            json!({
                "reservation_id": uuid(), "customer_id": text(), "lodging_id": text(),
                "lodging_name": nullable(text()), "check_in": date(), "check_out": date(), "guests": count(),
                "rooms": count(),
                "nights": count(), "total_amount": {"type": "integer"}, "currency": text(),
                "status": reservation_statuses(), "approval_status": approval_statuses(),
                "payment_status": one_of(&PAYMENT_STATUSES), "refund_status": one_of(&["none", "pending", "refunded"]),
                "payout_status": one_of(&["none", "scheduled", "pending", "sent", "failed"]),
                "status_reason": nullable(text()), "requested_at": timestamp(), "updated_at": timestamp(),
                "position": count(),
                "guest_name": guest("the customer's name from their profile"),
            }),
        ),
    );
    schemas.insert(
        "ApprovalRequest".into(),
        object(
            &["reservation_id", "lodging_id", "customer_id", "check_in", "check_out", "guests", "rooms", "request_status",
              "available", "payment_status", "requested_at", "decided_at", "decided_by", "position", "guest_name",
              "guest_phone"],
            json!({
                "reservation_id": uuid(), "lodging_id": text(), "customer_id": text(), "check_in": date(),
                "check_out": date(), "guests": count(), "rooms": count(), "request_status": approval_statuses(),
                "available": {"type": "boolean"}, "payment_status": one_of(&PAYMENT_STATUSES),
                "requested_at": timestamp(), "decided_at": nullable(timestamp()), "decided_by": nullable(text()),
                "position": count(),
                "guest_name": guest("the customer's name from their profile"),
                "guest_phone": guest("the customer's phone from their profile"),
            }),
        ),
    );
    payout_documents(schemas);
    let per_status: Map<String, Value> = RESERVATION_STATUSES
        .iter()
        .map(|status| {
            (
                (*status).to_string(),
                json!({"type": "integer", "minimum": 1}),
            )
        })
        .collect();
    schemas.insert(
        "Notification".into(),
        object(
            &[
                "id",
                "reservation_id",
                "lodging_id",
                "kind",
                "status",
                "message",
                "created_at",
                "position",
            ],
            json!({
                "id": text(), "reservation_id": uuid(), "lodging_id": text(),
                "kind": one_of(&["status_changed", "new_request", "payment_received", "cancelled"]),
                "status": reservation_statuses(), "message": text(), "created_at": timestamp(),
                "position": count(),
            }),
        ),
    );
    schemas.insert(
        "Me".into(),
        object(
            &["customer_id", "name", "email", "phone", "erased", "reservations"],
            json!({
                "customer_id": text(),
                "name": nullable(text()), "email": nullable(text()), "phone": nullable(text()),
                "erased": {"type": "boolean", "description": "the personal data was erased: the fields read null for good"},
                "reservations": {"type": "object", "properties": per_status, "additionalProperties": false,
                    "description": "the caller's reservations per status (statuses with none left out)"},
            }),
        ),
    );
    for (page, item) in [
        ("LodgingPage", "Lodging"),
        ("ReservationPage", "Reservation"),
        ("ApprovalRequestPage", "ApprovalRequest"),
        ("PayoutPage", "Payout"),
        ("NotificationPage", "Notification"),
        ("EventPage", "RecordedEvent"),
    ] {
        schemas.insert(
            page.into(),
            object(
                &["items", "next_cursor"],
                json!({"items": {"type": "array", "items": schema_ref(item)}, "next_cursor": nullable(text())}),
            ),
        );
    }
}

/// A payout row and the summary's sums per currency. Amounts are in the currency's minor unit, and
/// none is negative (fee = floor(gross x fee_bps / 10,000), net = gross - fee).
fn payout_documents(schemas: &mut Map<String, Value>) {
    let amount = json!({"type": "integer", "minimum": 0, "maximum": i64::MAX});
    schemas.insert(
        "Payout".into(),
        object(
            &["reservation_id", "lodging_id", "host_id", "gross", "fee", "net", "currency", "status", "gateway_ref",
              "scheduled_at", "sent_at", "position"],
            json!({
                "reservation_id": uuid(), "lodging_id": text(), "host_id": text(),
                "gross": amount.clone(), "fee": amount.clone(), "net": amount.clone(), "currency": text(),
                "status": one_of(&PAYOUT_STATUSES), "gateway_ref": nullable(text()),
                "scheduled_at": timestamp(), "sent_at": nullable(timestamp()), "position": count(),
            }),
        ),
    );
    let totals = object(
        &["currency", "count", "gross", "fee", "net"],
        json!({"currency": text(), "count": count(), "gross": amount.clone(), "fee": amount.clone(), "net": amount}),
    );
    schemas.insert("PayoutTotals".into(), totals);
    schemas.insert(
        "PayoutSummary".into(),
        object(
            &["items"],
            json!({"items": {"type": "array", "items": schema_ref("PayoutTotals"),
                "description": "one entry per currency, by currency"}}),
        ),
    );
}

fn audit_documents(schemas: &mut Map<String, Value>) {
    let metadata = object(
        &["correlation_id", "causation_id", "actor"],
        json!({"correlation_id": uuid(), "causation_id": uuid(), "actor": text()}),
    );
    schemas.insert(
        "RecordedEvent".into(),
        object(
            &["event_id", "stream", "version", "position", "event_type", "schema_version", "data", "metadata", "recorded_at", "hash"],
            json!({
                "event_id": uuid(), "stream": text(), "version": count(), "position": count(), "event_type": text(),
                "schema_version": count(), "data": {"type": "object"}, "metadata": metadata,
                "recorded_at": timestamp(), "hash": {"type": "string", "description": "hex SHA-256 chained per stream"},
            }),
        ),
    );
    schemas.insert(
        "ReservationHistory".into(),
        object(
            &["reservation_id", "events"],
            json!({"reservation_id": uuid(), "events": {"type": "array", "items": schema_ref("RecordedEvent")}}),
        ),
    );
    let state = object(
        &[
            "details",
            "status",
            "status_reason",
            "paid_amount",
            "payment_id",
            "refund_due",
            "refunded_amount",
            "retry_at",
        ],
        json!({
            "details": nullable(json!({"type": "object"})), "status": reservation_statuses(),
            "status_reason": nullable(text()), "paid_amount": nullable(json!({"type": "integer"})),
            "payment_id": nullable(text()), "refund_due": {"type": "integer"},
            "refunded_amount": nullable(json!({"type": "integer"})), "retry_at": nullable(timestamp()),
        }),
    );
    schemas.insert(
        "ReservationStateAsOf".into(),
        object(
            &["reservation_id", "status", "version", "position", "recorded_at", "events_applied", "state"],
            json!({
                "reservation_id": uuid(), "status": reservation_statuses(), "version": count(), "position": count(),
                "recorded_at": timestamp(), "events_applied": count(), "state": state,
            }),
        ),
    );
    let bad = object(
        &["stream", "version", "position", "reason"],
        json!({"stream": text(), "version": count(), "position": count(), "reason": text()}),
    );
    schemas.insert(
        "VerifyReport".into(),
        object(
            &["ok", "events_checked", "first_bad", "keyed"],
            json!({
                "ok": {"type": "boolean"}, "events_checked": count(), "first_bad": nullable(bad),
                "keyed": {"type": "boolean"}, "unkeyed_before": count(), "head_position": count(),
                "anchor_position": count(),
            }),
        ),
    );
    schemas.insert(
        "Anchor".into(),
        object(
            &[
                "position",
                "stream",
                "version",
                "mac",
                "keyed_from",
                "signature",
            ],
            json!({
                "position": count(), "stream": text(), "version": count(), "mac": nullable(text()),
                "keyed_from": count(), "signature": nullable(text()),
            }),
        ),
    );
}

fn sandbox_documents(schemas: &mut Map<String, Value>) {
    schemas.insert(
        "SandboxChargeRequest".into(),
        closed(
            &["idempotency_key", "amount", "currency"],
            json!({
                "idempotency_key": {"type": "string", "maxLength": MAX_KEY_LEN, "pattern": limits::IDEMPOTENCY_KEY_PATTERN},
                "amount": {"type": "integer", "minimum": 0, "maximum": i64::MAX},
                "currency": {"type": "string", "enum": limits::CURRENCIES.as_slice()},
            }),
        ),
    );
    schemas.insert(
        "SandboxRefundRequest".into(),
        closed(
            &["charge_ref", "amount"],
            json!({"charge_ref": text(), "amount": {"type": "integer", "minimum": 1, "maximum": i64::MAX,
                "description": "at most the charge's amount (more is a 422)"}}),
        ),
    );
    schemas.insert(
        "SandboxPayoutRequest".into(),
        closed(
            &["idempotency_key", "payee", "amount", "currency"],
            json!({
                "idempotency_key": {"type": "string", "maxLength": MAX_KEY_LEN, "pattern": limits::IDEMPOTENCY_KEY_PATTERN},
                "payee": {"type": "string", "maxLength": 255,
                    "pattern": PRINTABLE,
                    "description": "who is paid (the host's id): not blank, no control characters"},
                "amount": {"type": "integer", "minimum": 1, "maximum": i64::MAX},
                "currency": {"type": "string", "enum": limits::CURRENCIES.as_slice()},
            }),
        ),
    );
    schemas.insert(
        "SandboxPayoutRef".into(),
        object(
            &["payout_ref"],
            json!({"payout_ref": text(), "sandbox": {"type": "boolean"}}),
        ),
    );
    schemas.insert(
        "SandboxPayout".into(),
        object(
            &[
                "payout_ref",
                "idempotency_key",
                "payee",
                "amount",
                "currency",
                "attempts",
            ],
            json!({
                "payout_ref": text(), "idempotency_key": text(), "payee": text(),
                "amount": {"type": "integer"}, "currency": text(), "attempts": count(),
            }),
        ),
    );
    schemas.insert(
        "SandboxChargeRef".into(),
        object(
            &["charge_ref"],
            json!({"charge_ref": text(), "sandbox": {"type": "boolean"}}),
        ),
    );
    schemas.insert(
        "SandboxRefundRef".into(),
        object(
            &["refund_ref"],
            json!({"refund_ref": text(), "sandbox": {"type": "boolean"}}),
        ),
    );
    schemas.insert(
        "SandboxCharge".into(),
        object(
            &["charge_ref", "idempotency_key", "amount", "currency", "refunded", "refunded_amount", "refund_ref", "attempts", "refund_attempts"],
            json!({
                "charge_ref": text(), "idempotency_key": text(), "amount": {"type": "integer"}, "currency": text(),
                "refunded": {"type": "boolean"}, "refunded_amount": {"type": "integer"}, "refund_ref": nullable(text()),
                "attempts": count(), "refund_attempts": count(),
            }),
        ),
    );
    let settings = json!({
        "latency_ms": {"type": "integer", "minimum": 0, "maximum": 60_000},
        "decline_rate": {"type": "number", "minimum": 0.0, "maximum": 1.0},
        "overloaded": {"type": "boolean"},
    });
    schemas.insert("SandboxConfigUpdate".into(), closed(&[], settings.clone()));
    let mut config = object(&["latency_ms", "decline_rate", "overloaded"], settings);
    config["properties"]["sandbox"] = json!({"type": "boolean"});
    schemas.insert("SandboxConfig".into(), config);
    schemas.insert(
        "SandboxInfo".into(),
        object(
            &["name", "detail"],
            json!({"name": text(), "detail": text(), "sandbox": {"type": "boolean"}}),
        ),
    );
}

fn ops_documents(schemas: &mut Map<String, Value>) {
    schemas.insert(
        "Health".into(),
        object(&["status"], json!({"status": text()})),
    );
    schemas.insert(
        "Readiness".into(),
        object(
            &["status"],
            json!({"status": text(), "log_head": nullable(count()), "projector_lag": nullable(count()), "dead_letters": count()}),
        ),
    );
}

/// The event types a webhook takes: `reservation.<status>` for every status a reservation has
/// (what the notifier's `event_types` lists).
pub fn webhook_event_types() -> Vec<String> {
    readmodel::RESERVATION_STATUSES
        .iter()
        .map(|status| format!("reservation.{}", status.as_str()))
        .collect()
}

/// Longest URL a webhook subscription may name (the notifier's `guard::MAX_URL_LEN`).
pub const WEBHOOK_URL_MAX: usize = 2048;
/// Subscriptions one owner may keep (the notifier's `MAX_SUBSCRIPTIONS_PER_OWNER`).
pub const WEBHOOKS_PER_OWNER: usize = 20;
/// Where a delivery stands (the notifier's `DeliveryState`).
pub const DELIVERY_STATUSES: [&str; 4] = ["pending", "retrying", "delivered", "parked"];
/// The scheme of a webhook's URL, as WHATWG URL parsing reads it: C0 controls and spaces before
/// it are dropped, and so are tabs and newlines anywhere, so `" http:..."` is an http URL too.
const WEBHOOK_URL_PATTERN: &str =
    "^[\\x00-\\x20]*[Hh][\\t\\n\\r]*[Tt][\\t\\n\\r]*[Tt][\\t\\n\\r]*[Pp][\\t\\n\\r]*([Ss][\\t\\n\\r]*)?:";

/// The webhook subscriptions, their deliveries, and what a receiver gets (`WebhookEvent`).
fn webhook_documents(schemas: &mut Map<String, Value>) {
    let event_type = json!({"type": "string", "enum": webhook_event_types()});
    let mut create = closed(
        &["url"],
        json!({
            "url": {"type": "string", "maxLength": WEBHOOK_URL_MAX, "pattern": WEBHOOK_URL_PATTERN,
                "description": format!("an absolute http or https URL (WHATWG parsing; at most \
                    {WEBHOOK_URL_MAX} bytes too) naming a host, without credentials or a fragment. Its host \
                    must resolve, and only to public addresses: loopback, private, link-local, shared (CGNAT), \
                    unspecified, broadcast, multicast, documentation, benchmarking and reserved ranges are \
                    refused (400) unless the operator allows them (--webhook-allow-private). The subscription \
                    keeps the URL as parsed (normalized)")},
            "events": nullable(json!({"type": "array", "minItems": 1, "items": event_type.clone(),
                "description": "the event types it takes (a repeated type counts once); absent or null: every type"})),
        }),
    );
    create["examples"] = json!([
        {"url": "https://example.com/stayledger-hook", "events": ["reservation.confirmed", "reservation.cancelled"]},
    ]);
    schemas.insert("CreateWebhook".into(), create);
    let events = json!({"type": "array", "items": event_type.clone(),
        "description": "the event types it takes, without repeats; empty: every type"});
    let webhook = json!({
        "id": uuid(), "url": {"type": "string", "description": "the URL as parsed (normalized)"},
        "events": events, "created_at": timestamp(),
    });
    schemas.insert(
        "Webhook".into(),
        object(&["id", "url", "events", "created_at"], webhook.clone()),
    );
    let mut created = webhook;
    created["secret"] = json!({"type": "string", "pattern": "^whsec_[0-9a-f]{64}$",
        "description": "the signing secret of the Stayledger-Signature header: shown in this answer only"});
    schemas.insert(
        "WebhookCreated".into(),
        object(&["id", "url", "events", "created_at", "secret"], created),
    );
    schemas.insert(
        "WebhookPage".into(),
        object(
            &["items", "next_cursor"],
            json!({"items": {"type": "array", "maxItems": WEBHOOKS_PER_OWNER, "items": schema_ref("Webhook")},
                   "next_cursor": {"type": "null", "description": "every subscription of the caller fits one page"}}),
        ),
    );
    schemas.insert(
        "Delivery".into(),
        object(
            &["delivery_id", "event_id", "type", "reservation_id", "position", "status", "attempts",
              "last_status_code", "last_error", "queued_at", "next_attempt_at", "settled_at"],
            json!({
                "delivery_id": {"type": "string", "format": "uuid",
                    "description": "the Stayledger-Delivery header of each attempt"},
                "event_id": {"type": "string", "format": "uuid", "description": "the body's id"},
                "type": event_type.clone(), "reservation_id": uuid(), "position": count(),
                "status": {"type": "string", "enum": DELIVERY_STATUSES,
                    "description": "pending: not tried yet; retrying: failed, tried again at next_attempt_at; \
                        delivered: a 2xx answer; parked: given up on (POST .../retry re-drives it)"},
                "attempts": count(),
                "last_status_code": nullable(json!({"type": "integer", "minimum": 100, "maximum": 999})),
                "last_error": nullable(text()),
                "queued_at": timestamp(),
                "next_attempt_at": nullable(timestamp()),
                "settled_at": nullable(timestamp()),
            }),
        ),
    );
    schemas.insert(
        "DeliveryPage".into(),
        object(
            &["items", "next_cursor"],
            json!({"items": {"type": "array", "items": schema_ref("Delivery")}, "next_cursor": nullable(text())}),
        ),
    );
    // A reservation in a webhook's body: its document without the guest's personal data.
    let mut reservation = schemas["Reservation"].clone();
    if let Some(properties) = reservation["properties"].as_object_mut() {
        properties.remove("guest_name");
    }
    if let Some(required) = reservation["required"].as_array_mut() {
        required.retain(|field| field != "guest_name");
    }
    schemas.insert("WebhookReservation".into(), reservation);
    schemas.insert(
        "WebhookEvent".into(),
        object(
            &["id", "type", "reservation_id", "lodging_id", "status", "occurred_at", "position", "data"],
            json!({
                "id": {"type": "string", "format": "uuid", "description": "the event's id (a delivery's event_id)"},
                "type": event_type, "reservation_id": uuid(), "lodging_id": text(),
                "status": reservation_statuses(), "occurred_at": timestamp(), "position": count(),
                "data": nullable(schema_ref("WebhookReservation")),
            }),
        ),
    );
}

/// Every component schema.
#[must_use]
pub fn all() -> Value {
    let mut schemas = Map::new();
    schemas.insert("Problem".into(), problem());
    command_bodies(&mut schemas);
    view_documents(&mut schemas);
    audit_documents(&mut schemas);
    sandbox_documents(&mut schemas);
    ops_documents(&mut schemas);
    webhook_documents(&mut schemas);
    Value::Object(schemas)
}
