//! The gateway's `/metrics`, Prometheus text: requests by route and status, a latency
//! histogram per route, and each upstream breaker's state and counters.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, PoisonError};

use tessera_projections::resilience::BreakerState;

use super::Upstream;
use crate::metrics::escape;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The methods counted by name; any other is `other`.
const METHODS: [&str; 5] = ["GET", "HEAD", "POST", "PUT", "DELETE"];

#[derive(Debug, Default)]
struct Histogram {
    /// Observations at or below each bound (not cumulative here; summed when rendered).
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Debug, Default)]
struct Counts {
    /// (method, route, status) → requests.
    requests: BTreeMap<(&'static str, &'static str, u16), u64>,
    /// route → latency.
    latency: BTreeMap<&'static str, Histogram>,
}

/// The gateway's counters. Labels come from closed sets (route templates, standard
/// methods), so clients cannot grow them.
#[derive(Debug, Default)]
pub struct Metrics {
    counts: Mutex<Counts>,
}

impl Metrics {
    /// Counts one request on `route` (a template) and how long it took.
    pub fn observe(&self, method: &str, route: &'static str, status: u16, seconds: f64) {
        let method = METHODS
            .into_iter()
            .find(|m| *m == method)
            .unwrap_or("other");
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        *counts.requests.entry((method, route, status)).or_default() += 1;
        let h = counts.latency.entry(route).or_default();
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            h.buckets[i] += 1;
        }
        h.count += 1;
        h.sum += seconds;
    }

    /// Everything as Prometheus text.
    pub fn render(&self, upstreams: &[Upstream]) -> String {
        let mut out = String::new();
        {
            let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
            out.push_str("# HELP shop_gateway_requests_total Requests answered by the gateway, by route and status.\n# TYPE shop_gateway_requests_total counter\n");
            for ((m, r, s), n) in &counts.requests {
                let _ = writeln!(
                    out,
                    "shop_gateway_requests_total{{method=\"{m}\",route=\"{}\",status=\"{s}\"}} {n}",
                    escape(r)
                );
            }
            out.push_str("# HELP shop_gateway_request_duration_seconds Time the gateway took to answer, by route.\n# TYPE shop_gateway_request_duration_seconds histogram\n");
            for (route, h) in &counts.latency {
                let route = escape(route);
                let mut below = 0;
                for (bound, n) in BUCKETS.iter().zip(h.buckets) {
                    below += n;
                    let _ = writeln!(
                        out,
                        "shop_gateway_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {below}"
                    );
                }
                let _ = writeln!(
                    out,
                    "shop_gateway_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}\n\
                     shop_gateway_request_duration_seconds_sum{{route=\"{route}\"}} {}\n\
                     shop_gateway_request_duration_seconds_count{{route=\"{route}\"}} {}",
                    h.count, h.sum, h.count
                );
            }
        }
        render_breakers(&mut out, upstreams);
        // The libraries' metrics: the guards' `tessera_breaker_state{route="gateway_…"}`
        // and bulkhead series among them.
        crate::metrics::render_recorded(&mut out);
        out
    }
}

fn render_breakers(out: &mut String, upstreams: &[Upstream]) {
    out.push_str("# HELP shop_gateway_breaker_state 1 for the state each upstream's circuit breaker is in.\n# TYPE shop_gateway_breaker_state gauge\n");
    let snapshots: Vec<_> = upstreams
        .iter()
        .map(|u| (u.service().as_str(), u.breaker().snapshot()))
        .collect();
    for (service, s) in &snapshots {
        for state in [
            BreakerState::Closed,
            BreakerState::Open,
            BreakerState::HalfOpen,
        ] {
            let _ = writeln!(
                out,
                "shop_gateway_breaker_state{{service=\"{service}\",state=\"{}\"}} {}",
                state.as_str(),
                u8::from(s.state == state)
            );
        }
    }
    for (name, help, value) in [
        (
            "shop_gateway_upstream_calls_total",
            "Calls the breaker let through to each upstream.",
            (|s: &tessera_projections::resilience::BreakerSnapshot| s.calls)
                as fn(&tessera_projections::resilience::BreakerSnapshot) -> u64,
        ),
        (
            "shop_gateway_upstream_failures_total",
            "Calls to each upstream that got no answer.",
            |s| s.failures,
        ),
        (
            "shop_gateway_breaker_rejected_total",
            "Calls refused because the upstream's breaker was open.",
            |s| s.rejected,
        ),
        (
            "shop_gateway_breaker_opened_total",
            "Times each upstream's breaker opened.",
            |s| s.opened,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (service, s) in &snapshots {
            let _ = writeln!(out, "{name}{{service=\"{service}\"}} {}", value(s));
        }
    }
}
