//! The per-client rate limit: a GCRA bucket (the `governor` crate) per client address.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::{Arc, Weak};
use std::time::Duration;

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// How often buckets that have filled up again are forgotten, so the table holds only
/// the clients seen lately.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Requests per second per client, with a burst.
#[derive(Debug)]
pub(crate) struct Rate {
    per_s: u32,
    limiter: DefaultKeyedRateLimiter<IpAddr>,
}

impl Rate {
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

    /// Counts a request from `ip`: `Err` with the whole seconds until it may send
    /// again (at least 1) when it is over its rate.
    pub(crate) fn check(&self, ip: IpAddr) -> Result<(), u64> {
        self.limiter.check_key(&client(ip)).map_err(|refused| {
            let wait = refused.wait_time_from(self.limiter.clock().now());
            (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
        })
    }
}

/// The client an address stands for: an IPv4 address (also written IPv4-mapped), or
/// an IPv6 /64, which one subscriber usually holds whole.
fn client(ip: IpAddr) -> IpAddr {
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
    use super::{client, Rate};

    #[test]
    fn a_client_is_an_ipv4_address_or_an_ipv6_64() {
        let ip = |s: &str| s.parse().expect("ip");
        assert_eq!(client(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(client(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(client(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
    }

    #[test]
    fn a_client_over_its_burst_waits_and_others_do_not() {
        let rate = Rate::new(1, 2).expect("a limit");
        let (a, b) = (
            "192.0.2.1".parse().expect("ip"),
            "192.0.2.2".parse().expect("ip"),
        );
        assert_eq!(rate.check(a), Ok(()));
        assert_eq!(rate.check(a), Ok(()));
        assert_eq!(
            rate.check(a),
            Err(1),
            "over the burst of 2: a second to wait"
        );
        assert_eq!(
            rate.check(b),
            Ok(()),
            "another client has a bucket of its own"
        );
        assert!(Rate::new(0, 5).is_none(), "0 is no limit");
    }
}
