//! Records the notifier's tests start from: a customer's subscription (its secret sealed under no
//! key: for the store alone) and a pending delivery as the dispatcher queues one.
#![allow(dead_code)] // each test crate uses its own part

use chrono::Utc;
use notifier::{Delivery, DeliveryState, Owner, OwnerRole, Subscription};
use uuid::Uuid;

/// A new subscription of `customer-1`'s, to every event type, made now.
pub fn subscription() -> Subscription {
    Subscription {
        id: Uuid::new_v4(),
        owner: Owner {
            role: OwnerRole::Customer,
            sub: "customer-1".into(),
            lodgings: vec![],
        },
        url: "https://hooks.example.com/1".into(),
        events: vec![],
        sealed_secret: "sealed".into(),
        from_position: 0,
        created_at: Utc::now(),
    }
}

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
