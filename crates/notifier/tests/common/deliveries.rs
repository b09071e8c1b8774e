//! A pending delivery as the dispatcher queues one, for the notifier's tests.

use chrono::Utc;
use notifier::{Delivery, DeliveryState};
use uuid::Uuid;

/// A new (pending, untried) delivery of entry `seq` to `subscription_id`.
pub fn delivery(subscription_id: Uuid, seq: u64) -> Delivery {
    Delivery {
        delivery_id: Delivery::id_for(subscription_id, seq),
        subscription_id,
        seq,
        event_id: Uuid::new_v4(),
        event_type: "reservation.confirmed".into(),
        reservation_id: Uuid::from_u128(u128::from(seq)),
        position: seq / 4,
        body: format!(r#"{{"type":"reservation.confirmed","seq":{seq}}}"#),
        state: DeliveryState::Pending,
        attempts: 0,
        last_status_code: None,
        last_error: None,
        queued_at: Utc::now(),
        first_attempt_at: None,
        next_attempt_at: None,
        settled_at: None,
    }
}
