//! The view routes of reservations: ReservationList, ManagementList (the catalog's are in `catalog`).
//!
//! Access (docs/requirements.md, "Access rules"): a customer sees their own reservations, an admin
//! those of their lodgings (their `lodgings` claim, `*` = all, and those they host), an auditor
//! everything. Another
//! customer's reservation answers 403 (as on the command side), an unknown one 404. The filters
//! of `GET /reservations` narrow what the caller may see and never widen it: asking for another
//! customer (as a customer) or a lodging one does not manage (as an admin) answers 403
//! (docs/decisions/0018).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use chrono::NaiveDate;
use http_edge::{Principal, Role};
use readmodel::{
    parse_reservation_status, ApprovalStatus, Page, RequestFilter, ReservationFilter,
    ReservationView, RESERVATION_STATUSES,
};
use uuid::Uuid;

use crate::catalog::{admin_list_scope, manages};
use crate::document::{await_views, document};
use crate::error::QueryError;
use crate::guests::{self, RequestRow, ReservationRow};
use crate::params::Params;
use crate::state::QueryState;

pub(crate) fn routes() -> Router<QueryState> {
    Router::new()
        .route("/reservations", get(list_reservations))
        .route("/reservations/{id}", get(get_reservation))
        .route("/management/requests", get(list_requests))
}

fn reservation_status(params: &Params) -> Result<Option<String>, QueryError> {
    let Some(text) = params.raw("status") else {
        return Ok(None);
    };
    if parse_reservation_status(text).is_some() {
        return Ok(Some(text.to_string()));
    }
    let allowed: Vec<&str> = RESERVATION_STATUSES.iter().map(|s| s.as_str()).collect();
    Err(QueryError::parameter(
        "status",
        format!("must be one of: {}", allowed.join(", ")),
    ))
}

/// `check_in_from` and `check_in_to` (both inclusive; 400 if the range is upside down).
fn check_in_range(params: &Params) -> Result<(Option<NaiveDate>, Option<NaiveDate>), QueryError> {
    let from = params.date("check_in_from")?;
    let to = params.date("check_in_to")?;
    if let (Some(from), Some(to)) = (from, to) {
        if to < from {
            return Err(QueryError::parameter(
                "check_in_to",
                "must not be before check_in_from",
            ));
        }
    }
    Ok((from, to))
}

/// The filters asked for, within what `principal` may see.
async fn reservation_filter(
    state: &QueryState,
    principal: &Principal,
    params: &Params,
) -> Result<ReservationFilter, QueryError> {
    let (check_in_from, check_in_to) = check_in_range(params)?;
    let mut filter = ReservationFilter {
        customer_id: params.customer_id("customer_id")?,
        lodging_ids: None,
        lodging_id: params.identifier("lodging_id")?,
        status: reservation_status(params)?,
        check_in_from,
        check_in_to,
    };
    match principal.role {
        Role::Customer => {
            if filter
                .customer_id
                .as_ref()
                .is_some_and(|c| *c != principal.sub)
            {
                return Err(QueryError::Forbidden(
                    "a customer lists only their own reservations".into(),
                ));
            }
            filter.customer_id = Some(principal.sub.clone());
        }
        Role::Admin => {
            let asked = filter.lodging_id.as_deref();
            filter.lodging_ids = admin_list_scope(state, principal, asked).await?;
        }
        Role::Auditor => {}
    }
    Ok(filter)
}

async fn list_reservations(
    State(state): State<QueryState>,
    principal: Principal,
    params: Params,
) -> Result<Json<Page<ReservationRow>>, QueryError> {
    let page = params.page()?;
    let filter = reservation_filter(&state, &principal, &params).await?;
    await_views(&state, &params).await?;
    let page = state.views.reservations(&filter, &page).await?;
    Ok(Json(guests::reservation_page(&state, page).await?))
}

/// May `principal` read this reservation's document?
pub(crate) async fn may_read(
    state: &QueryState,
    principal: &Principal,
    view: &ReservationView,
) -> Result<bool, QueryError> {
    Ok(match principal.role {
        Role::Customer => view.customer_id == principal.sub,
        Role::Admin => manages(state, principal, &view.lodging_id).await?,
        Role::Auditor => true,
    })
}

async fn get_reservation(
    State(state): State<QueryState>,
    principal: Principal,
    Path(id): Path<String>,
    params: Params,
    headers: HeaderMap,
) -> Result<Response, QueryError> {
    let not_found = || QueryError::NotFound(format!("no reservation {id}"));
    let reservation_id = Uuid::parse_str(&id).map_err(|_| not_found())?;
    await_views(&state, &params).await?;
    let (view, guest) = state
        .views
        .reservation_with_guest(reservation_id)
        .await?
        .ok_or_else(not_found)?;
    if !may_read(&state, &principal, &view).await? {
        return Err(QueryError::Forbidden(format!(
            "reservation {id} is not yours"
        )));
    }
    let (row, position) = guests::reservation_row(&state, view, guest).await?;
    Ok(document(&headers, position, &row))
}

fn request_status(params: &Params) -> Result<Option<String>, QueryError> {
    let Some(text) = params.raw("status") else {
        return Ok(None);
    };
    if ApprovalStatus::parse(text).is_some() {
        return Ok(Some(text.to_string()));
    }
    let allowed: Vec<&str> = ApprovalStatus::ALL.iter().map(|s| s.as_str()).collect();
    Err(QueryError::parameter(
        "status",
        format!("must be one of: {}", allowed.join(", ")),
    ))
}

async fn list_requests(
    State(state): State<QueryState>,
    principal: Principal,
    params: Params,
) -> Result<Json<Page<RequestRow>>, QueryError> {
    let lodging_id = params.identifier("lodging_id")?;
    let lodging_ids = match principal.role {
        Role::Customer => {
            return Err(QueryError::Forbidden(
                "only admins and auditors list requests".into(),
            ))
        }
        Role::Admin => admin_list_scope(&state, &principal, lodging_id.as_deref()).await?,
        Role::Auditor => None,
    };
    let filter = RequestFilter {
        lodging_ids,
        lodging_id,
        status: request_status(&params)?,
    };
    let page = params.page()?;
    await_views(&state, &params).await?;
    let page = state.views.requests(&filter, &page).await?;
    Ok(Json(guests::request_page(&state, page).await?))
}
