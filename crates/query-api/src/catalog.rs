//! The catalog routes: `GET /lodgings` (any token: what users search, active lodgings unless asked
//! otherwise), `GET /lodgings/{id}`, and `GET /listings` (the review queue: the platform admin and
//! auditors see every listing, a host their own), plus who is a lodging's admin on the query side.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use http_edge::{Principal, Role};
use readmodel::{ApprovalMode, ListingStatus, LodgingFilter, LodgingView, Page, PageRequest};
use serde_json::Value;

use crate::document::{await_views, document};
use crate::error::QueryError;
use crate::params::Params;
use crate::state::QueryState;

/// The catalog document as served: the view without what it keeps for the projector alone.
fn served(view: LodgingView) -> Value {
    let mut document = serde_json::to_value(view).unwrap_or_default();
    if let Some(fields) = document.as_object_mut() {
        fields.remove("max_request_rooms");
    }
    document
}

fn served_page(page: Page<LodgingView>) -> Page<Value> {
    Page {
        items: page.items.into_iter().map(served).collect(),
        next_cursor: page.next_cursor,
    }
}

/// The most characters of a name search.
const MAX_QUERY_CHARS: usize = 100;

pub(crate) fn routes() -> Router<QueryState> {
    Router::new()
        .route("/lodgings", get(list_lodgings))
        .route("/lodgings/{id}", get(get_lodging))
        .route("/listings", get(list_listings))
}

fn listing_status(params: &Params) -> Result<Option<ListingStatus>, QueryError> {
    let Some(text) = params.raw("status") else {
        return Ok(None);
    };
    ListingStatus::parse(text).map(Some).ok_or_else(|| {
        let allowed: Vec<&str> = ListingStatus::ALL.iter().map(|s| s.as_str()).collect();
        QueryError::parameter("status", format!("must be one of: {}", allowed.join(", ")))
    })
}

/// `q`, `approval_mode`, `admin_id` and `status` (absent: `default_status`).
fn lodging_filter(
    params: &Params,
    default_status: Option<ListingStatus>,
) -> Result<LodgingFilter, QueryError> {
    let name_contains = match params.raw("q") {
        None => None,
        Some(text) if !text.trim().is_empty() && text.chars().count() <= MAX_QUERY_CHARS => {
            Some(text.to_string())
        }
        Some(_) => {
            return Err(QueryError::parameter(
                "q",
                format!("must be 1 to {MAX_QUERY_CHARS} characters, not blank"),
            ))
        }
    };
    let approval_mode = match params.raw("approval_mode") {
        None => None,
        Some(text) => Some(ApprovalMode::parse(text).ok_or_else(|| {
            QueryError::parameter("approval_mode", "must be one of: manual, instant")
        })?),
    };
    Ok(LodgingFilter {
        name_contains,
        approval_mode,
        admin_id: params.customer_id("admin_id")?,
        status: listing_status(params)?.or(default_status),
    })
}

async fn list_lodgings(
    State(state): State<QueryState>,
    _principal: Principal,
    params: Params,
) -> Result<Json<Page<Value>>, QueryError> {
    let filter = lodging_filter(&params, Some(ListingStatus::Active))?;
    let page = params.page()?;
    await_views(&state, &params).await?;
    let found = state.views.lodgings(&filter, &page).await?;
    Ok(Json(served_page(found)))
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
    Ok(document(&headers, lodging.position, &served(lodging)))
}

/// Listings in any status (or `status`): all of them for the platform admin and auditors, a host's
/// own for any other admin.
async fn list_listings(
    State(state): State<QueryState>,
    principal: Principal,
    params: Params,
) -> Result<Json<Page<Value>>, QueryError> {
    let mut filter = lodging_filter(&params, None)?;
    match principal.role {
        Role::Customer => {
            return Err(QueryError::Forbidden(
                "only admins and auditors list listings".into(),
            ))
        }
        Role::Admin if !principal.is_platform_admin() => {
            if filter
                .admin_id
                .as_ref()
                .is_some_and(|a| *a != principal.sub)
            {
                return Err(QueryError::Forbidden(
                    "a host lists only their own listings".into(),
                ));
            }
            filter.admin_id = Some(principal.sub.clone());
        }
        Role::Admin | Role::Auditor => {}
    }
    let page = params.page()?;
    await_views(&state, &params).await?;
    let found = state.views.lodgings(&filter, &page).await?;
    Ok(Json(served_page(found)))
}

/// Whether `principal` is an admin of `lodging_id`: listed in its `lodgings` claim (or `*`), or
/// the lodging's `admin_id` (its host).
pub(crate) async fn manages(
    state: &QueryState,
    principal: &Principal,
    lodging_id: &str,
) -> Result<bool, QueryError> {
    if principal.manages(lodging_id) {
        return Ok(true);
    }
    if principal.role != Role::Admin {
        return Ok(false);
    }
    let lodging = state.views.lodging(lodging_id).await?;
    Ok(lodging.is_some_and(|l| l.admin_id == principal.sub))
}

/// The lodgings an admin's lists are limited to: those of their claim and those they host; `None`
/// = all (platform admin).
pub(crate) async fn admin_scope(
    state: &QueryState,
    principal: &Principal,
) -> Result<Option<Vec<String>>, QueryError> {
    if principal.is_platform_admin() {
        return Ok(None);
    }
    let mut scope = principal.lodgings.clone();
    let hosted = LodgingFilter {
        admin_id: Some(principal.sub.clone()),
        ..LodgingFilter::default()
    };
    let mut page = PageRequest::first(readmodel::MAX_PAGE);
    loop {
        let listed = state.views.lodgings(&hosted, &page).await?;
        scope.extend(listed.items.into_iter().map(|l| l.lodging_id));
        match listed.next_cursor {
            Some(cursor) => page.cursor = Some(cursor),
            None => break,
        }
    }
    scope.sort();
    scope.dedup();
    Ok(Some(scope))
}
