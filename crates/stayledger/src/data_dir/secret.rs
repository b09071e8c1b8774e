//! The JWT signing secret of an embedded deployment: created at random in the data dir on first
//! start (`jwt-secret`, mode 0600), read on later starts. Never printed or logged.

use std::fs;
use std::path::Path;

use anyhow::Context;

use super::private::{key_file, random_hex};
use super::SECRET_FILE;

/// Read the data dir's secret, creating the dir and a fresh random secret if there is none.
pub fn load_or_create(data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = from_env()? {
        return Ok(secret);
    }
    super::create_dir(data_dir)?;
    let text = key_file(&data_dir.join(SECRET_FILE), || random_hex(32))?;
    hex::decode(text).context("the jwt-secret file is not valid hex")
}

/// Read the secret a running deployment already has (`stayledger token`): never creates one,
/// since tokens signed with a fresh secret would be refused by every server.
pub fn load_existing(data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = from_env()? {
        return Ok(secret);
    }
    let path = data_dir.join(SECRET_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => hex::decode(text.trim()).context("the jwt-secret file is not valid hex"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
            "no JWT secret in data dir {dir} (looked for {file}{missing}): a token minted with a \
             new secret would be refused by every server. Pass the --data-dir of the running \
             server, or --create-secret to start a new data dir's secret",
            dir = data_dir.display(),
            file = path.display(),
            missing = if data_dir.exists() {
                ""
            } else {
                "; the directory does not exist"
            },
        ),
        Err(e) => Err(e).context("reading the jwt-secret file"),
    }
}

fn from_env() -> anyhow::Result<Option<Vec<u8>>> {
    let Ok(secret) = std::env::var("STAYLEDGER_JWT_SECRET") else {
        return Ok(None);
    };
    anyhow::ensure!(
        secret.len() >= 32,
        "STAYLEDGER_JWT_SECRET must be at least 32 bytes"
    );
    Ok(Some(secret.into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_created_once_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = load_or_create(dir.path()).expect("create");
        let second = load_or_create(dir.path()).expect("read");
        assert_eq!(first.len(), 32);
        assert_eq!(first, second);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(SECRET_FILE))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
