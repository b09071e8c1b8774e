//! `/webhooks`: a customer or an admin subscribes a URL (`POST`, the secret shown only in that
//! answer), lists and deletes their own subscriptions, reads a subscription's deliveries and
//! re-drives a parked one. Another owner's subscription answers 404, as one that does not exist.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRef, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use eventlog::EventLog;
use http_edge::body::{parse_object, Fields};
use http_edge::{Auth, FieldError, Principal, Problem, Role};
use keys::{cipher, KeyStore};
use readmodel::{Page, PageRequest, ViewError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::guard::{self, TargetError, MAX_URL_LEN};
use crate::model::{event_types, Delivery, DeliveryState, Owner, OwnerRole, Redrive, Subscription};
use crate::sender::SECRET_FIELD;
use crate::signature::new_secret;
use crate::store::WebhookStore;

/// The largest page of deliveries (as the other lists').
const MAX_LIMIT: usize = 500;

/// Subscriptions one owner may keep.
pub const MAX_SUBSCRIPTIONS_PER_OWNER: usize = 20;

/// What the routes need.
#[derive(Clone)]
pub struct WebhookState {
    pub store: Arc<dyn WebhookStore>,
    pub keys: Arc<dyn KeyStore>,
    /// A new subscription takes changes after the log's head when it is made.
    pub log: Arc<dyn EventLog>,
    pub auth: Arc<Auth>,
    pub allow_private: bool,
    /// Wakes the senders' supervisor (a subscription added or removed) and a subscription's sender
    /// (a re-driven delivery).
    pub wakeups: Arc<crate::Wakeups>,
}

impl FromRef<WebhookState> for Arc<Auth> {
    fn from_ref(state: &WebhookState) -> Self {
        Arc::clone(&state.auth)
    }
}

pub fn routes(state: WebhookState) -> Router {
    Router::new()
        .route("/webhooks", post(subscribe).get(list))
        .route("/webhooks/{id}", axum::routing::delete(unsubscribe))
        .route("/webhooks/{id}/deliveries", get(deliveries))
        .route(
            "/webhooks/{id}/deliveries/{delivery_id}/retry",
            post(redrive),
        )
        .with_state(state)
}

fn store_problem(error: &ViewError) -> Problem {
    match error {
        e if e.is_client_error() => Problem::bad_request(e.to_string()),
        ViewError::Unavailable(cause) => {
            http_edge::error_throttled!(%cause, "webhook store unavailable");
            Problem::unavailable()
        }
        e => {
            http_edge::error_throttled!(cause = %e, "webhook store failure");
            Problem::internal()
        }
    }
}

fn owner_of(principal: &Principal) -> Result<Owner, Problem> {
    let role = match principal.role {
        Role::Customer => OwnerRole::Customer,
        Role::Admin => OwnerRole::Admin,
        Role::Auditor => {
            return Err(Problem::forbidden(
                "auditors read history; webhooks are for customers and admins",
            ))
        }
    };
    Ok(Owner {
        role,
        sub: principal.sub.clone(),
        lodgings: principal.lodgings.clone(),
    })
}

/// A subscription as its owner sees it (never its secret, after `POST`).
#[derive(Debug, Serialize)]
struct Shown {
    id: Uuid,
    url: String,
    events: Vec<String>,
    created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

impl Shown {
    fn of(subscription: &Subscription, secret: Option<String>) -> Self {
        Self {
            id: subscription.id,
            url: subscription.url.clone(),
            events: subscription.events.clone(),
            created_at: subscription.created_at,
            secret,
        }
    }
}

/// `events`: absent or null (every type), or an array of known types without repeats.
fn read_events(value: Option<Value>, fields: &mut Fields<'_>) -> Vec<String> {
    let known = event_types();
    let items = match value {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(items)) if !items.is_empty() => items,
        Some(_) => {
            fields.reject("events", "must be a non-empty array of event types");
            return Vec::new();
        }
    };
    let mut events: Vec<String> = Vec::new();
    for item in items {
        match item.as_str() {
            Some(kind) if known.iter().any(|k| k == kind) => {
                if !events.iter().any(|e| e == kind) {
                    events.push(kind.to_string());
                }
            }
            _ => {
                fields.reject(
                    "events",
                    format!("each item must be one of {}", known.join(", ")),
                );
                return Vec::new();
            }
        }
    }
    events
}

async fn subscribe(
    State(state): State<WebhookState>,
    principal: Principal,
    body: Bytes,
) -> Result<Response, Problem> {
    let owner = owner_of(&principal)?;
    let mut object = parse_object(&body)?;
    let events_value = object.remove("events");
    let mut fields = Fields::new(&object);
    let url = fields.text("url", MAX_URL_LEN);
    let events = read_events(events_value, &mut fields);
    let target = match url.as_deref().map(guard::parse_target) {
        Some(Err(e)) => {
            fields.reject("url", e.to_string());
            None
        }
        Some(Ok(target)) => Some(target),
        None => None,
    };
    fields.finish()?;
    let Some(target) = target else {
        return Err(Problem::bad_request("url is required"));
    };
    if let Err(e) = guard::check_addresses(&target, state.allow_private).await {
        let message = match e {
            TargetError::Private(_) | TargetError::Unresolvable(_) | TargetError::Invalid(_) => {
                e.to_string()
            }
        };
        return Err(Problem::invalid_fields(vec![FieldError::new(
            "url", message,
        )]));
    }
    let mine = state
        .store
        .subscriptions()
        .await
        .map_err(|e| store_problem(&e))?
        .into_iter()
        .filter(|s| s.owner.role == owner.role && s.owner.sub == owner.sub)
        .count();
    if mine >= MAX_SUBSCRIPTIONS_PER_OWNER {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "too-many-webhooks",
            format!("at most {MAX_SUBSCRIPTIONS_PER_OWNER} webhooks per owner: delete one first"),
        ));
    }
    let id = Uuid::new_v4();
    let name = Subscription::key_name(id);
    let key = state.keys.key_for_writing(&name).await.map_err(|e| {
        http_edge::error_throttled!(cause = %e, "key store refused a webhook key");
        Problem::unavailable()
    })?;
    let secret = new_secret();
    let head = state.log.head_position().await.map_err(|e| {
        http_edge::error_throttled!(cause = %e, "event log unavailable");
        Problem::unavailable()
    })?;
    let subscription = Subscription {
        id,
        owner,
        url: target.to_string(),
        events,
        sealed_secret: cipher::seal(&key, &name, SECRET_FIELD, &secret),
        from_position: head,
        created_at: Utc::now(),
    };
    state
        .store
        .add_subscription(&subscription)
        .await
        .map_err(|e| store_problem(&e))?;
    state.wakeups.subscriptions_changed();
    let location = format!("/webhooks/{id}");
    Ok((
        StatusCode::CREATED,
        [(axum::http::header::LOCATION, location)],
        Json(Shown::of(&subscription, Some(secret))),
    )
        .into_response())
}

/// The caller's subscription `id`, or 404.
async fn owned(
    state: &WebhookState,
    principal: &Principal,
    id: &str,
) -> Result<Subscription, Problem> {
    let missing = || Problem::not_found(format!("no webhook {id}"));
    let id = Uuid::parse_str(id).map_err(|_| missing())?;
    let owner = owner_of(principal)?;
    match state.store.subscription(id).await {
        Ok(Some(s)) if s.owner.role == owner.role && s.owner.sub == owner.sub => Ok(s),
        Ok(_) => Err(missing()),
        Err(e) => Err(store_problem(&e)),
    }
}

async fn list(
    State(state): State<WebhookState>,
    principal: Principal,
) -> Result<Json<Page<Shown>>, Problem> {
    let owner = owner_of(&principal)?;
    let all = state
        .store
        .subscriptions()
        .await
        .map_err(|e| store_problem(&e))?;
    let items = all
        .iter()
        .filter(|s| s.owner.role == owner.role && s.owner.sub == owner.sub)
        .map(|s| Shown::of(s, None))
        .collect();
    Ok(Json(Page {
        items,
        next_cursor: None,
    }))
}

async fn unsubscribe(
    State(state): State<WebhookState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let subscription = owned(&state, &principal, &id).await?;
    state
        .store
        .remove_subscription(subscription.id)
        .await
        .map_err(|e| store_problem(&e))?;
    // The secret's key goes too: what is left of it in the store can never be opened.
    state
        .keys
        .destroy(&Subscription::key_name(subscription.id))
        .await
        .map_err(|e| {
            http_edge::error_throttled!(cause = %e, "key store refused to destroy a webhook key");
            Problem::unavailable()
        })?;
    state.wakeups.subscriptions_changed();
    Ok(StatusCode::NO_CONTENT)
}

/// A delivery as its owner sees it.
#[derive(Debug, Serialize)]
struct DeliveryShown {
    delivery_id: Uuid,
    event_id: Uuid,
    #[serde(rename = "type")]
    event_type: String,
    reservation_id: Uuid,
    position: u64,
    status: DeliveryState,
    attempts: u32,
    last_status_code: Option<u16>,
    last_error: Option<String>,
    queued_at: DateTime<Utc>,
    next_attempt_at: Option<DateTime<Utc>>,
    settled_at: Option<DateTime<Utc>>,
}

impl From<Delivery> for DeliveryShown {
    fn from(d: Delivery) -> Self {
        Self {
            delivery_id: d.delivery_id,
            event_id: d.event_id,
            event_type: d.event_type,
            reservation_id: d.reservation_id,
            position: d.position,
            status: d.state,
            attempts: d.attempts,
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            queued_at: d.queued_at,
            next_attempt_at: d.next_attempt_at.filter(|_| d.state.is_open()),
            settled_at: d.settled_at,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

fn page_of(query: Result<Query<PageQuery>, QueryRejection>) -> Result<PageRequest, Problem> {
    let Query(query) = query.map_err(|e| Problem::bad_request(format!("query: {e}")))?;
    let limit = match query.limit.as_deref() {
        None => 50,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(Problem::invalid_fields(vec![FieldError::new(
                    "limit",
                    format!("must be an integer from 1 to {MAX_LIMIT}"),
                )]))
            }
        },
    };
    // An empty cursor is the first page, as on the other lists.
    Ok(PageRequest {
        limit,
        cursor: query.cursor.filter(|c| !c.is_empty()),
    })
}

async fn deliveries(
    State(state): State<WebhookState>,
    principal: Principal,
    Path(id): Path<String>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<Page<DeliveryShown>>, Problem> {
    let subscription = owned(&state, &principal, &id).await?;
    let page = page_of(query)?;
    let read = state
        .store
        .deliveries(subscription.id, &page)
        .await
        .map_err(|e| store_problem(&e))?;
    Ok(Json(Page {
        items: read.items.into_iter().map(DeliveryShown::from).collect(),
        next_cursor: read.next_cursor,
    }))
}

async fn redrive(
    State(state): State<WebhookState>,
    principal: Principal,
    Path((id, delivery_id)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let subscription = owned(&state, &principal, &id).await?;
    let missing = || Problem::not_found(format!("no delivery {delivery_id} of webhook {id}"));
    let delivery = Uuid::parse_str(&delivery_id).map_err(|_| missing())?;
    match state
        .store
        .redrive(subscription.id, delivery, Utc::now())
        .await
        .map_err(|e| store_problem(&e))?
    {
        Redrive::Queued(queued) => {
            state.wakeups.queued([subscription.id]);
            Ok((StatusCode::ACCEPTED, Json(DeliveryShown::from(*queued))).into_response())
        }
        Redrive::NotParked(now) => Err(Problem::new(
            StatusCode::CONFLICT,
            "not-parked",
            format!(
                "the delivery is {}: only a parked one is re-driven",
                now.as_str()
            ),
        )),
        Redrive::NotFound => Err(missing()),
    }
}
