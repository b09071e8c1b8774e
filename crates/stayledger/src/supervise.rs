//! Task supervision: background services restart with backoff after a failure, and stop on shutdown;
//! a process runs its tasks until a signal or the first failure ([`run_until_stopped`]).

use std::future::Future;
use std::time::Duration;

use tokio::task::{JoinError, JoinSet};
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

/// Run a process's `tasks` until `shutdown` (a signal) or until one of them ends by itself, which
/// is a failure: then cancel `shutdown` so the others stop too. Either way print
/// `stayledger <name> stopping: finishing in-flight work`, wait for every task (at most `grace`)
/// and return the first failure, so the process exits non-zero and its supervisor restarts it.
pub async fn run_until_stopped(
    name: &'static str,
    shutdown: CancellationToken,
    mut tasks: JoinSet<anyhow::Result<()>>,
    grace: Option<Duration>,
) -> anyhow::Result<()> {
    let first = tokio::select! {
        biased;
        () = shutdown.cancelled() => None,
        Some(joined) = tasks.join_next() => Some(joined),
    };
    let mut result = match first.map(outcome) {
        None | Some(Ok(())) if shutdown.is_cancelled() => Ok(()),
        None | Some(Ok(())) => Err(anyhow::anyhow!("a part of {name} stopped by itself")),
        Some(Err(error)) => Err(error),
    };
    say(&format!(
        "stayledger {name} stopping: finishing in-flight work"
    ));
    if let Err(error) = &result {
        tracing::error!(
            process = name,
            error = format!("{error:#}"),
            "stopping the process"
        );
    }
    shutdown.cancel();
    let drain = async {
        while let Some(joined) = tasks.join_next().await {
            if let Err(error) = outcome(joined) {
                tracing::error!(
                    process = name,
                    error = format!("{error:#}"),
                    "failed while stopping"
                );
                if result.is_ok() {
                    result = Err(error);
                }
            }
        }
    };
    match grace {
        Some(grace) => tokio::time::timeout(grace, drain).await.map_err(|_| {
            anyhow::anyhow!("{name}: in-flight work did not finish within {grace:?}")
        })?,
        None => drain.await,
    }
    tracing::info!(process = name, "stopped");
    result
}

fn outcome(joined: Result<anyhow::Result<()>, JoinError>) -> anyhow::Result<()> {
    joined.unwrap_or_else(|e| Err(anyhow::anyhow!("a task panicked: {e}")))
}

/// A line on stdout for whoever started the process (tests, scripts); a closed stdout is no error.
pub fn say(line: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
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
