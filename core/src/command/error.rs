//! Errors of command handling.

use crate::{CodecError, CommandOutcome, DecodeError, InvalidStreamId, StoreError, StreamId};

/// Why a command was not carried out. Nothing was written in any of these cases.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError<E: std::error::Error + Send + Sync + 'static> {
    /// The aggregate refused the command.
    #[error("command rejected: {0}")]
    Rejected(#[source] E),
    /// Version conflicts persisted through every retry.
    #[error("stream {stream} kept changing: gave up after {attempts} attempts")]
    Conflict {
        /// The contended stream.
        stream: StreamId,
        /// Attempts made.
        attempts: u32,
        /// The last conflict.
        #[source]
        source: StoreError,
    },
    /// The idempotency key already ran on this aggregate for a request with another
    /// [`Fingerprint`](crate::Fingerprint).
    #[error("the idempotency key already ran on stream {} for another request", first.stream_id)]
    KeyReused {
        /// The outcome of the key's first run (with `replayed` set: not this call's).
        first: CommandOutcome,
    },
    /// A stored event could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A decided event could not be encoded.
    #[error(transparent)]
    Encode(#[from] CodecError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl<E: std::error::Error + Send + Sync + 'static> From<InvalidStreamId> for CommandError<E> {
    fn from(e: InvalidStreamId) -> Self {
        CommandError::Store(StoreError::InvalidStreamId(e))
    }
}
