//! The payment gateway key: the secret the saga's HTTP client sends as `Authorization: Bearer <key>`
//! and the sandbox gateway checks. Never printed by `Debug`; compared in constant time.

use std::fmt;

/// Shortest key accepted (a generated key is `sk_sandbox_` and 64 hex digits).
pub const MIN_KEY_LEN: usize = 16;

/// A payment gateway key.
#[derive(Clone, PartialEq, Eq)]
pub struct GatewayKey(String);

/// The key is too short or not a header value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a payment gateway key must be {MIN_KEY_LEN} to 512 visible ASCII characters")]
pub struct InvalidGatewayKey;

impl GatewayKey {
    pub fn new(key: impl Into<String>) -> Result<Self, InvalidGatewayKey> {
        let key = key.into();
        let visible = key.bytes().all(|b| b.is_ascii_graphic());
        if !visible || key.len() < MIN_KEY_LEN || key.len() > 512 {
            return Err(InvalidGatewayKey);
        }
        Ok(Self(key))
    }

    /// The key itself, to send or to store.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `presented` is this key; the time taken does not depend on where they differ.
    #[must_use]
    pub fn matches(&self, presented: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), presented.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0_u8, |diff, (x, y)| diff | (x ^ y)) == 0
    }
}

impl fmt::Debug for GatewayKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GatewayKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_only_themselves_and_never_print() {
        let key = GatewayKey::new("sk_sandbox_0123456789abcdef").expect("key");
        assert!(key.matches("sk_sandbox_0123456789abcdef"));
        assert!(!key.matches("sk_sandbox_0123456789abcdeF"));
        assert!(!key.matches("sk_sandbox_0123456789abcde"));
        assert!(!format!("{key:?}").contains("0123"));
        assert_eq!(GatewayKey::new("short"), Err(InvalidGatewayKey));
        assert_eq!(
            GatewayKey::new("has a space in it, long"),
            Err(InvalidGatewayKey)
        );
    }
}
