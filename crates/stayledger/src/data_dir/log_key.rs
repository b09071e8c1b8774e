//! The event log's key (docs/decisions/0019): 32 random bytes in hex, which key the log's MAC chain and
//! sign its head. By default `log-key` in the data dir (mode 0600), created on first start; `--log-key
//! FILE` keeps it elsewhere, so that someone who can write the data dir cannot read it. Never printed.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use eventlog::LogKey;

use super::private::{key_file, random_hex};
use super::LOG_KEY_FILE;

/// Where the key is: `file` if given, else `log-key` in `data_dir`.
#[must_use]
pub fn path(data_dir: &Path, file: Option<&Path>) -> PathBuf {
    file.map_or_else(|| data_dir.join(LOG_KEY_FILE), Path::to_path_buf)
}

/// The key at `path`, created (at random, mode 0600) if there is none.
pub fn load_or_create(path: &Path) -> anyhow::Result<LogKey> {
    parse(path, &key_file(path, || random_hex(32))?)
}

/// The key at `path`; `None` if there is no such file.
pub fn load(path: &Path) -> anyhow::Result<Option<LogKey>> {
    match fs::read_to_string(path) {
        Ok(text) => parse(path, text.trim()).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading the log key {}", path.display())),
    }
}

fn parse(path: &Path, text: &str) -> anyhow::Result<LogKey> {
    let secret = hex::decode(text)
        .with_context(|| format!("the log key {} is not valid hex", path.display()))?;
    anyhow::ensure!(
        secret.len() >= 32,
        "the log key {} is shorter than 32 bytes",
        path.display()
    );
    Ok(LogKey::new(&secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_created_once_private_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let at = path(dir.path(), None);
        assert!(load(&at).expect("no key yet").is_none());
        let first = load_or_create(&at).expect("create");
        let second = load_or_create(&at).expect("read");
        assert_eq!(first.mac(&[b"x"]), second.mac(&[b"x"]));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&at).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let elsewhere = dir.path().join("kept-apart");
        assert_eq!(path(dir.path(), Some(&elsewhere)), elsewhere);
    }
}
