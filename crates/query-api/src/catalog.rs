//! The catalog routes: `GET /lodgings` (any token: what users search, active lodgings unless asked
//! otherwise), `GET /lodgings/{id}`, and `GET /listings` (the review queue: the platform admin and
//! auditors see every listing, a host their own), plus who is a lodging's admin on the query side.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use chrono::NaiveDate;
use http_edge::{Principal, Role};
use readmodel::{ApprovalMode, ListingStatus, LodgingFilter, LodgingView, Page, PageRequest};
use serde_json::Value;

/// The most rooms a search asks for (as a lodging may have).
const MAX_ROOMS: u64 = 10_000;

use crate::availability;
use crate::document::{await_views, document};
use crate::error::QueryError;
use crate::params::Params;
use crate::state::QueryState;

/// The catalog document as served: the view with `status_today`, without what it keeps for the
/// projector alone.
async fn served(state: &QueryState, view: LodgingView) -> Result<Value, QueryError> {
    let today = availability::status_today(state, &view).await?;
    let mut document = serde_json::to_value(view).unwrap_or_default();
    if let Some(fields) = document.as_object_mut() {
        fields.remove("max_request_rooms");
        fields.insert("status_today".into(), today.into());
    }
    Ok(document)
}

async fn served_page(
    state: &QueryState,
    page: Page<LodgingView>,
) -> Result<Page<Value>, QueryError> {
    let mut items = Vec::with_capacity(page.items.len());
    for view in page.items {
        items.push(served(state, view).await?);
    }
    Ok(Page {
        items,
        next_cursor: page.next_cursor,
    })
}

/// Store pages read for one page of the availability filter before answering with fewer items.
const MAX_SCANNED_PAGES: usize = 20;

/// One page of lodgings with `rooms` free on every night of `range`: store pages are read whole
/// (each of the rows still wanted), so the cursor stays the store's, and a page may hold fewer than
/// `limit` lodgings while `next_cursor` says there are more to look at.
async fn available_page(
    state: &QueryState,
    filter: &LodgingFilter,
    mut page: PageRequest,
    range: (NaiveDate, NaiveDate),
    rooms: u32,
) -> Result<Page<LodgingView>, QueryError> {
    let limit = page.clamped_limit();
    let mut items = Vec::new();
    for _ in 0..MAX_SCANNED_PAGES {
        page.limit = limit - items.len();
        let found = state.views.lodgings(filter, &page).await?;
        for lodging in found.items {
            if availability::has_free(state, &lodging, range, rooms).await? {
                items.push(lodging);
            }
        }
        page.cursor = found.next_cursor;
        if items.len() >= limit || page.cursor.is_none() {
            break;
        }
    }
    Ok(Page {
        items,
        next_cursor: page.cursor,
    })
}

/// The most characters of a name search.
const MAX_QUERY_CHARS: usize = 100;

pub(crate) fn routes() -> Router<QueryState> {
    Router::new()
        .route("/lodgings", get(list_lodgings))
        .route("/lodgings/{id}", get(get_lodging))
        .route(
            "/lodgings/{id}/availability",
            get(availability::availability),
        )
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
            QueryError::parameter(
                "approval_mode",
                "must be one of: manual, instant, pay_first",
            )
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
    let range = availability::night_range(&params, ("available_from", "available_to"))?;
    let rooms = params.number("rooms", 1, MAX_ROOMS)?;
    if rooms.is_some() && range.is_none() {
        return Err(QueryError::parameter(
            "rooms",
            "is read with available_from and available_to",
        ));
    }
    let page = params.page()?;
    await_views(&state, &params).await?;
    let found = match range {
        Some(range) => {
            let rooms = u32::try_from(rooms.unwrap_or(1)).unwrap_or(u32::MAX);
            available_page(&state, &filter, page, range, rooms).await?
        }
        None => state.views.lodgings(&filter, &page).await?,
    };
    Ok(Json(served_page(&state, found).await?))
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
    let position = lodging.position;
    Ok(document(
        &headers,
        position,
        &served(&state, lodging).await?,
    ))
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
    Ok(Json(served_page(&state, found).await?))
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

/// The lodgings an admin's list is limited to when it asks for lodging `asked`, or for all of
/// theirs (`None`). A lodging they do not manage is refused; one they do is limit enough (the
/// list's `lodging_id`), so the lodgings they host are not looked up: a desk polled by its admin
/// costs one query, not two. `None` = no limit beyond `asked` (or, for the platform admin, none).
pub(crate) async fn admin_list_scope(
    state: &QueryState,
    principal: &Principal,
    asked: Option<&str>,
) -> Result<Option<Vec<String>>, QueryError> {
    let Some(id) = asked else {
        return admin_scope(state, principal).await;
    };
    if manages(state, principal, id).await? {
        Ok(None)
    } else {
        Err(QueryError::Forbidden(format!(
            "you do not manage lodging {id}"
        )))
    }
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
