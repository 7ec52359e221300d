//! Rate limiting with governor: a per-IP budget on every route, and a strict budget on
//! login and register keyed by IP and by email.
//!
//! Limits are per instance (governor keeps its state in memory): N instances behind a
//! balancer allow up to N times the configured rate. Idle keys are evicted
//! periodically, so a flood of distinct IPs or emails cannot grow memory without bound.

use std::{
    net::{IpAddr, Ipv4Addr},
    num::NonZeroU32,
    time::Duration,
};

use governor::{
    DefaultKeyedRateLimiter, Quota,
    clock::{Clock, DefaultClock},
};
use ipnet::IpNet;
use poem::{Endpoint, Request};

use crate::{config::Settings, error::AppError, state::AppState};

/// Paths that are never limited: probes and scrapes must always answer.
const EXEMPT: &[&str] = &["/health", "/ready", "/metrics"];

/// The client's address, after `X-Forwarded-For` from a trusted proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    /// The peer address, or, when the peer is a trusted proxy, the right-most address of
    /// `X-Forwarded-For` that is not itself a trusted proxy (the left part is client-made).
    pub fn resolve(peer: Option<IpAddr>, forwarded_for: Option<&str>, trusted: &[IpNet]) -> Self {
        let peer = peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
        if !is_trusted(&peer) {
            return Self(peer);
        }
        let forwarded = forwarded_for
            .into_iter()
            .flat_map(|v| v.rsplit(','))
            .map_while(|hop| hop.trim().parse::<IpAddr>().ok());
        let mut client = peer;
        for hop in forwarded {
            client = hop;
            if !is_trusted(&hop) {
                break;
            }
        }
        Self(client)
    }
}

/// Every limiter of the process.
pub struct RateLimits {
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    login_by_ip: DefaultKeyedRateLimiter<IpAddr>,
    login_by_email: DefaultKeyedRateLimiter<String>,
}

fn non_zero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

impl RateLimits {
    pub fn new(settings: &Settings) -> Self {
        let general = Quota::per_second(non_zero(settings.rate_limit_per_sec))
            .allow_burst(non_zero(settings.rate_limit_burst));
        let login = Quota::per_minute(non_zero(settings.rate_limit_login_per_min));
        Self {
            per_ip: DefaultKeyedRateLimiter::keyed(general),
            login_by_ip: DefaultKeyedRateLimiter::keyed(login),
            login_by_email: DefaultKeyedRateLimiter::keyed(login),
        }
    }

    pub fn check_request(&self, ip: ClientIp) -> Result<(), AppError> {
        verdict(self.per_ip.check_key(&ip.0))
    }

    /// Login and register: both the address and the account must have budget left.
    pub fn check_login(&self, ip: ClientIp, email: &str) -> Result<(), AppError> {
        verdict(self.login_by_ip.check_key(&ip.0))?;
        verdict(self.login_by_email.check_key(&email.to_owned()))
    }

    /// Drops keys whose budget is full again (they carry no information), then frees memory.
    pub fn evict_idle(&self) {
        self.per_ip.retain_recent();
        self.login_by_ip.retain_recent();
        self.login_by_email.retain_recent();
        self.per_ip.shrink_to_fit();
        self.login_by_ip.shrink_to_fit();
        self.login_by_email.shrink_to_fit();
    }

    /// Keys currently tracked, over every limiter.
    pub fn tracked_keys(&self) -> usize {
        self.per_ip.len() + self.login_by_ip.len() + self.login_by_email.len()
    }
}

fn verdict<P: governor::clock::Reference>(
    result: Result<(), governor::NotUntil<P>>,
) -> Result<(), AppError>
where
    DefaultClock: Clock<Instant = P>,
{
    result.map_err(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        AppError::RateLimited {
            // Round up: retrying after the advertised delay must succeed.
            retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
        }
    })
}

/// How often idle limiter keys are evicted.
pub const EVICTION_INTERVAL: Duration = Duration::from_secs(30);

/// Resolves the client IP for everyone downstream and applies the per-IP limit.
pub async fn limit<E: Endpoint>(next: E, mut req: Request) -> poem::Result<E::Output> {
    let state = req
        .data::<AppState>()
        .cloned()
        .ok_or_else(|| AppError::internal("application state missing"))?;
    let peer = req.remote_addr().as_socket_addr().map(|addr| addr.ip());
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    let ip = ClientIp::resolve(peer, forwarded, &state.settings.trusted_proxies);
    req.set_data(ip);
    if !EXEMPT.contains(&req.uri().path()) {
        state.limits.check_request(ip)?;
    }
    next.call(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().expect("net")).collect()
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().expect("ip"))
    }

    #[test]
    fn untrusted_peers_cannot_spoof() {
        let resolved =
            ClientIp::resolve(ip("203.0.113.9"), Some("1.2.3.4"), &nets(&["10.0.0.0/8"]));
        assert_eq!(resolved, ClientIp("203.0.113.9".parse().expect("ip")));
    }

    #[test]
    fn trusted_proxy_chain_yields_first_untrusted_hop_from_the_right() {
        let trusted = nets(&["10.0.0.0/8"]);
        let resolved = ClientIp::resolve(
            ip("10.0.0.1"),
            Some("6.6.6.6, 198.51.100.7, 10.0.0.2"),
            &trusted,
        );
        assert_eq!(resolved, ClientIp("198.51.100.7".parse().expect("ip")));
    }

    #[test]
    fn garbage_forwarded_for_stops_the_walk() {
        let trusted = nets(&["10.0.0.0/8"]);
        let resolved = ClientIp::resolve(ip("10.0.0.1"), Some("nonsense"), &trusted);
        assert_eq!(resolved, ClientIp("10.0.0.1".parse().expect("ip")));
    }
}
