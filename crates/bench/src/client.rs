//! The load generator's HTTP client: one HTTP/1.1 keep-alive connection per simulated client over
//! real loopback TCP, on hyper's connection API (no pool, no redirects, no TLS), so the generator
//! spends as little of the machine's CPU as it can: it shares the two cores with the server.

use std::net::SocketAddr;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// One request to send.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: Method,
    pub path: String,
    /// `Bearer <token>`, prepared once per client.
    pub auth: Option<HeaderValue>,
    pub body: Option<Bytes>,
}

impl Call {
    pub fn get(path: impl Into<String>, auth: &HeaderValue) -> Self {
        Self {
            method: Method::GET,
            path: path.into(),
            auth: Some(auth.clone()),
            body: None,
        }
    }

    pub fn post(path: impl Into<String>, auth: &HeaderValue, body: Bytes) -> Self {
        Self {
            method: Method::POST,
            path: path.into(),
            auth: Some(auth.clone()),
            body: Some(body),
        }
    }
}

/// `Bearer <token>` as a header value.
pub fn bearer(token: &str) -> anyhow::Result<HeaderValue> {
    HeaderValue::from_str(&format!("Bearer {token}")).context("token is not a header value")
}

/// One keep-alive connection.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
    host: HeaderValue,
}

impl Connection {
    pub async fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true).context("TCP_NODELAY")?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP/1.1 handshake")?;
        tokio::spawn(async move {
            // Ends when the server closes the connection or the sender is dropped.
            let _ = connection.await;
        });
        let host = HeaderValue::from_str(&addr.to_string()).context("host header")?;
        Ok(Self { sender, host })
    }

    /// Send `call`, read the whole answer.
    pub async fn send(&mut self, call: &Call) -> anyhow::Result<(StatusCode, Bytes)> {
        let mut request = Request::builder()
            .method(call.method.clone())
            .uri(call.path.as_str())
            .header(HOST, self.host.clone());
        if let Some(auth) = &call.auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        let body = match &call.body {
            Some(body) => {
                request = request.header(CONTENT_TYPE, "application/json");
                Full::new(body.clone())
            }
            None => Full::new(Bytes::new()),
        };
        let request = request.body(body).context("building a request")?;
        self.sender
            .ready()
            .await
            .context("connection closed by the server")?;
        let response = self
            .sender
            .send_request(request)
            .await
            .with_context(|| format!("{} {}", call.method, call.path))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .context("reading an answer")?
            .to_bytes();
        Ok((status, body))
    }
}

/// The `position` of a command's answer (`{"id", "status", "position"}`).
pub fn position_of(body: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Answer {
        position: u64,
    }
    serde_json::from_slice::<Answer>(body)
        .ok()
        .map(|a| a.position)
}

/// The `id` of a command's answer.
pub fn id_of(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Answer {
        id: String,
    }
    serde_json::from_slice::<Answer>(body).ok().map(|a| a.id)
}
