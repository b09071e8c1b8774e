//! The bounds of every listener (`serve`, each service, the sandbox gateway): how long a client may
//! take to send a request's headers and body, how long a request may take, how many connections are
//! open at once. See `http_edge::server`.

use std::time::Duration;

use clap::Args;
use http_edge::ServerLimits;

use super::parse_duration;

#[derive(Debug, Clone, Args)]
pub struct HttpLimitArgs {
    /// Time to read a request's headers, and to wait idle for the next request on a keep-alive
    /// connection; then the connection is closed.
    #[arg(long, env = "STAYLEDGER_HEADER_READ_TIMEOUT", default_value = "20s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,
    /// Longest pause between two parts of a request body (then 408).
    #[arg(long, env = "STAYLEDGER_BODY_READ_TIMEOUT", default_value = "20s", value_parser = parse_duration)]
    pub body_read_timeout: Duration,
    /// Longest time for a whole request, body and answer (then 408); above the longest
    /// `min_position` wait (30 s).
    #[arg(long, env = "STAYLEDGER_REQUEST_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// Most client connections open at once (default: the open-file limit less 256 kept for the
    /// stores); at the cap new connections wait until one closes.
    #[arg(long, env = "STAYLEDGER_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
}

impl HttpLimitArgs {
    #[must_use]
    pub fn limits(&self) -> ServerLimits {
        ServerLimits {
            header_read_timeout: self.header_read_timeout,
            body_read_timeout: self.body_read_timeout,
            request_timeout: self.request_timeout,
            max_connections: self
                .max_connections
                .unwrap_or_else(http_edge::server::default_max_connections),
        }
    }
}
