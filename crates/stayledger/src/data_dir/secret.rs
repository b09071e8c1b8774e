//! The JWT signing secret of an embedded deployment: created at random in the data dir on first
//! start (`jwt-secret`, mode 0600), read on later starts. Never printed or logged.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use rand::RngCore;

use super::SECRET_FILE;

/// Read the data dir's secret, creating the dir and a fresh random secret if there is none.
pub fn load_or_create(data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    if let Ok(secret) = std::env::var("STAYLEDGER_JWT_SECRET") {
        anyhow::ensure!(
            secret.len() >= 32,
            "STAYLEDGER_JWT_SECRET must be at least 32 bytes"
        );
        return Ok(secret.into_bytes());
    }
    fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data dir {}", data_dir.display()))?;
    let path = data_dir.join(SECRET_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => hex::decode(text.trim()).context("the jwt-secret file is not valid hex"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(&path),
        Err(e) => Err(e).context("reading the jwt-secret file"),
    }
}

fn create(path: &Path) -> anyhow::Result<Vec<u8>> {
    let mut secret = vec![0_u8; 32];
    rand::thread_rng().fill_bytes(&mut secret);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(hex::encode(&secret).as_bytes())?;
            file.sync_all()?;
            Ok(secret)
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = fs::read_to_string(path)?;
            hex::decode(text.trim()).context("the jwt-secret file is not valid hex")
        }
        Err(e) => Err(e).context("creating the jwt-secret file"),
    }
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
