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

/// Active ISO 4217 currency codes (no funds, precious metals or test codes): the currencies a lodging
/// may be priced in and the sandbox gateway takes.
pub const CURRENCIES: [&str; 156] = [
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD",
    "CDF", "CHF", "CLP", "CNY", "COP", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD",
    "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ",
    "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD",
    "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR",
    "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR",
    "MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN",
    "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR",
    "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB",
    "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS",
    "VES", "VND", "VUV", "WST", "XAF", "XCD", "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG",
];

/// Whether `code` is one of [`CURRENCIES`].
#[must_use]
pub fn is_currency(code: &str) -> bool {
    CURRENCIES.binary_search(&code).is_ok()
}

/// An idempotency key (the `Idempotency-Key` header, the sandbox's `idempotency_key`): 1 to
/// [`MAX_KEY_LEN`] visible ASCII characters or spaces, not only spaces.
#[must_use]
pub fn is_idempotency_key(text: &str) -> bool {
    text.len() <= MAX_KEY_LEN
        && text.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
        && text.bytes().any(|b| b.is_ascii_graphic())
}

/// The JSON Schema pattern of [`is_idempotency_key`] (with `maxLength` [`MAX_KEY_LEN`]).
pub const IDEMPOTENCY_KEY_PATTERN: &str = "^[ -~]*[!-~][ -~]*$";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currencies_are_sorted_unique_iso_codes() {
        assert!(CURRENCIES.windows(2).all(|w| w[0] < w[1]));
        assert!(CURRENCIES
            .iter()
            .all(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase())));
        assert!(is_currency("KRW") && is_currency("USD") && is_currency(DEFAULT_CURRENCY));
        for code in ["AAA", "krw", "XTS", "XAU", "KR", ""] {
            assert!(!is_currency(code), "{code}");
        }
    }

    #[test]
    fn idempotency_keys_are_visible_ascii() {
        assert!(is_idempotency_key("charge-1") && is_idempotency_key(" a b "));
        let long = "k".repeat(MAX_KEY_LEN + 1);
        for bad in ["", "   ", "caf\u{e9}", "a\tb", long.as_str()] {
            assert!(!is_idempotency_key(bad), "{bad:?}");
        }
    }
}
