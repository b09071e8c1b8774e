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

/// An app as a service serves it: edge routes, a probe outside them, the fallback, and the
/// outermost layers around all of it.
fn served_app() -> Router {
    let routes = Router::new()
        .route(
            "/echo",
            post(|id: http_edge::RequestId| async move { id.0.to_string() }),
        )
        .route(
            "/panic",
            post(|| async {
                if true {
                    panic!("a handler's bug");
                }
                "unreached"
            }),
        )
        .with_state(State(Arc::new(auth())));
    let app = http_edge::apply(routes)
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .fallback(http_edge::problem::not_found);
    http_edge::outermost(app)
}

async fn served(method: &str, path: &str, request_id: Option<&str>) -> Response<Body> {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(id) = request_id {
        request = request.header("x-request-id", id);
    }
    let request = request.body(Body::empty()).expect("request");
    served_app().oneshot(request).await.expect("answer")
}

fn request_id(response: &Response<Body>) -> String {
    response.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_string()
}

#[tokio::test]
async fn probes_unknown_routes_and_wrong_methods_carry_a_request_id_too() {
    for (method, path, status) in [
        ("GET", "/healthz", StatusCode::OK),
        ("GET", "/nope", StatusCode::NOT_FOUND),
        ("PATCH", "/healthz", StatusCode::METHOD_NOT_ALLOWED),
        ("GET", "/echo", StatusCode::METHOD_NOT_ALLOWED),
        ("POST", "/echo", StatusCode::OK),
    ] {
        let answer = served(method, path, None).await;
        assert_eq!(answer.status(), status, "{method} {path}");
        let id = request_id(&answer);
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{method} {path}: {id}");
    }
    let wrong = served("PATCH", "/healthz", None).await;
    problem(wrong, StatusCode::METHOD_NOT_ALLOWED).await;
}

#[tokio::test]
async fn a_well_formed_incoming_request_id_is_echoed_and_never_the_causation_id() {
    let mine = "req-2026.12.03:abc/1+x=";
    let answer = served("POST", "/echo", Some(mine)).await;
    assert_eq!(request_id(&answer), mine);
    let bytes = to_bytes(answer.into_body(), usize::MAX)
        .await
        .expect("body");
    let causation = String::from_utf8(bytes.to_vec()).expect("utf8");
    assert!(uuid::Uuid::parse_str(&causation).is_ok(), "{causation}");
    assert_ne!(causation, mine);
    assert_eq!(
        request_id(&served("GET", "/healthz", Some(mine)).await),
        mine
    );
    // Once per request: the route's own layer keeps the id the outer one gave.
    let plain = served("POST", "/echo", None).await;
    let shown = request_id(&plain);
    let bytes = to_bytes(plain.into_body(), usize::MAX).await.expect("body");
    assert_eq!(shown, String::from_utf8(bytes.to_vec()).expect("utf8"));
    let too_long = "x".repeat(129);
    for odd in ["", "has space", "quote\"", too_long.as_str(), "semi;colon"] {
        let answer = served("GET", "/healthz", Some(odd)).await;
        let id = request_id(&answer);
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{odd:?} replaced: {id}");
    }
}

#[tokio::test]
async fn in_a_served_app_a_routes_bare_errors_are_made_problems_once_by_the_outer_layer() {
    // The route's own edge layer passes a nested request through: what it no longer does (problem,
    // `Connection: close`) the app's does, for a caught panic and a body over the limit alike.
    let answer = |path: &str, body: Vec<u8>| {
        let request = Request::builder()
            .method("POST")
            .uri(path)
            .header("content-length", body.len())
            .body(Body::from(body))
            .expect("request");
        served_app().oneshot(request)
    };
    let panicked = answer("/panic", b"{}".to_vec()).await.expect("answer");
    assert_eq!(panicked.headers()["connection"], "close");
    assert!(uuid::Uuid::parse_str(&request_id(&panicked)).is_ok());
    problem(panicked, StatusCode::INTERNAL_SERVER_ERROR).await;
    let large = answer("/echo", vec![b' '; MAX_BODY_BYTES + 1])
        .await
        .expect("answer");
    assert_eq!(large.headers()["connection"], "close");
    let body = problem(large, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert_eq!(body["type"], "urn:stayledger:problem:body-too-large");
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

/// Over a real socket: a POST refused before its body was read (401 while the body is still on its
/// way, 413 on the declared length) says `Connection: close`, so the client never sends its next
/// request into a socket the server is closing.
#[tokio::test]
async fn an_error_before_the_body_was_read_closes_the_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let server = tokio::spawn(async move { axum::serve(listener, app()).await });
    let head_of = |path: &str, length: usize, token: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
        )
    };
    for head in [
        head_of("/whoami", 100, "not-a-token"),
        head_of("/echo", MAX_BODY_BYTES + 1, "none"),
    ] {
        let mut socket = tokio::net::TcpStream::connect(address)
            .await
            .expect("connect");
        socket.write_all(head.as_bytes()).await.expect("head");
        socket.write_all(b"{\"a\":").await.expect("part of a body");
        let mut answer = vec![0_u8; 4096];
        let read = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut answer))
            .await
            .expect("an answer before the body is complete")
            .expect("read");
        let answer = String::from_utf8_lossy(&answer[..read]).to_ascii_lowercase();
        assert!(answer.starts_with("http/1.1 4"), "{answer}");
        assert!(answer.contains("\r\nconnection: close\r\n"), "{answer}");
    }
    // A request with no body keeps its connection on an error (nothing unread is left behind).
    let missing = call("GET", "/echo", None, Vec::new()).await;
    assert!(missing.headers().get("connection").is_none());
    server.abort();
}
