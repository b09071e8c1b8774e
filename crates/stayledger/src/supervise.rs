//! Task supervision: background services restart with backoff after a failure, and stop on shutdown.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Run `task` until `shutdown`; when it fails (or ends early), log it and start it again after a
/// growing delay (100 ms doubling to 10 s). A task that ran for a minute resets the delay.
pub async fn supervise<F, Fut, E>(name: &'static str, shutdown: CancellationToken, mut task: F)
where
    F: FnMut(CancellationToken) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut delay = Duration::from_millis(100);
    while !shutdown.is_cancelled() {
        let started = tokio::time::Instant::now();
        match task(shutdown.child_token()).await {
            Ok(()) if shutdown.is_cancelled() => break,
            Ok(()) => tracing::warn!(task = name, "background task ended early; restarting"),
            Err(error) => {
                tracing::error!(task = name, %error, "background task failed; restarting")
            }
        }
        if started.elapsed() > Duration::from_secs(60) {
            delay = Duration::from_millis(100);
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(10));
    }
    tracing::info!(task = name, "stopped");
}

/// A token cancelled on SIGINT or SIGTERM.
#[must_use]
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown signal received; finishing in-flight work");
        trigger.cancel();
    });
    token
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers, fall back to ctrl-c only.
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
