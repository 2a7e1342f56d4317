//! Stream versions and expected versions.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The version of an event inside its stream. The first event of a stream has version 0,
/// and versions have no holes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Version(pub u64);

impl Version {
    /// The version of the first event of every stream.
    pub const FIRST: Version = Version(0);

    /// The version after this one.
    #[must_use]
    pub fn next(self) -> Version {
        Version(self.0.saturating_add(1))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What the writer believes the stream's current version is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// Append whatever the stream holds.
    Any,
    /// The stream must not exist (hold no event).
    NoStream,
    /// The stream must hold at least one event.
    StreamExists,
    /// The stream's last event must have exactly this version.
    Exact(Version),
}

impl ExpectedVersion {
    /// The expectation that matches a stream whose current version is `current`.
    pub fn from_current(current: Option<Version>) -> Self {
        current.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact)
    }

    /// Whether a stream whose current version is `current` meets this expectation.
    pub fn is_met_by(self, current: Option<Version>) -> bool {
        match (self, current) {
            (ExpectedVersion::Any, _) => true,
            (ExpectedVersion::NoStream, None) => true,
            (ExpectedVersion::StreamExists, Some(_)) => true,
            (ExpectedVersion::Exact(v), Some(c)) => v == c,
            _ => false,
        }
    }

    /// The version the first event of the batch gets when this expectation is an exact
    /// position (`NoStream` or `Exact`); `None` for `Any` and `StreamExists`.
    pub fn first_version(self) -> Option<Version> {
        match self {
            ExpectedVersion::NoStream => Some(Version::FIRST),
            ExpectedVersion::Exact(v) => Some(v.next()),
            ExpectedVersion::Any | ExpectedVersion::StreamExists => None,
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any"),
            ExpectedVersion::NoStream => f.write_str("no stream"),
            ExpectedVersion::StreamExists => f.write_str("stream exists"),
            ExpectedVersion::Exact(v) => write!(f, "exactly {v}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectation_matrix() {
        use ExpectedVersion::*;
        let v = Version;
        assert!(Any.is_met_by(None) && Any.is_met_by(Some(v(3))));
        assert!(NoStream.is_met_by(None) && !NoStream.is_met_by(Some(v(0))));
        assert!(!StreamExists.is_met_by(None) && StreamExists.is_met_by(Some(v(0))));
        assert!(Exact(v(2)).is_met_by(Some(v(2))));
        assert!(!Exact(v(2)).is_met_by(Some(v(3))) && !Exact(v(0)).is_met_by(None));
        assert_eq!(NoStream.first_version(), Some(v(0)));
        assert_eq!(Exact(v(4)).first_version(), Some(v(5)));
        // The largest version saturates instead of overflowing (no panic on bad input).
        assert_eq!(Exact(v(u64::MAX)).first_version(), Some(v(u64::MAX)));
    }
}
