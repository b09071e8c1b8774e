//! The server loop over real sockets: idle and slow clients are closed by the header-read timeout, a
//! stalled body ends in a problem answer, the connection cap holds new sockets back until one closes,
//! and shutdown returns.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::routing::{get, post};
use axum::Router;
use http_edge::{ServerLimits, ServerStats};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Generous: the bounds under test are a few hundred milliseconds, this is how long a busy machine
/// may take to show them.
const EVENTUALLY: Duration = Duration::from_secs(15);

struct Server {
    address: std::net::SocketAddr,
    stats: Arc<ServerStats>,
    shutdown: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
}

async fn start(limits: ServerLimits) -> Server {
    let app = http_edge::apply(
        Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route(
                "/echo",
                post(|body: Bytes| async move { body.len().to_string() }),
            ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let stats = Arc::new(ServerStats::default());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(http_edge::server::serve(
        listener,
        app,
        limits,
        Arc::clone(&stats),
        shutdown.clone(),
    ));
    Server {
        address,
        stats,
        shutdown,
        task,
    }
}

fn limits(header: u64, body: u64, request: u64, connections: usize) -> ServerLimits {
    ServerLimits {
        header_read_timeout: Duration::from_millis(header),
        body_read_timeout: Duration::from_millis(body),
        request_timeout: Duration::from_millis(request),
        max_connections: connections,
    }
}

/// Read until the server closes the socket; what it sent.
async fn until_closed(socket: &mut TcpStream) -> String {
    let mut all = Vec::new();
    let mut buffer = [0_u8; 4096];
    loop {
        let read = tokio::time::timeout(EVENTUALLY, socket.read(&mut buffer))
            .await
            .expect("the server closes the socket");
        match read {
            Ok(0) | Err(_) => break,
            Ok(n) => all.extend_from_slice(&buffer[..n]),
        }
    }
    String::from_utf8_lossy(&all).into_owned()
}

async fn healthz(address: std::net::SocketAddr) -> String {
    let mut socket = TcpStream::connect(address).await.expect("connect");
    socket
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("request");
    until_closed(&mut socket).await
}

#[tokio::test]
async fn idle_and_slowloris_sockets_are_closed_by_the_header_timeout() {
    let server = start(limits(300, 30_000, 30_000, 64)).await;
    let mut idle = TcpStream::connect(server.address).await.expect("connect");
    let mut slow = TcpStream::connect(server.address).await.expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-a: ")
        .await
        .expect("head");
    let drip = tokio::spawn(async move {
        // One header byte every 100 ms, for ever: only the header timeout can end it.
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if slow.write_all(b"a").await.is_err() {
                return slow;
            }
        }
    });
    assert_eq!(
        until_closed(&mut idle).await,
        "",
        "closed without an answer"
    );
    let slow = tokio::time::timeout(EVENTUALLY, drip)
        .await
        .expect("the slow client is cut off")
        .expect("drip task");
    drop(slow);
    // A keep-alive connection that goes quiet after a request is closed the same way.
    let mut kept = TcpStream::connect(server.address).await.expect("connect");
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("request");
    let answer = until_closed(&mut kept).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(healthz(server.address).await.starts_with("HTTP/1.1 200"));
    server.shutdown.cancel();
    server.task.await.expect("join").expect("served");
}

#[tokio::test]
async fn a_stalled_body_gets_a_problem_and_the_socket_is_closed() {
    let server = start(limits(30_000, 300, 30_000, 64)).await;
    let mut socket = TcpStream::connect(server.address).await.expect("connect");
    socket
        .write_all(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"fourteen\":1,",
        )
        .await
        .expect("part of a body");
    let answer = until_closed(&mut socket).await.to_ascii_lowercase();
    assert!(
        answer.starts_with("http/1.1 408") || answer.starts_with("http/1.1 400"),
        "{answer}"
    );
    assert!(answer.contains("application/problem+json"), "{answer}");
    server.shutdown.cancel();
    server.task.await.expect("join").expect("served");
}

#[tokio::test]
async fn a_request_over_the_request_timeout_answers_408() {
    let server = start(limits(30_000, 30_000, 300, 64)).await;
    // The body trickles in faster than the body timeout but the whole takes longer than the request's.
    let socket = TcpStream::connect(server.address).await.expect("connect");
    let (mut reader, mut writer) = socket.into_split();
    writer
        .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        .await
        .expect("head");
    let trickle = tokio::spawn(async move {
        for _ in 0..1000 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if writer.write_all(b" ").await.is_err() {
                break;
            }
        }
    });
    let mut answer = vec![0_u8; 4096];
    let read = tokio::time::timeout(EVENTUALLY, reader.read(&mut answer))
        .await
        .expect("an answer before the body is complete")
        .expect("read");
    trickle.abort();
    let answer = String::from_utf8_lossy(&answer[..read]).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 408"), "{answer}");
    assert!(answer.contains("request-timeout"), "{answer}");
    server.shutdown.cancel();
    server.task.await.expect("join").expect("served");
}

#[tokio::test]
async fn at_the_connection_cap_new_sockets_wait_until_one_closes() {
    let server = start(limits(30_000, 30_000, 30_000, 2)).await;
    let first = TcpStream::connect(server.address).await.expect("connect");
    let second = TcpStream::connect(server.address).await.expect("connect");
    let waiting = tokio::spawn(healthz(server.address));
    // Both slots are held by silent sockets: the third is not served while they stay.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "served above the cap");
    assert_eq!(server.stats.open(), 2);
    drop(first);
    let answer = tokio::time::timeout(EVENTUALLY, waiting)
        .await
        .expect("served once a slot is free")
        .expect("join");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(server.stats.times_at_cap() >= 1);
    drop(second);
    server.shutdown.cancel();
    server.task.await.expect("join").expect("served");
}
