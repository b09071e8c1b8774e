//! The seed systems as their users act, over real HTTP on a real `serve` (docs/seeds.md): rent-car
//! (a company lists its cars, customers find a free one and rent it), the study cafe (seats
//! booked at once, seat status per night), GotoHotel (pay first, then the hotel confirms) and the
//! tutoring store (`tutoring`: a seller is paid what buyers paid, less the platform's fee), and
//! rent-car's My Page (`my_page`: profile, rentals, erasure).

#[path = "../common/charges.rs"]
mod charges;
#[path = "../common/mod.rs"]
mod common;
mod my_page;
mod tutoring;

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

/// `host` submits `listing` and the platform admin approves it with `approval` (`{}`, or a
/// `fee_bps`): the approval's answer.
async fn submit_and_approve(
    t: &TestPlatform,
    host: &str,
    listing: Value,
    approval: Value,
) -> Value {
    let id = listing["lodging_id"].as_str().expect("lodging_id");
    let approve = format!("/listings/{id}/approve");
    let (status, body) = t.post("/listings", host, listing).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, body) = t.post(&approve, &t.platform_admin(), approval).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
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
    let mut approved = json!(0);
    for (id, name) in [("avante-01", "Avante"), ("sonata-01", "Sonata")] {
        let car = json!({"lodging_id": id, "name": name, "nightly_rate": 50_000, "currency": "KRW",
                         "rooms": 1, "max_guests": 5, "approval_mode": "instant"});
        let approval = submit_and_approve(&t, &company, car, json!({"fee_bps": 800})).await;
        approved = approval["position"].clone();
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

/// The reservation ids on the hotel's desk (its ManagementList) once the views reached `position`.
async fn desk(t: &TestPlatform, hotel: &str, position: &Value) -> Vec<String> {
    let page = read_as(
        t,
        hotel,
        "/management/requests?lodging_id=goto-seoul",
        position,
    )
    .await;
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|r| r["reservation_id"].as_str().map(str::to_string))
        .collect()
}

async fn book(t: &TestPlatform, guest: &str, from: i64, to: i64) -> String {
    let stay = json!({"lodging_id": "goto-seoul", "check_in": day(from).to_string(),
                      "check_out": day(to).to_string(), "guests": 2});
    let (status, body) = t.post("/reservations", &t.customer(guest), stay).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    body["id"].as_str().expect("id").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goto_hotel_guests_pay_first_and_the_hotel_confirms_or_rejects_paid_reservations() {
    let t = TestPlatform::start().await;
    let hotel = t.token(Role::Admin, "goto-hotel", &[]);
    let listing = json!({"lodging_id": "goto-seoul", "name": "GotoHotel Seoul", "nightly_rate": 120_000,
                         "currency": "KRW", "rooms": 1, "max_guests": 2, "approval_mode": "pay_first",
                         "timezone": "Asia/Seoul"});
    submit_and_approve(&t, &hotel, listing, json!({})).await;

    // The gateway is down when the first guest books: the room is held for her, unpaid, and the
    // hotel does not see the reservation.
    t.set_overloaded(true).await;
    let kim = book(&t, "guest-kim", 3, 5).await;
    let pending = t.wait_for(&kim, "status", "payment_pending", WAIT).await;
    assert_eq!(pending["approval_status"], "held");
    assert!(
        desk(&t, &hotel, &pending["position"]).await.is_empty(),
        "unpaid reaches no desk"
    );
    let (status, body) = t
        .post(
            &format!("/management/requests/{kim}/approve"),
            &hotel,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        body["type"].as_str().map(|t| t.ends_with("not-paid")),
        Some(true),
        "{body}"
    );
    let held = read(
        &t,
        &format!(
            "/lodgings/goto-seoul/availability?from={}&to={}",
            day(3),
            day(5)
        ),
        &pending["position"],
    )
    .await;
    let held: Vec<_> = held["nights"]
        .as_array()
        .expect("nights")
        .iter()
        .map(|n| (n["booked"].clone(), n["held"].clone(), n["free"].clone()))
        .collect();
    assert_eq!(
        held,
        [
            (json!(0), json!(1), json!(0)),
            (json!(0), json!(1), json!(0))
        ]
    );

    // A second guest wants the same nights: turned away at once, never charged.
    let lee = book(&t, "guest-lee", 4, 6).await;
    let turned = t.wait_for(&lee, "status", "rejected", WAIT).await;
    assert_eq!(turned["payment_status"], "none");

    // The gateway is back: the retry charges her, and now (only now) the hotel sees it.
    t.set_overloaded(false).await;
    let paid = t.wait_for(&kim, "status", "paid", WAIT).await;
    assert_eq!(desk(&t, &hotel, &paid["position"]).await, [kim.as_str()]);
    let (status, body) = t
        .post(
            &format!("/management/requests/{kim}/approve"),
            &hotel,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let confirmed = t.wait_for(&kim, "status", "confirmed", WAIT).await;
    assert_eq!(confirmed["approval_status"], "approved");
    assert_eq!(
        nights(&t, "goto-seoul", (3, 5), &confirmed["position"]).await,
        [(1, 0), (1, 0)]
    );

    // Paid, then rejected by the hotel: refunded in full.
    let park = book(&t, "guest-park", 10, 11).await;
    t.wait_for(&park, "status", "paid", WAIT).await;
    let (status, body) = t
        .post(
            &format!("/management/requests/{park}/reject"),
            &hotel,
            json!({"reason": "renovation that night"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let rejected = t.wait_for(&park, "refund_status", "refunded", WAIT).await;
    assert_eq!(rejected["status"], "rejected");
    // Paid, then withdrawn by the guest before the hotel decided: refunded in full.
    let choi = book(&t, "guest-choi", 12, 13).await;
    t.wait_for(&choi, "status", "paid", WAIT).await;
    let (status, body) = t
        .post(
            &format!("/reservations/{choi}/cancel"),
            &t.customer("guest-choi"),
            json!({"reason": "found another hotel"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let withdrawn = t.wait_for(&choi, "refund_status", "refunded", WAIT).await;
    assert_eq!(withdrawn["status"], "cancelled");

    // The gateway's own ledger: each paying guest charged once; what was not kept is refunded.
    let charges = t.sandbox_charges().await;
    // (The first guest's charge was asked again while the gateway was overloaded: same key.)
    let charged =
        charges::assert_charged_at_most(&charges, [kim.as_str(), park.as_str(), choi.as_str()], 8);
    assert_eq!(charged.len(), 3, "the turned-away guest was never charged");
    assert_eq!(charged[kim.as_str()]["amount"], 240_000);
    assert_eq!(charged[kim.as_str()]["refunded"], false);
    assert_eq!(charged[park.as_str()]["refunded_amount"], 120_000);
    assert_eq!(charged[choi.as_str()]["refunded_amount"], 120_000);
    t.stop().await;
}
