//! The listener under a socket flood, on the real binary: `serve` runs with its open-file limit at
//! 512, and more silent sockets than that are opened against it. The connection cap (the file limit
//! less what the stores keep) holds the surplus in the kernel's backlog, the header-read timeout
//! closes the silent ones, and meanwhile nothing runs out of files: the probes answer again, a
//! reservation still goes from request to `confirmed` (the saga and the projector kept their stores),
//! and no accept ever failed. And with its files unable to grow (a full disk), writes fail and
//! `/readyz` says so instead of calling the process ready.

#[path = "common/process.rs"]
mod process;

use std::time::Duration;

use process::{customer, Process};
use reqwest::StatusCode;

const FILE_LIMIT: u32 = 512;
const SILENT_SOCKETS: usize = 600;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_silent_sockets_neither_stops_the_service_nor_starves_its_stores() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().to_str().expect("utf-8 path");
    let serve = Process::start_with_file_limit(
        FILE_LIMIT,
        &[
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--data-dir",
            data_dir,
            "--header-read-timeout",
            "1s",
        ],
    )
    .await;
    let api = serve.api();
    api.register_lodging("inn", 4, "instant").await;

    // More sockets than the process has files, none of them saying a word.
    let mut silent = Vec::with_capacity(SILENT_SOCKETS);
    for _ in 0..SILENT_SOCKETS {
        silent.push(
            tokio::net::TcpStream::connect(serve.addr)
                .await
                .expect("the kernel takes the connection"),
        );
    }
    // While they are held open: the service answers again once the timeout has closed those it took
    // (a probe may wait in the backlog behind the flood, or time out: it is asked again).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let probe = api
            .try_call(reqwest::Method::GET, "/healthz", None, None, None)
            .await;
        if matches!(probe, Ok((StatusCode::OK, _))) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no answer during the flood: {probe:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (id, _) = api.request("mia", "inn", 30).await;
    api.wait_for(&id, "status", "confirmed", Duration::from_secs(60))
        .await;
    drop(silent);

    let cap_reached = api
        .metric("stayledger_http_connection_cap_reached_total", "")
        .await
        .expect("the cap counter is published");
    assert!(cap_reached >= 1.0, "the flood reached the cap");
    assert_eq!(
        api.metric("stayledger_http_accept_errors_total", "").await,
        Some(0.0),
        "no accept failed for want of a file"
    );
    let (status, customer_view) = api
        .get(&format!("/reservations/{id}"), Some(&customer("mia")))
        .await;
    assert_eq!(status, StatusCode::OK, "{customer_view}");
    serve.stop().await;
}

/// The largest file `serve` may write in the full-disk test: 2 MiB, in 512-byte blocks.
const FULL_DISK_BLOCKS: u64 = 4_096;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_writes_fail_for_want_of_space_readiness_says_so() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().to_str().expect("utf-8 path");
    let serve = Process::start_with_file_size_limit(
        FULL_DISK_BLOCKS,
        &["serve", "--addr", "127.0.0.1:0", "--data-dir", data_dir],
    )
    .await;
    let api = serve.api();
    api.register_lodging("full-inn", 1_000, "manual").await;
    let (status, ready) = api.get("/readyz", None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "ready before the disk fills: {ready}"
    );

    // Requests until the log cannot grow any more.
    let token = customer("filler");
    let mut failed = None;
    for n in 0..50_000_i64 {
        let body = process::stay_body("full-inn", 30 + n % 300, 1);
        let answer = api
            .try_call(
                reqwest::Method::POST,
                "/reservations",
                Some(&token),
                Some(&body),
                None,
            )
            .await
            .expect("an answer, also when the disk is full");
        if answer.0.is_server_error() {
            failed = Some(answer);
            break;
        }
        assert_eq!(answer.0, StatusCode::ACCEPTED, "{answer:?}");
    }
    let (status, problem) = failed.expect("the log reached the file size limit");
    assert_eq!(
        problem["status"],
        status.as_u16(),
        "problem+json: {problem}"
    );

    let (status, ready) = api.get("/readyz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{ready}");
    let detail = ready["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("writes are failing"), "{ready}");
    let (status, _) = api.get("/healthz", None).await;
    assert_eq!(status, StatusCode::OK, "alive, only not ready");
    serve.stop().await;
}
