//! Bounds on the shape of request fields: checked when a body is read (400 naming the field) and
//! published in the OpenAPI document, so both come from here. Rules about what a valid stay or
//! lodging is (nights, guests per lodging, dates ordered) are the domain's and answer 422.

/// Longest free-text field (reasons).
pub const MAX_TEXT_CHARS: usize = 500;
/// Longest `Idempotency-Key`.
pub const MAX_KEY_LEN: usize = 255;
/// Longest lodging name.
pub const MAX_NAME_CHARS: usize = 200;
/// Highest nightly rate, in the currency's minor unit.
pub const MAX_NIGHTLY_RATE: i64 = 1_000_000_000_000;
/// Most rooms of one lodging.
pub const MAX_ROOMS: i64 = 10_000;
/// Most guests of one request, and of one lodging's `max_guests`.
pub const MAX_GUESTS: i64 = 100;
/// `max_guests` of a lodging registered without one.
pub const DEFAULT_MAX_GUESTS: u32 = 2;
/// Currency of a lodging registered without one.
pub const DEFAULT_CURRENCY: &str = "KRW";
