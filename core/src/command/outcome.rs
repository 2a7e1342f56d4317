//! What a command did, and the state a command decides on.

use crate::{Position, StreamId, Version};

/// What a handled command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutcome {
    /// The aggregate's stream.
    pub stream_id: StreamId,
    /// The stream's version after the command (`None`: the stream still has no event).
    pub version: Option<Version>,
    /// Global position of the last event written; wait for read models to reach it for
    /// read-your-writes. `None` when the command recorded nothing.
    pub position: Option<Position>,
    /// How many events the command recorded.
    pub events: usize,
    /// `true` when an earlier run of the same idempotent command had already landed and
    /// this is its outcome.
    pub replayed: bool,
}

/// State loaded from a stream: snapshot plus tail.
#[derive(Debug)]
pub struct Loaded<A> {
    /// The folded state.
    pub state: A,
    /// The stream's version (`None`: no event).
    pub version: Option<Version>,
    /// Events recorded after the last snapshot (all of them, without one).
    pub events_since_snapshot: u64,
}
