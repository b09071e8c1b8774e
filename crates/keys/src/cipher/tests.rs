use super::*;

const CUSTOMER: &str = "customer-7";

fn body(sealed: &str) -> Vec<u8> {
    let text = sealed.strip_prefix(VERSION_1).expect("v1 text");
    URL_SAFE_NO_PAD.decode(text).expect("base64url")
}

fn text(bytes: &[u8]) -> String {
    format!("{VERSION_1}{}", URL_SAFE_NO_PAD.encode(bytes))
}

#[test]
fn a_sealed_field_opens_again() {
    let key = DataKey::generate();
    let sealed = seal(&key, CUSTOMER, "name", "Ada Lovelace");
    assert!(sealed.starts_with("v1:"));
    assert!(!sealed.contains("Ada"));
    assert_eq!(
        open(&key, CUSTOMER, "name", &sealed),
        Ok("Ada Lovelace".to_string())
    );
}

#[test]
fn empty_and_non_ascii_text_round_trip() {
    let key = DataKey::generate();
    for plain in ["", "Zoë Åström", "山田 太郎", "+81 90-1234-5678 ☎", "\0"] {
        let sealed = seal(&key, CUSTOMER, "name", plain);
        assert_eq!(open(&key, CUSTOMER, "name", &sealed), Ok(plain.to_string()));
    }
}

#[test]
fn two_seals_of_one_text_differ() {
    let key = DataKey::generate();
    let first = seal(&key, CUSTOMER, "email", "ada@example.com");
    let second = seal(&key, CUSTOMER, "email", "ada@example.com");
    assert_ne!(first, second);
    assert_ne!(body(&first)[..NONCE_LEN], body(&second)[..NONCE_LEN]);
}

#[test]
fn another_key_customer_or_field_is_rejected() {
    let key = DataKey::generate();
    let sealed = seal(&key, CUSTOMER, "phone", "+44 20 7946 0000");
    let rejected = Err(CipherError::Rejected);
    assert_eq!(
        open(&DataKey::generate(), CUSTOMER, "phone", &sealed),
        rejected
    );
    assert_eq!(open(&key, "customer-8", "phone", &sealed), rejected);
    assert_eq!(open(&key, CUSTOMER, "name", &sealed), rejected);
    // The separator keeps customer and field apart.
    assert_eq!(open(&key, "customer-7\0ph", "one", &sealed), rejected);
}

#[test]
fn any_flipped_byte_is_rejected() {
    let key = DataKey::generate();
    let sealed = seal(&key, CUSTOMER, "name", "Ada");
    let bytes = body(&sealed);
    for at in 0..bytes.len() {
        let mut tampered = bytes.clone();
        tampered[at] ^= 0x01;
        assert_eq!(
            open(&key, CUSTOMER, "name", &text(&tampered)),
            Err(CipherError::Rejected),
            "byte {at} flipped"
        );
    }
}

#[test]
fn truncated_text_is_rejected() {
    let key = DataKey::generate();
    let sealed = seal(&key, CUSTOMER, "name", "Ada");
    let bytes = body(&sealed);
    assert_eq!(
        open(&key, CUSTOMER, "name", &text(&bytes[..bytes.len() - 1])),
        Err(CipherError::Rejected)
    );
    assert_eq!(
        open(
            &key,
            CUSTOMER,
            "name",
            &text(&bytes[..NONCE_LEN + TAG_LEN - 1])
        ),
        Err(CipherError::Truncated)
    );
    assert_eq!(
        open(&key, CUSTOMER, "name", "v1:"),
        Err(CipherError::Truncated)
    );
    for cut in 1..sealed.len() {
        assert!(open(&key, CUSTOMER, "name", &sealed[..cut]).is_err());
    }
}

#[test]
fn text_that_is_not_v1_is_rejected() {
    let key = DataKey::generate();
    let sealed = seal(&key, CUSTOMER, "name", "Ada");
    let unknown = Err(CipherError::UnknownVersion);
    assert_eq!(open(&key, CUSTOMER, "name", "Ada"), unknown);
    assert_eq!(open(&key, CUSTOMER, "name", ""), unknown);
    assert_eq!(
        open(&key, CUSTOMER, "name", &sealed.replacen("v1:", "v2:", 1)),
        unknown
    );
    assert_eq!(
        open(&key, CUSTOMER, "name", &sealed.replacen("v1:", "V1:", 1)),
        unknown
    );
}

#[test]
fn bad_encoding_is_rejected() {
    let key = DataKey::generate();
    let sealed = seal(&key, CUSTOMER, "name", "Ada");
    let encoding = Err(CipherError::Encoding);
    assert_eq!(
        open(&key, CUSTOMER, "name", &format!("{sealed}=")),
        encoding
    );
    assert_eq!(
        open(&key, CUSTOMER, "name", &format!("{sealed}!")),
        encoding
    );
    let standard = sealed.replace('-', "+").replace('_', "/");
    if standard != sealed {
        assert_eq!(open(&key, CUSTOMER, "name", &standard), encoding);
    }
    assert_eq!(open(&key, CUSTOMER, "name", "v1:ä"), encoding);
}

#[test]
fn keys_are_random_and_never_printed() {
    let key = DataKey::generate();
    assert_ne!(key, DataKey::generate());
    assert_eq!(DataKey::from_slice(key.as_bytes()), Ok(key.clone()));
    assert_eq!(
        DataKey::from_slice(&[0; 31]),
        Err(CipherError::KeyLength(31))
    );
    assert_eq!(format!("{key:?}"), "DataKey(<redacted>)");
    assert_eq!(format!("{key:#?}"), "DataKey(<redacted>)");
}
