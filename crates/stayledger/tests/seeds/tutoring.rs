//! The tutoring store: a seller lists a course, the platform admin approves it with a fee, buyers
//! buy seats, the course ends and the seller is paid what was paid less the fee, seen in `/payouts`;
//! a buyer who withdrew is refunded and nothing of theirs is paid out. Then the money is checked
//! against the sandbox gateway's own ledger: charged - refunded = paid out + the platform's fee.

use http_edge::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::{read_as, submit_and_approve, WAIT};
use crate::common::{day, TestPlatform};

const PRICE: i64 = 90_001;
const FEE_BPS: i64 = 1_500;

/// A buyer takes a seat of the session `offset` days from today; the reservation's id.
async fn buy(t: &TestPlatform, buyer: &str, offset: i64) -> String {
    let seat = json!({"lodging_id": "rust-101", "check_in": day(offset).to_string(),
                      "check_out": day(offset + 1).to_string(), "guests": 1});
    let (status, body) = t.post("/reservations", &t.customer(buyer), seat).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    body["id"].as_str().expect("id").to_string()
}

fn sum(items: &[Value], field: &str) -> i64 {
    items.iter().filter_map(|i| i[field].as_i64()).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tutoring_store_a_seller_is_paid_what_buyers_paid_less_the_platform_fee() {
    let t = TestPlatform::start().await;
    let seller = t.token(Role::Admin, "tutor-park", &[]);
    let root = t.platform_admin();
    let course = json!({"lodging_id": "rust-101", "name": "Rust in a day", "nightly_rate": PRICE,
                        "currency": "KRW", "rooms": 20, "max_guests": 1, "approval_mode": "instant"});
    submit_and_approve(&t, &seller, course, json!({ "fee_bps": FEE_BPS })).await;

    // Two buyers, of today's session and of next week's; the second withdraws before it.
    let kim = buy(&t, "buyer-kim", 0).await;
    let lee = buy(&t, "buyer-lee", 7).await;
    t.wait_for(&kim, "status", "confirmed", WAIT).await;
    t.wait_for(&lee, "status", "confirmed", WAIT).await;
    let (status, body) = t
        .post(
            &format!("/reservations/{lee}/cancel"),
            &t.customer("buyer-lee"),
            json!({"reason": "cannot come"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    t.wait_for(&lee, "refund_status", "refunded", WAIT).await;

    // The session is over: the seller completes it, and is paid.
    let (status, body) = t
        .post(
            &format!("/management/requests/{kim}/complete"),
            &seller,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let paid = t.wait_for(&kim, "payout_status", "sent", WAIT).await;
    assert_eq!(paid["status"], "completed");
    let refunded = t.wait_for(&lee, "payout_status", "none", WAIT).await;
    assert_eq!(refunded["status"], "cancelled");

    let fee = PRICE * FEE_BPS / 10_000;
    let net = PRICE - fee;
    let payouts = read_as(&t, &seller, "/payouts", &paid["position"]).await;
    let items = payouts["items"].as_array().expect("items").clone();
    assert_eq!(
        items.len(),
        1,
        "only the completed seat is paid out: {payouts}"
    );
    let payout = &items[0];
    assert_eq!(
        (
            &payout["reservation_id"],
            &payout["host_id"],
            &payout["status"]
        ),
        (&json!(kim), &json!("tutor-park"), &json!("sent"))
    );
    assert_eq!(
        (&payout["gross"], &payout["fee"], &payout["net"]),
        (&json!(PRICE), &json!(fee), &json!(net))
    );
    let summary = read_as(&t, &seller, "/payouts/summary", &paid["position"]).await;
    assert_eq!(
        summary["items"],
        json!([{"currency": "KRW", "count": 1, "gross": PRICE, "fee": fee, "net": net}])
    );
    // Another host sees none of it.
    let other = t.token(Role::Admin, "tutor-choi", &[]);
    let theirs = read_as(&t, &other, "/payouts", &paid["position"]).await;
    assert_eq!(theirs["items"], json!([]));

    // The gateway's own ledger agrees to the won.
    let charges = t.sandbox_charges().await;
    let sent = t.sandbox_payouts().await;
    let charged = sum(&charges, "amount");
    let refunded = sum(&charges, "refunded_amount");
    assert_eq!((charged, refunded), (2 * PRICE, PRICE));
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        (&sent[0]["payee"], &sent[0]["amount"]),
        (&json!("tutor-park"), &json!(net))
    );
    let all = read_as(&t, &root, "/payouts/summary", &paid["position"]).await;
    let platform_fee = all["items"][0]["fee"].as_i64().expect("fee");
    assert_eq!(charged - refunded, sum(&sent, "amount") + platform_fee);
    t.stop().await;
}
