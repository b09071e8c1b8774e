use std::collections::HashSet;

use serde_json::Value;

use super::openapi;

/// Every method and path of the HTTP contract (docs/api.md) (commands, queries, audit, webhooks,
/// sandbox, ops).
const ROUTES: [(&str, &str); 50] = [
    ("post", "/lodgings"),
    ("patch", "/lodgings/{id}"),
    ("post", "/lodgings/{id}/close"),
    ("post", "/listings"),
    ("post", "/listings/{id}/approve"),
    ("post", "/listings/{id}/reject"),
    ("get", "/listings"),
    ("get", "/lodgings/{id}/availability"),
    ("post", "/reservations"),
    ("post", "/reservations/{id}/cancel"),
    ("post", "/management/requests/{id}/approve"),
    ("post", "/management/requests/{id}/reject"),
    ("post", "/management/requests/{id}/cancel"),
    ("post", "/management/requests/{id}/complete"),
    ("post", "/payments/{id}/retry"),
    ("post", "/payouts/{id}/retry"),
    ("put", "/me/profile"),
    ("get", "/me"),
    ("post", "/me/erase"),
    ("post", "/customers/{id}/erase"),
    ("get", "/lodgings"),
    ("get", "/lodgings/{id}"),
    ("get", "/reservations/{id}"),
    ("get", "/reservations"),
    ("get", "/management/requests"),
    ("get", "/payouts"),
    ("get", "/payouts/summary"),
    ("get", "/audit/reservations/{id}/history"),
    ("get", "/audit/reservations/{id}/state"),
    ("get", "/audit/events"),
    ("get", "/audit/streams/{stream}"),
    ("get", "/audit/verify"),
    ("get", "/audit/anchor"),
    ("post", "/webhooks"),
    ("get", "/webhooks"),
    ("delete", "/webhooks/{id}"),
    ("get", "/webhooks/{id}/deliveries"),
    ("post", "/webhooks/{id}/deliveries/{delivery_id}/retry"),
    ("post", "/sandbox/charges"),
    ("post", "/sandbox/refunds"),
    ("get", "/sandbox/charges"),
    ("post", "/sandbox/payouts"),
    ("get", "/sandbox/payouts"),
    ("put", "/sandbox/config"),
    ("get", "/sandbox/config"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/docs"),
];

#[test]
fn every_route_of_the_contract_is_described() {
    let doc = openapi();
    for (method, path) in ROUTES {
        let operation = &doc["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} missing");
        assert!(
            operation["responses"]["default"].is_object(),
            "{method} {path} has no default"
        );
    }
}

fn refs(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                found.push(target.clone());
            }
            map.values().for_each(|v| refs(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
        _ => {}
    }
}

#[test]
fn every_reference_resolves_and_operation_ids_are_unique() {
    let doc = openapi();
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(found.len() > 20);
    for target in found {
        let name = target.trim_start_matches("#/components/schemas/");
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "{target} does not resolve"
        );
    }
    let mut ids = HashSet::new();
    for item in doc["paths"]
        .as_object()
        .into_iter()
        .flat_map(|p| p.values())
    {
        for operation in item.as_object().into_iter().flat_map(|o| o.values()) {
            let id = operation["operationId"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            assert!(ids.insert(id.clone()), "duplicate operationId {id}");
        }
    }
}

#[test]
fn only_probes_and_docs_are_open_not_the_sandbox() {
    let doc = openapi();
    let open: Vec<String> = doc["paths"]
        .as_object()
        .into_iter()
        .flat_map(|paths| paths.iter())
        .flat_map(|(path, item)| {
            item.as_object()
                .into_iter()
                .flat_map(|o| o.iter())
                .filter(|(_, op)| op["security"] == serde_json::json!([]))
                .map(move |(method, _)| format!("{method} {path}"))
        })
        .collect();
    for route in &open {
        let allowed = ["/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"];
        assert!(
            allowed.iter().any(|a| route.ends_with(a)),
            "{route} is open"
        );
        assert!(!route.contains("/sandbox"), "{route} is open");
    }
}

/// The query parameters the document publishes for each query route are exactly the ones the
/// route takes (`route_params::ROUTES`), so a parameter is never refused that the document offers.
#[test]
fn published_query_parameters_are_the_ones_each_route_takes() {
    let doc = openapi();
    for (route, takes) in crate::route_params::ROUTES {
        let operation = &doc["paths"][*route]["get"];
        assert!(operation.is_object(), "GET {route} missing");
        let mut published: Vec<&str> = operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "query")
            .filter_map(|p| p["name"].as_str())
            .collect();
        let mut taken = takes.to_vec();
        published.sort_unstable();
        taken.sort_unstable();
        assert_eq!(published, taken, "GET {route}");
    }
    let listed: HashSet<&str> = crate::route_params::ROUTES
        .iter()
        .map(|(r, _)| *r)
        .collect();
    for (method, path) in ROUTES {
        // The webhook routes are the notifier's: `webhook_paging_is_what_the_route_takes`.
        let query_side = !path.starts_with("/sandbox")
            && !path.starts_with("/webhooks")
            && !["/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"].contains(&path);
        if method == "get" && query_side {
            assert!(
                listed.contains(path),
                "GET {path} is not in route_params::ROUTES"
            );
        }
    }
}

#[test]
fn request_bodies_are_closed() {
    let doc = openapi();
    for name in [
        "RegisterLodging",
        "RequestReservation",
        "CancelReservation",
        "RejectRequest",
        "EmptyBody",
        "SandboxChargeRequest",
        "SandboxRefundRequest",
        "SandboxConfigUpdate",
        "CreateWebhook",
    ] {
        let schema = &doc["components"]["schemas"][name];
        assert_eq!(schema["additionalProperties"], false, "{name}");
    }
}

/// The deliveries' `limit` and `cursor` are the notifier's: `limit` up to 500 as on the other lists,
/// a cursor of readmodel's delivery cursors (`w:` and digits, hex, or empty); and nothing else.
#[test]
fn webhook_paging_is_what_the_route_takes() {
    let doc = openapi();
    let operation = &doc["paths"]["/webhooks/{id}/deliveries"]["get"];
    let query: Vec<&Value> = operation["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["in"] == "query")
        .collect();
    let names: Vec<&str> = query.iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, ["limit", "cursor"]);
    assert_eq!(query[0]["schema"]["maximum"], 500);
    let cursor = readmodel::encode_delivery_cursor(u64::MAX / 2);
    let pattern = query[1]["schema"]["pattern"].as_str().unwrap_or_default();
    assert_eq!(pattern, "^(773[aA](3[0-9]){1,19})?$");
    let (tag, digits) = cursor.split_at(4);
    assert_eq!(tag, "773a");
    assert!(
        digits.len() <= 38
            && digits
                .as_bytes()
                .chunks(2)
                .all(|pair| pair[0] == b'3' && pair[1].is_ascii_digit())
    );
    for route in [
        "/webhooks",
        "/webhooks/{id}",
        "/webhooks/{id}/deliveries/{delivery_id}/retry",
    ] {
        for (method, operation) in doc["paths"][route].as_object().into_iter().flatten() {
            let takes_query = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| p["in"] == "query");
            assert!(!takes_query, "{method} {route} takes no query parameter");
        }
    }
}

/// Subscriptions take the event types of every reservation status; deliveries and the request a
/// receiver gets are described.
#[test]
fn webhook_event_types_are_every_reservation_status() {
    let doc = openapi();
    let schemas = &doc["components"]["schemas"];
    let events = &schemas["CreateWebhook"]["properties"]["events"]["oneOf"][0]["items"]["enum"];
    let listed: Vec<&str> = events
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(listed.len(), readmodel::RESERVATION_STATUSES.len());
    for status in readmodel::RESERVATION_STATUSES {
        let kind = format!("reservation.{}", status.as_str());
        assert!(listed.contains(&kind.as_str()), "{kind}");
    }
    assert_eq!(
        schemas["WebhookEvent"]["properties"]["type"]["enum"],
        *events
    );
    assert_eq!(schemas["Delivery"]["properties"]["type"]["enum"], *events);
    let received = &doc["webhooks"]["reservationEvent"]["post"];
    assert_eq!(
        received["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/WebhookEvent"
    );
    assert!(schemas["WebhookReservation"]["properties"]["guest_name"].is_null());
}
