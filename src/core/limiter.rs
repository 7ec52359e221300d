//! Rate limiting with governor: a per-IP budget on every route, and password attempts
//! (login, register, password change) budgeted three ways:
//!
//! - per (account, IP), the strict one (`RATE_LIMIT_LOGIN_PER_MIN`): one address cannot
//!   guess at one account, and, keyed by the pair, it spends only its own budget, so
//!   an attacker hammering a victim's email does not lock the victim out from the
//!   victim's address;
//! - per account over every address, [`BUDGET_FACTOR`] times softer: a guess spread
//!   over many addresses is still capped, while locking an account out takes that many
//!   addresses at full speed instead of one;
//! - per client IP over every account, [`BUDGET_FACTOR`] times softer: one address
//!   cannot spray many accounts, while colleagues behind one NAT can still sign in.
//!
//! Limits are per instance (governor keeps its state in memory): N instances behind a
//! balancer allow up to N times the configured rate. Idle keys are evicted
//! periodically, so a flood of distinct IPs or emails cannot grow memory without bound.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr},
    num::NonZeroU32,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use governor::{
    DefaultKeyedRateLimiter, Quota,
    clock::{Clock, DefaultClock},
};
use ipnet::IpNet;

use crate::{config::Settings, error::AppError};

/// The client's address, after `X-Forwarded-For` from a trusted proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    /// The peer address, or, when the peer is a trusted proxy, the right-most address of
    /// `X-Forwarded-For` that is not itself a trusted proxy (the left part is client-made).
    ///
    /// `forwarded_for` holds every `X-Forwarded-For` header line in order (a proxy may
    /// append its own line after the client's). IPv4-mapped IPv6 addresses are read as
    /// IPv4, so a dual-stack listener matches IPv4 proxy ranges.
    pub fn resolve<'a>(
        peer: Option<IpAddr>,
        forwarded_for: impl DoubleEndedIterator<Item = &'a str>,
        trusted: &[IpNet],
    ) -> Self {
        let peer = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ip| ip.to_canonical());
        let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
        if !is_trusted(&peer) {
            return Self(peer);
        }
        let hops = forwarded_for
            .rev()
            .flat_map(|line| line.rsplit(','))
            .map_while(|hop| hop.trim().parse::<IpAddr>().ok())
            .map(|ip| ip.to_canonical());
        let mut client = peer;
        for hop in hops {
            client = hop;
            if !is_trusted(&hop) {
                break;
            }
        }
        Self(client)
    }

    /// The key a budget is kept under: the address, or for IPv6 its /64 (one subscriber
    /// usually holds a whole /64, and would otherwise get unlimited fresh budgets).
    pub fn bucket(self) -> IpAddr {
        match self.0 {
            IpAddr::V4(v4) => IpAddr::V4(v4),
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(prefix.into())
            }
        }
    }
}

/// How many times the per-(account, IP) budget an account gets over every address,
/// and an address gets over every account.
pub const BUDGET_FACTOR: u32 = 5;

/// Account keys are emails (at most 254 characters once valid); a longer string from a
/// malformed login is cut, so a key's memory is bounded whatever the client sends.
const MAX_ACCOUNT_KEY_CHARS: usize = 254;

/// Client addresses the per-request limiter tracks before it evicts idle ones at once
/// instead of waiting for the periodic sweep ([`EVICTION_INTERVAL`]). A flood of
/// distinct addresses (an IPv6 attacker has millions of /64s) then holds memory for what
/// arrived since the last forced eviction, at most a second ago, plus the keys still
/// refilling: about 70 bytes each, instead of 30 seconds' worth.
const MAX_REQUEST_KEYS: usize = 100_000;
/// Forced evictions walk every key: at most one a second.
const FORCED_EVICTION_GAP: Duration = Duration::from_secs(1);

/// Every limiter of the process.
pub struct RateLimits {
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    /// Above this many `per_ip` keys, a request triggers an eviction.
    max_request_keys: usize,
    /// When the last forced eviction ran; `try_lock`ed, so requests never wait on it.
    forced_eviction: Mutex<Option<std::time::Instant>>,
    login_by_ip: DefaultKeyedRateLimiter<IpAddr>,
    login_by_account_and_ip: DefaultKeyedRateLimiter<(String, IpAddr)>,
    login_by_account: DefaultKeyedRateLimiter<String>,
    uploads_by_ip: DefaultKeyedRateLimiter<IpAddr>,
    /// Searches running per address: each holds one of the few search connections.
    pub searches: InFlight,
}

fn non_zero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

impl RateLimits {
    pub fn new(settings: &Settings) -> Self {
        let general = Quota::per_second(non_zero(settings.rate_limit_per_sec))
            .allow_burst(non_zero(settings.rate_limit_burst));
        let pair = Quota::per_minute(non_zero(settings.rate_limit_login_per_min));
        let soft = Quota::per_minute(non_zero(
            settings
                .rate_limit_login_per_min
                .saturating_mul(BUDGET_FACTOR),
        ));
        Self {
            per_ip: DefaultKeyedRateLimiter::keyed(general),
            max_request_keys: MAX_REQUEST_KEYS,
            forced_eviction: Mutex::new(None),
            login_by_ip: DefaultKeyedRateLimiter::keyed(soft),
            login_by_account_and_ip: DefaultKeyedRateLimiter::keyed(pair),
            login_by_account: DefaultKeyedRateLimiter::keyed(soft),
            uploads_by_ip: DefaultKeyedRateLimiter::keyed(Quota::per_hour(non_zero(
                settings.rate_limit_uploads_per_hour,
            ))),
            searches: InFlight::new(settings.search_max_per_ip),
        }
    }

    pub fn check_request(&self, ip: ClientIp) -> Result<(), AppError> {
        let verdict = verdict(self.per_ip.check_key(&ip.bucket()));
        if self.per_ip.len() > self.max_request_keys {
            self.force_eviction();
        }
        verdict
    }

    /// Evicts idle request keys now, unless another request is doing it or did less
    /// than [`FORCED_EVICTION_GAP`] ago.
    fn force_eviction(&self) {
        let Ok(mut last) = self.forced_eviction.try_lock() else {
            return;
        };
        if last.is_some_and(|at| at.elapsed() < FORCED_EVICTION_GAP) {
            return;
        }
        self.per_ip.retain_recent();
        *last = Some(std::time::Instant::now());
    }

    /// Password attempts (login, register, password change) against `account` (its
    /// email, or its id): the address, the pair and the account must all have budget
    /// left (see the module documentation).
    pub fn check_login(&self, ip: ClientIp, account: &str) -> Result<(), AppError> {
        let bucket = ip.bucket();
        let account: String = account.chars().take(MAX_ACCOUNT_KEY_CHARS).collect();
        verdict(
            self.login_by_account_and_ip
                .check_key(&(account.clone(), bucket)),
        )?;
        verdict(self.login_by_ip.check_key(&bucket))?;
        verdict(self.login_by_account.check_key(&account))
    }

    /// A document upload from `ip`. Checked before a byte is streamed, so refused
    /// uploads cost no disk.
    pub fn check_upload(&self, ip: ClientIp) -> Result<(), AppError> {
        verdict(self.uploads_by_ip.check_key(&ip.bucket()))
    }

    /// Drops keys whose budget is full again (they carry no information), then frees memory.
    pub fn evict_idle(&self) {
        self.per_ip.retain_recent();
        self.login_by_ip.retain_recent();
        self.login_by_account_and_ip.retain_recent();
        self.login_by_account.retain_recent();
        self.uploads_by_ip.retain_recent();
        self.per_ip.shrink_to_fit();
        self.login_by_ip.shrink_to_fit();
        self.login_by_account_and_ip.shrink_to_fit();
        self.login_by_account.shrink_to_fit();
        self.uploads_by_ip.shrink_to_fit();
    }

    /// Keys currently tracked, over every limiter.
    pub fn tracked_keys(&self) -> usize {
        self.per_ip.len()
            + self.login_by_ip.len()
            + self.login_by_account_and_ip.len()
            + self.login_by_account.len()
            + self.uploads_by_ip.len()
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

/// Concurrent holders per client address (IPv6 by /64), refused beyond a maximum:
/// for what a rate cannot bound, such as connections held open or searches that each
/// take a pooled connection for up to their timeout.
#[derive(Clone)]
pub struct InFlight {
    max: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl InFlight {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            open: Arc::default(),
        }
    }

    /// A place for `ip`, held until the guard drops; `None` when it has `max` already.
    pub fn enter(&self, ip: ClientIp) -> Option<InFlightGuard> {
        let key = ip.bucket();
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(key).or_default();
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(InFlightGuard {
            key,
            open: Arc::clone(&self.open),
        })
    }
}

/// One place in an [`InFlight`]; dropping it frees the place.
pub struct InFlightGuard {
    key: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// How often idle limiter keys are evicted.
pub const EVICTION_INTERVAL: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().expect("net")).collect()
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().expect("ip"))
    }

    /// Resident memory of this process, from /proc (Linux).
    fn rss_bytes() -> u64 {
        std::fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map_or(0, |pages| pages * 4096)
    }

    #[test]
    fn a_million_client_addresses_are_forgotten_once_idle() {
        let lookup = |key: &str| match key {
            "RATE_LIMIT_PER_SEC" => Some("1000".to_owned()),
            "RATE_LIMIT_BURST" => Some("1".to_owned()),
            _ => None,
        };
        let limits = RateLimits::new(&Settings::from_lookup(lookup).expect("settings"));
        let before = rss_bytes();
        let (mut peak_keys, mut peak_rss) = (0, 0);
        for n in 0..1_000_000u32 {
            // 10.0.0.0 onwards: a million distinct IPv4 clients, one request each.
            let ip = ClientIp(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n)));
            assert!(limits.check_request(ip).is_ok());
            if n % 10_000 == 0 {
                peak_keys = peak_keys.max(limits.tracked_keys());
                peak_rss = peak_rss.max(rss_bytes());
            }
        }
        // Forced evictions past MAX_REQUEST_KEYS kept the map from holding them all.
        assert!(peak_keys < 1_000_000, "{peak_keys}");
        // With a 1 ms refill every key is back to a full budget at once: nothing to keep.
        std::thread::sleep(Duration::from_millis(20));
        limits.evict_idle();
        assert_eq!(limits.tracked_keys(), 0);
        eprintln!(
            "limiter: RSS {} MiB before, peak {} MiB and {peak_keys} keys during 1,000,000 \
             addresses, {} MiB after eviction",
            before >> 20,
            peak_rss >> 20,
            rss_bytes() >> 20
        );
    }

    #[test]
    fn a_flood_of_addresses_evicts_idle_keys_before_the_periodic_sweep() {
        let lookup = |key: &str| match key {
            "RATE_LIMIT_PER_SEC" => Some("1000".to_owned()),
            "RATE_LIMIT_BURST" => Some("1".to_owned()),
            _ => None,
        };
        let mut limits = RateLimits::new(&Settings::from_lookup(lookup).expect("settings"));
        limits.max_request_keys = 1000;
        let flood = |limits: &RateLimits, from: u32, count: u32| {
            for n in from..from + count {
                let ip = ClientIp(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n)));
                assert!(limits.check_request(ip).is_ok());
            }
        };
        // Past the cap, the first forced eviction finds every earlier key refilled.
        flood(&limits, 0, 999);
        std::thread::sleep(Duration::from_millis(20));
        flood(&limits, 999, 2);
        assert!(limits.per_ip.len() < 10, "{}", limits.per_ip.len());
        // Within the next second no second eviction runs: the map may grow again...
        flood(&limits, 2000, 1500);
        assert!(limits.per_ip.len() >= 1500);
        // ...until a second has passed.
        std::thread::sleep(FORCED_EVICTION_GAP);
        flood(&limits, 4000, 1);
        assert!(limits.per_ip.len() < 10, "{}", limits.per_ip.len());
    }

    #[test]
    fn untrusted_peers_cannot_spoof() {
        let resolved = ClientIp::resolve(
            ip("203.0.113.9"),
            ["1.2.3.4"].into_iter(),
            &nets(&["10.0.0.0/8"]),
        );
        assert_eq!(resolved, ClientIp("203.0.113.9".parse().expect("ip")));
    }

    #[test]
    fn trusted_proxy_chain_yields_first_untrusted_hop_from_the_right() {
        let trusted = nets(&["10.0.0.0/8"]);
        let resolved = ClientIp::resolve(
            ip("10.0.0.1"),
            ["6.6.6.6, 198.51.100.7, 10.0.0.2"].into_iter(),
            &trusted,
        );
        assert_eq!(resolved, ClientIp("198.51.100.7".parse().expect("ip")));
    }

    #[test]
    fn every_forwarded_for_line_counts_and_the_last_is_the_proxy_s() {
        let trusted = nets(&["10.0.0.0/8"]);
        let resolved = ClientIp::resolve(
            ip("10.0.0.1"),
            ["6.6.6.6", "198.51.100.7"].into_iter(),
            &trusted,
        );
        assert_eq!(resolved, ClientIp("198.51.100.7".parse().expect("ip")));
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_ranges() {
        let trusted = nets(&["10.0.0.0/8"]);
        let resolved = ClientIp::resolve(
            ip("::ffff:10.0.0.1"),
            ["198.51.100.7"].into_iter(),
            &trusted,
        );
        assert_eq!(resolved, ClientIp("198.51.100.7".parse().expect("ip")));
    }

    #[test]
    fn ipv6_clients_share_a_budget_per_64() {
        let a = ClientIp("2001:db8:1:2:aaaa::1".parse().expect("ip")).bucket();
        let b = ClientIp("2001:db8:1:2:bbbb::2".parse().expect("ip")).bucket();
        let c = ClientIp("2001:db8:1:3::1".parse().expect("ip")).bucket();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn garbage_forwarded_for_stops_the_walk() {
        let trusted = nets(&["10.0.0.0/8"]);
        let resolved = ClientIp::resolve(ip("10.0.0.1"), ["nonsense"].into_iter(), &trusted);
        assert_eq!(resolved, ClientIp("10.0.0.1".parse().expect("ip")));
    }
}
