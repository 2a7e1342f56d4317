//! Latency percentiles and the one-line `key=value` summary.

use std::fmt::Write as _;
use std::time::Duration;

/// Latencies in microseconds, merged from every task.
#[derive(Debug, Default, Clone)]
pub struct Latencies(Vec<u64>);

impl Latencies {
    /// Room for `n` samples.
    pub fn with_capacity(n: usize) -> Self {
        Self(Vec::with_capacity(n))
    }

    /// Records one sample.
    pub fn record(&mut self, d: Duration) {
        self.0
            .push(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }

    /// Merges another task's samples.
    pub fn merge(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is no sample.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `p`-th percentile (0..=100) in milliseconds.
    pub fn percentile_ms(&mut self, p: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        self.0.sort_unstable();
        let last = self.0.len() - 1;
        let rank = (p / 100.0 * last as f64).round();
        // rank is within 0..=last by construction.
        let idx = format!("{rank:.0}")
            .parse::<usize>()
            .unwrap_or(last)
            .min(last);
        self.0[idx] as f64 / 1000.0
    }
}

/// A summary line of `key=value` pairs, printed in insertion order.
#[derive(Debug, Default)]
pub struct Summary {
    pairs: Vec<(String, String)>,
    /// Figures as measured, before rounding for the line: targets are judged on these.
    figures: Vec<(String, f64)>,
}

impl Summary {
    /// Adds a pair.
    pub fn add(&mut self, key: &str, value: impl std::fmt::Display) -> &mut Self {
        self.pairs.push((key.to_owned(), value.to_string()));
        self
    }

    /// Adds a rate with one decimal.
    pub fn rate(&mut self, key: &str, count: usize, elapsed: Duration) -> f64 {
        let rate = count as f64 / elapsed.as_secs_f64().max(1e-9);
        self.figures.push((key.to_owned(), rate));
        self.add(key, format!("{rate:.1}"));
        rate
    }

    /// Adds a ratio with two decimals.
    pub fn ratio(&mut self, key: &str, ratio: f64) -> &mut Self {
        self.figures.push((key.to_owned(), ratio));
        self.add(key, format!("{ratio:.2}"))
    }

    /// Adds a figure in milliseconds with three decimals.
    pub fn millis(&mut self, key: &str, ms: f64) -> &mut Self {
        self.figures.push((key.to_owned(), ms));
        self.add(key, format!("{ms:.3}"))
    }

    /// Adds the target's pairs (`target_key`, then `target_min` or `target_max`) and
    /// `met=true|false` for `target` (nothing when `None`), judged on the unrounded
    /// figure added under the target's key by [`rate`](Self::rate),
    /// [`ratio`](Self::ratio) or [`millis`](Self::millis) (`met=unknown` if there is none).
    pub fn judge(&mut self, target: Option<crate::target::Target>) -> &mut Self {
        let Some(target) = target else { return self };
        let figure = self
            .figures
            .iter()
            .find(|(k, _)| k == target.key)
            .map(|(_, v)| *v);
        let met = figure.map_or_else(|| "unknown".to_owned(), |v| target.met(v).to_string());
        let (bound, limit) = target.limit();
        self.add("target_key", target.key)
            .add(bound, limit)
            .add("met", met)
    }

    /// The line.
    pub fn line(&self) -> String {
        let mut s = String::new();
        for (i, (k, v)) in self.pairs.iter().enumerate() {
            if i > 0 {
                s.push(' ');
            }
            let _ = write!(s, "{k}={v}");
        }
        s
    }
}
