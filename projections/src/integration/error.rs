//! What goes wrong between services.

/// A broker operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    /// The broker could not be reached or the connection was lost; retry later. The
    /// text names the broker's address without credentials.
    #[error("broker unavailable: {0}")]
    Unavailable(String),
    /// A publish was not confirmed (refused, timed out, or its connection dropped before
    /// the confirmation): the messages from the first unconfirmed on may or may not be
    /// stored, and are published again.
    #[error("publish not confirmed: {0}")]
    NotConfirmed(String),
    /// The broker refused a setting or a name (a stream, queue or subject).
    #[error("broker refused: {0}")]
    Refused(String),
    /// The consumer was closed.
    #[error("consumer closed")]
    Closed,
}

impl BusError {
    /// Whether retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, BusError::Unavailable(_) | BusError::NotConfirmed(_))
    }
}

/// A delivery that is not an integration message Tessera can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// A required header is missing (a message not sent by a Tessera relay).
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// A header's value cannot be read.
    #[error("header {name} has an unreadable value {value:?}")]
    BadHeader {
        /// The header.
        name: &'static str,
        /// Its value (at most 100 characters).
        value: String,
    },
    /// The payload is not of the one media type Tessera reads.
    #[error("content type {0:?} is not application/json")]
    ContentType(String),
    /// The payload is not JSON.
    #[error("payload is not JSON")]
    Payload,
}
