//! The keyed side of the tamper check (docs/decisions/0019): a secret [`LogKey`] kept outside the log,
//! the MAC chain it keys over the global log, and the signed head ([`Anchor`]) of that chain.
//!
//! The per-stream SHA-256 chain ([`crate::hash`]) can be recomputed by anyone who can write the log.
//! The MAC chain cannot without the key: `mac(p) = HMAC-SHA256(key, "stayledger-mac-v1" || mac(p-1) ||
//! p as big-endian u64 || hash(p))`, with `mac(first keyed position - 1)` all zeros. It binds every
//! event's content (through its stream hash) and its global position to everything before it, so an
//! edit, a removal in the middle or a reordering breaks it at the first position touched. What the
//! chain alone cannot show is a removal of the last events: the signed head, a record of the last
//! position and its MAC kept outside the log file and rewritten as the log grows, shows that; an
//! anchor (the same record, kept by an auditor elsewhere) shows a rollback of everything.
//!
//! HMAC-SHA256 is written out here (RFC 2104) over `sha2`, with the key's inner and outer blocks
//! absorbed once, so a MAC costs about what a SHA-256 of the same bytes costs.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::hash::VerifyReport;
use crate::LogError;

/// A MAC of the chain.
pub type Mac = [u8; 32];

const BLOCK: usize = 64;
const EVENT_DOMAIN: &[u8] = b"stayledger-mac-v1";
const HEAD_DOMAIN: &[u8] = b"stayledger-head-v1";

/// The secret that keys the MAC chain and signs its head. Never printed.
#[derive(Clone)]
pub struct LogKey {
    inner: Sha256,
    outer: Sha256,
}

impl std::fmt::Debug for LogKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogKey(..)")
    }
}

impl LogKey {
    /// A key from secret bytes (at least 32 are expected; longer than a block is hashed first).
    #[must_use]
    pub fn new(secret: &[u8]) -> Self {
        let mut block = [0u8; BLOCK];
        if secret.len() > BLOCK {
            block[..32].copy_from_slice(&Sha256::digest(secret));
        } else {
            block[..secret.len()].copy_from_slice(secret);
        }
        let pad = |byte: u8| {
            let mut hasher = Sha256::new();
            hasher.update(block.map(|b| b ^ byte));
            hasher
        };
        Self {
            inner: pad(0x36),
            outer: pad(0x5c),
        }
    }

    /// HMAC-SHA256 of the concatenation of `parts`.
    #[must_use]
    pub fn mac(&self, parts: &[&[u8]]) -> Mac {
        let mut inner = self.inner.clone();
        for part in parts {
            inner.update(part);
        }
        let mut outer = self.outer.clone();
        outer.update(inner.finalize());
        outer.finalize().into()
    }

    /// The MAC of the event at `position` whose stream hash is `hash`, chained onto `prev`.
    #[must_use]
    pub fn chain(&self, prev: &Mac, position: u64, hash: &str) -> Mac {
        self.mac(&[EVENT_DOMAIN, prev, &position.to_be_bytes(), hash.as_bytes()])
    }
}

/// Equal MACs, compared in constant time.
#[must_use]
pub fn same_mac(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The signed head of the MAC chain: the last position, its event and MAC, where the keyed events
/// begin, and a signature over all of it with the log's key. The log keeps the newest one beside its
/// file; an auditor keeps one elsewhere and hands it back to the check. An anchor made by hand from a
/// position and MAC alone (no signature) is checked the same way, its signature aside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    /// The last position of the log when it was made (0: an empty log).
    pub position: u64,
    /// The stream and version of the event at `position` (empty / 0 for an empty log).
    #[serde(default)]
    pub stream: String,
    #[serde(default)]
    pub version: u64,
    /// Hex MAC of the event at `position`; `None` if that event was written before the key existed.
    pub mac: Option<String>,
    /// The first position whose event carries a MAC (events before it were written before the key).
    #[serde(default)]
    pub keyed_from: u64,
    /// Hex HMAC of the fields above with the log's key.
    #[serde(default)]
    pub signature: Option<String>,
}

impl Anchor {
    /// The head at `position` (`mac` of its event, if keyed), signed with `key`.
    #[must_use]
    pub fn sign(
        key: &LogKey,
        position: u64,
        stream: &str,
        version: u64,
        mac: Option<&Mac>,
        keyed_from: u64,
    ) -> Self {
        let mut anchor = Self {
            position,
            stream: stream.to_owned(),
            version,
            mac: mac.map(hex::encode),
            keyed_from,
            signature: None,
        };
        anchor.signature = Some(hex::encode(anchor.signature_with(key)));
        anchor
    }

    /// Whether the signature is there and was made with `key` over these fields.
    #[must_use]
    pub fn signed_by(&self, key: &LogKey) -> bool {
        let Some(signature) = self.signature.as_deref().and_then(|s| hex::decode(s).ok()) else {
            return false;
        };
        same_mac(&signature, &self.signature_with(key))
    }

    /// The MAC of the event at `position` as bytes; `Err` if it is not hex.
    pub fn mac_bytes(&self) -> Result<Option<Vec<u8>>, LogError> {
        self.mac
            .as_deref()
            .map(hex::decode)
            .transpose()
            .map_err(|e| LogError::Corrupt(format!("the anchor's mac is not hex: {e}")))
    }

    fn signature_with(&self, key: &LogKey) -> Mac {
        let mac = self.mac.as_deref().unwrap_or("-");
        key.mac(&[
            HEAD_DOMAIN,
            &self.position.to_be_bytes(),
            &(self.stream.len() as u64).to_be_bytes(),
            self.stream.as_bytes(),
            &self.version.to_be_bytes(),
            mac.as_bytes(),
            &self.keyed_from.to_be_bytes(),
        ])
    }
}

/// What a log offers beyond the per-stream chain: the keyed check and its signed head. The embedded
/// log has it ([`crate::SqliteEventLog`]); EventStoreDB does not ([`crate::verify_log`] checks its
/// per-stream chains only).
#[async_trait]
pub trait Integrity: Send + Sync + 'static {
    /// Check the per-stream chains, the positions, the MAC chain and the signed head, and, if given,
    /// that the log still holds `anchor`'s event at its position.
    async fn verify_keyed(&self, anchor: Option<&Anchor>) -> Result<VerifyReport, LogError>;

    /// The signed head of the log as it is now (for an auditor to keep). Fails without a key.
    async fn anchor(&self) -> Result<Anchor, LogError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2: key "Jefe", data "what do ya want for nothing?".
        let key = LogKey::new(b"Jefe");
        assert_eq!(
            hex::encode(key.mac(&[b"what do ya want ", b"for nothing?"])),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than a block is hashed first.
        let long = LogKey::new(&[0xaa; 131]);
        assert_eq!(
            hex::encode(long.mac(&[b"Test Using Larger Than Block-Size Key - Hash Key First"])),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn the_chain_binds_position_hash_and_what_came_before() {
        let key = LogKey::new(&[7; 32]);
        let zero = [0; 32];
        let base = key.chain(&zero, 1, "aa");
        assert_ne!(base, key.chain(&zero, 2, "aa"));
        assert_ne!(base, key.chain(&zero, 1, "ab"));
        assert_ne!(base, key.chain(&[1; 32], 1, "aa"));
        assert_ne!(base, LogKey::new(&[8; 32]).chain(&zero, 1, "aa"));
    }

    #[test]
    fn an_anchor_is_signed_over_every_field() {
        let key = LogKey::new(&[7; 32]);
        let anchor = Anchor::sign(&key, 9, "s-1", 3, Some(&[5; 32]), 1);
        assert!(anchor.signed_by(&key));
        assert!(!anchor.signed_by(&LogKey::new(&[8; 32])));
        let edits: [fn(&mut Anchor); 6] = [
            |a: &mut Anchor| a.position = 8,
            |a: &mut Anchor| a.stream = "s-2".into(),
            |a: &mut Anchor| a.version = 2,
            |a: &mut Anchor| a.mac = None,
            |a: &mut Anchor| a.keyed_from = 2,
            |a: &mut Anchor| a.signature = None,
        ];
        for edit in edits {
            let mut edited = anchor.clone();
            edit(&mut edited);
            assert!(!edited.signed_by(&key), "{edited:?}");
        }
    }
}
