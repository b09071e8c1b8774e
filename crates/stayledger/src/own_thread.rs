//! A part of a process run on a thread of its own, with a single-threaded runtime: its tasks are
//! scheduled by the kernel beside the main runtime's workers instead of queueing behind every
//! ready task of the HTTP edge, the saga and the projector. `serve` runs its webhook dispatcher
//! and senders so: under load each hop of a delivery (read, queued, sent, answered) waited its
//! turn among hundreds of request tasks (docs/benchmarks.md, B9).

use std::future::Future;

use anyhow::anyhow;
use tokio_util::sync::CancellationToken;

/// Start `work` on a new thread named `name` and answer a future of its outcome, to be held in
/// a `JoinSet`. `work` is given a child of `shutdown`, also cancelled when that future is dropped
/// (its runtime gone), and builds its future on the new thread, so what it spawns stays there.
pub fn spawn<F, Fut>(
    name: &'static str,
    shutdown: &CancellationToken,
    work: F,
) -> std::io::Result<impl Future<Output = anyhow::Result<()>> + Send + 'static>
where
    F: FnOnce(CancellationToken) -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + 'static,
{
    let stop = shutdown.child_token();
    let dropped = stop.clone().drop_guard();
    let (done, outcome) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let ran = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|runtime| runtime.block_on(work(stop)));
            let _ = done.send(ran);
        })?;
    Ok(async move {
        let _dropped = dropped;
        outcome
            .await
            .unwrap_or_else(|_| Err(anyhow!("the {name} thread stopped without an outcome")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_work_runs_on_its_own_thread_and_stops_with_shutdown() {
        let shutdown = CancellationToken::new();
        let main = std::thread::current().id();
        let (tell, told) = tokio::sync::oneshot::channel();
        let running = spawn("own-thread-test", &shutdown, move |stop| async move {
            let _ = tell.send(std::thread::current().id());
            stop.cancelled().await;
            Ok(())
        })
        .expect("thread");
        let on = told.await.expect("the work ran");
        assert_ne!(on, main, "the work runs on a thread of its own");
        shutdown.cancel();
        running.await.expect("stopped cleanly");
    }

    #[tokio::test]
    async fn dropping_the_outcome_stops_the_work() {
        let shutdown = CancellationToken::new();
        let (tell, told) = std::sync::mpsc::channel();
        let running = spawn("own-thread-test", &shutdown, move |stop| async move {
            stop.cancelled().await;
            let _ = tell.send("stopped");
            Ok(())
        })
        .expect("thread");
        drop(running);
        let seen = told.recv_timeout(std::time::Duration::from_secs(10));
        assert_eq!(seen, Ok("stopped"), "a dropped outcome cancels the work");
        assert!(!shutdown.is_cancelled(), "the parent is left alone");
    }
}
