//! The targets the issues set for each workload, so that every summary line says which
//! target its figure is held to and whether it met it (`target=ratio>=1.5 met=false`).
//!
//! ```
//! use tessera_benches::stats::Summary;
//! use tessera_benches::target::{self, Store};
//! let mut s = Summary::default();
//! s.add("workload", "append").add("ratio", "0.93");
//! s.judge(target::append(Store::Postgres, 8));
//! assert!(s.line().ends_with("target=ratio>=1.5 met=false"));
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

    /// `key>=limit` or `key<=limit`: the value of the `target` pair.
    pub fn describe(&self) -> String {
        match self.bound {
            Bound::AtLeast(limit) => format!("{}>={limit}", self.key),
            Bound::AtMost(limit) => format!("{}<={limit}", self.key),
        }
    }
}

/// Single-event commands: on PostgreSQL, 0.8× the raw single-row INSERT rate at one
/// task and 1.5× at 8 and 32 (PostgreSQL store issue); in memory, 300,000 commands/s
/// by one task (benchmarks issue). Other concurrencies have no target.
pub fn append(store: Store, concurrency: usize) -> Option<Target> {
    match (store, concurrency) {
        (Store::Postgres, 1) => Some(Target::at_least("ratio", 0.8)),
        (Store::Postgres, 8 | 32) => Some(Target::at_least("ratio", 1.5)),
        (Store::Memory, 1) => Some(Target::at_least("commands_per_s", 300_000.0)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Summary;

    #[test]
    fn each_issue_target_is_where_it_belongs() {
        assert_eq!(
            append(Store::Postgres, 1),
            Some(Target::at_least("ratio", 0.8))
        );
        for c in [8, 32] {
            assert_eq!(
                append(Store::Postgres, c),
                Some(Target::at_least("ratio", 1.5))
            );
        }
        assert_eq!(append(Store::Postgres, 4), None);
        assert_eq!(append(Store::Memory, 8), None);
        assert_eq!(
            batch(Store::Memory, 100).map(|t| t.describe()),
            Some("events_per_s>=1000000".to_owned())
        );
        assert_eq!(batch(Store::Postgres, 50), None);
        assert_eq!(long_stream().describe(), "cost_ratio<=2");
    }

    #[test]
    fn a_summary_is_judged_on_its_own_figure() {
        let line = |ratio: &str, target: Option<Target>| {
            let mut s = Summary::default();
            s.add("ratio", ratio);
            s.judge(target);
            s.line()
        };
        assert_eq!(
            line("1.66", append(Store::Postgres, 32)),
            "ratio=1.66 target=ratio>=1.5 met=true"
        );
        assert_eq!(
            line("1.49", append(Store::Postgres, 32)),
            "ratio=1.49 target=ratio>=1.5 met=false"
        );
        assert_eq!(line("0.5", append(Store::Postgres, 4)), "ratio=0.5");
        // A target on a figure the line does not have says so instead of guessing.
        assert_eq!(
            line("0.9", Some(rebuild())),
            "ratio=0.9 target=rebuild_events_per_s>=100000 met=unknown"
        );
        let mut s = Summary::default();
        s.add("cost_ratio", "2.40");
        s.judge(Some(long_stream()));
        assert!(s.line().ends_with("met=false"), "{}", s.line());
    }
}
