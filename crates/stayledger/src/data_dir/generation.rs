//! Which views file of the data dir is current: `stayledger replay` rebuilds the views into a fresh
//! file and names it in `views.generation`; a running `serve` watches that file (`views_swap`).

use std::path::Path;

use anyhow::Context;

use super::{VIEWS_FILE, VIEWS_GENERATION_FILE};

/// The views file a process should open in `data_dir`.
pub fn current_views_file(data_dir: &Path) -> anyhow::Result<String> {
    match std::fs::read_to_string(data_dir.join(VIEWS_GENERATION_FILE)) {
        Ok(name) => {
            let name = name.trim().to_string();
            anyhow::ensure!(
                name.starts_with("views") && !name.contains('/') && !name.contains(".."),
                "{VIEWS_GENERATION_FILE} names an unexpected file {name:?}"
            );
            Ok(name)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(VIEWS_FILE.to_string()),
        Err(e) => Err(e).context("reading the views generation"),
    }
}

/// The name of a new views generation: `views-{unix millis}.db`.
#[must_use]
pub fn fresh_views_file() -> String {
    format!("views-{}.db", chrono::Utc::now().timestamp_millis())
}

/// Point `data_dir` at the views file `name`, atomically (write, fsync, rename).
pub fn publish_generation(data_dir: &Path, name: &str) -> anyhow::Result<()> {
    super::private::write_atomically(&data_dir.join(VIEWS_GENERATION_FILE), name.as_bytes())
}
