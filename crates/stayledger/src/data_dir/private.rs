//! Who may read the data dir: its owner only. The dir is created 0700 and every file in it is
//! made 0600 before a store opens it, whatever the process's umask. SQLite gives the `-wal`,
//! `-shm` and `-journal` files it creates the mode of their database file, so they follow; the
//! ones an older version left behind are tightened here too.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::Context;

/// Create `data_dir` (and missing parents) with mode 0700. An existing dir keeps its mode; a
/// warning says so if other users may read it.
pub fn create_dir(data_dir: &Path) -> anyhow::Result<()> {
    let context = || format!("creating data dir {}", data_dir.display());
    if data_dir.is_dir() {
        warn_if_shared(data_dir);
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(data_dir).with_context(context)?;
    set_mode(data_dir, 0o700).with_context(context)
}

/// Make the store file `path` private before a store opens it: created empty with mode 0600 if
/// missing (SQLite takes an empty file as a new database), else set to 0600 with its SQLite
/// side files.
pub fn file(path: &Path) -> anyhow::Result<()> {
    let context = || format!("making {} private", path.display());
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).with_context(context)?;
    set_mode(path, 0o600).with_context(context)?;
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        // SQLite removes a side file when the last connection closes (a process stopping now):
        // one gone between the look and the change is no side file to protect.
        match set_mode(Path::new(&side), 0o600) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                return Err(error).with_context(context)
            }
            _ => {}
        }
    }
    Ok(())
}

/// The trimmed text of the key file `path`. If there is none, `make()` is written there first (a new
/// file, mode 0600, fsynced); if another process creates it meanwhile, theirs is read and used.
pub fn key_file(path: &Path, make: impl FnOnce() -> String) -> anyhow::Result<String> {
    let read = |path: &Path| fs::read_to_string(path).map(|text| text.trim().to_string());
    match read(path) {
        Ok(text) => return Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            let text = make();
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            Ok(text)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            read(path).with_context(|| format!("reading {}", path.display()))
        }
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}

/// `bytes` random bytes, in hex.
#[must_use]
pub fn random_hex(bytes: usize) -> String {
    let mut secret = vec![0_u8; bytes];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut secret);
    hex::encode(secret)
}

/// Write `bytes` to `path` atomically (a 0600 temp file, fsync, rename).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = Path::new(&tmp);
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    set_mode(tmp, 0o600)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(tmp, path).with_context(|| format!("renaming onto {}", path.display()))?;
    Ok(())
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn warn_if_shared(data_dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = fs::metadata(data_dir) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                data_dir = %data_dir.display(),
                mode = format!("{mode:o}"),
                "the data dir may be listed by other users; `chmod 700` it (its files are 0600)"
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_shared(_data_dir: &Path) {}
