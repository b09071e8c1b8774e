//! Zero-downtime restart of one service: while clients keep sending reservation requests (each with
//! an Idempotency-Key), a new command-api binds the same port (SO_REUSEPORT) and the old one gets
//! SIGTERM: it finishes what is in flight (a request whose body is still arriving included) and
//! exits cleanly. Every request is answered 202 (never a 5xx or anything else), and recorded once.
//! A client retries as an HTTP client's connection-level retry does: a request that got no answer
//! (its kept-alive connection closed by the old process, or reset in its accept queue) is sent once
//! more on a new connection, never twice, and never after an answer; the retries are counted.

#[path = "common/process.rs"]
mod process;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use eventlog::{EventLog, SqliteEventLog};
use process::{customer, stay_body, Api, Process};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CLIENTS: usize = 4;
/// Pause of a client between two requests (keeps the load steady however long the restart takes).
const PACE: Duration = Duration::from_millis(5);
/// Requests per client at most: more than [`WAIT`] of load (the test stops them earlier).
const MAX_PER_CLIENT: usize = 4_000;
/// Requests the new process must answer before the clients stop.
const AFTER_RESTART: usize = 40;
const WAIT: Duration = Duration::from_secs(20);

#[derive(Default)]
struct Load {
    acknowledged: AtomicUsize,
    retries: AtomicUsize,
    done: AtomicBool,
}

/// Send requests until `load.done`. A request that got no answer is sent once more (same key) on a
/// new connection; a second failure, or any answer but 202, fails the test.
async fn client(api: Api, n: usize, load: Arc<Load>) -> Vec<String> {
    let token = customer(&format!("rolling-{n}"));
    let mut ids = Vec::new();
    for i in 0..MAX_PER_CLIENT {
        if load.done.load(Ordering::SeqCst) {
            break;
        }
        let key = format!("rolling-{n}-{i}");
        let body = stay_body("tide", 3 + (i % 25) as i64, 1);
        let send = |api: &Api| {
            let (api, token, body, key) = (api.clone(), token.clone(), body.clone(), key.clone());
            async move {
                api.try_call(
                    Method::POST,
                    "/reservations",
                    Some(&token),
                    Some(&body),
                    Some(&key),
                )
                .await
            }
        };
        let answer = match send(&api).await {
            Ok(answer) => answer,
            Err(error) => {
                load.retries.fetch_add(1, Ordering::SeqCst);
                // A client of its own: a new connection, not another kept-alive one.
                let retried = send(&Api::new(&api.base)).await;
                retried.unwrap_or_else(|again| {
                    panic!("{key}: no answer, and none when retried: {error}; {again}")
                })
            }
        };
        let (status, answer) = answer;
        assert_eq!(status, StatusCode::ACCEPTED, "{key}: {answer}");
        ids.push(answer["id"].as_str().expect("id").to_string());
        load.acknowledged.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(PACE).await;
    }
    ids
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Read one HTTP/1.1 response with a Content-Length body; returns (status, body).
async fn read_response(stream: &mut TcpStream) -> (u16, String) {
    let mut raw = Vec::new();
    let mut buf = [0_u8; 4096];
    loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if raw.len() >= end + 4 + length {
                let status = head
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                let body = String::from_utf8_lossy(&raw[end + 4..end + 4 + length]).to_string();
                return (status, body);
            }
        }
        let read = tokio::time::timeout(WAIT, stream.read(&mut buf))
            .await
            .expect("response in time")
            .expect("read");
        assert!(
            read > 0,
            "connection closed mid-response: {}",
            String::from_utf8_lossy(&raw)
        );
        raw.extend_from_slice(&buf[..read]);
    }
}

/// Open a connection to the (only) process on `addr`, prove it was accepted with a first request,
/// then send a reservation request's headers and half its body. Returns the stream and the rest.
async fn begin_slow_request(addr: SocketAddr) -> (TcpStream, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: stayledger\r\n\r\n")
        .await
        .expect("write");
    assert_eq!(read_response(&mut stream).await.0, 200);
    let body = stay_body("tide", 30, 2).to_string().into_bytes();
    let head = format!(
        "POST /reservations HTTP/1.1\r\nhost: stayledger\r\nauthorization: Bearer {}\r\n\
         idempotency-key: rolling-slow\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        customer("rolling-slow"),
        body.len()
    );
    let (first, rest) = body.split_at(body.len() / 2);
    stream.write_all(head.as_bytes()).await.expect("write head");
    stream.write_all(first).await.expect("write half the body");
    (stream, rest.to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_api_restarts_without_losing_or_repeating_a_request() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().to_str().expect("utf-8");
    let args = |addr: &str| {
        ["command-api", "--reuse-port", "--data-dir", data, "--addr"]
            .map(String::from)
            .into_iter()
            .chain([addr.to_string()])
            .collect::<Vec<_>>()
    };
    let start = |args: Vec<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Process::start(&args).await
    };
    let mut old = start(args("127.0.0.1:0")).await;
    let addr = old.addr;
    let api = old.api();
    api.register_lodging("tide", 1_000, "manual").await;

    let load = Arc::new(Load::default());
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| tokio::spawn(client(api.clone(), n, Arc::clone(&load))))
        .collect();
    wait_until("load on the old process", || {
        load.acknowledged.load(Ordering::SeqCst) >= 40
    })
    .await;
    let (mut slow, rest) = begin_slow_request(addr).await;

    let new = start(args(&addr.to_string())).await;
    assert_eq!(new.addr, addr, "the new process shares the port");
    old.terminate();
    old.printed("stopping", WAIT).await;
    slow.write_all(&rest).await.expect("rest of the body");
    let (status, body) = read_response(&mut slow).await;
    assert_eq!(status, 202, "the in-flight request was finished: {body}");
    let slow_id = serde_json::from_str::<Value>(&body).expect("json")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let exit = old.exited(WAIT).await;
    assert!(exit.success(), "the old process exits cleanly: {exit}");

    let at_exit = load.acknowledged.load(Ordering::SeqCst);
    wait_until("load on the new process", || {
        load.acknowledged.load(Ordering::SeqCst) >= at_exit + AFTER_RESTART
    })
    .await;
    load.done.store(true, Ordering::SeqCst);
    let mut acknowledged = vec![slow_id];
    for client in clients {
        acknowledged.extend(client.await.expect("client"));
    }
    new.stop().await;

    let unique: BTreeSet<&String> = acknowledged.iter().collect();
    assert_eq!(unique.len(), acknowledged.len(), "one reservation per key");
    let log = SqliteEventLog::open(dir.path().join("events.db")).expect("log");
    let events = log.read_all(0, 100_000).await.expect("log");
    let recorded: Vec<&str> = events
        .iter()
        .filter(|e| e.event_type == "ReservationRequested")
        .filter_map(|e| e.stream.strip_prefix("reservation-"))
        .collect();
    let recorded_set: BTreeSet<&str> = recorded.iter().copied().collect();
    assert_eq!(
        recorded.len(),
        recorded_set.len(),
        "each request recorded once"
    );
    let acknowledged_set: BTreeSet<&str> = acknowledged.iter().map(String::as_str).collect();
    assert_eq!(
        recorded_set, acknowledged_set,
        "the log holds exactly the acknowledged requests"
    );
    // Only the connections open to the old process when it stopped can each fail one request.
    let retries = load.retries.load(Ordering::SeqCst);
    println!(
        "rolling restart: {} requests acknowledged exactly once; {retries} retried once after a connection error",
        acknowledged.len(),
    );
    assert!(
        retries <= 2 * CLIENTS,
        "{retries} requests had to be retried"
    );
}
