//! The gateway's per-client rate limit: a GCRA bucket (`governor`) per customer (the
//! token's subject) or, without a valid token, per peer address (an IPv4 address, or
//! an IPv6 /64, which one subscriber usually holds whole).

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::{Arc, Weak};
use std::time::Duration;

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// How often buckets that have filled up again are forgotten.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Who a request is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Client {
    /// A customer, by the subject of their token.
    Customer(String),
    /// A peer address (normalised: IPv4-mapped as IPv4, IPv6 to its /64).
    Address(IpAddr),
}

impl Client {
    /// The client of a peer at `ip`.
    pub fn address(ip: IpAddr) -> Self {
        Self::Address(match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let s = v6.segments();
                    IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
                }
            },
            v4 @ IpAddr::V4(_) => v4,
        })
    }
}

/// Requests per second per client, with a burst.
#[derive(Debug)]
pub struct Rate {
    per_s: u32,
    limiter: DefaultKeyedRateLimiter<Client>,
}

impl Rate {
    /// `per_s` a second per client, `burst` at once (0: `per_s`); `None` when `per_s` is
    /// 0. On a runtime, a task forgets idle clients every minute while the limit lives.
    pub fn new(per_s: u32, burst: u32) -> Option<Arc<Self>> {
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
    pub fn per_s(&self) -> u32 {
        self.per_s
    }

    /// Counts a request of `client`: `Err` with the whole seconds (at least 1) until it
    /// may send again when it is over its rate.
    pub fn check(&self, client: &Client) -> Result<(), u64> {
        self.limiter.check_key(client).map_err(|refused| {
            let wait = refused.wait_time_from(self.limiter.clock().now());
            (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
        })
    }
}

async fn prune(limit: Weak<Rate>) {
    loop {
        tokio::time::sleep(PRUNE_EVERY).await;
        let Some(limit) = limit.upgrade() else { return };
        limit.limiter.retain_recent();
        limit.limiter.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::{Client, Rate};

    #[test]
    fn each_customer_and_address_has_a_bucket() {
        let rate = Rate::new(1, 2).expect("a limit");
        let a = Client::Customer("a".into());
        assert_eq!(rate.check(&a), Ok(()));
        assert_eq!(rate.check(&a), Ok(()));
        assert_eq!(rate.check(&a), Err(1), "over the burst");
        assert_eq!(rate.check(&Client::Customer("b".into())), Ok(()));
        let ip = |s: &str| Client::address(s.parse().expect("ip"));
        assert_eq!(ip("::ffff:192.0.2.7"), ip("192.0.2.7"));
        assert_eq!(ip("2001:db8:1:2:3:4:5:6"), ip("2001:db8:1:2::9"));
        assert!(Rate::new(0, 5).is_none());
    }
}
