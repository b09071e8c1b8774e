//! Auditor and operator tools over the event log: `history` (a readable timeline of one reservation
//! across all its streams), `verify` (hash chains, MAC chain, signed head, anchors), `export` (JSON Lines of the whole log), `import`
//! (into an empty store, reproducing it exactly) and `replay` (rebuild the views into a fresh store
//! while the old one keeps serving, then swap).

mod replay;
mod timeline;

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::sync::Arc;

use anyhow::Context;
use eventlog::{Anchor, EventLog, EventLogExt, Integrity, RecordedEvent};

pub use replay::replay;

use crate::cli::{ExportArgs, HistoryArgs, ImportArgs, StoreArgs, VerifyArgs};
use crate::data_dir;

/// Events read per page of the global log.
const PAGE: usize = 5_000;

fn open_log(store: &StoreArgs) -> anyhow::Result<Arc<dyn EventLog>> {
    Ok(Arc::new(data_dir::existing_log(
        &store.data_dir,
        store.log_key.as_deref(),
    )?))
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

/// `stayledger verify`: every stream's hash chain, the positions, the keyed MAC chain and the signed
/// head, and `--anchor` if given; exit status 1 if anything is off. The report goes to stdout, or,
/// with `--print-anchor` and a check that passed, the log's signed head (docs/decisions/0019).
pub async fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    let log = data_dir::existing_log(&args.store.data_dir, args.store.log_key.as_deref())?;
    let anchor: Option<Anchor> = match &args.anchor {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the anchor {}", path.display()))?;
            Some(
                serde_json::from_str(&text)
                    .with_context(|| format!("the anchor {} is not an anchor", path.display()))?,
            )
        }
        None => None,
    };
    let report = log.verify_keyed(anchor.as_ref()).await?;
    if !report.ok {
        crate::stdout::line(&serde_json::to_string_pretty(&report)?)?;
        if let Some(bad) = &report.first_bad {
            eprintln!(
                "tampered: stream {:?} version {} position {}: {}",
                bad.stream, bad.version, bad.position, bad.reason
            );
        }
        anyhow::bail!("the event log failed verification");
    }
    if args.print_anchor {
        let anchor = log.anchor().await.context(
            "no anchor: the log's key was not found (--log-key, or log-key in the data dir)",
        )?;
        crate::stdout::line(&serde_json::to_string_pretty(&anchor)?)?;
    } else {
        crate::stdout::line(&serde_json::to_string_pretty(&report)?)?;
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

/// `stayledger import`: load an export into a new (or empty) data dir, exactly as it was. Every event
/// is also read through `domain`'s one decode entry (upcasters included); one that does not decode is
/// imported as it was (the log tolerates it: consumers park it as a dead letter) and named on stderr.
/// A dir that holds anything is refused before a file is touched; a refused export leaves the dir as
/// it was found (nothing of it, no empty `events.db`).
pub async fn import(args: ImportArgs) -> anyhow::Result<()> {
    let dir = args.store.data_dir.clone();
    let existed = refuse_non_empty(&dir)?;
    let imported = import_into_new(args).await;
    if imported.is_err() {
        remove_partial_import(&dir, existed);
    }
    imported
}

/// The data dir must be new or empty: an import next to other stores (views, timers, another log)
/// would mix two histories. Returns whether the dir existed.
fn refuse_non_empty(dir: &std::path::Path) -> anyhow::Result<bool> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e).with_context(|| format!("reading the data dir {}", dir.display())),
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    if names.is_empty() {
        return Ok(true);
    }
    names.sort();
    let shown = names.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    let more = names.len().saturating_sub(5);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    anyhow::bail!(
        "the data dir {} is not empty (it holds {shown}{more}): import only into a new or empty \
         data dir; nothing was changed",
        dir.display()
    )
}

/// Undo what a refused import created: the log's files, and the dir if it was new.
fn remove_partial_import(dir: &std::path::Path, existed: bool) {
    let log = data_dir::events_path(dir);
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = log.clone().into_os_string();
        name.push(suffix);
        let _ = std::fs::remove_file(std::path::PathBuf::from(name));
    }
    if !existed {
        let _ = std::fs::remove_dir(dir);
    }
}

async fn import_into_new(args: ImportArgs) -> anyhow::Result<()> {
    crate::data_dir::create_dir(&args.store.data_dir)?;
    let path = data_dir::events_path(&args.store.data_dir);
    data_dir::private::file(&path)?;
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
        let mut undecodable = Vec::new();
        let events = reader.lines().enumerate().map(|(n, line)| {
            let line = line.map_err(|e| eventlog::LogError::Unavailable(e.to_string()))?;
            let event = serde_json::from_str::<RecordedEvent>(&line)
                .map_err(|e| eventlog::LogError::Corrupt(format!("line {}: {e}", n + 1)))?;
            if let Err(error) = decodes(&event) {
                undecodable.push(format!("position {}: {error}", event.position));
            }
            Ok(event)
        });
        let report = eventlog::import_into(&path, events)?;
        for line in &undecodable {
            eprintln!("does not decode (imported as it was): {line}");
        }
        Ok(report)
    })
    .await??;
    eprintln!(
        "imported {} events in {} streams (last position {})",
        report.events, report.streams, report.last_position
    );
    Ok(())
}

/// Whether `event` reads through `domain`'s decode entry (upcasters included), saga payloads too.
fn decodes(event: &RecordedEvent) -> Result<(), domain::events::Undecodable> {
    domain::events::decode(
        &event.stream,
        &event.event_type,
        event.schema_version,
        domain::events::Payload::Parsed(&event.data),
        domain::events::SagaPayloads::Decode,
    )
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use eventlog::EventMetadata;
    use serde_json::json;

    fn event(stream: &str, event_type: &str, data: serde_json::Value) -> RecordedEvent {
        RecordedEvent {
            event_id: uuid::Uuid::from_u128(1),
            stream: stream.to_string(),
            version: 0,
            position: 7,
            event_type: event_type.to_string(),
            schema_version: 1,
            data,
            metadata: EventMetadata {
                correlation_id: uuid::Uuid::from_u128(2),
                causation_id: uuid::Uuid::from_u128(3),
                actor: "test".to_string(),
            },
            recorded_at: chrono::Utc::now(),
            hash: String::new(),
        }
    }

    #[test]
    fn an_import_reads_each_event_through_the_decode_entry() {
        let id = uuid::Uuid::from_u128(9);
        let expired = event(
            &format!("reservation-{id}"),
            "ReservationExpired",
            json!({}),
        );
        assert!(decodes(&expired).is_ok());
        let wrong = event(
            &format!("payment-{id}"),
            "PaymentFailed",
            json!({"reason": 5}),
        );
        assert!(decodes(&wrong).is_err());
        let unnamed = event("reservation-x", "ReservationExpired", json!({}));
        assert!(decodes(&unnamed).is_err());
    }
}
