//! Auditor and operator tools over the event log: `history` (a readable timeline of one reservation
//! across all its streams), `verify` (hash chains), `export` (JSON Lines of the whole log), `import`
//! (into an empty store, reproducing it exactly) and `replay` (rebuild the views into a fresh store
//! while the old one keeps serving, then swap).

mod replay;
mod timeline;

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::sync::Arc;

use anyhow::Context;
use eventlog::{EventLog, EventLogExt, RecordedEvent};

pub use replay::replay;

use crate::cli::{ExportArgs, HistoryArgs, ImportArgs, StoreArgs, VerifyArgs};
use crate::data_dir;

/// Events read per page of the global log.
const PAGE: usize = 5_000;

fn open_log(store: &StoreArgs) -> anyhow::Result<Arc<dyn EventLog>> {
    Ok(Arc::new(data_dir::existing_log(&store.data_dir)?))
}

/// `stayledger history ID`.
pub async fn history(args: HistoryArgs) -> anyhow::Result<()> {
    let log = open_log(&args.store)?;
    let events = query_api::history::reservation_history(log.as_ref(), args.reservation_id)
        .await?
        .with_context(|| format!("no reservation {}", args.reservation_id))?;
    let mut out = std::io::stdout().lock();
    if args.json {
        for event in &events {
            serde_json::to_writer(&mut out, event)?;
            writeln!(out)?;
        }
    } else {
        timeline::print(&mut out, args.reservation_id, &events)?;
    }
    Ok(())
}

/// `stayledger verify`: walk every stream's hash chain; exit status 1 if anything is off.
pub async fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    let log = data_dir::existing_log(&args.store.data_dir)?;
    let report = log.verify().await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    if !report.ok {
        anyhow::bail!("the event log failed verification");
    }
    Ok(())
}

/// `stayledger export`: every event of the log, in order, one JSON object per line.
pub async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let log = open_log(&args.store)?;
    let sink: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut sink = BufWriter::new(sink);
    let written = export_to(log.as_ref(), &mut sink).await?;
    sink.flush()?;
    eprintln!("exported {written} events");
    Ok(())
}

/// Write the whole log as JSON Lines; returns the number of events.
pub async fn export_to(log: &dyn EventLog, sink: &mut impl Write) -> anyhow::Result<u64> {
    let mut from = 1;
    let mut written = 0;
    loop {
        let page = log.read_all_parsed(from, PAGE).await?;
        let Some(last) = page.last() else { break };
        from = last.position + 1;
        for event in &page {
            serde_json::to_writer(&mut *sink, event)?;
            sink.write_all(b"\n")?;
            written += 1;
        }
    }
    Ok(written)
}

/// `stayledger import`: load an export into an empty data dir, exactly as it was.
pub async fn import(args: ImportArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.store.data_dir)?;
    let path = data_dir::events_path(&args.store.data_dir);
    let input = args.input.clone();
    let report = tokio::task::spawn_blocking(move || -> anyhow::Result<eventlog::ImportReport> {
        let reader: Box<dyn BufRead> = if input.as_os_str() == "-" {
            Box::new(BufReader::new(std::io::stdin()))
        } else {
            Box::new(BufReader::new(
                std::fs::File::open(&input)
                    .with_context(|| format!("opening {}", input.display()))?,
            ))
        };
        let events = reader.lines().enumerate().map(|(n, line)| {
            let line = line.map_err(|e| eventlog::LogError::Unavailable(e.to_string()))?;
            serde_json::from_str::<RecordedEvent>(&line)
                .map_err(|e| eventlog::LogError::Corrupt(format!("line {}: {e}", n + 1)))
        });
        Ok(eventlog::import_into(&path, events)?)
    })
    .await??;
    eprintln!(
        "imported {} events in {} streams (last position {})",
        report.events, report.streams, report.last_position
    );
    Ok(())
}
