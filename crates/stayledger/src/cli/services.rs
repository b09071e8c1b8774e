//! Flags of each service alone (and of their scale-out). Every flag has a `STAYLEDGER_*` environment
//! fallback; values that may hold credentials (the JWT secret, store URLs) are never shown by `--help`
//! nor printed by `Debug`.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use saga::Shard;

use super::{parse_duration, HttpLimitArgs, StoreArgs};

/// How a service listens and stops.
#[derive(Debug, Clone, Args)]
pub struct ListenArgs {
    /// Bind with SO_REUSEPORT, so a new process can take over the port of a running one
    /// (rolling restart: start the new one, then SIGTERM the old one).
    #[arg(long, env = "STAYLEDGER_REUSE_PORT")]
    pub reuse_port: bool,
    /// Longest wait for in-flight requests and work after SIGTERM/SIGINT before exiting anyway.
    #[arg(long, env = "STAYLEDGER_SHUTDOWN_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    #[command(flatten)]
    pub http: HttpLimitArgs,
}

/// Where the event log is: `events.db` in the data dir, or EventStoreDB.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// EventStoreDB connection string (e.g. `esdb://localhost:2113?tls=false`) instead of the
    /// embedded `events.db` in the data dir.
    #[arg(long, env = "STAYLEDGER_EVENTSTORE_URL", hide_env_values = true)]
    pub eventstore_url: Option<Redacted>,
}

/// Where the views are: `views.db` in the data dir, or MongoDB.
#[derive(Debug, Clone, Args)]
pub struct ViewArgs {
    /// MongoDB URL (a replica set, e.g. `mongodb://localhost:27017/?replicaSet=rs0`) instead of the
    /// embedded files in the data dir (`views.db` for the views, `keys.db` for customers' keys).
    #[arg(long, env = "STAYLEDGER_MONGODB_URL", hide_env_values = true)]
    pub mongodb_url: Option<Redacted>,
    /// MongoDB database of the views.
    #[arg(long, env = "STAYLEDGER_MONGODB_DB", default_value = "stayledger")]
    pub mongodb_db: String,
}

/// The JWT secret of the APIs.
#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    /// HS256 secret of the bearer tokens (at least 32 bytes; never logged). Default: the data dir's
    /// `jwt-secret` file, created at random on first start.
    #[arg(long, env = "STAYLEDGER_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<Redacted>,
}

/// The payment gateway key: what the saga's client presents, and what the sandbox gateway takes.
#[derive(Debug, Clone, Args)]
pub struct GatewayKeyArgs {
    /// Key of the payment gateway (never logged). Default: the data dir's `payment-gateway-key`
    /// file (`serve` and `payment-sandbox` create it at random on first start; `saga` refuses to
    /// start without a key).
    #[arg(long, env = "STAYLEDGER_PAYMENT_GATEWAY_KEY", hide_env_values = true)]
    pub payment_gateway_key: Option<Redacted>,
}

impl GatewayKeyArgs {
    #[must_use]
    pub fn given(&self) -> Option<&str> {
        self.payment_gateway_key.as_ref().map(Redacted::expose)
    }
}

/// `stayledger command-api`.
#[derive(Debug, Clone, Args)]
pub struct CommandApiArgs {
    /// Address of the command routes and the ops probes (port 0 picks a free port).
    #[arg(long, env = "STAYLEDGER_ADDR", default_value = "127.0.0.1:8081")]
    pub addr: SocketAddr,
    #[command(flatten)]
    pub log: LogArgs,
    #[command(flatten)]
    pub auth: AuthArgs,
    #[command(flatten)]
    pub listen: ListenArgs,
    #[command(flatten)]
    pub catalog: super::CatalogArgs,
    /// Where customers' data keys are: MongoDB (shared by every instance) or `keys.db`.
    #[command(flatten)]
    pub keys: ViewArgs,
}

/// `stayledger query-api`.
#[derive(Debug, Clone, Args)]
pub struct QueryApiArgs {
    /// Address of the query and audit routes and the ops probes (port 0 picks a free port).
    #[arg(long, env = "STAYLEDGER_ADDR", default_value = "127.0.0.1:8082")]
    pub addr: SocketAddr,
    #[command(flatten)]
    pub log: LogArgs,
    #[command(flatten)]
    pub views: ViewArgs,
    #[command(flatten)]
    pub auth: AuthArgs,
    /// /readyz answers 503 while the views' stored checkpoint is more than this many events
    /// behind the log.
    #[arg(long, env = "STAYLEDGER_MAX_PROJECTOR_LAG", default_value_t = 10_000)]
    pub max_projector_lag: u64,
    /// Which targets `POST /webhooks` accepts.
    #[command(flatten)]
    pub webhooks: super::WebhookTargetArgs,
    #[command(flatten)]
    pub listen: ListenArgs,
}

/// `stayledger notifier`.
#[derive(Debug, Clone, Args)]
pub struct NotifierArgs {
    /// Address of the ops probes (port 0 picks a free port).
    #[arg(long, env = "STAYLEDGER_ADDR", default_value = "127.0.0.1:8086")]
    pub addr: SocketAddr,
    #[command(flatten)]
    pub log: LogArgs,
    /// The views (read for webhook bodies), the inbox and the webhook store live beside them:
    /// MongoDB with `--mongodb-url`, else `inbox.db` and `webhooks.db` in the data dir.
    #[command(flatten)]
    pub views: ViewArgs,
    #[command(flatten)]
    pub webhooks: super::WebhookArgs,
    /// `--shards N --instance K`: several notifiers split the inbox by lodging and the webhooks by
    /// subscription (see `scale_out`).
    #[command(flatten)]
    pub scale_out: ScaleOutArgs,
    #[command(flatten)]
    pub listen: ListenArgs,
}

/// `stayledger projector`.
#[derive(Debug, Clone, Args)]
pub struct ProjectorArgs {
    /// Address of the ops probes (port 0 picks a free port).
    #[arg(long, env = "STAYLEDGER_ADDR", default_value = "127.0.0.1:8083")]
    pub addr: SocketAddr,
    #[command(flatten)]
    pub log: LogArgs,
    #[command(flatten)]
    pub views: ViewArgs,
    /// /readyz answers 503 while the projector is more than this many events behind.
    #[arg(long, env = "STAYLEDGER_MAX_PROJECTOR_LAG", default_value_t = 10_000)]
    pub max_projector_lag: u64,
    /// `--shards N --instance K`: several projectors split the views by lodging (see `scale_out`).
    #[command(flatten)]
    pub scale_out: ScaleOutArgs,
    #[command(flatten)]
    pub listen: ListenArgs,
}

/// `stayledger saga`.
#[derive(Debug, Clone, Args)]
pub struct SagaArgs {
    /// Address of the ops probes (port 0 picks a free port).
    #[arg(long, env = "STAYLEDGER_ADDR", default_value = "127.0.0.1:8084")]
    pub addr: SocketAddr,
    /// The data dir (`--data-dir`) also holds the saga's timer store (`saga.db`, or
    /// `saga-{i}-of-{n}.db` for a shard), whichever event log is used.
    #[command(flatten)]
    pub log: LogArgs,
    /// Payment gateway base URL, e.g. `http://127.0.0.1:8090/sandbox` for `stayledger payment-sandbox`.
    #[arg(long, env = "STAYLEDGER_PAYMENT_GATEWAY_URL")]
    pub payment_gateway_url: String,
    #[command(flatten)]
    pub gateway_key: GatewayKeyArgs,
    /// Undecided requests expire after this (e.g. 24h, 30m, 500ms).
    #[arg(long, env = "STAYLEDGER_APPROVAL_DEADLINE", default_value = "24h", value_parser = parse_duration)]
    pub approval_deadline: Duration,
    /// First retry delay of a deferred payment; then exponential backoff with jitter.
    #[arg(long, env = "STAYLEDGER_PAYMENT_RETRY_BASE", default_value = "2s", value_parser = parse_duration)]
    pub payment_retry_base: Duration,
    /// Charge attempts before a payment fails.
    #[arg(long, env = "STAYLEDGER_PAYMENT_MAX_ATTEMPTS", default_value_t = 8)]
    pub payment_max_attempts: u32,
    /// Timeout of one call to the payment gateway.
    #[arg(long, env = "STAYLEDGER_PAYMENT_TIMEOUT", default_value = "3s", value_parser = parse_duration)]
    pub payment_timeout: Duration,
    /// The slice of reservations this instance handles, `i/n` (0-based): run n instances, 0/n to
    /// (n-1)/n, each with its own data dir or timer file. Default: all of them.
    #[arg(long, env = "STAYLEDGER_SHARD", default_value = "0/1", value_parser = parse_shard)]
    pub shard: Shard,
    /// `--shards N --instance K`: leased shards, taken over when an instance dies (see `scale_out`).
    #[command(flatten)]
    pub scale_out: ScaleOutArgs,
    /// EventStoreDB only: be a member of this consumer group (a persistent subscription to `$all`,
    /// pinned by reservation) instead of reading the whole log. Run several `saga` processes with
    /// the same group and distinct `--group-member` names; the server splits the reservations
    /// between them and gives a departed member's share to the others.
    #[arg(long, env = "STAYLEDGER_CONSUMER_GROUP", value_parser = parse_name,
          conflicts_with_all = ["shards", "shard"], requires = "eventstore_url")]
    pub consumer_group: Option<String>,
    /// This member's name in the consumer group (default: the host name). Keep it stable across
    /// restarts: the member's timers are in `saga-group-{member}.db` in the data dir.
    #[arg(long, env = "STAYLEDGER_GROUP_MEMBER", value_parser = parse_name, requires = "consumer_group")]
    pub group_member: Option<String>,
    /// Leave the consumer group for good: take no more events (the group gives this member's
    /// reservations to the others), fire the timers and refund retries it still holds as they come
    /// due, then exit.
    #[arg(long, requires = "consumer_group")]
    pub drain: bool,
    #[command(flatten)]
    pub listen: ListenArgs,
}

/// Flags of a scaled-out consumer (`projector` or `saga`).
#[derive(Debug, Clone, Args)]
pub struct ScaleOutArgs {
    /// Split the work into this many shards, held through leases (in the data dir's `leases.db`, or
    /// in MongoDB for a projector with `--mongodb-url`): run `--instances` processes with `--instance 0..`; a dead instance's shards are taken over
    /// once its leases expire. Without it: one process does everything (or `--shard i/n`, saga).
    #[arg(long, env = "STAYLEDGER_SHARDS")]
    pub shards: Option<u32>,
    /// This instance's number (0-based); it prefers the shards `i` with `i % instances == instance`.
    #[arg(long, env = "STAYLEDGER_INSTANCE", default_value_t = 0)]
    pub instance: u32,
    /// How many instances share the shards (default: as many as shards).
    #[arg(long, env = "STAYLEDGER_INSTANCES")]
    pub instances: Option<u32>,
    /// A lease not renewed for this long may be taken over by another instance.
    #[arg(long, env = "STAYLEDGER_LEASE_TTL", default_value = "3s", value_parser = parse_duration)]
    pub lease_ttl: Duration,
    /// How often leases are renewed (at most half the TTL: a holder stops a shard `ttl - renew`
    /// after its last renewal, before anyone may take it).
    #[arg(long, env = "STAYLEDGER_LEASE_RENEW", default_value = "1s", value_parser = parse_duration)]
    pub lease_renew: Duration,
}

/// A group or member name: it names a file, so letters, digits, `.`, `_` and `-` only, at most 64.
pub fn parse_name(text: &str) -> Result<String, String> {
    let fine = !text.is_empty()
        && text.len() <= 64
        && !text.starts_with('.')
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    match fine {
        true => Ok(text.to_owned()),
        false => Err(format!(
            "invalid name {text:?}: use 1-64 letters, digits, '.', '_' or '-' (not starting with '.')"
        )),
    }
}

/// A value that may hold a credential: `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Redacted(String);

impl Redacted {
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Redacted(..)")
    }
}

impl From<String> for Redacted {
    fn from(value: String) -> Self {
        Self(value)
    }
}

/// Parse `i/n` into a saga shard.
pub fn parse_shard(text: &str) -> Result<Shard, String> {
    let (index, count) = text
        .split_once('/')
        .ok_or_else(|| format!("invalid shard {text:?}: expected i/n, e.g. 0/2"))?;
    let number = |part: &str| {
        part.trim()
            .parse::<u32>()
            .map_err(|_| format!("invalid shard {text:?}: expected i/n, e.g. 0/2"))
    };
    Shard::new(number(index)?, number(count)?).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_are_file_safe() {
        assert_eq!(parse_name("saga-1"), Ok("saga-1".to_string()));
        assert_eq!(parse_name("host_2.local"), Ok("host_2.local".to_string()));
        for bad in ["", "../x", "a/b", ".hidden", "a b", &"x".repeat(65)] {
            assert!(parse_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn shards_parse() {
        assert_eq!(parse_shard("0/1"), Ok(Shard::ALL));
        let shard = parse_shard("1/3").expect("valid");
        assert_eq!((shard.index(), shard.count()), (1, 3));
        assert!(parse_shard("3/3").is_err());
        assert!(parse_shard("0/0").is_err());
        assert!(parse_shard("1").is_err());
        assert!(parse_shard("a/b").is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        let secret = Redacted::from("a-very-long-secret-value-of-at-least-32-bytes".to_string());
        assert_eq!(format!("{secret:?}"), "Redacted(..)");
        assert!(!format!("{:?}", Some(secret)).contains("secret-value"));
    }
}
