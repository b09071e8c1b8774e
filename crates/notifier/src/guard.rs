//! Which targets a webhook may call. Only `http`/`https` URLs with a host and no credentials; and
//! unless the operator allows it (`--webhook-allow-private`), no address in a loopback, private,
//! link-local, shared (CGNAT), unspecified, multicast or documentation range, checked both when a
//! subscription is made and at every connection (the HTTP client resolves names through
//! [`GuardedResolver`], so a name that later points inside the network is refused too).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

/// Longest URL a subscription may name.
pub const MAX_URL_LEN: usize = 2048;

/// Why a target was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} is in a loopback or private range (the operator has not allowed those)")]
    Private(String),
    #[error("cannot resolve {0}")]
    Unresolvable(String),
}

fn v4_is_public(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

fn v6_is_public(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_is_public(v4);
    }
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || first == 0x2001 && ip.segments()[1] == 0x0db8)
}

/// Whether `ip` is a public address a webhook may reach without the operator's leave.
#[must_use]
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_is_public(v4),
        IpAddr::V6(v6) => v6_is_public(v6),
    }
}

/// Parse and check a subscription's URL (its shape only; see [`check_addresses`]).
pub fn parse_target(url: &str) -> Result<Url, TargetError> {
    let invalid = |why: &str| TargetError::Invalid(why.to_string());
    if url.len() > MAX_URL_LEN {
        return Err(invalid("the url is longer than 2048 characters"));
    }
    let parsed = Url::parse(url).map_err(|e| TargetError::Invalid(format!("not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("the url must be http or https"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid("the url must name a host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid("the url must not carry credentials"));
    }
    if parsed.fragment().is_some() {
        return Err(invalid("the url must not carry a fragment"));
    }
    Ok(parsed)
}

/// Resolve `url`'s host and refuse it if any address it names is not public (unless
/// `allow_private`).
pub async fn check_addresses(url: &Url, allow_private: bool) -> Result<(), TargetError> {
    let host = url.host_str().unwrap_or_default().to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::time::timeout(
            std::time::Duration::from_secs(5),
            tokio::net::lookup_host((bare, port)),
        )
        .await
        .map_err(|_| TargetError::Unresolvable(host.clone()))?
        .map_err(|_| TargetError::Unresolvable(host.clone()))?
        .collect(),
    };
    if addrs.is_empty() {
        return Err(TargetError::Unresolvable(host));
    }
    match addrs.iter().find(|a| !is_public(a.ip())) {
        Some(addr) if !allow_private => {
            Err(TargetError::Private(format!("{host} ({})", addr.ip())))
        }
        _ => Ok(()),
    }
}

/// The HTTP client's resolver: the system's, keeping only public addresses unless allowed.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| allow_private || is_public(a.ip()))
                .collect();
            if found.is_empty() {
                let refused = TargetError::Private(host);
                return Err(Box::new(refused) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(found.into_iter()) as Addrs)
        })
    }
}

/// The HTTP client deliveries go out on: guarded names, no redirects, `timeout` per request.
pub fn client(
    allow_private: bool,
    timeout: std::time::Duration,
) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver { allow_private }))
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent("stayledger-webhooks/1")
        .build()
}

/// Whether a client error is [`GuardedResolver`] refusing the target's addresses.
#[must_use]
pub fn refused_target(error: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.downcast_ref::<TargetError>().is_some() {
            return true;
        }
        source = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_ranges_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "198.18.0.1",
            "::1",
            "::",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "2001:db8::1",
        ] {
            assert!(!is_public(ip.parse().expect(ip)), "{ip} must not be public");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(ip.parse().expect(ip)), "{ip} is public");
        }
    }

    #[test]
    fn only_plain_http_urls_with_a_host_are_targets() {
        assert!(parse_target("https://hooks.example.com/in?x=1").is_ok());
        for bad in [
            "ftp://example.com/",
            "https://user:pw@example.com/",
            "not a url",
            "https://example.com/#frag",
            "file:///etc/passwd",
        ] {
            assert!(
                matches!(parse_target(bad), Err(TargetError::Invalid(_))),
                "{bad}"
            );
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(parse_target(&long).is_err());
    }

    #[tokio::test]
    async fn loopback_targets_need_the_operators_leave() {
        let url = parse_target("http://127.0.0.1:9/hook").expect("url");
        assert!(matches!(
            check_addresses(&url, false).await,
            Err(TargetError::Private(_))
        ));
        assert_eq!(check_addresses(&url, true).await, Ok(()));
        let named = parse_target("http://localhost:9/hook").expect("url");
        assert!(matches!(
            check_addresses(&named, false).await,
            Err(TargetError::Private(_))
        ));
    }

    #[tokio::test]
    async fn the_client_refuses_a_name_that_resolves_inside() {
        let client = client(false, std::time::Duration::from_secs(2)).expect("client");
        let error = client
            .post("http://localhost:9/hook")
            .send()
            .await
            .expect_err("refused");
        assert!(refused_target(&error), "{error:?}");
    }
}
