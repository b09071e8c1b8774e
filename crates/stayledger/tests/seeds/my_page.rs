//! Rent-car's My Page: a driver records a profile, rents a car and cancels another rental, and sees
//! both on My Page with the profile; then asks to be forgotten: the profile reads null for good, the
//! rentals stay (they are the company's records too), and the sealed profile in the log no longer
//! opens.

use http_edge::Role;
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{read_as, submit_and_approve, WAIT};
use crate::common::{day, TestPlatform};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rent_car_my_page_shows_the_profile_and_rentals_until_the_driver_is_erased() {
    let t = TestPlatform::start().await;
    let company = t.token(Role::Admin, "seoul-rent", &[]);
    let car = json!({"lodging_id": "k5-07", "name": "K5", "nightly_rate": 60_000, "currency": "KRW",
                     "rooms": 1, "max_guests": 5, "approval_mode": "instant"});
    submit_and_approve(&t, &company, car, json!({})).await;

    let driver = t.customer("driver-park");
    let profile =
        json!({"name": "Park Jiho", "email": "jiho@example.kr", "phone": "010-2222-3333"});
    let (status, body) = t
        .call(Method::PUT, "/me/profile", Some(&driver), Some(profile))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let mut rentals = Vec::new();
    for (from, to) in [(2, 4), (9, 10)] {
        let rental = json!({"lodging_id": "k5-07", "check_in": day(from).to_string(),
                            "check_out": day(to).to_string(), "guests": 1});
        let (status, body) = t.post("/reservations", &driver, rental).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let id = body["id"].as_str().expect("id").to_string();
        t.wait_for(&id, "status", "confirmed", WAIT).await;
        rentals.push(id);
    }
    let (status, body) = t
        .post(
            &format!("/reservations/{}/cancel", rentals[1]),
            &driver,
            json!({"reason": "plans changed"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let refunded = t
        .wait_for(&rentals[1], "refund_status", "refunded", WAIT)
        .await;

    let page = read_as(&t, &driver, "/me", &refunded["position"]).await;
    assert_eq!(
        (&page["name"], &page["phone"], &page["erased"]),
        (&json!("Park Jiho"), &json!("010-2222-3333"), &json!(false))
    );
    assert_eq!(
        page["reservations"],
        json!({"cancelled": 1, "confirmed": 1})
    );
    let history = read_as(&t, &driver, "/reservations", &refunded["position"]).await;
    assert_eq!(
        history["items"].as_array().map(Vec::len),
        Some(2),
        "{history}"
    );

    // Forgotten: the person is gone from My Page, the rentals stay.
    let (status, body) = t.post("/me/erase", &driver, json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let page = read_as(&t, &driver, "/me", &body["position"]).await;
    assert_eq!(
        page,
        json!({"customer_id": "driver-park", "name": null, "email": null, "phone": null,
               "erased": true, "reservations": {"cancelled": 1, "confirmed": 1}})
    );
    let sealed = t
        .platform
        .log
        .read_stream("customer-driver-park", 0, 10)
        .await
        .expect("the customer's stream");
    let name = sealed[0].data["profile"]["name"].as_str().expect("sealed");
    assert!(!name.contains("Park Jiho"), "{name}");
    assert!(
        matches!(
            t.platform.keys.key("driver-park").await,
            Ok(keys::KeyState::Destroyed)
        ),
        "no key opens it any more"
    );
    t.stop().await;
}
