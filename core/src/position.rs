//! Positions in the global log.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A position in the global log, ordered by `(commit, prepare)`.
///
/// Readers receive events in strictly increasing position order. What the two parts
/// mean depends on the store, and the order is all a reader relies on:
///
/// - memory: both equal the event's 1-based index in the log;
/// - PostgreSQL: `commit` is the writing transaction's id (`xid8`), `prepare` the
///   `global_position` identity; ordering by the pair is what makes the log gap-free;
/// - EventStoreDB: its commit and prepare positions.
///
/// [`Position::START`] is before every event. Positions print and parse as
/// `"{commit}.{prepare}"`.
///
/// ```
/// use tessera_core::Position;
/// let p: Position = "7.12".parse().unwrap();
/// assert_eq!(p, Position::new(7, 12));
/// assert!(Position::START < p);
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Position {
    /// The transaction or commit part, compared first.
    pub commit: u64,
    /// The part that orders events within one commit, compared second.
    pub prepare: u64,
}

impl Position {
    /// Before the first event of the log.
    pub const START: Position = Position {
        commit: 0,
        prepare: 0,
    };

    /// A position from its two parts.
    pub const fn new(commit: u64, prepare: u64) -> Self {
        Self { commit, prepare }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.commit, self.prepare)
    }
}

/// A string that is not a position (`"{commit}.{prepare}"`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid position {0:?}: expected \"<commit>.<prepare>\" with two unsigned integers")]
pub struct InvalidPosition(pub String);

impl FromStr for Position {
    type Err = InvalidPosition;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InvalidPosition(s.chars().take(100).collect());
        // Digits only: `u64::from_str` would also take a leading `+` ("+1.+2").
        let part = |t: &str| {
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            t.parse::<u64>().map_err(|_| bad())
        };
        let (c, p) = s.split_once('.').ok_or_else(bad)?;
        Ok(Position::new(part(c)?, part(p)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_by_commit_then_prepare() {
        assert!(Position::new(1, 9) < Position::new(2, 1));
        assert!(Position::new(2, 1) < Position::new(2, 3));
        assert_eq!("3.4".parse::<Position>().unwrap().to_string(), "3.4");
        assert!("3".parse::<Position>().is_err());
        assert!("a.1".parse::<Position>().is_err());
        assert!("-1.1".parse::<Position>().is_err());
        assert!("+1.+2".parse::<Position>().is_err());
        assert!("1.+2".parse::<Position>().is_err());
        assert!(".1".parse::<Position>().is_err());
        assert!("1.2.3".parse::<Position>().is_err());
        assert!("18446744073709551616.1".parse::<Position>().is_err());
        assert_eq!(
            "18446744073709551615.0".parse::<Position>().unwrap(),
            Position::new(u64::MAX, 0)
        );
    }
}
