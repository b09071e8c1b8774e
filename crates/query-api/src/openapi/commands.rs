//! The command routes (command-api) in the OpenAPI document.

use serde_json::{json, Value};

use super::build::{
    guarded, idempotency_header, json_response, path, problem, with_header, Operation,
};
use super::schemas::{schema_ref, PRINTABLE};

fn accepted(description: &str) -> Value {
    let answer = json_response(description, schema_ref("Accepted"));
    with_header(
        answer,
        "idempotent-replayed",
        "`true` when this repeats the first answer to the Idempotency-Key",
    )
}

fn reservation_id() -> Value {
    path(
        "id",
        json!({"type": "string", "format": "uuid"}),
        "reservation id",
    )
}

fn register_lodging() -> Value {
    let created = with_header(accepted("lodging registered"), "Location", "/lodgings/{id}");
    Operation {
        id: "registerLodging",
        tag: "commands",
        summary: "Register a lodging (platform admin: lodgings claim `*`)",
        parameters: vec![idempotency_header()],
        body: Some(("RegisterLodging", true)),
        responses: guarded(vec![
            ("201", created),
            (
                "400",
                problem("malformed JSON, invalid fields, or a field the request does not take"),
            ),
            ("403", problem("not a platform admin")),
            ("409", problem("the lodging id is taken")),
            ("413", problem("body too large")),
            ("422", problem("Idempotency-Key reused with another body")),
        ]),
        open: false,
    }
    .build()
}

fn request_reservation() -> Value {
    let answer = with_header(accepted("stay requested"), "Location", "/reservations/{id}");
    Operation {
        id: "requestReservation",
        tag: "commands",
        summary: "Request a stay (customers)",
        parameters: vec![idempotency_header()],
        body: Some(("RequestReservation", true)),
        responses: guarded(vec![
            ("202", answer),
            (
                "400",
                problem("malformed JSON, invalid fields, or a field the request does not take"),
            ),
            ("403", problem("not a customer")),
            ("409", problem("concurrent writes kept conflicting")),
            ("413", problem("body too large")),
            (
                "422",
                problem(
                    "unknown lodging, invalid stay, or Idempotency-Key reused with another body",
                ),
            ),
        ]),
        open: false,
    }
    .build()
}

fn submit_listing() -> Value {
    let answer = with_header(
        accepted("listing submitted, pending review"),
        "Location",
        "/lodgings/{id}",
    );
    Operation {
        id: "submitListing",
        tag: "commands",
        summary: "Submit a listing for the platform's review (any admin: the host is the caller)",
        parameters: vec![idempotency_header()],
        body: Some(("SubmitListing", true)),
        responses: guarded(vec![
            ("202", answer),
            (
                "400",
                problem("malformed JSON, invalid fields, or a field the request does not take"),
            ),
            ("403", problem("not an admin")),
            ("409", problem("the lodging id is taken")),
            ("413", problem("body too large")),
            ("422", problem("Idempotency-Key reused with another body")),
        ]),
        open: false,
    }
    .build()
}

/// A command of My Page or on a customer (no reservation in the path).
fn on_customer(
    id: &str,
    summary: &str,
    customer_path: bool,
    body: (&str, bool),
    forbidden: &str,
) -> Value {
    let mut parameters = vec![idempotency_header()];
    if customer_path {
        let customer = path(
            "id",
            json!({"type": "string", "maxLength": 255, "pattern": PRINTABLE}),
            "customer id (the customer's token `sub`)",
        );
        parameters.insert(0, customer);
    }
    let mut responses = vec![
        ("202", accepted("accepted")),
        (
            "400",
            problem("malformed JSON, invalid fields, or a field the request does not take"),
        ),
        ("403", problem(forbidden)),
        ("409", problem("the customer's personal data was erased")),
        ("413", problem("body too large")),
        ("422", problem("Idempotency-Key reused with another body")),
    ];
    if customer_path {
        responses.push(("404", problem("not a customer id")));
    }
    Operation {
        id,
        tag: "commands",
        summary,
        parameters,
        body: Some(body),
        responses: guarded(responses),
        open: false,
    }
    .build()
}

/// A catalog command on an existing lodging.
fn on_lodging(
    id: &str,
    summary: &str,
    body: (&str, bool),
    forbidden: &str,
    conflict: &str,
) -> Value {
    let lodging_id = path(
        "id",
        json!({"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"}),
        "lodging id",
    );
    Operation {
        id,
        tag: "commands",
        summary,
        parameters: vec![lodging_id, idempotency_header()],
        body: Some(body),
        responses: guarded(vec![
            ("202", accepted("accepted")),
            (
                "400",
                problem("malformed JSON, invalid fields, or a field the request does not take"),
            ),
            ("403", problem(forbidden)),
            ("404", problem("no such lodging")),
            ("409", problem(conflict)),
            ("413", problem("body too large")),
            (
                "422",
                problem(
                    "an invalid value for the lodging, or Idempotency-Key reused with another body",
                ),
            ),
        ]),
        open: false,
    }
    .build()
}

/// A command on an existing reservation.
fn on_reservation(id: &str, summary: &str, body: (&str, bool), conflict: &str) -> Value {
    Operation {
        id,
        tag: "commands",
        summary,
        parameters: vec![reservation_id(), idempotency_header()],
        body: Some(body),
        responses: guarded(vec![
            ("202", accepted("accepted")),
            (
                "400",
                problem("malformed JSON, invalid fields, or a field the request does not take"),
            ),
            (
                "403",
                problem("wrong role, or not yours / not your lodging"),
            ),
            ("404", problem("no such reservation")),
            ("409", problem(conflict)),
            ("413", problem("body too large")),
            ("422", problem("Idempotency-Key reused with another body")),
        ]),
        open: false,
    }
    .build()
}

/// The `paths` entries of the command routes.
pub fn paths() -> Vec<(String, Value)> {
    vec![
        ("/lodgings".into(), json!({"post": register_lodging()})),
        (
            "/lodgings/{id}".into(),
            json!({"patch": on_lodging(
                "updateLodging",
                "Change a lodging's name, rate, rooms, max guests, approval mode or time zone (its admin)",
                ("UpdateLodging", true),
                "not its admin",
                "closed or rejected, or fewer rooms than are booked on a coming night (named in detail)",
            )}),
        ),
        (
            "/lodgings/{id}/close".into(),
            json!({"post": on_lodging(
                "closeLodging",
                "Close a lodging to new requests; what was requested or booked stays (its admin)",
                ("CloseLodging", true),
                "not its admin",
                "the listing was rejected",
            )}),
        ),
        ("/listings".into(), json!({"post": submit_listing()})),
        (
            "/listings/{id}/approve".into(),
            json!({"post": on_lodging(
                "approveListing",
                "Approve a listing under review, with the platform's fee (platform admin)",
                ("ApproveListing", false),
                "not a platform admin",
                "the listing is not pending review",
            )}),
        ),
        (
            "/listings/{id}/reject".into(),
            json!({"post": on_lodging(
                "rejectListing",
                "Reject a listing under review (platform admin)",
                ("RejectListing", true),
                "not a platform admin",
                "the listing is not pending review",
            )}),
        ),
        (
            "/reservations".into(),
            json!({"post": request_reservation()}),
        ),
        (
            "/reservations/{id}/cancel".into(),
            json!({"post": on_reservation(
                "cancelReservation",
                "Cancel a reservation before check-in (its customer)",
                ("CancelReservation", false),
                "terminal or checked in",
            )}),
        ),
        (
            "/management/requests/{id}/approve".into(),
            json!({"post": on_reservation(
                "approveRequest",
                "Approve a request (admin of its lodging)",
                ("EmptyBody", false),
                "no free room on some night (named in detail), or already decided",
            )}),
        ),
        (
            "/management/requests/{id}/reject".into(),
            json!({"post": on_reservation(
                "rejectRequest",
                "Reject a request (admin of its lodging)",
                ("RejectRequest", true),
                "already decided",
            )}),
        ),
        (
            "/management/requests/{id}/cancel".into(),
            json!({"post": on_reservation(
                "cancelStay",
                "Cancel a confirmed stay, on or after check-in too; refunded in full (admin of its lodging)",
                ("CancelStay", true),
                "the stay is not confirmed",
            )}),
        ),
        (
            "/management/requests/{id}/complete".into(),
            json!({"post": on_reservation(
                "completeStay",
                "Complete a confirmed stay on or after its check-in day where the lodging is (admin of its lodging); at check-out the platform completes it",
                ("EmptyBody", false),
                "the stay is not confirmed (not-confirmed), or its check-in day has not come (not-checked-in)",
            )}),
        ),
        (
            "/payments/{id}/retry".into(),
            json!({"post": on_reservation(
                "retryPayment",
                "Retry a deferred payment now (admin of its lodging)",
                ("EmptyBody", false),
                "the payment is not deferred",
            )}),
        ),
        (
            "/me/profile".into(),
            json!({"put": on_customer(
                "recordProfile",
                "Record the caller's profile, each field sealed under their own key (customers)",
                false,
                ("RecordProfile", true),
                "not a customer",
            )}),
        ),
        (
            "/me/erase".into(),
            json!({"post": on_customer(
                "eraseMe",
                "Erase the caller's personal data: their key is destroyed (customers)",
                false,
                ("EmptyBody", false),
                "not a customer",
            )}),
        ),
        (
            "/customers/{id}/erase".into(),
            json!({"post": on_customer(
                "eraseCustomer",
                "Erase a customer's personal data: their key is destroyed (platform admin)",
                true,
                ("EraseCustomer", true),
                "not the platform admin",
            )}),
        ),
        (
            "/payouts/{id}/retry".into(),
            json!({"post": on_reservation(
                "retryPayout",
                "Retry a pending or failed payout to the host now (platform admin)",
                ("EmptyBody", false),
                "the payout is not pending or failed",
            )}),
        ),
    ]
}
