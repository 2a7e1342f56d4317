//! The errors every store reports.

use crate::{EventId, ExpectedVersion, InvalidStreamId, StreamId, Version};

/// A boxed error from a backend, kept as the source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong in a store operation. Every store maps its failures to these.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The stream's current version did not meet the append's expectation, and the
    /// batch was not an idempotent repeat of events already stored.
    #[error("wrong expected version on stream {stream}: expected {expected}, actual {}", display_actual(.actual))]
    WrongExpectedVersion {
        /// The stream appended to.
        stream: StreamId,
        /// What the writer expected.
        expected: ExpectedVersion,
        /// The stream's version at the time (`None`: no stream).
        actual: Option<Version>,
    },
    /// An event id of the batch is already stored in the stream, but the batch is not
    /// an exact repeat of an earlier append.
    #[error("event {event_id} is already stored in stream {stream} at version {version}")]
    DuplicateEventId {
        /// The stream appended to.
        stream: StreamId,
        /// The id that is already stored.
        event_id: EventId,
        /// Where it is stored.
        version: Version,
    },
    /// The batch itself holds the same event id twice.
    #[error("event id {event_id} appears twice in one append to stream {stream}")]
    DuplicateIdInBatch {
        /// The stream appended to.
        stream: StreamId,
        /// The repeated id.
        event_id: EventId,
    },
    /// An append with no events.
    #[error("append to stream {stream} has no events")]
    EmptyAppend {
        /// The stream appended to.
        stream: StreamId,
    },
    /// A stream id that is not valid.
    #[error(transparent)]
    InvalidStreamId(#[from] InvalidStreamId),
    /// An argument that is out of range or malformed (a limit of zero, a schema name...).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Stored data that cannot be decoded (malformed JSON, a bad column).
    #[error("stored event {stream}@{version} is corrupt: {reason}")]
    Corrupt {
        /// The stream holding it (as stored, possibly not a valid id).
        stream: String,
        /// Its version.
        version: u64,
        /// What is wrong.
        reason: String,
    },
    /// The backend cannot be reached, or the connection was lost. For an append this
    /// means the outcome is unknown: retry it with the same event ids.
    #[error("store unavailable: {message}")]
    Unavailable {
        /// What could not be reached, and why.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<BoxError>,
    },
    /// Any other backend failure.
    #[error("store backend error: {message}")]
    Backend {
        /// What failed.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<BoxError>,
    },
}

fn display_actual(actual: &Option<Version>) -> String {
    actual.map_or_else(|| "no stream".to_owned(), |v| v.to_string())
}

impl StoreError {
    /// A backend failure with a source.
    pub fn backend(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        StoreError::Backend {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// An unavailable backend with a source.
    pub fn unavailable(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        StoreError::Unavailable {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// Whether this is an optimistic-concurrency conflict worth reloading and retrying.
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::WrongExpectedVersion { .. })
    }

    /// Whether the operation may succeed if retried as it is (connection trouble).
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }
}
