//! A deterministic event history for the conformance suite: positions, stream versions, event ids
//! and `recorded_at` all follow from the order the steps are written in.

use std::collections::HashMap;

use chrono::{DateTime, Days, NaiveDate, TimeDelta, Utc};
use domain::customer::{CustomerEvent, SealedProfile};
use domain::lodging::{ApprovalMode, LodgingEvent, LodgingProfile};
use domain::payment::PaymentEvent;
use domain::payout::PayoutEvent;
use domain::reservation::{ReservationEvent, ReservationRequested};
use uuid::Uuid;

use crate::{AnyEvent, ViewEvent};

/// The nightly rate of every lodging of the suite (in its currency: KRW unless registered with
/// [`Timeline::register_in`]).
pub const NIGHTLY_RATE: i64 = 100_000;

/// Builds the events of a realistic history, in log order.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    events: Vec<ViewEvent>,
    versions: HashMap<String, u64>,
    /// Each reservation's total and currency.
    prices: HashMap<Uuid, (i64, String)>,
    /// The currency of each lodging registered with another than KRW.
    currencies: HashMap<String, String>,
    reservations: u128,
}

/// The first night of the suite's stays (day `n` of the suite is `day(n)`).
#[must_use]
pub fn day(n: u64) -> NaiveDate {
    NaiveDate::from_ymd_opt(2030, 2, 1)
        .and_then(|d| d.checked_add_days(Days::new(n)))
        .unwrap_or(NaiveDate::MAX)
}

/// `recorded_at` of the event at `position`: one second per position from 2030-01-01.
#[must_use]
pub fn recorded_at(position: u64) -> DateTime<Utc> {
    let start = DateTime::<Utc>::from_timestamp(1_893_456_000, 0).unwrap_or_default();
    start + TimeDelta::seconds(i64::try_from(position).unwrap_or(0))
}

impl Timeline {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Every event so far, in log order.
    #[must_use]
    pub fn events(&self) -> &[ViewEvent] {
        &self.events
    }

    /// Position of the last event so far.
    #[must_use]
    pub fn head(&self) -> u64 {
        self.events.last().map_or(0, |e| e.position)
    }

    fn push(&mut self, stream: String, event: AnyEvent) -> &ViewEvent {
        let position = self.head() + 1;
        let version = self.versions.entry(stream.clone()).or_insert(0);
        let this_version = *version;
        *version += 1;
        self.events.push(ViewEvent {
            position,
            stream,
            version: this_version,
            event_id: Uuid::from_u128(u128::from(position)),
            recorded_at: recorded_at(position),
            event,
        });
        &self.events[self.events.len() - 1]
    }

    pub fn reservation_event(&mut self, id: Uuid, event: ReservationEvent) -> &ViewEvent {
        let event = AnyEvent::Reservation {
            reservation_id: id,
            event,
        };
        self.push(format!("reservation-{id}"), event)
    }

    pub fn lodging_event(&mut self, lodging_id: &str, event: LodgingEvent) -> &ViewEvent {
        let stream = format!("lodging-{lodging_id}");
        let event = AnyEvent::Lodging {
            lodging_id: lodging_id.to_string(),
            event,
        };
        self.push(stream, event)
    }

    pub fn payment_event(&mut self, id: Uuid, event: PaymentEvent) -> &ViewEvent {
        let event = AnyEvent::Payment {
            reservation_id: id,
            event,
        };
        self.push(format!("payment-{id}"), event)
    }

    pub fn payout_event(&mut self, id: Uuid, event: PayoutEvent) -> &ViewEvent {
        let event = AnyEvent::Payout {
            reservation_id: id,
            event,
        };
        self.push(format!("payout-{id}"), event)
    }

    pub fn customer_event(&mut self, customer_id: &str, event: CustomerEvent) -> &ViewEvent {
        let stream = format!("customer-{customer_id}");
        let event = AnyEvent::Customer {
            customer_id: customer_id.to_string(),
            event,
        };
        self.push(stream, event)
    }

    /// `customer_id` records a profile; its fields stand for sealed text (the views never open it).
    pub fn profile(&mut self, customer_id: &str, name: &str, phone: &str) -> u64 {
        let profile = SealedProfile {
            name: format!("v1:sealed-{name}"),
            email: format!("v1:sealed-{customer_id}@mail"),
            phone: format!("v1:sealed-{phone}"),
        };
        let event = CustomerEvent::CustomerProfileRecorded { profile };
        self.customer_event(customer_id, event).position
    }

    /// `customer_id` is erased.
    pub fn erase(&mut self, customer_id: &str) -> u64 {
        let event = CustomerEvent::CustomerErased {
            erased_by: customer_id.to_string(),
            reason: "asked".to_string(),
        };
        self.customer_event(customer_id, event).position
    }

    pub fn saga_event(&mut self, id: Uuid) -> &ViewEvent {
        self.push(format!("saga-{id}"), AnyEvent::Saga)
    }

    /// Register a manual-approval lodging named after its id.
    pub fn register(&mut self, lodging_id: &str, rooms: u32) {
        self.register_in(lodging_id, rooms, "KRW");
    }

    /// Register a manual-approval lodging priced in `currency`.
    pub fn register_in(&mut self, lodging_id: &str, rooms: u32, currency: &str) {
        if currency != "KRW" {
            self.currencies
                .insert(lodging_id.to_string(), currency.to_string());
        }
        let profile = LodgingProfile {
            fee_bps: 1_000,
            lodging_id: lodging_id.to_string(),
            name: format!("Stay {lodging_id}"),
            nightly_rate: NIGHTLY_RATE,
            currency: currency.to_string(),
            rooms,
            max_guests: 4,
            approval_mode: ApprovalMode::Manual,
            admin_id: format!("admin-{lodging_id}"),
            timezone: domain::Tz::Asia__Seoul,
        };
        self.lodging_event(lodging_id, LodgingEvent::LodgingRegistered(profile));
    }

    /// A customer requests `nights` nights from `check_in`; the saga forwards it to the lodging.
    pub fn request(
        &mut self,
        lodging_id: &str,
        customer_id: &str,
        check_in: NaiveDate,
        nights: u32,
    ) -> Uuid {
        self.request_rooms(lodging_id, customer_id, (check_in, nights), 1)
    }

    /// As [`Timeline::request`], for `rooms` rooms each night.
    pub fn request_rooms(
        &mut self,
        lodging_id: &str,
        customer_id: &str,
        (check_in, nights): (NaiveDate, u32),
        rooms: u32,
    ) -> Uuid {
        self.reservations += 1;
        let id = Uuid::from_u128(0xA000_0000 + self.reservations);
        let check_out = check_in
            .checked_add_days(Days::new(u64::from(nights)))
            .unwrap_or(check_in);
        let total_amount = NIGHTLY_RATE * i64::from(nights) * i64::from(rooms);
        let currency = self
            .currencies
            .get(lodging_id)
            .map_or("KRW", String::as_str)
            .to_string();
        self.prices.insert(id, (total_amount, currency.clone()));
        let requested = ReservationRequested {
            timezone: domain::WAVE1_TIMEZONE,
            rooms,
            reservation_id: id,
            customer_id: customer_id.to_string(),
            lodging_id: lodging_id.to_string(),
            check_in,
            check_out,
            guests: 2,
            nights,
            total_amount,
            currency,
        };
        self.reservation_event(id, ReservationEvent::ReservationRequested(requested));
        self.saga_event(id);
        let forwarded = LodgingEvent::ApprovalRequested {
            reservation_id: id,
            check_in,
            check_out,
            guests: 2,
            rooms,
        };
        self.lodging_event(lodging_id, forwarded);
        id
    }

    fn amount(&self, id: Uuid) -> i64 {
        self.price(id).0
    }

    /// The total of reservation `id` and its currency.
    #[must_use]
    pub fn price(&self, id: Uuid) -> (i64, String) {
        self.prices
            .get(&id)
            .cloned()
            .unwrap_or_else(|| (0, "KRW".to_string()))
    }

    /// The admin grants; the saga records the approval and requests the payment.
    pub fn grant(&mut self, lodging_id: &str, id: Uuid) {
        let granted_by = format!("admin-{lodging_id}");
        self.lodging_event(
            lodging_id,
            LodgingEvent::ApprovalGranted {
                reservation_id: id,
                granted_by: granted_by.clone(),
            },
        );
        self.saga_event(id);
        self.reservation_event(
            id,
            ReservationEvent::ReservationApproved {
                approved_by: granted_by,
            },
        );
        let (amount, currency) = self.price(id);
        self.payment_event(
            id,
            PaymentEvent::PaymentRequested {
                reservation_id: id,
                amount,
                currency,
            },
        );
    }

    /// The gateway takes the payment; the reservation is confirmed.
    pub fn pay(&mut self, id: Uuid) {
        let amount = self.amount(id);
        let payment_id = format!("pay-{id}");
        let gateway_ref = format!("ch-{id}");
        self.payment_event(
            id,
            PaymentEvent::PaymentCompleted {
                payment_id: payment_id.clone(),
                gateway_ref,
                amount,
            },
        );
        self.reservation_event(
            id,
            ReservationEvent::ReservationConfirmed { payment_id, amount },
        );
    }

    /// The gateway is overloaded: the payment is deferred.
    pub fn defer(&mut self, id: Uuid) {
        let retry_at = recorded_at(self.head() + 60);
        let reason = "gateway overloaded".to_string();
        self.payment_event(
            id,
            PaymentEvent::PaymentDeferred {
                reason: reason.clone(),
                attempt: 1,
                retry_at,
            },
        );
        self.reservation_event(
            id,
            ReservationEvent::ReservationPaymentPending { reason, retry_at },
        );
    }

    /// The payment fails for good; the rooms are released.
    pub fn fail_payment(&mut self, lodging_id: &str, id: Uuid) {
        let reason = "card declined".to_string();
        self.payment_event(
            id,
            PaymentEvent::PaymentFailed {
                reason: reason.clone(),
            },
        );
        self.reservation_event(
            id,
            ReservationEvent::ReservationPaymentFailed {
                reason: reason.clone(),
            },
        );
        self.lodging_event(
            lodging_id,
            LodgingEvent::ApprovalWithdrawn {
                reservation_id: id,
                reason,
            },
        );
    }

    /// The customer cancels a confirmed stay; the rooms are released and the payment refunded.
    pub fn cancel_confirmed(&mut self, lodging_id: &str, id: Uuid) {
        let amount = self.amount(id);
        let reason = "plans changed".to_string();
        let cancelled = ReservationEvent::ReservationCancelled {
            cancelled_by: "customer".into(),
            reason: reason.clone(),
            refund_due: amount,
        };
        self.reservation_event(id, cancelled);
        self.lodging_event(
            lodging_id,
            LodgingEvent::ApprovalWithdrawn {
                reservation_id: id,
                reason,
            },
        );
        self.payment_event(
            id,
            PaymentEvent::PaymentRefunded {
                amount,
                gateway_ref: format!("rf-{id}"),
            },
        );
        self.reservation_event(id, ReservationEvent::ReservationRefunded { amount });
    }

    /// The admin rejects; the reservation is rejected.
    pub fn deny(&mut self, lodging_id: &str, id: Uuid) {
        let reason = "closed for renovation".to_string();
        let denied = LodgingEvent::ApprovalDenied {
            reason: reason.clone(),
            reservation_id: id,
            denied_by: format!("admin-{lodging_id}"),
        };
        self.lodging_event(lodging_id, denied);
        self.reservation_event(id, ReservationEvent::ReservationRejected { reason });
    }

    /// Nobody decided in time: the request is withdrawn and the reservation expires.
    pub fn expire(&mut self, lodging_id: &str, id: Uuid) {
        let reason = "approval deadline passed".to_string();
        self.lodging_event(
            lodging_id,
            LodgingEvent::ApprovalWithdrawn {
                reservation_id: id,
                reason,
            },
        );
        self.reservation_event(id, ReservationEvent::ReservationExpired {});
    }
}
