//! The query and audit routes (query-api) in the OpenAPI document.

use serde_json::{json, Value};

use super::build::{
    consistency, guarded, if_none_match, json_response, paging, path, problem, query, with_header,
    Operation, INBOX_CURSOR, LODGING_CURSOR, LOG_CURSOR, PAYOUT_CURSOR, REQUEST_CURSOR,
    RESERVATION_CURSOR,
};
use super::schemas::{
    approval_statuses, reservation_statuses, schema_ref, LISTING_STATUSES, PAYOUT_STATUSES,
};

fn list(
    id: &str,
    summary: &str,
    mut parameters: Vec<Value>,
    (page, cursor): (&str, &str),
    forbidden: Option<&str>,
) -> Value {
    parameters.extend(paging(cursor));
    parameters.extend(consistency());
    let mut answers = vec![
        ("200", json_response("one page", schema_ref(page))),
        (
            "400",
            problem("invalid limit, cursor or filter, a parameter the route does not take, or one given twice"),
        ),
        (
            "504",
            problem("the views did not reach min_position within wait_ms"),
        ),
    ];
    if let Some(forbidden) = forbidden {
        answers.push(("403", problem(forbidden)));
    }
    Operation {
        id,
        tag: "queries",
        summary,
        parameters,
        body: None,
        responses: guarded(answers),
        open: false,
    }
    .build()
}

/// A single document with an ETag.
fn single(id: &str, tag: &str, summary: &str, mut parameters: Vec<Value>, schema: &str) -> Value {
    parameters.push(if_none_match());
    let found = with_header(
        json_response("the document", schema_ref(schema)),
        "ETag",
        "the log position it reflects, quoted",
    );
    let unchanged = with_header(
        json!({"description": "unchanged since If-None-Match"}),
        "ETag",
        "as before",
    );
    Operation {
        id,
        tag,
        summary,
        parameters,
        body: None,
        responses: guarded(vec![
            ("200", found),
            ("304", unchanged),
            ("400", problem("invalid parameter")),
            ("403", problem("not yours")),
            ("404", problem("no such document")),
            (
                "504",
                problem("the views did not reach min_position within wait_ms"),
            ),
        ]),
        open: false,
    }
    .build()
}

fn audit(id: &str, summary: &str, parameters: Vec<Value>, schema: &str) -> Value {
    Operation {
        id,
        tag: "audit",
        summary,
        parameters,
        body: None,
        responses: guarded(vec![
            ("200", json_response("the answer", schema_ref(schema))),
            ("400", problem("invalid parameter")),
            ("403", problem("auditors only")),
            ("404", problem("no such reservation or stream")),
        ]),
        open: false,
    }
    .build()
}

fn reservation_id() -> Value {
    path(
        "id",
        json!({"type": "string", "format": "uuid"}),
        "reservation id",
    )
}

/// The filters of `GET /reservations` (docs/decisions/0018): they narrow what the caller may see.
fn reservation_filters(status: Value) -> Vec<Value> {
    let day =
        json!({"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"});
    vec![
        query(
            "lodging_id",
            json!({"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"}),
            "only this lodging (an admin: one they manage)",
        ),
        query(
            "customer_id",
            json!({"type": "string", "minLength": 1, "maxLength": 256}),
            "only this customer (auditors; admins within their lodgings; a customer: only themself)",
        ),
        status,
        query("check_in_from", day.clone(), "only stays checking in on or after this date"),
        query("check_in_to", day, "only stays checking in on or before this date (inclusive)"),
    ]
}

fn view_paths() -> Vec<(String, Value)> {
    let status = |schema| query("status", schema, "only this status");
    let lodging = path("id", json!({"type": "string"}), "lodging id");
    let mut reservation_params = vec![reservation_id()];
    reservation_params.extend(consistency());
    let mut lodging_params = vec![lodging];
    lodging_params.extend(consistency());
    let catalog_filters = |status: &str| {
        vec![
            query(
                "q",
                json!({"type": "string", "minLength": 1, "maxLength": 100, "pattern": "\\S"}),
                "only lodgings whose name contains this (ASCII letters in any case)",
            ),
            query(
                "approval_mode",
                json!({"type": "string", "enum": ["manual", "instant", "pay_first"]}),
                "only this approval mode",
            ),
            query(
                "admin_id",
                json!({"type": "string", "minLength": 1, "maxLength": 256, "pattern": "\\S"}),
                "only lodgings of this admin (their host)",
            ),
            query(
                "status",
                json!({"type": "string", "enum": LISTING_STATUSES}),
                status,
            ),
        ]
    };
    let day =
        json!({"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"});
    let mut search = catalog_filters("only this listing status (default: active)");
    search.extend([
        query(
            "available_from",
            day.clone(),
            "with available_to: only lodgings with `rooms` free every night from this date",
        ),
        query(
            "available_to",
            day.clone(),
            "the night before this date is the last one (exclusive, at most 366 nights)",
        ),
        query(
            "rooms",
            json!({"type": "integer", "minimum": 1, "maximum": 10_000}),
            "rooms free every night (default 1; with available_from and available_to)",
        ),
    ]);
    let mut availability_params = vec![
        path("id", json!({"type": "string"}), "lodging id"),
        query("from", day.clone(), "first night (required)"),
        query(
            "to",
            day,
            "the day after the last night (required, at most 366 nights)",
        ),
    ];
    for required in &mut availability_params {
        required["required"] = json!(true);
    }
    availability_params.extend(consistency());
    let availability = Operation {
        id: "getAvailability",
        tag: "queries",
        summary: "Rooms booked, held and free on each night of a range (any token)",
        parameters: availability_params,
        body: None,
        responses: guarded(vec![
            (
                "200",
                json_response("one entry per night", schema_ref("Availability")),
            ),
            (
                "400",
                problem(
                    "from or to missing or invalid, to not after from, or more than 366 nights",
                ),
            ),
            ("404", problem("no such lodging")),
            (
                "504",
                problem("the views did not reach min_position within wait_ms"),
            ),
        ]),
        open: false,
    }
    .build();
    vec![
        (
            "/lodgings".into(),
            json!({"get": list(
                "listLodgings",
                "The lodging catalog (any token); with the availability filter a page may hold fewer than limit lodgings while next_cursor says there are more",
                search,
                ("LodgingPage", LODGING_CURSOR),
                None,
            )}),
        ),
        (
            "/lodgings/{id}/availability".into(),
            json!({"get": availability}),
        ),
        (
            "/listings".into(),
            json!({"get": list(
                "listListings",
                "Listings in every status (platform admin and auditors: all; a host: their own)",
                catalog_filters("only this listing status (default: any)"),
                ("LodgingPage", LODGING_CURSOR),
                Some("customers, or a host asking for another admin's listings"),
            )}),
        ),
        (
            "/lodgings/{id}".into(),
            json!({"get": single("getLodging", "queries", "One lodging", lodging_params, "Lodging")}),
        ),
        (
            "/reservations".into(),
            json!({"get": list(
                "listReservations",
                "ReservationList, newest first (customer: own; admin: their lodgings; auditor: all)",
                reservation_filters(status(reservation_statuses())),
                ("ReservationPage", RESERVATION_CURSOR),
                Some("a customer asking for another customer, or an admin for a lodging they do not manage"),
            )}),
        ),
        (
            "/reservations/{id}".into(),
            json!({"get": single(
                "getReservation",
                "queries",
                "One reservation (its customer, its lodging's admin, auditors)",
                reservation_params,
                "Reservation",
            )}),
        ),
        (
            "/management/requests".into(),
            json!({"get": list(
                "listApprovalRequests",
                "ManagementList, oldest first (admin: their lodgings; auditor: all)",
                vec![query("lodging_id", json!({"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"}), "only this lodging"), status(approval_statuses())],
                ("ApprovalRequestPage", REQUEST_CURSOR),
                Some("customers, or a lodging the admin does not manage"),
            )}),
        ),
    ]
}

/// Who reads payouts, and what a host may not.
const PAYOUT_FORBIDDEN: &str = "customers, or a lodging the admin does not manage";

/// `lodging_id` and `status` of the payout routes.
fn payout_filters() -> Vec<Value> {
    vec![
        query(
            "lodging_id",
            json!({"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"}),
            "only this lodging (a host: one they manage)",
        ),
        query(
            "status",
            json!({"type": "string", "enum": PAYOUT_STATUSES}),
            "only this status",
        ),
    ]
}

fn payout_paths() -> Vec<(String, Value)> {
    let mut summary_params = payout_filters();
    summary_params.extend(consistency());
    let summary = Operation {
        id: "summarizePayouts",
        tag: "queries",
        summary: "Payouts summed per currency: count, gross, fee, net (a host: their lodgings; platform admin, auditors: all)",
        parameters: summary_params,
        body: None,
        responses: guarded(vec![
            (
                "200",
                json_response("one entry per currency", schema_ref("PayoutSummary")),
            ),
            (
                "400",
                problem("invalid filter, a parameter the route does not take, or one given twice"),
            ),
            ("403", problem(PAYOUT_FORBIDDEN)),
            (
                "504",
                problem("the views did not reach min_position within wait_ms"),
            ),
        ]),
        open: false,
    }
    .build();
    vec![
        (
            "/payouts".into(),
            json!({"get": list(
                "listPayouts",
                "Payouts to hosts, newest scheduled first (a host: their lodgings; platform admin, auditors: all)",
                payout_filters(),
                ("PayoutPage", PAYOUT_CURSOR),
                Some(PAYOUT_FORBIDDEN),
            )}),
        ),
        ("/payouts/summary".into(), json!({"get": summary})),
    ]
}

fn stream_path() -> (String, Value) {
    let stream = Operation {
        id: "stream",
        tag: "queries",
        summary: "The live stream of reservation changes (Server-Sent Events), scoped like GET /reservations/{id}: \
                  `event: reservation`, `id: <log position>`, `data: <Reservation>`; `Last-Event-ID` resumes after that \
                  position without a gap or a repeat; without it the stream starts at the log's head",
        parameters: vec![
            query(
                "access_token",
                json!({"type": "string"}),
                "the bearer token, for a browser's EventSource (which cannot set headers)",
            ),
            json!({"name": "Last-Event-ID", "in": "header", "required": false,
                   "schema": {"type": "string", "pattern": "^[0-9]{1,19}$"},
                   "description": "the id of the last frame received: the stream resumes after it"}),
        ],
        body: None,
        responses: guarded(vec![
            (
                "200",
                json!({"description": "the stream (comments keep it alive)",
                       "content": {"text/event-stream": {"schema": {"type": "string"}}}}),
            ),
            (
                "400",
                problem("a Last-Event-ID that is no log position, or a parameter the route does not take"),
            ),
        ]),
        open: false,
    }
    .build();
    ("/stream".into(), json!({"get": stream}))
}

fn me_path() -> (String, Value) {
    let me = Operation {
        id: "me",
        tag: "queries",
        summary: "My Page: the caller's profile (opened with their key; null once erased) and reservations per status (customers)",
        parameters: consistency(),
        body: None,
        responses: guarded(vec![
            ("200", json_response("the caller's page", schema_ref("Me"))),
            (
                "400",
                problem("a parameter the route does not take, or one given twice"),
            ),
            ("403", problem("not a customer")),
            (
                "504",
                problem("the views did not reach min_position within wait_ms"),
            ),
        ]),
        open: false,
    }
    .build();
    ("/me".into(), json!({"get": me}))
}

fn position_schema() -> Value {
    json!({"type": "integer", "minimum": 0, "maximum": u64::MAX})
}

fn audit_paths() -> Vec<(String, Value)> {
    let position = json!({"type": "integer", "minimum": 0, "maximum": u64::MAX});
    let state_params = vec![
        reservation_id(),
        query(
            "as_of_position",
            position.clone(),
            "fold the events up to this log position",
        ),
        query(
            "as_of_time",
            json!({"type": "string", "format": "date-time"}),
            "fold the events recorded up to this instant",
        ),
        if_none_match(),
    ];
    let mut state = audit(
        "getReservationStateAsOf",
        "A reservation's state rebuilt as of a log position and/or an instant (the earlier wins)",
        state_params,
        "ReservationStateAsOf",
    );
    let tagged = with_header(
        state["responses"]["200"].take(),
        "ETag",
        "position of the last event folded, quoted",
    );
    state["responses"]["200"] = tagged;
    state["responses"]["304"] = json!({"description": "unchanged since If-None-Match"});
    let mut events_params = vec![query("from_position", position.clone(), "first position")];
    events_params.extend(paging(LOG_CURSOR));
    let mut stream_params = vec![
        path(
            "stream",
            json!({"type": "string"}),
            "stream name, e.g. reservation-<id>",
        ),
        query("from_version", position, "first version"),
    ];
    stream_params.extend(paging(LOG_CURSOR));
    let verify_params = vec![
        query(
            "anchor_position",
            position_schema(),
            "an auditor's anchor (from GET /audit/anchor, kept elsewhere): its position",
        ),
        query(
            "anchor_mac",
            json!({"type": "string", "pattern": "^[0-9a-fA-F]{64}$"}),
            "the anchor's mac (with anchor_position)",
        ),
    ];
    vec![
        (
            "/audit/reservations/{id}/history".into(),
            json!({"get": audit("getReservationHistory", "Every event of a reservation across its streams, in log order", vec![reservation_id()], "ReservationHistory")}),
        ),
        (
            "/audit/reservations/{id}/state".into(),
            json!({"get": state}),
        ),
        (
            "/audit/events".into(),
            json!({"get": audit("readLog", "The global log, a page at a time", events_params, "EventPage")}),
        ),
        (
            "/audit/streams/{stream}".into(),
            json!({"get": audit("readStream", "One stream, a page at a time", stream_params, "EventPage")}),
        ),
        (
            "/audit/verify".into(),
            json!({"get": audit("verifyLog", "Check every stream's hash chain, the positions, the keyed MAC chain, the signed head and, if given, an anchor", verify_params, "VerifyReport")}),
        ),
        (
            "/audit/anchor".into(),
            json!({"get": audit("getAnchor", "The log's signed head, for an auditor to keep elsewhere and pass back to /audit/verify", vec![], "Anchor")}),
        ),
    ]
}

/// The `paths` entries of the query and audit routes.
pub fn paths() -> Vec<(String, Value)> {
    let mut paths = view_paths();
    paths.extend(payout_paths());
    paths.push(me_path());
    paths.push(stream_path());
    paths.push((
        "/me/notifications".into(),
        json!({"get": list(
            "listNotifications",
            "The caller's inbox, newest first: a customer's, one entry per status change of their reservations; an admin's, new requests, payments and cancellations at the lodgings they manage; an auditor's is empty",
            Vec::new(),
            ("NotificationPage", INBOX_CURSOR),
            None,
        )}),
    ));
    paths.extend(audit_paths());
    paths
}
