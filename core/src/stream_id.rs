//! Validated stream identifiers.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest stream id accepted, in bytes.
pub const MAX_STREAM_ID_LEN: usize = 255;

/// The identifier of one stream: non-empty, at most 255 bytes, no control characters.
///
/// Its [category](StreamId::category) is the part before the first `-`.
///
/// ```
/// use tessera_core::StreamId;
/// let id = StreamId::new("order-42").unwrap();
/// assert_eq!(id.category(), "order");
/// assert!(StreamId::new("").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(Arc<str>);

/// Why a string is not a valid [`StreamId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid stream id {value:?}: {reason}")]
pub struct InvalidStreamId {
    /// The rejected value (truncated to 300 characters).
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl StreamId {
    /// Validates `value` and makes a stream id of it.
    pub fn new(value: impl AsRef<str>) -> Result<Self, InvalidStreamId> {
        let value = value.as_ref();
        let reject = |reason| InvalidStreamId {
            value: value.chars().take(300).collect(),
            reason,
        };
        if value.is_empty() {
            return Err(reject("it is empty"));
        }
        if value.len() > MAX_STREAM_ID_LEN {
            return Err(reject("it is longer than 255 bytes"));
        }
        if value.chars().any(char::is_control) {
            return Err(reject("it contains a control character"));
        }
        Ok(Self(Arc::from(value)))
    }

    /// Builds `"{category}-{id}"`, validated. An empty `id` is rejected: it would give
    /// every caller that forgot to set one the same stream, `"{category}-"`.
    pub fn from_parts(category: &str, id: impl fmt::Display) -> Result<Self, InvalidStreamId> {
        let value = format!("{category}-{id}");
        if value.len() == category.len() + 1 {
            return Err(InvalidStreamId {
                value: value.chars().take(300).collect(),
                reason: "the id after the category is empty",
            });
        }
        Self::new(value)
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the first `-` (the whole id when there is none).
    pub fn category(&self) -> &str {
        category_of(&self.0)
    }
}

/// The category of a stream id string: the part before the first `-`.
pub fn category_of(stream: &str) -> &str {
    stream.split_once('-').map_or(stream, |(c, _)| c)
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StreamId({:?})", &*self.0)
    }
}

impl AsRef<str> for StreamId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for StreamId {
    type Error = InvalidStreamId;
    fn try_from(value: &str) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl TryFrom<String> for StreamId {
    type Error = InvalidStreamId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl std::str::FromStr for StreamId {
    type Err = InvalidStreamId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl Serialize for StreamId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for StreamId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::new(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_and_splits_category() {
        assert_eq!(StreamId::new("order-42-a").unwrap().category(), "order");
        assert_eq!(StreamId::new("plain").unwrap().category(), "plain");
        assert_eq!(StreamId::new("-x").unwrap().category(), "");
        assert_eq!(StreamId::new("").unwrap_err().reason, "it is empty");
        assert!(StreamId::new("a\nb").is_err());
        assert!(StreamId::new("a\u{0}b").is_err());
        assert!(StreamId::new("x".repeat(255)).is_ok());
        assert!(StreamId::new("x".repeat(256)).is_err());
        // 255 bytes of multi-byte characters are still checked in bytes.
        assert!(StreamId::new("é".repeat(128)).is_err());
        assert!(serde_json::from_str::<StreamId>("\"\"").is_err());
        assert_eq!(
            StreamId::from_parts("order", 42).unwrap().as_str(),
            "order-42"
        );
        assert_eq!(
            StreamId::from_parts("order", "").unwrap_err().value,
            "order-"
        );
        assert!(StreamId::from_parts("order", "a\nb").is_err());
    }
}
