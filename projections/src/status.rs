//! Status of a running subscriber: state, checkpoint, head, lag, last error.

use std::time::{Duration, SystemTime};

use tessera_core::{EventId, Position, ReaderLag};

/// What a runner is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not started yet.
    Starting,
    /// Reading history faster than it arrives.
    CatchingUp,
    /// At the head, applying events as they arrive.
    Live,
    /// Building a new version beside the live one.
    Rebuilding,
    /// Stopped on request.
    Stopped,
    /// Stopped on a poison event; see [`Status::failure`].
    Failed,
}

impl State {
    /// Lower-case name for APIs (`"catching_up"`, `"live"`...).
    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::CatchingUp => "catching_up",
            State::Live => "live",
            State::Rebuilding => "rebuilding",
            State::Stopped => "stopped",
            State::Failed => "failed",
        }
    }
}

/// The event a subscriber could not apply, or the store could not decode, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Where it is in the log. For an event the store could not decode (whose position
    /// is not known), the checkpoint the runner could not read past.
    pub position: Position,
    /// Its id (`None` when the store could not decode it).
    pub event_id: Option<EventId>,
    /// Its type (`None` when the store could not decode it).
    pub event_type: Option<String>,
    /// Its stream.
    pub stream_id: String,
    /// Its version in that stream.
    pub version: u64,
    /// The handler's error, or the store's, as text.
    pub error: String,
    /// Attempts made before giving up.
    pub attempts: u32,
}

/// A snapshot of a runner's progress.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// The subscriber's name.
    pub name: String,
    /// What it is doing.
    pub state: State,
    /// Last applied position.
    pub checkpoint: Position,
    /// Newest position visible in the store when last looked at.
    pub head: Option<Position>,
    /// Events between checkpoint and head (exact for the memory store; for PostgreSQL the
    /// difference of `prepare` positions, an upper bound).
    pub lag_events: u64,
    /// Age of the oldest event not yet applied (zero when caught up).
    pub lag: Duration,
    /// Committed events the store does not show readers yet, and the age of the open
    /// transaction holding them back, as of the last refresh (on PostgreSQL a long-open
    /// transaction anywhere on the server delays every reader; the lag above counts only
    /// what readers can see). Nothing behind on stores without that delay.
    pub held_back: ReaderLag,
    /// Events applied by this runner since it started.
    pub applied: u64,
    /// The last error (retried or final).
    pub last_error: Option<String>,
    /// Set when the state is [`State::Failed`].
    pub failure: Option<Failure>,
    /// When the status last changed.
    pub updated_at: SystemTime,
}

impl Status {
    pub(crate) fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            state: State::Starting,
            checkpoint: Position::START,
            head: None,
            lag_events: 0,
            lag: Duration::ZERO,
            held_back: ReaderLag::default(),
            applied: 0,
            last_error: None,
            failure: None,
            updated_at: SystemTime::now(),
        }
    }
}
