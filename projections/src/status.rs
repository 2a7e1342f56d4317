//! Status of a running subscriber: state, checkpoint, head, lag, last error, and for a
//! process manager the backlog of commands waiting to be dispatched.

use std::time::{Duration, SystemTime};

use tessera_core::{EventFilter, EventId, EventReader, Position, ReadAll, ReaderLag, StoreError};

use crate::process::Backlog;

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
    /// Events between checkpoint and head: 0 when no event the subscriber wants lies
    /// after its checkpoint, else the difference of `prepare` positions (at least 1; exact
    /// for an unfiltered subscriber on the memory store, an upper bound otherwise). See
    /// [`Lag`].
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
    /// For a process manager, what waits in its outbox beside the lag above: commands
    /// issued and not dispatched yet, how many of them wait for a retry, and when the
    /// oldest was issued ([`Backlog::oldest_age`]). A process manager can be caught up
    /// with the log (lag 0) while its commands queue. Filled by its worker
    /// ([`WorkerHandle::with_backlog`](crate::process::WorkerHandle::with_backlog));
    /// `None` for other subscribers, and when not measured. Show it only when present.
    pub backlog: Option<Backlog>,
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
            backlog: None,
            updated_at: SystemTime::now(),
        }
    }
}

/// How far a subscriber at a checkpoint trails what readers of its store can see: the
/// head and lag figures of [`Status`], which the runner refreshes with
/// [`Lag::measure`]. A tool without a running runner (a status command reading stored
/// checkpoints) measures the same way, so both report the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lag {
    /// Newest position readers can see (`None`: the log is empty).
    pub head: Option<Position>,
    /// 0 when no event the subscriber wants lies after its checkpoint (events it does
    /// not want are not lag); otherwise the difference of `prepare` positions between
    /// the head and the checkpoint, at least 1 (exact for an unfiltered subscriber on the
    /// memory store, an upper bound otherwise).
    pub events: u64,
    /// Age of the oldest wanted event after the checkpoint (zero when caught up).
    pub age: Duration,
}

impl Lag {
    /// Reads the head of `store`, then the oldest event passing `filter` after
    /// `checkpoint`. The head is read first, so a wanted event at or before it is seen
    /// by the read that follows. Two reads, whatever the distance: the figure is cheap
    /// enough for every status refresh.
    pub async fn measure<S: EventReader>(
        store: &S,
        checkpoint: Position,
        filter: EventFilter,
    ) -> Result<Self, StoreError> {
        // One after another: the head first, so nothing wanted before it is missed.
        let head = store.head().await?;
        let probe = ReadAll::after(checkpoint, 1).filter(filter);
        let pending = store.read_all(probe).await?;
        Ok(match pending.first() {
            None => Self {
                head,
                events: 0,
                age: Duration::ZERO,
            },
            Some(oldest) => {
                // The oldest wanted event may have landed after the head was read.
                let to = head.unwrap_or(checkpoint).max(oldest.position);
                Self {
                    head,
                    events: to.prepare.saturating_sub(checkpoint.prepare).max(1),
                    age: SystemTime::now()
                        .duration_since(oldest.recorded_at)
                        .unwrap_or(Duration::ZERO),
                }
            }
        })
    }

    /// Whether every wanted event up to the head is applied.
    pub fn caught_up(&self) -> bool {
        self.events == 0
    }
}
