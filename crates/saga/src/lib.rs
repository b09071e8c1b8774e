//! The reservation saga at runtime: the process manager, its durable timers, the payment and payout
//! workers with their gateway port (HTTP adapter behind a circuit breaker) and the sandbox gateway
//! server.
//!
//! Owns: reacting to reservation, lodging, payment and payout events by running `domain`'s pure saga
//! decisions ([`SagaRunner`]); sending the commands they record, exactly once in effect; timers
//! that survive restarts ([`TimerStore`], [`SqliteTimerStore`]); charging, refunding and paying hosts
//! out through a [`PaymentGateway`] ([`HttpGateway`] behind [`BreakerGateway`]); the [`sandbox`] gateway server.
//! Must not: make business decisions (those live in `domain::saga`), know how events are stored
//! (it goes through `eventlog`'s port and repository), touch read models, or serve anything but
//! the sandbox over HTTP. An open circuit defers a payment or a payout; it never fails it.

pub mod breaker;
pub mod gateway;
pub mod gateway_key;
pub mod http_gateway;
mod runner;
pub mod sandbox;
pub mod status;
pub mod store;

pub use breaker::{BreakerGateway, BreakerPolicy, CircuitBreaker};
pub use gateway::{
    ChargeReceipt, CircuitState, GatewayError, PaymentGateway, PayoutReceipt, RefundReceipt,
};
pub use gateway_key::{GatewayKey, InvalidGatewayKey};
pub use http_gateway::{GatewayConfigError, HttpGateway};
pub use runner::ids;
pub use runner::{Backoff, SagaConfig, SagaRunError, SagaRunner, Shard, ShardError, Source};
pub use status::{SagaStatus, SagaStatusSnapshot};
pub use store::{
    ArmedTimer, ParkedAction, ProgressUpdate, RefundRetry, SagaProgress, SqliteTimerStore,
    TimerStore, TimerStoreError,
};
