//! The HTTP suites' client side, shared by command-api's, query-api's and stayledger's tests (a
//! dev-dependency only): one request sent over a real socket ([`send`]) and its [`Answer`], with the
//! assertions every suite makes on one (a problem+json error, a 200).

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// One HTTP answer: its status, headers and body as JSON (`null` if it was not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    /// Read a whole response.
    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Assert this is a problem+json answer of `status` (with its `type`, `title` and a `detail`
    /// that says something), and return it.
    pub fn problem(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "{:?}", self.body);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{:?}",
            self.body
        );
        assert_eq!(self.body["status"], status);
        assert!(
            self.body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{:?}",
            self.body
        );
        assert!(
            self.body["type"].is_string() && self.body["title"].is_string(),
            "{:?}",
            self.body
        );
        &self.body
    }

    /// Assert 200 and return the body.
    pub fn ok(&self) -> &Value {
        assert_eq!(self.status, StatusCode::OK, "{:?}", self.body);
        &self.body
    }
}

/// Send `method` to `url` with an optional bearer `token`, extra `headers` and an optional JSON
/// `body`, and read the whole answer. A transport error fails the test.
pub async fn send(
    client: &reqwest::Client,
    method: Method,
    url: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Answer {
    let mut request = client.request(method, url);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    Answer::read(request.send().await.expect("send")).await
}
