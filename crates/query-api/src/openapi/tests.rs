use std::collections::HashSet;

use serde_json::Value;

use super::openapi;

/// Every method and path of the HTTP contract (docs/api.md) (commands, queries, audit, sandbox, ops).
const ROUTES: [(&str, &str); 45] = [
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
        let query_side = !path.starts_with("/sandbox")
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
    ] {
        let schema = &doc["components"]["schemas"][name];
        assert_eq!(schema["additionalProperties"], false, "{name}");
    }
}
