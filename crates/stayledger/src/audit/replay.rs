//! `stayledger replay`: rebuild every view from position 0 of the log into a fresh store file while
//! the current one keeps serving, then point the data dir at it (`views.generation`). A running
//! `serve` notices within a second, catches the new store up, stops its projector, swaps the store
//! its queries read and starts the projector again on it.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Context;
use readmodel::ViewStore;

use super::open_log;
use crate::cli::ReplayArgs;
use crate::data_dir::{self, current_views_file, publish_generation};

pub async fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    let data_dir = &args.store.data_dir;
    let log = open_log(&args.store)?;
    let previous = current_views_file(data_dir)?;
    let name = data_dir::fresh_views_file();
    let store: Arc<dyn ViewStore> = Arc::new(
        data_dir::views_generation(data_dir, &name).context("creating the fresh view store")?,
    );
    let progress = Progress::new();
    let started = std::time::Instant::now();
    let last = projector::rebuild(log, store, |done, total| progress.show(done, total)).await?;
    progress.finish();
    publish_generation(data_dir, &name)?;
    eprintln!(
        "rebuilt the views up to position {last} in {:.1} s into {name} (was {previous}); \
         a running serve swaps to it within a second",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A progress bar on a terminal; a line every 10% otherwise.
struct Progress {
    terminal: bool,
    last_decile: AtomicU64,
}

impl Progress {
    fn new() -> Self {
        Self {
            terminal: std::io::stderr().is_terminal(),
            last_decile: AtomicU64::new(u64::MAX),
        }
    }

    fn show(&self, done: u64, total: u64) {
        let percent = done.saturating_mul(100).checked_div(total).unwrap_or(100);
        if self.terminal {
            let filled = usize::try_from(percent / 5).unwrap_or(20).min(20);
            eprint!(
                "\rreplaying [{:<20}] {percent:>3}% {done}/{total} events",
                "#".repeat(filled)
            );
        } else if self.last_decile.swap(percent / 10, Ordering::Relaxed) != percent / 10 {
            eprintln!("replaying: {percent}% ({done}/{total} events)");
        }
    }

    fn finish(&self) {
        if self.terminal {
            eprintln!();
        }
    }
}
