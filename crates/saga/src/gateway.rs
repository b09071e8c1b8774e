//! The payment-gateway port: charge (idempotent per key), refund (idempotent per charge) and pay a
//! host out (idempotent per key).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// What a successful charge returns: the gateway's reference of the charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeReceipt {
    pub charge_ref: String,
}

/// What a successful refund returns: the gateway's reference of the refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundReceipt {
    pub refund_ref: String,
}

/// What a successful payout returns: the gateway's reference of the payout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutReceipt {
    pub payout_ref: String,
}

/// Why a gateway call did not succeed. Only [`GatewayError::Declined`] is final; the others defer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// The gateway answered and said no (card declined, unknown charge, amount too high): do not retry.
    #[error("declined by the payment gateway: {0}")]
    Declined(String),
    /// Overloaded, 5xx, timeout, connection refused, malformed answer: try again later.
    #[error("payment gateway unavailable: {0}")]
    Unavailable(String),
    /// The circuit breaker is open: the gateway was not called. Try again later.
    #[error("payment gateway circuit is open")]
    CircuitOpen,
}

impl GatewayError {
    /// A later retry may succeed (the gateway did not give a final answer).
    #[must_use]
    pub fn is_transient(&self) -> bool {
        !matches!(self, Self::Declined(_))
    }
}

/// State of a circuit breaker, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

impl CircuitState {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

/// A third-party payment gateway.
#[async_trait]
pub trait PaymentGateway: Send + Sync + 'static {
    /// Charge `amount` (minor units of `currency`). A repeated `idempotency_key` returns the first
    /// charge and never charges twice.
    async fn charge(
        &self,
        idempotency_key: &str,
        amount: i64,
        currency: &str,
    ) -> Result<ChargeReceipt, GatewayError>;

    /// Refund `amount` of the charge `charge_ref`. Refunding a charge twice never refunds twice.
    async fn refund(&self, charge_ref: &str, amount: i64) -> Result<RefundReceipt, GatewayError>;

    /// Pay `amount` (minor units of `currency`) to `payee`. A repeated `idempotency_key` returns
    /// the first payout and never pays twice.
    async fn payout(
        &self,
        idempotency_key: &str,
        payee: &str,
        amount: i64,
        currency: &str,
    ) -> Result<PayoutReceipt, GatewayError>;

    /// The circuit breaker's state, if this gateway sits behind one.
    fn circuit_state(&self) -> Option<CircuitState> {
        None
    }
}
