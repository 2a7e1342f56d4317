//! The targets the issues set for each workload, so that every summary line says which
//! target its figure is held to and whether it met it
//! (`target_key=ratio target_min=1.5 met=false`).
//!
//! ```
//! use tessera_benches::stats::Summary;
//! use tessera_benches::target::{self, Store};
//! let mut s = Summary::default();
//! s.add("workload", "append").ratio("ratio", 0.93);
//! s.judge(target::append(Store::Postgres, 8, 20));
//! assert!(s.line().ends_with("target_key=ratio target_min=1.5 met=false"));
//! ```

/// Which store a workload ran on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// The in-memory store.
    Memory,
    /// PostgreSQL.
    Postgres,
}

/// A bound on one figure of a summary line, named by its key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    /// The summary key the bound applies to.
    pub key: &'static str,
    /// The bound.
    pub bound: Bound,
}

/// Which side of a limit a figure must be on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    /// At least this.
    AtLeast(f64),
    /// At most this.
    AtMost(f64),
}

impl Target {
    const fn at_least(key: &'static str, limit: f64) -> Self {
        Self {
            key,
            bound: Bound::AtLeast(limit),
        }
    }

    /// Whether `value` meets the bound.
    pub fn met(&self, value: f64) -> bool {
        match self.bound {
            Bound::AtLeast(limit) => value >= limit,
            Bound::AtMost(limit) => value <= limit,
        }
    }

    /// The pair that states the bound: `("target_min", limit)` or `("target_max", limit)`.
    pub fn limit(&self) -> (&'static str, f64) {
        match self.bound {
            Bound::AtLeast(limit) => ("target_min", limit),
            Bound::AtMost(limit) => ("target_max", limit),
        }
    }
}

/// Single-event commands, `commands` per aggregate: on PostgreSQL, 0.8× the raw
/// single-row INSERT rate at one task and 1.5× at 8 and 32 (PostgreSQL store issue);
/// in memory, 300,000 commands/s by one task on new streams, one command each
/// (benchmarks issue). Other shapes have no target.
pub fn append(store: Store, concurrency: usize, commands: usize) -> Option<Target> {
    match (store, concurrency, commands) {
        (Store::Postgres, 1, _) => Some(Target::at_least("ratio", 0.8)),
        (Store::Postgres, 8 | 32, _) => Some(Target::at_least("ratio", 1.5)),
        (Store::Memory, 1, 1) => Some(Target::at_least("commands_per_s", 300_000.0)),
        _ => None,
    }
}

/// 100-event appends: 0.8× raw multi-row INSERT on PostgreSQL; 1,000,000 events/s by
/// one task in memory. Other sizes have no target.
pub fn batch(store: Store, size: usize) -> Option<Target> {
    match (store, size) {
        (Store::Postgres, 100) => Some(Target::at_least("ratio", 0.8)),
        (Store::Memory, 100) => Some(Target::at_least("events_per_s", 1_000_000.0)),
        _ => None,
    }
}

/// A command on a long stream costs at most 2× one on a new stream.
pub fn long_stream() -> Target {
    Target {
        key: "cost_ratio",
        bound: Bound::AtMost(2.0),
    }
}

/// A projection rebuild on PostgreSQL applies at least 100,000 events/s.
pub fn rebuild() -> Target {
    Target::at_least("rebuild_events_per_s", 100_000.0)
}

/// An outbox relay publishes a PostgreSQL log to a broker at 0.8× the broker's own
/// client publishing the same messages (integration events issue). The memory bus is
/// not a broker and has no target.
pub fn relay(broker: &crate::broker::Broker) -> Option<Target> {
    match broker {
        crate::broker::Broker::Memory => None,
        _ => Some(Target::at_least("relay_vs_raw", 0.8)),
    }
}

/// Append in one service → handled by an inbox in another, at 1,000 events/s: p99 at
/// most 50 ms (integration events issue).
pub fn bus_latency() -> Target {
    Target {
        key: "bus_latency_p99_ms",
        bound: Bound::AtMost(50.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Summary;

    #[test]
    fn each_issue_target_is_where_it_belongs() {
        assert_eq!(
            append(Store::Postgres, 1, 20),
            Some(Target::at_least("ratio", 0.8))
        );
        for c in [8, 32] {
            assert_eq!(
                append(Store::Postgres, c, 20),
                Some(Target::at_least("ratio", 1.5))
            );
        }
        assert_eq!(append(Store::Postgres, 4, 20), None);
        assert_eq!(
            append(Store::Memory, 1, 1),
            Some(Target::at_least("commands_per_s", 300_000.0))
        );
        // Many commands per aggregate is another workload, with no target.
        assert_eq!(append(Store::Memory, 1, 300), None);
        assert_eq!(append(Store::Memory, 8, 1), None);
        assert_eq!(
            batch(Store::Memory, 100).map(|t| t.limit()),
            Some(("target_min", 1_000_000.0))
        );
        assert_eq!(batch(Store::Postgres, 50), None);
        assert_eq!(long_stream().limit(), ("target_max", 2.0));
        let nats = crate::broker::Broker::parse("nats://127.0.0.1:4222").unwrap();
        assert_eq!(relay(&nats), Some(Target::at_least("relay_vs_raw", 0.8)));
        assert_eq!(relay(&crate::broker::Broker::Memory), None);
        assert_eq!(bus_latency().limit(), ("target_max", 50.0));
    }

    #[test]
    fn a_summary_is_judged_on_its_own_unrounded_figure() {
        let line = |ratio: f64, target: Option<Target>| {
            let mut s = Summary::default();
            s.ratio("ratio", ratio);
            s.judge(target);
            s.line()
        };
        assert_eq!(
            line(1.66, append(Store::Postgres, 32, 20)),
            "ratio=1.66 target_key=ratio target_min=1.5 met=true"
        );
        assert_eq!(
            line(1.49, append(Store::Postgres, 32, 20)),
            "ratio=1.49 target_key=ratio target_min=1.5 met=false"
        );
        // Printed as 0.80, but 0.795 is below 0.8.
        assert_eq!(
            line(0.795, append(Store::Postgres, 1, 20)),
            "ratio=0.80 target_key=ratio target_min=0.8 met=false"
        );
        assert_eq!(line(0.5, append(Store::Postgres, 4, 20)), "ratio=0.50");
        // A target on a figure the line does not have says so instead of guessing.
        assert_eq!(
            line(0.9, Some(rebuild())),
            "ratio=0.90 target_key=rebuild_events_per_s target_min=100000 met=unknown"
        );
        let mut s = Summary::default();
        s.ratio("cost_ratio", 2.4);
        s.judge(Some(long_stream()));
        assert!(s.line().ends_with("target_max=2 met=false"), "{}", s.line());
    }
}
