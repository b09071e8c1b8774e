//! Command and query APIs merged on one port over fresh embedded stores in a temp dir, with the
//! projector running, for trying the API by hand or fuzzing it (e.g. schemathesis against
//! `/openapi.json`). Prints the address and a token per role, then serves until Ctrl-C.
//!
//! `cargo run -p stayledger --example api_sandbox [-- 127.0.0.1:8088]` (here, not in query-api, which
//! does not depend on the command side)

use std::sync::Arc;
use std::time::Duration;

use command_api::CommandState;
use eventlog::{EventLog, Repositories, SqliteEventLog};
use http_edge::{Auth, Claims, Role};
use projector::Projector;
use query_api::{QueryState, ViewProgress};
use readmodel::{SqliteViewStore, ViewStore};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_string());
    let dir = tempfile::tempdir()?;
    let log: Arc<dyn EventLog> = Arc::new(SqliteEventLog::open(dir.path().join("events.db"))?);
    let views: Arc<dyn ViewStore> = Arc::new(SqliteViewStore::open(dir.path().join("views.db"))?);
    let secret: [u8; 32] = rand_secret();
    let auth = Arc::new(Auth::new(secret));
    let projector = Projector::new(Arc::clone(&log), Arc::clone(&views));
    let progress = ViewProgress::Watch(projector.status().subscribe());
    let shutdown = CancellationToken::new();
    tokio::spawn(projector.run(shutdown.clone()));
    let commands = command_api::router(CommandState::new(
        Repositories::new(Arc::clone(&log)),
        Arc::clone(&auth),
    ));
    let queries = query_api::router(QueryState::new(log, views, Arc::clone(&auth), progress));
    let app = commands
        .merge(queries)
        .fallback(http_edge::problem::not_found);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let day = Duration::from_secs(86_400);
    for (role, sub, lodgings) in [
        (Role::Customer, "c-1", vec![]),
        (Role::Admin, "root", vec!["*".to_string()]),
        (Role::Auditor, "au-1", vec![]),
    ] {
        println!(
            "{} {}",
            role.as_str(),
            auth.mint(&Claims::new(sub, role, lodgings, day))?
        );
    }
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
    Ok(())
}

/// 32 bytes that differ per run (a sandbox secret, never a production one).
fn rand_secret() -> [u8; 32] {
    let seed = uuid::Uuid::new_v4().as_u128().to_le_bytes();
    let mut secret = [0_u8; 32];
    secret[..16].copy_from_slice(&seed);
    secret[16..].copy_from_slice(&uuid::Uuid::new_v4().as_u128().to_le_bytes());
    secret
}
