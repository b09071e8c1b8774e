//! One personal field sealed under its customer's data key: AES-256-GCM with a fresh random
//! 96-bit nonce per seal, and `customer_id + "\0" + field` as associated data, so a sealed field
//! opens only for the customer and field it was sealed for. Field names never contain NUL (they
//! are the profile's fixed names), so that pair is unambiguous whatever a customer id holds.
//!
//! Sealed text is `"v1:" + base64url_nopad(nonce || ciphertext || tag)`: plain ASCII, safe in JSON
//! events, and versioned so another scheme can come later beside it.

use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A data key's length in bytes (AES-256).
pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const VERSION_1: &str = "v1:";

/// A customer's data key: 32 random bytes, wiped from memory when dropped, never printed.
#[derive(Clone)]
pub struct DataKey([u8; KEY_LEN]);

impl DataKey {
    /// A new key from the operating system's random source.
    #[must_use]
    pub fn generate() -> Self {
        let mut key = Self([0; KEY_LEN]);
        OsRng.fill_bytes(&mut key.0);
        key
    }

    /// A key from its stored bytes (a key store reading one back).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CipherError> {
        let mut key = Self([0; KEY_LEN]);
        if bytes.len() != KEY_LEN {
            return Err(CipherError::KeyLength(bytes.len()));
        }
        key.0.copy_from_slice(bytes);
        Ok(key)
    }

    /// The raw bytes, for a key store to keep (and for nothing else).
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl Drop for DataKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl ZeroizeOnDrop for DataKey {}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

/// Compares in time independent of where the keys differ.
impl PartialEq for DataKey {
    fn eq(&self, other: &Self) -> bool {
        let diff = self
            .0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        diff == 0
    }
}

impl Eq for DataKey {}

/// Why sealed text did not open. None of them says which of key, customer, field or bytes was
/// wrong: AES-GCM cannot tell, and a caller must not guess.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    #[error("not sealed text of a known version (expected `v1:`)")]
    UnknownVersion,
    #[error("sealed text is not canonical base64url without padding")]
    Encoding,
    #[error("sealed text is too short to hold a nonce and a tag")]
    Truncated,
    #[error("sealed text does not open under this key for this customer and field")]
    Rejected,
    #[error("the opened field is not UTF-8 text")]
    NotText,
    #[error("a data key is {KEY_LEN} bytes, not {0}")]
    KeyLength(usize),
}

/// Seal `plaintext` as `field` of `customer_id` under `key`; two seals of one text differ.
#[must_use]
pub fn seal(key: &DataKey, customer_id: &str, field: &str, plaintext: &str) -> String {
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let aad = associated_data(customer_id, field);
    let sealed = cipher(key)
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext.as_bytes(),
                aad: &aad,
            },
        )
        .expect("AES-GCM seals any text shorter than 64 GiB");
    let mut bytes = Vec::with_capacity(NONCE_LEN + sealed.len());
    bytes.extend_from_slice(&nonce);
    bytes.extend_from_slice(&sealed);
    format!("{VERSION_1}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Open text sealed by [`seal`] with the same key, customer and field.
pub fn open(
    key: &DataKey,
    customer_id: &str,
    field: &str,
    sealed: &str,
) -> Result<String, CipherError> {
    let body = sealed
        .strip_prefix(VERSION_1)
        .ok_or(CipherError::UnknownVersion)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| CipherError::Encoding)?;
    if bytes.len() < NONCE_LEN + TAG_LEN {
        return Err(CipherError::Truncated);
    }
    let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
    let aad = associated_data(customer_id, field);
    let plaintext = cipher(key)
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad: &aad,
            },
        )
        .map_err(|_| CipherError::Rejected)?;
    String::from_utf8(plaintext).map_err(|e| {
        e.into_bytes().zeroize();
        CipherError::NotText
    })
}

fn cipher(key: &DataKey) -> Aes256Gcm {
    Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key.0))
}

fn associated_data(customer_id: &str, field: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(customer_id.len() + 1 + field.len());
    aad.extend_from_slice(customer_id.as_bytes());
    aad.push(0);
    aad.extend_from_slice(field.as_bytes());
    aad
}

#[cfg(test)]
mod tests;
