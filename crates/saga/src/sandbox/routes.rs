//! HTTP handlers of the sandbox gateway. Errors are `application/problem+json`.

use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::ledger::{LedgerRefusal, SandboxConfig};
use super::SandboxState;

// Every body refuses a field it does not take (400 naming it), like the platform's own APIs.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ChargeBody {
    idempotency_key: String,
    #[serde(deserialize_with = "http_edge::body::json_integer")]
    amount: i64,
    currency: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RefundBody {
    charge_ref: String,
    #[serde(deserialize_with = "http_edge::body::json_integer")]
    amount: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PayoutBody {
    idempotency_key: String,
    payee: String,
    #[serde(deserialize_with = "http_edge::body::json_integer")]
    amount: i64,
    currency: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConfigBody {
    #[serde(default, deserialize_with = "present_integer")]
    latency_ms: Option<i64>,
    #[serde(default, deserialize_with = "present")]
    decline_rate: Option<f64>,
    #[serde(default, deserialize_with = "present")]
    overloaded: Option<bool>,
}

/// [`present`] for an integer, which JSON Schema lets be written `2.0`.
fn present_integer<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
    http_edge::body::json_integer(deserializer).map(Some)
}

/// A setting left out keeps its value; one given must be a value (`null` is a 400, as the document says).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// Longest latency the sandbox may be told to add.
const MAX_LATENCY_MS: u64 = 60_000;

pub(super) fn problem(status: StatusCode, detail: &str) -> Response {
    let body = json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("error"),
        "status": status.as_u16(),
        "detail": detail,
        "sandbox": true,
    });
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

fn refusal(refusal: LedgerRefusal) -> Response {
    match refusal {
        LedgerRefusal::Overloaded => {
            let mut response = problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "the sandbox gateway is overloaded (sandbox setting)",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
        LedgerRefusal::Declined(detail) => problem(StatusCode::PAYMENT_REQUIRED, &detail),
        LedgerRefusal::Invalid(detail) => problem(StatusCode::UNPROCESSABLE_ENTITY, &detail),
        LedgerRefusal::UnknownCharge(charge_ref) => {
            problem(StatusCode::NOT_FOUND, &format!("no charge {charge_ref}"))
        }
        LedgerRefusal::KeyReused(detail) => problem(StatusCode::CONFLICT, &detail),
        LedgerRefusal::Unrecorded => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "the sandbox could not record this in its ledger; nothing was taken, try again",
        ),
    }
}

/// The body as a `T`, read from a JSON object only (serde would also take a struct written as an
/// array); anything else is refused with the reason (a 400 problem).
fn object_body<T: DeserializeOwned>(body: Result<Json<Value>, JsonRejection>) -> Result<T, String> {
    let Json(value) = body.map_err(|rejection| rejection.body_text())?;
    if !value.is_object() {
        return Err("the body must be a JSON object".into());
    }
    serde_json::from_value(value).map_err(|e| format!("invalid body: {e}"))
}

async fn simulate_latency(state: &SandboxState) {
    let latency = state.config().latency_ms;
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
}

pub(super) async fn charge(
    State(state): State<SandboxState>,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    let body: ChargeBody = match object_body(body) {
        Ok(body) => body,
        Err(detail) => return problem(StatusCode::BAD_REQUEST, &detail),
    };
    simulate_latency(&state).await;
    let outcome = state
        .write(move |book| {
            let declined = rand::random::<f64>() < book.ledger.config.decline_rate;
            book.charge(&body.idempotency_key, body.amount, &body.currency, declined)
        })
        .await;
    match outcome {
        Ok((charge, replayed)) => created(
            json!({"charge_ref": charge.charge_ref, "sandbox": true}),
            replayed,
        ),
        Err(refused) => refusal(refused),
    }
}

/// 201 with `body`; a replayed idempotency key is said so in a header.
fn created(body: Value, replayed: bool) -> Response {
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

pub(super) async fn refund(
    State(state): State<SandboxState>,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    let body: RefundBody = match object_body(body) {
        Ok(body) => body,
        Err(detail) => return problem(StatusCode::BAD_REQUEST, &detail),
    };
    simulate_latency(&state).await;
    let outcome = state
        .write(move |book| book.refund(&body.charge_ref, body.amount))
        .await;
    match outcome {
        Ok(refund_ref) => {
            let body = json!({"refund_ref": refund_ref, "sandbox": true});
            (StatusCode::CREATED, Json(body)).into_response()
        }
        Err(refused) => refusal(refused),
    }
}

pub(super) async fn list_charges(State(state): State<SandboxState>) -> Response {
    Json(state.charges()).into_response()
}

/// A payout is never declined: the sandbox's `decline_rate` is for charges.
pub(super) async fn payout(
    State(state): State<SandboxState>,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    let body: PayoutBody = match object_body(body) {
        Ok(body) => body,
        Err(detail) => return problem(StatusCode::BAD_REQUEST, &detail),
    };
    simulate_latency(&state).await;
    let outcome = state
        .write(move |book| {
            book.payout(
                &body.idempotency_key,
                &body.payee,
                body.amount,
                &body.currency,
            )
        })
        .await;
    match outcome {
        Ok((payout, replayed)) => created(
            json!({"payout_ref": payout.payout_ref, "sandbox": true}),
            replayed,
        ),
        Err(refused) => refusal(refused),
    }
}

pub(super) async fn list_payouts(State(state): State<SandboxState>) -> Response {
    Json(state.payouts()).into_response()
}

pub(super) async fn show_config(State(state): State<SandboxState>) -> Response {
    config_answer(state.config())
}

pub(super) async fn update_config(
    State(state): State<SandboxState>,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    let body: ConfigBody = match object_body(body) {
        Ok(body) => body,
        Err(detail) => return problem(StatusCode::BAD_REQUEST, &detail),
    };
    if let Some(rate) = body.decline_rate {
        if !(0.0..=1.0).contains(&rate) {
            return problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "decline_rate must be between 0.0 and 1.0",
            );
        }
    }
    let latency_ms = match body.latency_ms.map(u64::try_from) {
        Some(Ok(ms)) if ms <= MAX_LATENCY_MS => Some(ms),
        None => None,
        Some(_) => {
            let detail = format!("latency_ms must be from 0 to {MAX_LATENCY_MS}");
            return problem(StatusCode::UNPROCESSABLE_ENTITY, &detail);
        }
    };
    let config = {
        let mut book = state.book();
        let config = &mut book.ledger.config;
        config.latency_ms = latency_ms.unwrap_or(config.latency_ms);
        config.decline_rate = body.decline_rate.unwrap_or(config.decline_rate);
        config.overloaded = body.overloaded.unwrap_or(config.overloaded);
        *config
    };
    tracing::info!(?config, "sandbox gateway reconfigured");
    config_answer(config)
}

fn config_answer(config: SandboxConfig) -> Response {
    let body = json!({
        "latency_ms": config.latency_ms,
        "decline_rate": config.decline_rate,
        "overloaded": config.overloaded,
        "sandbox": true,
    });
    Json(body).into_response()
}

pub(super) async fn describe() -> Response {
    let body = json!({
        "name": "stayledger payment sandbox",
        "sandbox": true,
        "detail": "a stand-in payment gateway for demos, tests and benchmarks: no real money moves",
    });
    Json(body).into_response()
}
