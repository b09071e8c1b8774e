//! Integration tests of the saga runtime over the real SQLite event log, the real sandbox gateway
//! on a real socket and the real HTTP client.

mod flow;
mod gateway;
mod group;
mod payouts;
mod recovery;
mod retries;
mod sandbox_http;
mod store;
mod timers;
mod world;
