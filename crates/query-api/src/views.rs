//! The view routes: lodging catalog, ReservationList, ManagementList.
//!
//! Access (docs/requirements.md, "Access rules"): the catalog is open to any token; a customer sees their own
//! reservations, an admin those of their lodgings (`*` = all), an auditor everything. Another
//! customer's reservation answers 403 (as on the command side), an unknown one 404.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use http_edge::{Principal, Role};
use readmodel::{
    parse_reservation_status, ApprovalStatus, LodgingView, ManagementView, Page, RequestFilter,
    ReservationFilter, ReservationView, RESERVATION_STATUSES,
};
use uuid::Uuid;

use crate::document::{await_views, document};
use crate::error::QueryError;
use crate::params::Params;
use crate::state::QueryState;

pub(crate) fn routes() -> Router<QueryState> {
    Router::new()
        .route("/lodgings", get(list_lodgings))
        .route("/lodgings/{id}", get(get_lodging))
        .route("/reservations", get(list_reservations))
        .route("/reservations/{id}", get(get_reservation))
        .route("/management/requests", get(list_requests))
}

/// The lodgings an admin's lists are limited to; `None` = all (platform admin).
fn admin_scope(principal: &Principal) -> Option<Vec<String>> {
    if principal.is_platform_admin() {
        None
    } else {
        Some(principal.lodgings.clone())
    }
}

async fn list_lodgings(
    State(state): State<QueryState>,
    _principal: Principal,
    params: Params,
) -> Result<Json<Page<LodgingView>>, QueryError> {
    let page = params.page()?;
    await_views(&state, &params).await?;
    Ok(Json(state.views.lodgings(&page).await?))
}

async fn get_lodging(
    State(state): State<QueryState>,
    _principal: Principal,
    Path(id): Path<String>,
    params: Params,
    headers: HeaderMap,
) -> Result<Response, QueryError> {
    await_views(&state, &params).await?;
    let lodging = state
        .views
        .lodging(&id)
        .await?
        .ok_or_else(|| QueryError::NotFound(format!("no lodging {id}")))?;
    Ok(document(&headers, lodging.position, &lodging))
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

async fn list_reservations(
    State(state): State<QueryState>,
    principal: Principal,
    params: Params,
) -> Result<Json<Page<ReservationView>>, QueryError> {
    let page = params.page()?;
    let status = reservation_status(&params)?;
    let filter = match principal.role {
        Role::Customer => ReservationFilter {
            customer_id: Some(principal.sub.clone()),
            lodging_ids: None,
            status,
        },
        Role::Admin => ReservationFilter {
            customer_id: None,
            lodging_ids: admin_scope(&principal),
            status,
        },
        Role::Auditor => ReservationFilter {
            status,
            ..ReservationFilter::default()
        },
    };
    await_views(&state, &params).await?;
    Ok(Json(state.views.reservations(&filter, &page).await?))
}

/// May `principal` read this reservation's document?
fn may_read(principal: &Principal, view: &ReservationView) -> bool {
    match principal.role {
        Role::Customer => view.customer_id == principal.sub,
        Role::Admin => principal.manages(&view.lodging_id),
        Role::Auditor => true,
    }
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
    let view = state
        .views
        .reservation(reservation_id)
        .await?
        .ok_or_else(not_found)?;
    if !may_read(&principal, &view) {
        return Err(QueryError::Forbidden(format!(
            "reservation {id} is not yours"
        )));
    }
    Ok(document(&headers, view.position, &view))
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
) -> Result<Json<Page<ManagementView>>, QueryError> {
    let lodging_id = params.text("lodging_id").map(str::to_string);
    let lodging_ids = match principal.role {
        Role::Customer => {
            return Err(QueryError::Forbidden(
                "only admins and auditors list requests".into(),
            ))
        }
        Role::Admin => admin_scope(&principal),
        Role::Auditor => None,
    };
    if let Some(id) = &lodging_id {
        if principal.role == Role::Admin && !principal.manages(id) {
            return Err(QueryError::Forbidden(format!(
                "you do not manage lodging {id}"
            )));
        }
    }
    let filter = RequestFilter {
        lodging_ids,
        lodging_id,
        status: request_status(&params)?,
    };
    let page = params.page()?;
    await_views(&state, &params).await?;
    Ok(Json(state.views.requests(&filter, &page).await?))
}
