//! The one `stayledger` binary's library: CLI definitions, the `serve` composition (everything in one
//! process over the embedded stores), each service alone, and the operator/auditor CLI tools.
//!
//! Owns: wiring (which adapter, which port, which task), configuration from flags and environment,
//! process lifecycle (signals, graceful shutdown, task supervision).
//! Must not: hold business rules (domain), storage details (eventlog, readmodel) or HTTP error
//! mapping (the API crates). `main.rs` only parses arguments and calls in here.
//!
//! Modules depend only on modules listed before them (no import cycle):
//! `cli` (every subcommand's flags; depends on no other module), `metrics`, `supervise`, `lease`
//! (the lease port and its SQLite and MongoDB adapters), `data_dir` (file names of the data dir and
//! opening the embedded stores in it, the JWT secret), `ops`, `stores` (opening by flags: embedded,
//! EventStoreDB, MongoDB; the payment gateway client), `lifecycle`, `views_swap`, `audit`, `token`,
//! `scale_out`, `services`, `serve`.

pub mod audit;
pub mod cli;
pub mod data_dir;
pub mod huge_pages;
pub mod lease;
mod lifecycle;
pub mod malloc_arena;
pub mod metrics;
pub mod ops;
mod own_thread;
pub mod readiness;
pub mod scale_out;
pub mod serve;
pub mod services;
pub mod stdout;
mod stores;
pub mod supervise;
pub mod token;
pub mod views_swap;
