//! The life of one service process: bind (optionally with SO_REUSEPORT, for rolling restarts),
//! print the address, run the HTTP server and the background work, and on SIGTERM/SIGINT stop
//! taking connections, finish what is in flight (bounded by the grace period) and exit. A part that
//! fails stops the whole process with an error, so the supervisor (compose, systemd) restarts it.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::cli::ListenArgs;
use crate::ops::OpsApp;

/// Pending connections the kernel queues for a listener.
const BACKLOG: i32 = 1024;

/// Bind `addr`; with `reuse_port`, several processes may listen on it at once (Linux spreads new
/// connections between them), which lets a new process start before the old one stops.
pub fn bind(addr: SocketAddr, reuse_port: bool) -> anyhow::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .context("creating a TCP socket")?;
    socket
        .set_reuse_address(true)
        .context("setting SO_REUSEADDR")?;
    if reuse_port {
        set_reuse_port(&socket)?;
    }
    socket
        .set_nonblocking(true)
        .context("making the socket non-blocking")?;
    socket
        .bind(&addr.into())
        .with_context(|| format!("binding {addr}"))?;
    socket
        .listen(BACKLOG)
        .with_context(|| format!("listening on {addr}"))?;
    TcpListener::from_std(socket.into()).context("registering the listener")
}

#[cfg(unix)]
fn set_reuse_port(socket: &Socket) -> anyhow::Result<()> {
    socket.set_reuse_port(true).context("setting SO_REUSEPORT")
}

#[cfg(not(unix))]
fn set_reuse_port(_socket: &Socket) -> anyhow::Result<()> {
    anyhow::bail!("--reuse-port needs a Unix system")
}

/// One service process being started: its shutdown token and its tasks.
pub(crate) struct Service {
    name: &'static str,
    shutdown: CancellationToken,
    tasks: JoinSet<anyhow::Result<()>>,
}

impl Service {
    pub(crate) fn new(name: &'static str, shutdown: CancellationToken) -> Self {
        Self {
            name,
            shutdown,
            tasks: JoinSet::new(),
        }
    }

    /// Run `work` (which must return once the token it gets is cancelled) next to the server.
    pub(crate) fn spawn<Fut>(&mut self, work: impl FnOnce(CancellationToken) -> Fut)
    where
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.tasks.spawn(work(self.shutdown.clone()));
    }

    /// Bind, serve `app`, print `stayledger <name> listening on http://<addr>`, then run until a
    /// signal (or a failed part) and shut down within `listen.shutdown_grace`.
    pub(crate) async fn serve(
        mut self,
        addr: SocketAddr,
        listen: &ListenArgs,
        app: OpsApp,
    ) -> anyhow::Result<()> {
        let listener = bind(addr, listen.reuse_port)?;
        let local = listener.local_addr().context("reading the bound address")?;
        let stop_http = self.shutdown.clone();
        let limits = listen.http.limits();
        self.tasks.spawn(async move {
            http_edge::server::serve(listener, app.router, limits, app.connections, stop_http)
                .await
                .context("HTTP server")
        });
        tracing::info!(service = self.name, %local, reuse_port = listen.reuse_port, "listening");
        crate::supervise::say(&format!(
            "stayledger {} listening on http://{local}",
            self.name
        ));
        self.run(listen.shutdown_grace).await
    }

    async fn run(self, grace: Duration) -> anyhow::Result<()> {
        crate::supervise::run_until_stopped(self.name, self.shutdown, self.tasks, Some(grace)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn two_listeners_share_a_port_with_reuse_port() {
        let first = bind("127.0.0.1:0".parse().expect("addr"), true).expect("first");
        let addr = first.local_addr().expect("addr");
        let second = bind(addr, true).expect("second binds the same port");
        assert_eq!(second.local_addr().expect("addr"), addr);
        assert!(
            bind(addr, false).is_err(),
            "without SO_REUSEPORT the port is taken"
        );
    }

    #[tokio::test]
    async fn a_failing_part_stops_the_service_with_its_error() {
        let shutdown = CancellationToken::new();
        let mut service = Service::new("test", shutdown.clone());
        service.spawn(|stop| async move {
            stop.cancelled().await;
            Ok(())
        });
        service.spawn(|_| async { anyhow::bail!("store gone") });
        let error = service
            .run(Duration::from_secs(5))
            .await
            .expect_err("fails");
        assert!(error.to_string().contains("store gone"), "{error}");
        assert!(shutdown.is_cancelled(), "the other parts were told to stop");
    }
}
