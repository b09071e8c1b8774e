//! Command-line interface: every subcommand's flags, each with a `STAYLEDGER_*` environment
//! fallback, and their parsing into what the rest of the binary takes (durations, the saga policy).
//!
//! Must not: depend on any other module of this crate (every module that runs a subcommand depends
//! on this one for its flags).

mod audit;
mod http;
mod services;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use domain::saga::SagaPolicy;
use domain::Tz;

pub use audit::{ExportArgs, HistoryArgs, ImportArgs, ReplayArgs, VerifyArgs};
pub use http::HttpLimitArgs;
pub use services::{
    parse_name, parse_shard, AuthArgs, CommandApiArgs, GatewayKeyArgs, ListenArgs, LogArgs,
    NotifierArgs, ProjectorArgs, QueryApiArgs, Redacted, SagaArgs, ScaleOutArgs, ViewArgs,
};

#[derive(Debug, Parser)]
#[command(
    name = "stayledger",
    version,
    about = "Event-sourced lodging reservations"
)]
pub struct Cli {
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true, env = "STAYLEDGER_LOG_JSON")]
    pub log_json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Everything in one process on one port, over the embedded stores.
    Serve(ServeArgs),
    /// Print a signed JWT on stdout.
    Token(TokenArgs),
    /// The sandbox payment gateway alone (a stand-in for a real gateway; never charges real money).
    PaymentSandbox(SandboxArgs),
    /// The command API alone.
    CommandApi(CommandApiArgs),
    /// The query API alone.
    QueryApi(QueryApiArgs),
    /// The projector alone.
    Projector(ProjectorArgs),
    /// The notifier alone: the inbox, and webhook deliveries.
    Notifier(NotifierArgs),
    /// The saga (process manager and payment worker) alone.
    Saga(SagaArgs),
    /// A reservation's readable timeline across all its streams.
    History(HistoryArgs),
    /// Rebuild the views into a fresh store while the old one keeps serving, then swap.
    Replay(ReplayArgs),
    /// Check the log: every stream's hash chain, the keyed MAC chain, the signed head, an anchor.
    Verify(VerifyArgs),
    /// The whole log as JSON Lines.
    Export(ExportArgs),
    /// Load an export into an empty data dir, reproducing it exactly.
    Import(ImportArgs),
}

#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Directory of the embedded stores (SQLite files) and the JWT secret.
    #[arg(long, env = "STAYLEDGER_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// The event log's key, which keys its MAC chain and signs its head (default: `log-key` in the
    /// data dir, created on first start). Keep it outside the data dir, so that whoever can write the
    /// data dir cannot rewrite the log unnoticed.
    #[arg(long, env = "STAYLEDGER_LOG_KEY")]
    pub log_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, env = "STAYLEDGER_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Undecided requests expire after this (e.g. 24h, 30m, 500ms).
    #[arg(long, env = "STAYLEDGER_APPROVAL_DEADLINE", default_value = "24h", value_parser = parse_duration)]
    pub approval_deadline: Duration,
    /// Payment gateway base URL (default: the built-in sandbox at http://<addr>/sandbox).
    #[arg(long, env = "STAYLEDGER_PAYMENT_GATEWAY_URL")]
    pub payment_gateway_url: Option<String>,
    #[command(flatten)]
    pub gateway_key: GatewayKeyArgs,
    /// First retry delay of a deferred payment; then exponential backoff with jitter.
    #[arg(long, env = "STAYLEDGER_PAYMENT_RETRY_BASE", default_value = "2s", value_parser = parse_duration)]
    pub payment_retry_base: Duration,
    /// Charge attempts before a payment fails.
    #[arg(long, env = "STAYLEDGER_PAYMENT_MAX_ATTEMPTS", default_value_t = 8)]
    pub payment_max_attempts: u32,
    /// Timeout of one call to the payment gateway.
    #[arg(long, env = "STAYLEDGER_PAYMENT_TIMEOUT", default_value = "3s", value_parser = parse_duration)]
    pub payment_timeout: Duration,
    /// /readyz answers 503 while the projector is more than this many events behind.
    #[arg(long, env = "STAYLEDGER_MAX_PROJECTOR_LAG", default_value_t = 10_000)]
    pub max_projector_lag: u64,
    #[command(flatten)]
    pub http: HttpLimitArgs,
    #[command(flatten)]
    pub catalog: CatalogArgs,
    #[command(flatten)]
    pub webhooks: WebhookArgs,
}

/// Which webhook targets are allowed (`serve`, `query-api`, `notifier`).
#[derive(Debug, Clone, Copy, Args)]
pub struct WebhookTargetArgs {
    /// Allow webhook targets in loopback and private address ranges (off: refused).
    #[arg(long, env = "STAYLEDGER_WEBHOOK_ALLOW_PRIVATE")]
    pub webhook_allow_private: bool,
}

/// How webhooks are delivered (`serve`, `notifier`).
#[derive(Debug, Clone, Copy, Args)]
pub struct WebhookArgs {
    #[command(flatten)]
    pub targets: WebhookTargetArgs,
    /// First retry delay of a failed delivery; then doubling with jitter up to --webhook-max-delay.
    #[arg(long, env = "STAYLEDGER_WEBHOOK_RETRY_BASE", default_value = "5s", value_parser = parse_duration)]
    pub webhook_retry_base: Duration,
    /// Longest wait between two attempts of one delivery.
    #[arg(long, env = "STAYLEDGER_WEBHOOK_MAX_DELAY", default_value = "1h", value_parser = parse_duration)]
    pub webhook_max_delay: Duration,
    /// A delivery still failing this long after its first attempt is parked.
    #[arg(long, env = "STAYLEDGER_WEBHOOK_PARK_AFTER", default_value = "24h", value_parser = parse_duration)]
    pub webhook_park_after: Duration,
    /// Timeout of one delivery attempt.
    #[arg(long, env = "STAYLEDGER_WEBHOOK_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub webhook_timeout: Duration,
}

impl WebhookArgs {
    /// The senders' retry and parking policy.
    #[must_use]
    pub fn policy(&self) -> notifier::policy::RetryPolicy {
        notifier::policy::RetryPolicy {
            base: self.webhook_retry_base,
            max_delay: self.webhook_max_delay.max(self.webhook_retry_base),
            park_after: self.webhook_park_after,
            timeout: self.webhook_timeout,
        }
    }
}

/// What a lodging gets when its registration does not say (`serve` and `command-api`).
#[derive(Debug, Clone, Copy, Args)]
pub struct CatalogArgs {
    /// IANA time zone of a lodging registered without one (its dates are read there).
    #[arg(long, env = "STAYLEDGER_DEFAULT_TIMEZONE", default_value = "Asia/Seoul", value_parser = parse_timezone)]
    pub default_timezone: Tz,
    /// The platform's fee on a lodging's stays, in basis points (0..=10000), unless its
    /// registration or listing approval sets one.
    #[arg(long, env = "STAYLEDGER_PLATFORM_FEE_BPS", default_value_t = domain::lodging::PLATFORM_FEE_BPS_DEFAULT, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub platform_fee_bps: u32,
}

impl CatalogArgs {
    /// The command side's options with these defaults.
    #[must_use]
    pub fn command_options(&self) -> command_api::CommandOptions {
        command_api::CommandOptions {
            default_timezone: self.default_timezone,
            platform_fee_bps: self.platform_fee_bps,
            ..command_api::CommandOptions::default()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    Customer,
    Admin,
    Auditor,
}

#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    #[arg(long, value_enum)]
    pub role: Role,
    /// Subject: the customer's, admin's or auditor's id.
    #[arg(long)]
    pub sub: String,
    /// A lodging this admin manages (repeatable); `*` = platform admin.
    #[arg(long = "lodging")]
    pub lodgings: Vec<String>,
    /// Lifetime of the token (e.g. 1h, 30m).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub ttl: Duration,
    /// Create the data dir and its JWT secret if they are missing (a new deployment). Without it,
    /// a data dir with no secret is refused: its tokens would never be accepted.
    #[arg(long)]
    pub create_secret: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Args)]
pub struct SandboxArgs {
    /// Address to listen on: the sandbox routes under /sandbox, and /healthz, /readyz, /metrics.
    #[arg(
        long,
        env = "STAYLEDGER_SANDBOX_ADDR",
        default_value = "127.0.0.1:8090"
    )]
    pub addr: SocketAddr,
    #[command(flatten)]
    pub http: HttpLimitArgs,
    /// Keeps the sandbox's ledger (`sandbox-gateway.db`), and its key and the JWT secret unless
    /// given.
    #[command(flatten)]
    pub store: StoreArgs,
    /// The key the saga's client must present on payment calls.
    #[command(flatten)]
    pub gateway_key: GatewayKeyArgs,
    /// Operators call every route with a platform admin token signed with this secret.
    #[command(flatten)]
    pub auth: AuthArgs,
}

/// Parse `500ms`, `2s`, `30m`, `24h`, `7d` (a bare number means seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: expected e.g. 500ms, 2s, 30m, 24h"))?;
    let millis = match unit {
        "ms" => Some(value),
        "" | "s" => value.checked_mul(1_000),
        "m" => value.checked_mul(60_000),
        "h" => value.checked_mul(3_600_000),
        "d" => value.checked_mul(86_400_000),
        other => return Err(format!("invalid duration unit {other:?} in {text:?}")),
    }
    .ok_or_else(|| format!("duration {text:?} is too large"))?;
    Ok(Duration::from_millis(millis))
}

/// Parse an IANA time zone name (`Asia/Seoul`, `America/Los_Angeles`, `UTC`).
pub fn parse_timezone(name: &str) -> Result<Tz, String> {
    name.trim()
        .parse()
        .map_err(|_| format!("unknown time zone {name:?}: expected an IANA name, e.g. Asia/Seoul"))
}

/// The saga's business durations from the command line (`serve` and `saga` take the same flags).
pub fn saga_policy(
    approval_deadline: Duration,
    payment_retry_base: Duration,
    payment_max_attempts: u32,
) -> anyhow::Result<SagaPolicy> {
    Ok(SagaPolicy {
        approval_deadline: chrono::TimeDelta::from_std(approval_deadline)
            .context("--approval-deadline is too long")?,
        retry_base: chrono::TimeDelta::from_std(payment_retry_base)
            .context("--payment-retry-base is too long")?,
        max_payment_attempts: payment_max_attempts.max(1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5y").is_err());
        assert!(parse_duration("99999999999999999999h").is_err());
    }

    #[test]
    fn the_default_timezone_is_seoul_and_must_be_an_iana_name() {
        let serve = |extra: &[&str]| {
            let mut args = vec!["stayledger", "serve"];
            args.extend_from_slice(extra);
            Cli::try_parse_from(args)
        };
        let zone = |cli: Cli| match cli.command {
            Command::Serve(args) => args.catalog.default_timezone,
            Command::CommandApi(args) => args.catalog.default_timezone,
            _ => unreachable!("serve or command-api"),
        };
        assert_eq!(zone(serve(&[]).expect("default")), Tz::Asia__Seoul);
        let la = serve(&["--default-timezone", "America/Los_Angeles"]).expect("a zone");
        assert_eq!(zone(la), Tz::America__Los_Angeles);
        assert!(serve(&["--default-timezone", "KST"]).is_err());
        let api = Cli::try_parse_from(["stayledger", "command-api", "--default-timezone", "UTC"]);
        assert_eq!(zone(api.expect("command-api")), Tz::UTC);
    }

    #[test]
    fn the_platform_fee_is_ten_percent_unless_set_within_the_whole_amount() {
        let fee = |extra: &[&str]| {
            let mut args = vec!["stayledger", "serve"];
            args.extend_from_slice(extra);
            Cli::try_parse_from(args).map(|cli| match cli.command {
                Command::Serve(args) => args.catalog.platform_fee_bps,
                _ => unreachable!("serve"),
            })
        };
        assert_eq!(fee(&[]).expect("default"), 1_000);
        assert_eq!(fee(&["--platform-fee-bps", "250"]).expect("set"), 250);
        assert!(fee(&["--platform-fee-bps", "10001"]).is_err());
    }

    #[test]
    fn a_saga_joins_a_consumer_group_only_on_eventstoredb_and_unsharded() {
        let saga = |extra: &[&str]| {
            let mut args = vec!["stayledger", "saga", "--payment-gateway-url", "http://gw"];
            args.extend_from_slice(extra);
            Cli::try_parse_from(args)
        };
        let esdb = ["--eventstore-url", "esdb://localhost:2113?tls=false"];
        let parsed = saga(
            &[
                &esdb[..],
                &["--consumer-group", "saga", "--group-member", "s-1"],
            ]
            .concat(),
        )
        .expect("a group member on EventStoreDB");
        let Command::Saga(args) = parsed.command else {
            panic!("not the saga");
        };
        assert_eq!(
            (args.consumer_group.as_deref(), args.group_member.as_deref()),
            (Some("saga"), Some("s-1"))
        );
        assert!(
            saga(&["--consumer-group", "saga"]).is_err(),
            "needs EventStoreDB"
        );
        assert!(
            saga(&[&esdb[..], &["--consumer-group", "saga", "--shards", "2"]].concat()).is_err()
        );
        assert!(
            saga(&[&esdb[..], &["--consumer-group", "saga", "--shard", "0/2"]].concat()).is_err()
        );
        assert!(
            saga(&[&esdb[..], &["--group-member", "s-1"]].concat()).is_err(),
            "member without group"
        );
        assert!(
            saga(&[&esdb[..], &["--drain"]].concat()).is_err(),
            "drain without group"
        );
        let parsed = saga(&[&esdb[..], &["--consumer-group", "saga", "--drain"]].concat())
            .expect("a member draining");
        assert!(matches!(parsed.command, Command::Saga(args) if args.drain));
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
