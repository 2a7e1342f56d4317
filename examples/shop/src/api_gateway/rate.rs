//! Per-client rate limits: a GCRA bucket (`governor`) per key, over it a wait in whole
//! seconds (429 with `Retry-After`). The gateway counts a request against a [`Client`]
//! (the customer of a valid token, else the peer address); the all-in-one server's API
//! (`crate::api`'s limits) against the peer address alone ([`peer`]). One limiter for
//! both, here because the gateway cannot see the API's private `limit` module.

use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::{Arc, Weak};
use std::time::Duration;

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// How often buckets that have filled up again are forgotten, so the table holds only
/// the clients seen lately.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Who a gateway request is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Client {
    /// A customer, by the subject of their token.
    Customer(String),
    /// A peer address (as [`peer`] gives it).
    Address(IpAddr),
}

impl Client {
    /// The client of a peer at `ip`.
    pub fn address(ip: IpAddr) -> Self {
        Self::Address(peer(ip))
    }
}

/// The client a peer address stands for: an IPv4 address (also written IPv4-mapped),
/// or an IPv6 /64, which one subscriber usually holds whole.
pub(crate) fn peer(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 @ IpAddr::V4(_) => v4,
    }
}

/// Requests per second per client (keyed by `K`), with a burst.
#[derive(Debug)]
pub(crate) struct Rate<K: Hash + Eq + Clone> {
    per_s: u32,
    limiter: DefaultKeyedRateLimiter<K>,
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static> Rate<K> {
    /// `per_s` requests a second per client, `burst` at once (0: `per_s`); `None` when
    /// `per_s` is 0 (no limit). On a runtime, a task forgets idle clients every minute
    /// for as long as the limit is in use.
    pub(crate) fn new(per_s: u32, burst: u32) -> Option<Arc<Self>> {
        let rate = NonZeroU32::new(per_s)?;
        let burst = NonZeroU32::new(burst).unwrap_or(rate);
        let limit = Arc::new(Self {
            per_s,
            limiter: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(prune(Arc::downgrade(&limit)));
        }
        Some(limit)
    }

    /// The rate, per second.
    pub(crate) fn per_s(&self) -> u32 {
        self.per_s
    }

    /// Counts a request of `client`: `Err` with the whole seconds until it may send
    /// again (at least 1) when it is over its rate.
    pub(crate) fn check(&self, client: &K) -> Result<(), u64> {
        self.limiter.check_key(client).map_err(|refused| {
            let wait = refused.wait_time_from(self.limiter.clock().now());
            (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
        })
    }
}

async fn prune<K: Hash + Eq + Clone>(limit: Weak<Rate<K>>) {
    loop {
        tokio::time::sleep(PRUNE_EVERY).await;
        let Some(limit) = limit.upgrade() else { return };
        limit.limiter.retain_recent();
        limit.limiter.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Debug;
    use std::hash::Hash;
    use std::net::IpAddr;

    use super::{peer, Client, Rate};

    #[test]
    fn a_peer_is_an_ipv4_address_or_an_ipv6_64() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert_eq!(peer(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(peer(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(peer(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
        let client = |s: &str| Client::address(ip(s));
        assert_eq!(client("::ffff:192.0.2.7"), client("192.0.2.7"));
        assert_eq!(client("2001:db8:1:2:3:4:5:6"), client("2001:db8:1:2::9"));
    }

    /// A limit of 1/s with a burst of 2: `first`'s third request waits a second,
    /// `other` has a bucket of its own.
    fn second_waits<K: Hash + Eq + Clone + Debug + Send + Sync + 'static>(first: K, other: K) {
        let rate = Rate::new(1, 2).expect("a limit");
        assert_eq!(rate.check(&first), Ok(()));
        assert_eq!(rate.check(&first), Ok(()));
        assert_eq!(rate.check(&first), Err(1), "{first:?} over the burst of 2");
        assert_eq!(
            rate.check(&other),
            Ok(()),
            "{other:?} has a bucket of its own"
        );
    }

    #[test]
    fn a_client_over_its_burst_waits_and_others_do_not() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        second_waits(ip("192.0.2.1"), ip("192.0.2.2"));
        second_waits(Client::Customer("a".into()), Client::Customer("b".into()));
        second_waits(
            Client::Customer("a".into()),
            Client::address(ip("192.0.2.1")),
        );
        assert!(Rate::<IpAddr>::new(0, 5).is_none(), "0 is no limit");
    }
}
