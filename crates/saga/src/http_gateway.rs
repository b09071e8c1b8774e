//! The HTTP adapter of the payment-gateway port, speaking the sandbox protocol (docs/api.md):
//! `POST {base}/charges {idempotency_key, amount, currency}`,
//! `POST {base}/refunds {charge_ref, amount}` and
//! `POST {base}/payouts {idempotency_key, payee, amount, currency}`, each authenticated with the
//! configured gateway key (`Authorization: Bearer <key>`), each answer classified alike.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::{StatusCode, Url};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::gateway::{ChargeReceipt, GatewayError, PaymentGateway, PayoutReceipt, RefundReceipt};
use crate::gateway_key::GatewayKey;

/// The gateway URL or the HTTP client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum GatewayConfigError {
    #[error("invalid payment gateway URL {url:?}: {message}")]
    InvalidUrl { url: String, message: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// A payment gateway reached over HTTP, with a timeout on every call.
#[derive(Debug, Clone)]
pub struct HttpGateway {
    client: reqwest::Client,
    charges_url: Url,
    refunds_url: Url,
    payouts_url: Url,
}

#[derive(Serialize)]
struct ChargeRequest<'a> {
    idempotency_key: &'a str,
    amount: i64,
    currency: &'a str,
}

#[derive(Serialize)]
struct RefundRequest<'a> {
    charge_ref: &'a str,
    amount: i64,
}

#[derive(Serialize)]
struct PayoutRequest<'a> {
    idempotency_key: &'a str,
    payee: &'a str,
    amount: i64,
    currency: &'a str,
}

#[derive(Deserialize, Default)]
struct Problem {
    #[serde(default)]
    detail: Option<String>,
    #[serde(default)]
    title: Option<String>,
}

impl HttpGateway {
    /// A client for the gateway at `base_url` (e.g. `http://127.0.0.1:8080/sandbox`) presenting
    /// `key`; each call gives up after `timeout` (and then counts as unavailable).
    pub fn new(
        base_url: &str,
        key: &GatewayKey,
        timeout: Duration,
    ) -> Result<Self, GatewayConfigError> {
        let invalid = |message: String| GatewayConfigError::InvalidUrl {
            url: base_url.to_string(),
            message,
        };
        let base = Url::parse(&format!("{}/", base_url.trim_end_matches('/')))
            .map_err(|e| invalid(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(invalid("scheme must be http or https".to_string()));
        }
        let join = |path: &str| base.join(path).map_err(|e| invalid(e.to_string()));
        let mut authorization =
            reqwest::header::HeaderValue::from_str(&format!("Bearer {}", key.expose()))
                .map_err(|e| GatewayConfigError::Client(format!("gateway key: {e}")))?;
        authorization.set_sensitive(true);
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::AUTHORIZATION, authorization);
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| GatewayConfigError::Client(e.to_string()))?;
        Ok(Self {
            client,
            charges_url: join("charges")?,
            refunds_url: join("refunds")?,
            payouts_url: join("payouts")?,
        })
    }

    async fn post<B: Serialize + Sync, R: DeserializeOwned>(
        &self,
        url: &Url,
        body: &B,
    ) -> Result<R, GatewayError> {
        let response = self
            .client
            .post(url.clone())
            .json(body)
            .send()
            .await
            .map_err(|e| GatewayError::Unavailable(describe(&e)))?;
        let status = response.status();
        if status.is_success() {
            return response
                .json::<R>()
                .await
                .map_err(|e| GatewayError::Unavailable(format!("malformed answer: {e}")));
        }
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            tracing::error!(%status, "the payment gateway refused this client's key: configure the key it takes");
        }
        let problem = response.json::<Problem>().await.unwrap_or_default();
        let detail = problem
            .detail
            .or(problem.title)
            .unwrap_or_else(|| status.to_string());
        Err(classify(status, detail))
    }
}

/// A final answer (declined, unknown charge, key reused, invalid amount) is a decline; anything
/// else may pass (a 401 or 403 means this client's key is not the gateway's: an operator must fix
/// it, and the payment waits meanwhile).
fn classify(status: StatusCode, detail: String) -> GatewayError {
    match status {
        StatusCode::PAYMENT_REQUIRED
        | StatusCode::NOT_FOUND
        | StatusCode::CONFLICT
        | StatusCode::UNPROCESSABLE_ENTITY => GatewayError::Declined(detail),
        _ => GatewayError::Unavailable(format!("{status}: {detail}")),
    }
}

fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".to_string()
    } else if error.is_connect() {
        format!("cannot connect: {error}")
    } else {
        error.to_string()
    }
}

#[async_trait]
impl PaymentGateway for HttpGateway {
    async fn charge(
        &self,
        idempotency_key: &str,
        amount: i64,
        currency: &str,
    ) -> Result<ChargeReceipt, GatewayError> {
        let body = ChargeRequest {
            idempotency_key,
            amount,
            currency,
        };
        self.post(&self.charges_url, &body).await
    }

    async fn refund(&self, charge_ref: &str, amount: i64) -> Result<RefundReceipt, GatewayError> {
        let body = RefundRequest { charge_ref, amount };
        self.post(&self.refunds_url, &body).await
    }

    async fn payout(
        &self,
        idempotency_key: &str,
        payee: &str,
        amount: i64,
        currency: &str,
    ) -> Result<PayoutReceipt, GatewayError> {
        let body = PayoutRequest {
            idempotency_key,
            payee,
            amount,
            currency,
        };
        self.post(&self.payouts_url, &body).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> GatewayKey {
        GatewayKey::new("sk_sandbox_test_key_0123456789").expect("key")
    }

    #[test]
    fn rejects_a_url_that_is_not_http() {
        let err =
            HttpGateway::new("ftp://example.com", &key(), Duration::from_secs(1)).unwrap_err();
        assert!(
            matches!(err, GatewayConfigError::InvalidUrl { .. }),
            "{err}"
        );
        assert!(HttpGateway::new("not a url", &key(), Duration::from_secs(1)).is_err());
    }

    #[test]
    fn joins_routes_under_the_base_path() {
        let gateway = HttpGateway::new(
            "http://127.0.0.1:9/sandbox/",
            &key(),
            Duration::from_secs(1),
        )
        .expect("valid url");
        assert_eq!(
            gateway.charges_url.as_str(),
            "http://127.0.0.1:9/sandbox/charges"
        );
        assert_eq!(
            gateway.refunds_url.as_str(),
            "http://127.0.0.1:9/sandbox/refunds"
        );
        assert_eq!(
            gateway.payouts_url.as_str(),
            "http://127.0.0.1:9/sandbox/payouts"
        );
    }

    #[test]
    fn only_final_answers_are_declines() {
        let declined = classify(StatusCode::PAYMENT_REQUIRED, "card declined".into());
        assert_eq!(declined, GatewayError::Declined("card declined".into()));
        let overloaded = classify(StatusCode::SERVICE_UNAVAILABLE, "overloaded".into());
        assert!(overloaded.is_transient(), "{overloaded}");
        assert!(classify(StatusCode::INTERNAL_SERVER_ERROR, String::new()).is_transient());
    }

    #[tokio::test]
    async fn a_refused_connection_is_unavailable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let gateway = HttpGateway::new(&format!("http://{addr}"), &key(), Duration::from_secs(2))
            .expect("valid url");
        let err = gateway.charge("k", 100, "KRW").await.unwrap_err();
        assert!(matches!(err, GatewayError::Unavailable(_)), "{err}");
    }
}
