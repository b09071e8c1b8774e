//! The payout routes: `GET /payouts` (one row per stay's payout to its host, newest scheduled
//! first) and `GET /payouts/summary` (sums per currency over the same filters).
//!
//! Access: a host (any admin but the platform admin) sees the payouts of the lodgings they manage,
//! as on the ManagementList (those they host and those of their `lodgings` claim); the platform
//! admin (`*`) and auditors see all; customers get 403. A `lodging_id` the admin does not manage
//! answers 403, as on the ManagementList.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use http_edge::{Principal, Role};
use readmodel::{Page, PayoutFilter, PayoutStatus, PayoutTotals, PayoutView};
use serde::Serialize;

use crate::catalog::admin_list_scope;
use crate::document::await_views;
use crate::error::QueryError;
use crate::params::Params;
use crate::state::QueryState;

pub(crate) fn routes() -> Router<QueryState> {
    Router::new()
        .route("/payouts", get(list_payouts))
        .route("/payouts/summary", get(summarize_payouts))
}

/// `GET /payouts/summary`: one entry per currency, by currency.
#[derive(Debug, Serialize)]
struct Summary {
    items: Vec<PayoutTotals>,
}

fn payout_status(params: &Params) -> Result<Option<String>, QueryError> {
    let Some(text) = params.raw("status") else {
        return Ok(None);
    };
    if PayoutStatus::parse_of_payout(text).is_some() {
        return Ok(Some(text.to_string()));
    }
    let allowed: Vec<&str> = PayoutStatus::OF_PAYOUTS
        .iter()
        .map(|s| s.as_str())
        .collect();
    Err(QueryError::parameter(
        "status",
        format!("must be one of: {}", allowed.join(", ")),
    ))
}

/// `lodging_id` and `status`, within the lodgings `principal` may see.
async fn payout_filter(
    state: &QueryState,
    principal: &Principal,
    params: &Params,
) -> Result<PayoutFilter, QueryError> {
    let lodging_id = params.identifier("lodging_id")?;
    let status = payout_status(params)?;
    let lodging_ids = match principal.role {
        Role::Customer => {
            return Err(QueryError::Forbidden(
                "only hosts, the platform admin and auditors read payouts".into(),
            ))
        }
        Role::Admin => admin_list_scope(state, principal, lodging_id.as_deref()).await?,
        Role::Auditor => None,
    };
    Ok(PayoutFilter {
        lodging_ids,
        lodging_id,
        host_id: None,
        status,
    })
}

async fn list_payouts(
    State(state): State<QueryState>,
    principal: Principal,
    params: Params,
) -> Result<Json<Page<PayoutView>>, QueryError> {
    let filter = payout_filter(&state, &principal, &params).await?;
    let page = params.page()?;
    await_views(&state, &params).await?;
    Ok(Json(state.views.payouts(&filter, &page).await?))
}

async fn summarize_payouts(
    State(state): State<QueryState>,
    principal: Principal,
    params: Params,
) -> Result<Json<Summary>, QueryError> {
    let filter = payout_filter(&state, &principal, &params).await?;
    await_views(&state, &params).await?;
    let items = state.views.payout_summary(&filter).await?;
    Ok(Json(Summary { items }))
}
