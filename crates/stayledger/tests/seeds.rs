//! The seed systems as their users act, over real HTTP on a real `serve` (docs/seeds.md): rent-car
//! (a company lists its cars, customers find a free one and rent it) and the study cafe (seats
//! booked at once, seat status per night).

#[path = "common/charges.rs"]
mod charges;
mod common;

use std::time::Duration;

use common::{day, TestPlatform};
use http_edge::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(15);

fn ids(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|l| l["lodging_id"].as_str())
                .collect()
        })
        .unwrap_or_default()
}

/// GET `path` (as a customer) once the views reached `position`.
async fn read(t: &TestPlatform, path: &str, position: &Value) -> Value {
    read_as(t, &t.customer("reader"), path, position).await
}

async fn read_as(t: &TestPlatform, token: &str, path: &str, position: &Value) -> Value {
    let sep = if path.contains('?') { '&' } else { '?' };
    let path = format!("{path}{sep}min_position={position}&wait_ms=5000");
    let (status, body) = t.get(&path, token).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

/// The nights of `lodging` from `from` days to `to` days from today: (booked, free) each.
async fn nights(
    t: &TestPlatform,
    lodging: &str,
    (from, to): (i64, i64),
    position: &Value,
) -> Vec<(u64, u64)> {
    let path = format!(
        "/lodgings/{lodging}/availability?from={}&to={}",
        day(from),
        day(to)
    );
    let body = read(t, &path, position).await;
    body["nights"]
        .as_array()
        .expect("nights")
        .iter()
        .map(|n| {
            (
                n["booked"].as_u64().unwrap_or(99),
                n["free"].as_u64().unwrap_or(99),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rent_car_a_company_lists_cars_a_customer_rents_one_cancels_and_it_is_free_again() {
    let t = TestPlatform::start().await;
    let company = t.token(Role::Admin, "jeju-rent", &[]);
    let root = t.platform_admin();
    let mut approved = json!(0);
    for (id, name) in [("avante-01", "Avante"), ("sonata-01", "Sonata")] {
        let car = json!({"lodging_id": id, "name": name, "nightly_rate": 50_000, "currency": "KRW",
                         "rooms": 1, "max_guests": 5, "approval_mode": "instant"});
        let (status, body) = t.post("/listings", &company, car).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let (status, body) = t
            .post(
                &format!("/listings/{id}/approve"),
                &root,
                json!({"fee_bps": 800}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        approved = body["position"].clone();
    }
    let listed = read_as(&t, &company, "/listings?status=active", &approved).await;
    assert_eq!(ids(&listed), ["avante-01", "sonata-01"]);

    // A customer looks for a car free from day 5 to day 7 and rents the first one.
    let search = format!(
        "/lodgings?admin_id=jeju-rent&available_from={}&available_to={}",
        day(5),
        day(7)
    );
    let found = read(&t, &search, &approved).await;
    assert_eq!(ids(&found), ["avante-01", "sonata-01"]);
    let driver = t.customer("driver-kim");
    let booking = json!({"lodging_id": "avante-01", "check_in": day(5).to_string(),
                         "check_out": day(7).to_string(), "guests": 2});
    let (status, body) = t.post("/reservations", &driver, booking).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = body["id"].as_str().expect("id").to_string();
    let doc = t.wait_for(&id, "status", "confirmed", WAIT).await;
    assert_eq!(doc["total_amount"], 100_000);
    let charges = t.sandbox_charges().await;
    let charged = charges::assert_charged_once(&charges, [id.as_str()]);
    assert_eq!(charged[id.as_str()]["amount"], 100_000);
    assert_eq!(doc["lodging_name"], "Avante");

    // Rented for those days: no room on them, and the search finds only the other car.
    let rented = &doc["position"];
    assert_eq!(
        nights(&t, "avante-01", (4, 8), rented).await,
        [(0, 1), (1, 0), (1, 0), (0, 1)]
    );
    assert_eq!(ids(&read(&t, &search, rented).await), ["sonata-01"]);
    // A car rented tonight reads as such in the catalog.
    let tonight = json!({"lodging_id": "sonata-01", "check_in": day(0).to_string(),
                         "check_out": day(1).to_string(), "guests": 1});
    let (status, body) = t
        .post("/reservations", &t.customer("driver-lee"), tonight)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let lee = body["id"].as_str().expect("id").to_string();
    let doc = t.wait_for(&lee, "status", "confirmed", WAIT).await;
    let sonata = read(&t, "/lodgings/sonata-01", &doc["position"]).await;
    assert_eq!(sonata["status_today"], "fully_booked", "{sonata}");
    let avante = read(&t, "/lodgings/avante-01", &doc["position"]).await;
    assert_eq!(avante["status_today"], "available", "{avante}");

    // The customer cancels before the rental starts: refunded, and the car is free again.
    let (status, body) = t
        .post(
            &format!("/reservations/{id}/cancel"),
            &driver,
            json!({"reason": "flight cancelled"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let doc = t.wait_for(&id, "refund_status", "refunded", WAIT).await;
    assert_eq!(doc["status"], "cancelled");
    let charges = t.sandbox_charges().await;
    let charged = charges::assert_charged_once(&charges, [id.as_str(), lee.as_str()]);
    assert_eq!(charged[id.as_str()]["refunded_amount"], 100_000);
    assert_eq!(charged[lee.as_str()]["amount"], 50_000);
    let freed = &doc["position"];
    assert_eq!(
        nights(&t, "avante-01", (5, 7), freed).await,
        [(0, 1), (0, 1)]
    );
    assert_eq!(
        ids(&read(&t, &search, freed).await),
        ["avante-01", "sonata-01"]
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn study_cafe_seats_are_taken_at_once_and_their_status_is_polled() {
    let t = TestPlatform::start().await;
    let cafe = json!({"lodging_id": "cafe-gangnam", "name": "Study Cafe Gangnam", "nightly_rate": 5_000,
                      "currency": "KRW", "rooms": 3, "max_guests": 1, "approval_mode": "instant"});
    let (status, body) = t.post("/lodgings", &t.platform_admin(), cafe).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let seats = |n: u32| {
        json!({"lodging_id": "cafe-gangnam", "check_in": day(1).to_string(),
               "check_out": day(2).to_string(), "guests": n, "rooms": n})
    };
    // Two seats for a pair, then one: the cafe is full for the day.
    let mut confirmed = Vec::new();
    for (student, n) in [("student-a", 2), ("student-b", 1)] {
        let (status, body) = t
            .post("/reservations", &t.customer(student), seats(n))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let id = body["id"].as_str().expect("id").to_string();
        let doc = t.wait_for(&id, "status", "confirmed", WAIT).await;
        assert_eq!(doc["total_amount"], 5_000 * i64::from(n));
        confirmed.push(doc);
    }
    let last = &confirmed[1]["position"];
    assert_eq!(nights(&t, "cafe-gangnam", (1, 2), last).await, [(3, 0)]);
    // A third student is turned away at once (no seat), and charged nothing.
    let (status, body) = t
        .post("/reservations", &t.customer("student-c"), seats(1))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let turned = body["id"].as_str().expect("id").to_string();
    let doc = t.wait_for(&turned, "status", "rejected", WAIT).await;
    assert_eq!(doc["payment_status"], "none");
    // More seats than the cafe has, or guests beyond the seats, are refused outright.
    let (status, _) = t
        .post("/reservations", &t.customer("student-d"), seats(4))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let mut crowded = seats(1);
    crowded["guests"] = json!(2);
    let (status, body) = t
        .post("/reservations", &t.customer("student-d"), crowded)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    // Only the two seated students were charged.
    let seated: Vec<&str> = confirmed
        .iter()
        .filter_map(|doc| doc["reservation_id"].as_str())
        .collect();
    let charges = t.sandbox_charges().await;
    let charged = charges::assert_charged_once(&charges, seated);
    assert_eq!(charged.len(), 2);
    t.stop().await;
}
