//! What the webhooks keep: subscriptions (an owner, a URL, the events it takes, its secret sealed)
//! and deliveries (one per subscription and status change, with its attempts). Pure data and the
//! rules that need no store: which events a subscription takes, a delivery's id.

use chrono::{DateTime, Utc};
use readmodel::{ReservationStatus, RESERVATION_STATUSES};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Who may subscribe: a customer (their own reservations) or an admin (their lodgings').
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OwnerRole {
    Customer,
    Admin,
}

/// The subscriber as their token named them when they subscribed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub role: OwnerRole,
    pub sub: String,
    /// An admin's `lodgings` claim (`*` = every lodging); empty for a customer.
    pub lodgings: Vec<String>,
}

impl Owner {
    /// Whether this owner follows a reservation of `customer_id` at `lodging_id` whose lodging's
    /// catalog admin is `lodging_admin` (`None`: no admin on file).
    #[must_use]
    pub fn follows(
        &self,
        customer_id: &str,
        lodging_id: &str,
        lodging_admin: Option<&str>,
    ) -> bool {
        match self.role {
            OwnerRole::Customer => self.sub == customer_id,
            OwnerRole::Admin => {
                lodging_admin == Some(self.sub.as_str())
                    || self
                        .lodgings
                        .iter()
                        .any(|l| l == lodging_id || l == http_edge::ALL_LODGINGS)
            }
        }
    }
}

/// One webhook subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: Uuid,
    pub owner: Owner,
    pub url: String,
    /// The event types it takes (`reservation.<status>`), in the order given; every one if empty.
    pub events: Vec<String>,
    /// The signing secret, sealed under the key store's key `webhook:{id}`.
    pub sealed_secret: String,
    /// Changes at or before this log position are not delivered to it (the log head when it
    /// was made), so a rebuilt inbox never sends it older news.
    pub from_position: u64,
    pub created_at: DateTime<Utc>,
}

impl Subscription {
    /// Whether it takes events of `event_type`.
    #[must_use]
    pub fn takes(&self, event_type: &str) -> bool {
        self.events.is_empty() || self.events.iter().any(|e| e == event_type)
    }

    /// The key store's name for the key its secret is sealed under.
    #[must_use]
    pub fn key_name(id: Uuid) -> String {
        format!("webhook:{id}")
    }
}

/// The event type of a change to `status`: `reservation.<status>`.
#[must_use]
pub fn event_type(status: ReservationStatus) -> String {
    format!("reservation.{}", status.as_str())
}

/// Every event type a subscription may ask for.
#[must_use]
pub fn event_types() -> Vec<String> {
    RESERVATION_STATUSES
        .iter()
        .map(|status| event_type(*status))
        .collect()
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Queued, not tried yet.
    Pending,
    /// Tried and failed in a way worth retrying; `next_attempt_at` says when.
    Retrying,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up on (retried past the policy, or refused outright): an owner may re-drive it.
    Parked,
}

impl DeliveryState {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Retrying => "retrying",
            Self::Delivered => "delivered",
            Self::Parked => "parked",
        }
    }

    /// Still to be sent (pending or retrying).
    #[must_use]
    pub fn is_open(self) -> bool {
        matches!(self, Self::Pending | Self::Retrying)
    }
}

/// One delivery of one status change to one subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Derived from the subscription and `seq`: queuing it twice makes one delivery.
    pub delivery_id: Uuid,
    pub subscription_id: Uuid,
    /// The inbox entry's order (log position x 4 + kind): the order deliveries go out in.
    pub seq: u64,
    pub event_id: Uuid,
    /// `reservation.<status>`.
    pub event_type: String,
    pub reservation_id: Uuid,
    pub position: u64,
    /// The exact JSON sent (the same bytes at every attempt; only the signature's time changes).
    /// A store may keep it apart from the rest (SQLite: written once), so a document without it
    /// reads as empty.
    #[serde(default)]
    pub body: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub queued_at: DateTime<Utc>,
    /// The first attempt since it was queued or re-driven: the parking policy counts from it.
    pub first_attempt_at: Option<DateTime<Utc>>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When it was delivered or parked.
    pub settled_at: Option<DateTime<Utc>>,
}

impl Delivery {
    /// The delivery id of entry `seq` for `subscription_id`: a UUID v8 whose first 48 bits are
    /// `seq` (so ids, as bytes and as text, follow the order deliveries are queued in, and the
    /// stores' indexes of them grow at their end, like the time-ordered reservation ids), the rest
    /// a name-based hash of the subscription and `seq` (UUID v5's, its version and variant bits
    /// replaced). Deliveries queued before kept the v5 ids they were sent with.
    #[must_use]
    pub fn id_for(subscription_id: Uuid, seq: u64) -> Uuid {
        let mut bytes = *Uuid::new_v5(&subscription_id, &seq.to_be_bytes()).as_bytes();
        bytes[..6].copy_from_slice(&seq.to_be_bytes()[2..]);
        uuid::Builder::from_custom_bytes(bytes).into_uuid()
    }
}

/// What a re-drive found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redrive {
    /// It was parked and is queued again (its attempts start over).
    Queued(Box<Delivery>),
    /// It is not parked (nothing to re-drive): its state.
    NotParked(DeliveryState),
    /// No such delivery of that subscription.
    NotFound,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(role: OwnerRole, sub: &str, lodgings: &[&str]) -> Owner {
        Owner {
            role,
            sub: sub.into(),
            lodgings: lodgings.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn a_customer_follows_only_their_own_reservations() {
        let c = owner(OwnerRole::Customer, "c-1", &[]);
        assert!(c.follows("c-1", "inn", None));
        assert!(!c.follows("c-2", "inn", Some("c-1")));
    }

    #[test]
    fn an_admin_follows_lodgings_of_their_claim_their_catalog_entries_or_all() {
        let a = owner(OwnerRole::Admin, "host", &["inn"]);
        assert!(a.follows("c-1", "inn", None));
        assert!(a.follows("c-1", "barn", Some("host")));
        assert!(!a.follows("c-1", "barn", Some("other")));
        assert!(!a.follows("c-1", "barn", None));
        let platform = owner(OwnerRole::Admin, "root", &["*"]);
        assert!(platform.follows("c-9", "anywhere", None));
    }

    #[test]
    fn delivery_ids_follow_from_subscription_and_seq() {
        let (s1, s2) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(Delivery::id_for(s1, 8), Delivery::id_for(s1, 8));
        assert_ne!(Delivery::id_for(s1, 8), Delivery::id_for(s1, 12));
        assert_ne!(Delivery::id_for(s1, 8), Delivery::id_for(s2, 8));
        assert_eq!(Delivery::id_for(s1, 8).get_version_num(), 8);
        assert_eq!(
            Delivery::id_for(s1, 8).get_variant(),
            uuid::Variant::RFC4122
        );
    }

    #[test]
    fn delivery_ids_sort_in_seq_order_across_subscriptions() {
        let subscriptions: Vec<Uuid> = (0..16).map(|_| Uuid::new_v4()).collect();
        let seqs = [
            1u64,
            2,
            255,
            256,
            65_535,
            65_536,
            4_000_000_003,
            (1 << 48) - 1,
        ];
        let mut ids = Vec::new();
        for &seq in &seqs {
            for &s in &subscriptions {
                ids.push((seq, Delivery::id_for(s, seq).to_string()));
            }
        }
        let mut by_text = ids.clone();
        by_text.sort_by(|a, b| a.1.cmp(&b.1));
        let order: Vec<u64> = by_text.iter().map(|(seq, _)| *seq).collect();
        let mut expected = order.clone();
        expected.sort_unstable();
        assert_eq!(order, expected, "the text order is the seq order");
        let distinct: std::collections::HashSet<_> = ids.iter().map(|(_, id)| id).collect();
        assert_eq!(distinct.len(), ids.len(), "one id per subscription and seq");
    }

    #[test]
    fn an_empty_event_list_takes_every_type() {
        let mut s = Subscription {
            id: Uuid::new_v4(),
            owner: owner(OwnerRole::Customer, "c", &[]),
            url: "https://example.com/h".into(),
            events: vec![],
            sealed_secret: String::new(),
            from_position: 0,
            created_at: Utc::now(),
        };
        assert!(s.takes("reservation.confirmed"));
        s.events = vec!["reservation.cancelled".into()];
        assert!(s.takes("reservation.cancelled"));
        assert!(!s.takes("reservation.confirmed"));
        assert_eq!(event_types().len(), RESERVATION_STATUSES.len());
        assert_eq!(
            event_type(ReservationStatus::Confirmed),
            "reservation.confirmed"
        );
    }
}
