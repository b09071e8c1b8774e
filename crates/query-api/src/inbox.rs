//! `GET /me/notifications`: the caller's inbox, newest first. A customer reads the entries about
//! their own reservations (one per status change); an admin those of the desks of the lodgings they
//! manage (new requests, payments, cancellations; every desk for the platform admin); an auditor
//! has no inbox of their own (an empty list). `min_position` waits for the notifier, which builds
//! the inbox under its own checkpoint.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use http_edge::{Principal, Role};
use readmodel::inbox::{InboxEntry, InboxFilter, NoticeKind};
use readmodel::{Page, ProjectionTarget, ReservationStatus};
use serde::Serialize;
use uuid::Uuid;

use crate::catalog::admin_scope;
use crate::document::await_target;
use crate::error::QueryError;
use crate::params::Params;
use crate::state::QueryState;

pub(crate) fn routes() -> Router<QueryState> {
    Router::new().route("/me/notifications", get(notifications))
}

/// One entry as the API shows it.
#[derive(Debug, Serialize)]
struct Notification {
    id: String,
    reservation_id: Uuid,
    lodging_id: String,
    kind: NoticeKind,
    status: ReservationStatus,
    message: String,
    created_at: DateTime<Utc>,
    position: u64,
}

impl From<InboxEntry> for Notification {
    fn from(entry: InboxEntry) -> Self {
        Self {
            id: entry.id,
            reservation_id: entry.reservation_id,
            lodging_id: entry.lodging_id,
            kind: entry.kind,
            status: entry.status,
            message: entry.message,
            created_at: entry.created_at,
            position: entry.position,
        }
    }
}

async fn notifications(
    State(state): State<QueryState>,
    principal: Principal,
    params: Params,
) -> Result<Json<Page<Notification>>, QueryError> {
    let page = params.page()?;
    // Every role's parameters are checked, an auditor's too (whose inbox is empty).
    params.min_position()?;
    let empty = || {
        Json(Page {
            items: Vec::new(),
            next_cursor: None,
        })
    };
    let filter = match principal.role {
        Role::Customer => InboxFilter::Customer(principal.sub.clone()),
        Role::Admin => InboxFilter::Lodgings(admin_scope(&state, &principal).await?),
        Role::Auditor => return Ok(empty()),
    };
    let Some((inbox, progress)) = &state.inbox else {
        return Ok(empty());
    };
    let target: &dyn ProjectionTarget = inbox.as_ref();
    await_target(target, progress, &params).await?;
    let read = inbox.entries(&filter, &page).await?;
    Ok(Json(Page {
        items: read.items.into_iter().map(Notification::from).collect(),
        next_cursor: read.next_cursor,
    }))
}
