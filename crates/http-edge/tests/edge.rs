//! The edge as a router sees it (no socket: `oneshot`): every answer carries an `x-request-id`,
//! bare 4xx answers (405, 413 from the body limit) become problem+json, unknown routes answer the
//! 404 fallback, and a route that asks for a [`Principal`] answers 401 with `WWW-Authenticate`
//! before its handler runs.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::FromRef;
use axum::http::{Request, Response, StatusCode};
use axum::routing::post;
use axum::Router;
use http_edge::body::MAX_BODY_BYTES;
use http_edge::problem::PROBLEM_JSON;
use http_edge::{Auth, Claims, Principal, Role};
use serde_json::Value;
use tower::ServiceExt;

#[derive(Clone)]
struct State(Arc<Auth>);

impl FromRef<State> for Arc<Auth> {
    fn from_ref(state: &State) -> Self {
        Arc::clone(&state.0)
    }
}

fn auth() -> Auth {
    Auth::new(b"edge-secret-edge-secret-edge-sec")
}

fn app() -> Router {
    let routes = Router::new()
        .route(
            "/echo",
            post(|body: Bytes| async move { body.len().to_string() }),
        )
        .route("/whoami", post(|who: Principal| async move { who.actor() }))
        .with_state(State(Arc::new(auth())));
    http_edge::apply(routes).fallback(http_edge::problem::not_found)
}

async fn call(method: &str, path: &str, token: Option<&str>, body: Vec<u8>) -> Response<Body> {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = request.body(Body::from(body)).expect("request");
    app().oneshot(request).await.expect("answer")
}

async fn problem(response: Response<Body>, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["content-type"], PROBLEM_JSON);
    let bytes = to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    let body: Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(body["status"], status.as_u16());
    body
}

#[tokio::test]
async fn every_answer_carries_a_request_id() {
    let ok = call("POST", "/echo", None, b"{}".to_vec()).await;
    assert_eq!(ok.status(), StatusCode::OK);
    let id = ok.headers()["x-request-id"].to_str().expect("ascii");
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
}

#[tokio::test]
async fn bare_errors_and_unknown_routes_answer_problems() {
    let wrong_method = call("GET", "/echo", None, Vec::new()).await;
    let body = problem(wrong_method, StatusCode::METHOD_NOT_ALLOWED).await;
    assert_eq!(body["type"], "urn:stayledger:problem:method-not-allowed");
    let too_large = call("POST", "/echo", None, vec![b' '; MAX_BODY_BYTES + 1]).await;
    let body = problem(too_large, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert_eq!(body["type"], "urn:stayledger:problem:body-too-large");
    let nowhere = call("GET", "/nowhere", None, Vec::new()).await;
    let body = problem(nowhere, StatusCode::NOT_FOUND).await;
    assert_eq!(body["detail"], "no route /nowhere");
}

#[tokio::test]
async fn the_bearer_token_names_the_principal_or_answers_401() {
    let missing = call("POST", "/whoami", None, Vec::new()).await;
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    problem(missing, StatusCode::UNAUTHORIZED).await;
    let claims = Claims::new("c-1", Role::Customer, vec![], Duration::from_secs(60));
    let token = auth().mint(&claims).expect("mint");
    let known = call("POST", "/whoami", Some(&token), Vec::new()).await;
    assert_eq!(known.status(), StatusCode::OK);
    let bytes = to_bytes(known.into_body(), usize::MAX).await.expect("body");
    assert_eq!(&bytes[..], b"customer:c-1");
}
