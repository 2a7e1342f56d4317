//! What `shop load` measures: per-phase latency statistics and the summary line.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::pgstats::Committed;
use super::watch::Watched;

/// The requests of one phase: their latencies and failures over its wall time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Phase {
    /// Latencies of the successful requests, sorted.
    latencies: Vec<Duration>,
    /// Requests that failed.
    pub failures: usize,
    /// Of the failures, requests admission control refused (503 `backlogged`).
    pub refused: usize,
    /// Wall time of the phase.
    pub elapsed: Duration,
}

impl Phase {
    /// A phase from its successful latencies (any order), failures and wall time.
    pub fn new(mut latencies: Vec<Duration>, failures: usize, elapsed: Duration) -> Self {
        latencies.sort_unstable();
        Self {
            latencies,
            failures,
            refused: 0,
            elapsed,
        }
    }

    /// The same, `refused` of its failures refused by the server.
    #[must_use]
    pub fn with_refused(mut self, refused: usize) -> Self {
        self.refused = refused.min(self.failures);
        self
    }

    /// Successful requests.
    pub fn count(&self) -> usize {
        self.latencies.len()
    }

    /// Successful requests per second of wall time (0 for an empty phase).
    pub fn per_s(&self) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        self.count() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `p` quantile (0 to 1, nearest rank) of the latencies in milliseconds.
    pub fn ms(&self, p: f64) -> f64 {
        percentile(&self.latencies, p).as_secs_f64() * 1000.0
    }

    /// `"{label} {n} in {s}s: {rate}/s; {failures} failed"` and the percentiles.
    pub fn describe(&self, label: &str) -> String {
        let mut out = format!(
            "{label} {} in {:.2}s: {:.1}/s; {} failed\n",
            self.count(),
            self.elapsed.as_secs_f64(),
            self.per_s(),
            self.failures
        );
        for (name, p) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0)] {
            let _ = writeln!(out, "  {name}: {:.1} ms", self.ms(p));
        }
        out
    }
}

/// The nearest-rank `p` quantile of `sorted`.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let Some(last) = sorted.len().checked_sub(1) else {
        return Duration::ZERO;
    };
    let rank = (p.clamp(0.0, 1.0) * last as f64).round();
    let index = format!("{rank:.0}").parse::<usize>().unwrap_or(0).min(last);
    sorted[index]
}

/// How the orders were sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pacing {
    /// This many in flight, each sent when one answered.
    Closed(usize),
    /// On a schedule of `rate` per second; sent at `offered_per_s`.
    Open {
        /// Orders per second asked for.
        rate: f64,
        /// Orders per second sent.
        offered_per_s: f64,
    },
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing::Closed(0)
    }
}

/// Everything `shop load` reports on its last line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Placing orders.
    pub place: Phase,
    /// From the last order placed until the last was seen settled (or the wait ended).
    pub settle: Duration,
    /// Placed orders by final status.
    pub outcomes: BTreeMap<String, usize>,
    /// Reading orders.
    pub get: Phase,
    /// How the orders were sent.
    pub pacing: Pacing,
    /// Products the orders went to (1 in hot-product mode).
    pub skus: usize,
    /// Every order on one product.
    pub hot: bool,
    /// When the orders were seen settled.
    pub watched: Watched,
    /// From the first order sent until the last was seen settled.
    pub span: Duration,
    /// What PostgreSQL committed meanwhile, when asked to count.
    pub committed: Option<Committed>,
}

/// `x` with `digits` decimals, `-` when there is none.
fn or_dash(x: Option<f64>, digits: usize) -> String {
    x.map_or_else(|| "-".to_owned(), |x| format!("{x:.digits$}"))
}

impl Summary {
    /// Place → seen confirmed, over the span from the first send to the last settle.
    pub fn confirm(&self) -> Phase {
        Phase::new(self.watched.confirmed.clone(), 0, self.span)
    }

    /// Orders seen settled per second, first send to last settle.
    pub fn settled_per_s(&self) -> f64 {
        if self.watched.settled == 0 {
            return 0.0;
        }
        self.watched.settled as f64 / self.span.as_secs_f64().max(1e-9)
    }

    /// Transactions committed and transactions that wrote, per settled order.
    pub fn per_order(&self) -> Option<(f64, f64)> {
        let c = self.committed?;
        let n = self.watched.settled;
        (n > 0).then(|| (c.commits as f64 / n as f64, c.writes as f64 / n as f64))
    }

    /// The settling, latency and transaction lines of the report.
    pub fn describe_settling(&self) -> String {
        let confirm = self.confirm();
        let mut out = format!(
            "settled {} in {:.2}s from the first send: {:.1}/s; {} unsettled; {} list requests\n\
             place (201) to seen confirmed, {} orders:\n",
            self.watched.settled,
            self.span.as_secs_f64(),
            self.settled_per_s(),
            self.watched.unsettled,
            self.watched.requests,
            confirm.count(),
        );
        for (name, p) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0)] {
            let _ = writeln!(out, "  {name}: {:.1} ms", confirm.ms(p));
        }
        if let (Some(c), Some((all, wrote))) = (self.committed, self.per_order()) {
            let _ = writeln!(
                out,
                "PostgreSQL: {} transactions committed ({} wrote) in {:.1}s: {all:.2} per settled \
                 order ({wrote:.2} wrote)",
                c.commits,
                c.writes,
                c.window.as_secs_f64()
            );
        }
        out
    }

    /// One `key=value` line, like `tessera-bench`'s.
    pub fn line(&self) -> String {
        let n = |s: &str| self.outcomes.get(s).copied().unwrap_or(0);
        let (mode, rate, offered) = match self.pacing {
            Pacing::Closed(_) => ("closed", None, None),
            Pacing::Open {
                rate,
                offered_per_s,
            } => ("open", Some(rate), Some(offered_per_s)),
        };
        let confirm = self.confirm();
        let per_order = self.per_order();
        let c = self.committed;
        let confirmed_ms = |p| (confirm.count() > 0).then(|| confirm.ms(p));
        format!(
            "workload=shop-load orders={} place_per_s={:.1} place_p50_ms={:.2} place_p99_ms={:.2} \
             place_failed={} place_refused={} settle_s={:.2} confirmed={} rejected={} pending={} not_yet_visible={} gets={} \
             get_per_s={:.1} get_p50_ms={:.2} get_p99_ms={:.2} get_failed={} mode={mode} rate={} \
             offered_per_s={} skus={} hot={} settled={} settled_per_s={:.1} confirm_p50_ms={} \
             confirm_p99_ms={} confirm_max_ms={} watch_requests={} tx={} write_tx={} tx_per_order={} \
             write_tx_per_order={} tx_window_s={}",
            self.place.count(),
            self.place.per_s(),
            self.place.ms(0.5),
            self.place.ms(0.99),
            self.place.failures,
            self.place.refused,
            self.settle.as_secs_f64(),
            n("confirmed"),
            n("rejected"),
            n("pending"),
            n(super::NOT_YET),
            self.get.count(),
            self.get.per_s(),
            self.get.ms(0.5),
            self.get.ms(0.99),
            self.get.failures,
            or_dash(rate, 1),
            or_dash(offered, 1),
            self.skus,
            self.hot,
            self.watched.settled,
            self.settled_per_s(),
            or_dash(confirmed_ms(0.5), 2),
            or_dash(confirmed_ms(0.99), 2),
            or_dash(confirmed_ms(1.0), 2),
            self.watched.requests,
            or_dash(c.map(|c| c.commits as f64), 0),
            or_dash(c.map(|c| c.writes as f64), 0),
            or_dash(per_order.map(|p| p.0), 2),
            or_dash(per_order.map(|p| p.1), 2),
            or_dash(c.map(|c| c.window.as_secs_f64()), 1),
        )
    }
}

/// The ids to read: `reads` of them, cycling through `ids` (none when `ids` is empty).
pub fn read_targets(ids: &[String], reads: usize) -> Vec<&str> {
    ids.iter().map(String::as_str).cycle().take(reads).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::{percentile, read_targets, Committed, Pacing, Phase, Summary, Watched};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let sorted: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(percentile(&sorted, 0.5), ms(51)); // rank round(49.5) = 50
        assert_eq!(percentile(&sorted, 0.99), ms(99));
        assert_eq!(percentile(&sorted, 1.0), ms(100));
        assert_eq!(percentile(&sorted, 0.0), ms(1));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
        assert_eq!(percentile(&[ms(7)], 0.99), ms(7));
    }

    #[test]
    fn a_phase_sorts_and_rates() {
        let phase = Phase::new(vec![ms(30), ms(10), ms(20), ms(40)], 2, ms(2000));
        assert_eq!(phase.count(), 4);
        assert!((phase.per_s() - 2.0).abs() < 1e-9);
        assert!((phase.ms(0.0) - 10.0).abs() < 1e-9);
        assert!((phase.ms(1.0) - 40.0).abs() < 1e-9);
        assert!(phase
            .describe("placed")
            .starts_with("placed 4 in 2.00s: 2.0/s; 2 failed\n"));
        assert_eq!(Phase::default().per_s(), 0.0);
    }

    #[test]
    fn the_summary_is_one_line_of_keys_and_values() {
        let summary = Summary {
            place: Phase::new(vec![ms(10); 50], 3, ms(500)).with_refused(2),
            settle: ms(1500),
            outcomes: BTreeMap::from([
                ("confirmed".to_owned(), 48),
                ("rejected".to_owned(), 1),
                ("not_yet_visible".to_owned(), 1),
            ]),
            get: Phase::new(vec![ms(2), ms(4)], 0, ms(1000)),
            ..Summary::default()
        };
        let line = summary.line();
        assert!(!line.contains('\n'));
        let pairs: BTreeMap<&str, &str> = line
            .split(' ')
            .map(|kv| kv.split_once('=').expect("key=value"))
            .collect();
        assert_eq!(pairs["workload"], "shop-load");
        assert_eq!(pairs["orders"], "50");
        assert_eq!(pairs["place_per_s"], "100.0");
        assert_eq!(pairs["place_p50_ms"], "10.00");
        assert_eq!(pairs["place_failed"], "3");
        assert_eq!(pairs["place_refused"], "2");
        assert_eq!(pairs["settle_s"], "1.50");
        assert_eq!(pairs["confirmed"], "48");
        assert_eq!(pairs["rejected"], "1");
        assert_eq!(pairs["pending"], "0");
        assert_eq!(pairs["not_yet_visible"], "1");
        assert_eq!(pairs["gets"], "2");
        assert_eq!(pairs["get_per_s"], "2.0");
        assert_eq!(pairs["get_p99_ms"], "4.00");
        assert_eq!(pairs["get_failed"], "0");
        assert_eq!(pairs["mode"], "closed");
        assert_eq!(pairs["rate"], "-");
        assert_eq!(pairs["settled"], "0");
        assert_eq!(pairs["confirm_p99_ms"], "-", "nothing seen confirmed");
        assert_eq!(pairs["tx_per_order"], "-", "nothing counted");
    }

    #[test]
    fn an_open_run_reports_settling_latency_and_transactions() {
        let summary = Summary {
            pacing: Pacing::Open {
                rate: 200.0,
                offered_per_s: 199.5,
            },
            skus: 1,
            hot: true,
            watched: Watched {
                confirmed: (1..=100).map(ms).collect(),
                settled: 120,
                requests: 37,
                ..Watched::default()
            },
            span: ms(4000),
            committed: Some(Committed {
                commits: 600,
                writes: 240,
                window: ms(15_000),
            }),
            ..Summary::default()
        };
        let line = summary.line();
        let pairs: BTreeMap<&str, &str> = line
            .split(' ')
            .map(|kv| kv.split_once('=').expect("key=value"))
            .collect();
        assert_eq!(pairs["mode"], "open");
        assert_eq!(pairs["rate"], "200.0");
        assert_eq!(pairs["offered_per_s"], "199.5");
        assert_eq!(pairs["skus"], "1");
        assert_eq!(pairs["hot"], "true");
        assert_eq!(pairs["settled"], "120");
        assert_eq!(pairs["settled_per_s"], "30.0");
        assert_eq!(pairs["confirm_p50_ms"], "51.00");
        assert_eq!(pairs["confirm_p99_ms"], "99.00");
        assert_eq!(pairs["confirm_max_ms"], "100.00");
        assert_eq!(pairs["watch_requests"], "37");
        assert_eq!(pairs["tx"], "600");
        assert_eq!(pairs["write_tx"], "240");
        assert_eq!(pairs["tx_per_order"], "5.00");
        assert_eq!(pairs["write_tx_per_order"], "2.00");
        assert_eq!(pairs["tx_window_s"], "15.0");
        let text = summary.describe_settling();
        assert!(
            text.starts_with("settled 120 in 4.00s from the first send: 30.0/s;"),
            "{text}"
        );
        assert!(
            text.contains("5.00 per settled order (2.00 wrote)"),
            "{text}"
        );
    }

    #[test]
    fn reads_cycle_through_the_ids() {
        let ids = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
        assert_eq!(read_targets(&ids, 5), ["a", "b", "c", "a", "b"]);
        assert_eq!(read_targets(&ids, 2), ["a", "b"]);
        assert!(read_targets(&[], 5).is_empty());
    }
}
