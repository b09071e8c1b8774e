//! The payment gateway key of an embedded deployment: the secret the saga's client presents to the
//! gateway, and the sandbox gateway takes. `serve` (and `payment-sandbox`) create it at random in
//! the data dir on first start (`payment-gateway-key`, mode 0600) and read it on later starts; a
//! flag or `STAYLEDGER_PAYMENT_GATEWAY_KEY` given instead wins. Never printed or logged.

use std::fs;
use std::path::Path;

use anyhow::Context;
use saga::GatewayKey;

use super::private::{key_file, random_hex};
use super::GATEWAY_KEY_FILE;

/// The key given on the command line, else the data dir's, created if missing.
pub fn given_or_created(given: Option<&str>, data_dir: &Path) -> anyhow::Result<GatewayKey> {
    match given {
        Some(key) => parse(key, "--payment-gateway-key"),
        None => load_or_create(data_dir),
    }
}

/// The key given on the command line, else the data dir's, which must be there (a `saga` alone
/// must present the key its gateway takes: a fresh one would only be refused).
pub fn given_or_existing(given: Option<&str>, data_dir: &Path) -> anyhow::Result<GatewayKey> {
    if let Some(key) = given {
        return parse(key, "--payment-gateway-key");
    }
    let path = data_dir.join(GATEWAY_KEY_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => parse(text.trim(), GATEWAY_KEY_FILE),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
            "no payment gateway key: pass --payment-gateway-key (or STAYLEDGER_PAYMENT_GATEWAY_KEY) \
             with the key the gateway takes, or share a data dir holding {GATEWAY_KEY_FILE} \
             (looked for {})",
            path.display()
        ),
        Err(e) => Err(e).context("reading the payment gateway key"),
    }
}

/// Read the data dir's key, creating the dir and a fresh random key if there is none.
pub fn load_or_create(data_dir: &Path) -> anyhow::Result<GatewayKey> {
    super::create_dir(data_dir)?;
    let key = key_file(&data_dir.join(GATEWAY_KEY_FILE), || {
        format!("sk_sandbox_{}", random_hex(32))
    })?;
    parse(&key, GATEWAY_KEY_FILE)
}

fn parse(key: &str, source: &str) -> anyhow::Result<GatewayKey> {
    GatewayKey::new(key).with_context(|| format!("the payment gateway key from {source}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_created_once_then_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = given_or_existing(None, dir.path()).unwrap_err();
        assert!(
            format!("{missing:#}").contains(GATEWAY_KEY_FILE),
            "{missing:#}"
        );
        let first = given_or_created(None, dir.path()).expect("create");
        let second = given_or_existing(None, dir.path()).expect("read");
        assert_eq!(first, second);
        assert!(first.expose().starts_with("sk_sandbox_"));
        let given = given_or_created(Some("a-key-given-on-the-command-line"), dir.path());
        assert_eq!(
            given.expect("given").expose(),
            "a-key-given-on-the-command-line"
        );
        assert!(given_or_created(Some("short"), dir.path()).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = fs::metadata(dir.path().join(GATEWAY_KEY_FILE)).expect("meta");
            assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        }
    }
}
