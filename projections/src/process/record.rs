//! What a process store shows of one instance beside its state, for operators
//! ([`ProcessStore::instance_record`](super::ProcessStore::instance_record)), and the
//! limit of a page of instances
//! ([`ProcessStore::instance_page`](super::ProcessStore::instance_page)).

use std::time::SystemTime;

use tessera_core::BoxError;
use uuid::Uuid;

use super::{Deadline, OutboxEntry};

/// What a store holds about one instance beside its state (which is its
/// [`Instance`](tessera_core::process::Instance)): the commands it issued, its deadlines
/// and the inputs it handled, each until [retention](crate::process#retention) prunes
/// them once the instance has ended.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceRecord<C> {
    /// Every command in its outbox, in any state, in the order it issued them.
    pub commands: Vec<CommandRecord<C>>,
    /// Its deadlines (scheduled, fired or cancelled), by due time (then id).
    pub deadlines: Vec<Deadline>,
    /// The inputs it handled (events of the log and deadlines that fired), oldest first
    /// (then by trigger id). A failed command handed to it is not one: it shows in
    /// [`commands`](Self::commands).
    pub handled: Vec<HandledInput>,
}

/// A command of an instance's outbox and where it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandRecord<C> {
    /// The command, its attempts so far, when it may next be tried and why its last
    /// attempt failed (cleared once it is dispatched).
    pub entry: OutboxEntry<C>,
    /// Where it stands.
    pub state: CommandState,
}

/// Where a command of the outbox stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandState {
    /// Waiting to be dispatched, or for a retry after a transient failure.
    Pending,
    /// Dispatched (its target accepted it).
    Dispatched,
    /// Failed for good (rejected, or out of attempts); its instance was told.
    Failed,
    /// Never dispatched: its instance compensated or failed first.
    Discarded,
}

impl CommandState {
    /// Lower-case name (`"pending"`, `"dispatched"`, `"failed"`, `"discarded"`), as
    /// stored in the PostgreSQL outbox's `state` column.
    pub fn as_str(self) -> &'static str {
        match self {
            CommandState::Pending => "pending",
            CommandState::Dispatched => "dispatched",
            CommandState::Failed => "failed",
            CommandState::Discarded => "discarded",
        }
    }

    #[cfg(feature = "postgres")]
    pub(crate) fn parse(s: &str) -> Result<Self, BoxError> {
        Ok(match s {
            "pending" => CommandState::Pending,
            "dispatched" => CommandState::Dispatched,
            "failed" => CommandState::Failed,
            "discarded" => CommandState::Discarded,
            other => return Err(format!("unknown outbox state {other:?}").into()),
        })
    }
}

/// An input an instance handled: the trigger's id (the event's id, or the deadline's)
/// and when the store recorded its reaction (on the store's [`Clock`](super::Clock)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandledInput {
    /// The trigger's id: the event's id, or the id of the deadline that fired.
    pub trigger_id: Uuid,
    /// When its reaction was recorded.
    pub handled_at: SystemTime,
}

/// `limit` if a page may hold that many instances: at least one.
pub(crate) fn page_limit(limit: usize) -> Result<usize, BoxError> {
    if limit == 0 {
        return Err("a page of instances needs a limit of at least 1, not 0".into());
    }
    Ok(limit)
}
