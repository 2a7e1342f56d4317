//! What a recorded reaction hands to the runtime: commands with deterministic ids, and
//! deadlines to schedule or cancel.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{InstanceId, ProcessManager};
use crate::trace::TraceContext;
use crate::{CommandOptions, EventId, Metadata};

/// The id of the input that triggered a reaction: an event id, a deadline id, or the id
/// of a command that could not be dispatched. Each (instance, trigger) is handled once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Trigger(pub Uuid);

impl Trigger {
    /// An event of the log.
    pub fn event(id: EventId) -> Self {
        Self(id.0)
    }

    /// A failed command: derived from its id, so reporting the failure twice is one input.
    pub fn failure(command: EventId) -> Self {
        Self(derive(&[b"failed", command.0.as_bytes()]).0)
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Whether a command moves the saga forward or undoes a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandKind {
    /// An ordinary command.
    Forward,
    /// The compensation of the instance's step number `step` (an index into
    /// [`Instance::steps`](super::Instance::steps)).
    Compensation {
        /// The step it undoes.
        step: usize,
    },
}

/// A command issued by an instance, with its deterministic identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Issued<C> {
    /// Derived from (process, instance, trigger, index): the same reaction always gives
    /// the same id. Also the outbox entry's id.
    pub id: EventId,
    /// The process manager's name.
    pub process: String,
    /// The instance that issued it.
    pub instance: InstanceId,
    /// The input it reacted to.
    pub trigger: Trigger,
    /// Its place among the commands of that reaction (0-based).
    pub index: u32,
    /// Forward or compensation.
    pub kind: CommandKind,
    /// The command.
    pub command: C,
    /// The trace context of the event it reacted to: its dispatch continues that trace
    /// (see [`trace`](crate::trace)). Not part of its identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceContext>,
    /// `trace` is that of a deadline's scheduling, which fired later: the dispatch
    /// starts a trace of its own with a link to it rather than continuing it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub trace_linked: bool,
}

impl<C> Issued<C> {
    /// The idempotency key to dispatch it with (its id as text).
    pub fn idempotency_key(&self) -> String {
        self.id.to_string()
    }

    /// Options for [`CommandHandler::handle_with`](crate::CommandHandler::handle_with):
    /// the idempotency key, the instance's correlation id and the trigger as causation.
    /// Dispatching with them makes a re-dispatch land once.
    pub fn options(&self) -> CommandOptions {
        let metadata = Metadata::correlated(correlation_id(&self.process, &self.instance))
            .caused_by(self.trigger.0)
            .with_header("process", self.process.clone())
            .with_header("instance", self.instance.to_string());
        let mut metadata = metadata;
        if let Some(trace) = &self.trace {
            trace.write_to(&mut metadata.headers);
        }
        CommandOptions::idempotent(self.idempotency_key()).with_metadata(metadata)
    }
}

/// A deadline to store: deliver `timeout` to the instance after `after`, unless `key` is
/// cancelled or rescheduled first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadlineRequest<T> {
    /// Derived from (process, instance, key, trigger): the trigger id of its firing.
    pub id: Uuid,
    /// The key it can be cancelled by, unique within the instance.
    pub key: String,
    /// How long from now (when the reaction is recorded).
    pub after: Duration,
    /// What it delivers.
    pub timeout: T,
    /// The trace context of the input that scheduled it: the commands its firing
    /// issues link to that trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceContext>,
}

/// What the runtime must record and do after a reaction, besides storing the instance.
#[derive(Debug)]
pub struct Effects<P: ProcessManager> {
    /// Commands to put in the outbox and dispatch, in order.
    pub commands: Vec<Issued<P::Command>>,
    /// Deadlines to store (replacing any with the same key).
    pub schedule: Vec<DeadlineRequest<P::Timeout>>,
    /// Deadline keys to cancel.
    pub cancel: Vec<String>,
    /// The instance has ended: cancel all its deadlines (and schedule none).
    pub cancel_all: bool,
    /// The instance failed: discard its commands not yet dispatched.
    pub discard_pending: bool,
}

impl<P: ProcessManager> Effects<P> {
    /// Records `trace`, the trace context of the input reacted to, on its commands and
    /// deadlines; `linked`: the input is a deadline that fired (its commands link to
    /// the trace instead of continuing it).
    pub fn traced(&mut self, trace: Option<&TraceContext>, linked: bool) {
        for issued in &mut self.commands {
            issued.trace = trace.cloned();
            issued.trace_linked = linked;
        }
        for deadline in &mut self.schedule {
            deadline.trace = trace.cloned();
        }
    }
}

impl<P: ProcessManager> Default for Effects<P> {
    fn default() -> Self {
        Self {
            commands: Vec::new(),
            schedule: Vec::new(),
            cancel: Vec::new(),
            cancel_all: false,
            discard_pending: false,
        }
    }
}

/// The correlation id every command of one instance carries.
pub fn correlation_id(process: &str, instance: &InstanceId) -> Uuid {
    derive(&[
        b"instance",
        process.as_bytes(),
        instance.as_str().as_bytes(),
    ])
    .0
}

pub(super) fn command_id(
    process: &str,
    instance: &InstanceId,
    trigger: Trigger,
    index: u32,
) -> EventId {
    derive(&[
        b"pm-command",
        process.as_bytes(),
        instance.as_str().as_bytes(),
        trigger.0.as_bytes(),
        &index.to_be_bytes(),
    ])
}

pub(super) fn deadline_id(
    process: &str,
    instance: &InstanceId,
    key: &str,
    trigger: Trigger,
) -> Uuid {
    derive(&[
        b"pm-deadline",
        process.as_bytes(),
        instance.as_str().as_bytes(),
        key.as_bytes(),
        trigger.0.as_bytes(),
    ])
    .0
}

/// A UUID v5 of the parts, each length-prefixed so no two part lists collide.
fn derive(parts: &[&[u8]]) -> EventId {
    let mut name = Vec::with_capacity(parts.iter().map(|p| p.len() + 8).sum());
    for part in parts {
        name.extend_from_slice(&(part.len() as u64).to_be_bytes());
        name.extend_from_slice(part);
    }
    EventId::derived(&name)
}
