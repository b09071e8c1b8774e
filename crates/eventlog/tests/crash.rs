//! Crash test: a child process appends under load and prints one line per acknowledged append; the parent
//! SIGKILLs it mid-flight, reopens the file and checks that every acknowledged append is there, at the
//! acknowledged version and position, that positions run 1..=head without a gap and that the chain verifies.
//! The kill must find the child alive and still acknowledging; an append error in the child (other
//! than a version conflict) makes it print `failed ...` and exit non-zero, which fails the test.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use eventlog::conformance::new_event;
use eventlog::{AppendError, EventLog, ExpectedVersion, SqliteEventLog};
use serde_json::json;

const CHILD_ENV: &str = "STAYLEDGER_CRASH_CHILD";
const TEST_NAME: &str = "acknowledged_appends_survive_sigkill";

#[test]
fn acknowledged_appends_survive_sigkill() {
    match std::env::var(CHILD_ENV) {
        Ok(dir) => child(Path::new(&dir)),
        Err(_) => parent(),
    }
}

/// `ack <stream> <last_version> <position> <events>` for an acknowledged append.
struct Ack {
    stream: String,
    last_version: u64,
    position: u64,
    events: u64,
}

/// A line of the child: an acknowledged append, or the error that stopped it.
enum Line {
    Ack(Ack),
    Failed(String),
}

fn parse_line(line: &str) -> Option<Line> {
    if let Some(error) = line.strip_prefix("failed ") {
        return Some(Line::Failed(error.to_owned()));
    }
    parse(line).map(Line::Ack)
}

fn parse(line: &str) -> Option<Ack> {
    let mut parts = line.strip_prefix("ack ")?.split(' ');
    Some(Ack {
        stream: parts.next()?.to_owned(),
        last_version: parts.next()?.parse().ok()?,
        position: parts.next()?.parse().ok()?,
        events: parts.next()?.parse().ok()?,
    })
}

fn parent() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(line) = parse_line(&line) {
                let _ = tx.send(line);
            }
        }
    });
    let mut acks = Vec::new();
    let mut take = |line: Line| match line {
        Line::Ack(ack) => acks.push(ack),
        Line::Failed(error) => panic!("the child failed: {error}"),
    };
    take(
        rx.recv_timeout(Duration::from_secs(30))
            .expect("the child acknowledges appends"),
    );
    std::thread::sleep(Duration::from_millis(1_500));
    rx.try_iter().for_each(&mut take);
    // Killed while still acknowledging: one more ack after the pause, and the child not exited.
    take(
        rx.recv_timeout(Duration::from_secs(30))
            .expect("the child still acknowledges appends"),
    );
    let exited = child.try_wait().unwrap();
    assert!(
        exited.is_none(),
        "the child exited before the kill: {exited:?}"
    );
    child.kill().unwrap(); // SIGKILL: no destructor, no flush, no checkpoint runs in the child
    child.wait().unwrap();
    reader.join().unwrap();
    rx.try_iter().for_each(&mut take);
    assert!(
        acks.len() > 50,
        "only {} appends were acknowledged before the kill",
        acks.len()
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let log = SqliteEventLog::open(dir.path().join("events.db")).unwrap();
        for ack in &acks {
            let first_version = ack.last_version + 1 - ack.events;
            let events = log
                .read_stream(&ack.stream, first_version, ack.events as usize)
                .await
                .unwrap();
            assert_eq!(
                events.len() as u64,
                ack.events,
                "{}@{} lost",
                ack.stream,
                ack.last_version
            );
            let last = events.last().unwrap();
            assert_eq!(
                (last.version, last.position),
                (ack.last_version, ack.position)
            );
        }
        let head = log.head_position().await.unwrap();
        let mut expected = 1;
        while expected <= head {
            let page = log.read_all(expected, 1_000).await.unwrap();
            for event in page {
                assert_eq!(event.position, expected, "gap in positions");
                expected += 1;
            }
        }
        let report = log.verify().await.unwrap();
        assert!(report.ok, "{report:?}");
        assert_eq!(report.events_checked, head);
        eprintln!(
            "crash test: {} acknowledged appends, head {head}, all present",
            acks.len()
        );
        // The reopened log takes new appends where the dead process stopped.
        let stream = &acks[0].stream;
        let current = log.stream_version(stream).await.unwrap();
        let outcome = log
            .append(
                stream,
                ExpectedVersion::from_current(current),
                vec![new_event("After", json!({}))],
            )
            .await
            .unwrap();
        assert_eq!(outcome.position, head + 1);
    });
}

/// Tell the parent an append failed, and exit non-zero.
fn fail(error: &str) -> ! {
    let mut out = std::io::stdout().lock();
    let line = error.replace('\n', " ");
    let _ = writeln!(out, "failed {line}").and_then(|()| out.flush());
    std::process::exit(1)
}

/// The child: 32 tasks on 8 streams (so conflicts happen too), appending 1-3 events at a time forever.
fn child(dir: &Path) {
    // A panic anywhere (a task's, too) ends the child where the parent sees it.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        fail(&info.to_string());
    }));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let log = SqliteEventLog::open(dir.join("events.db")).unwrap();
        let tasks: Vec<_> = (0..32u64)
            .map(|task| {
                let log = log.clone();
                tokio::spawn(async move {
                    let stream = format!("crash-{}", task % 8);
                    let mut current = None;
                    for n in 0u64.. {
                        let count = 1 + (n + task) % 3;
                        let events = (0..count)
                            .map(|i| new_event("Counted", json!({ "task": task, "n": n, "i": i })));
                        match log
                            .append(
                                &stream,
                                ExpectedVersion::from_current(current),
                                events.collect(),
                            )
                            .await
                        {
                            Ok(outcome) => {
                                let mut out = std::io::stdout().lock();
                                writeln!(
                                    out,
                                    "ack {stream} {} {} {count}",
                                    outcome.last_version, outcome.position
                                )
                                .and_then(|()| out.flush())
                                .unwrap();
                                current = Some(outcome.last_version);
                            }
                            Err(AppendError::Conflict { actual, .. }) => current = actual,
                            // Not a panic, which would end this task only: the parent must see it.
                            Err(e) => fail(&format!("{stream}: {e}")),
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
}
