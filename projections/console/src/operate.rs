//! What the service tells the console about its runners, and the actions it allows.

use std::time::SystemTime;

use serde::Serialize;
use tessera_projections::process::Backlog;
use tessera_projections::Status;

/// The service's runners, rebuilds and restarts, as the projections page shows and
/// drives them. The service implements it over whatever holds its runner handles.
pub trait Operations: Send + Sync + 'static {
    /// Every runner (read models, process managers, relays, workers) and inbox, in the
    /// order to show them.
    fn runners(&self) -> Vec<RunnerInfo>;

    /// Rebuilds started and their progress, finished ones included until the service
    /// forgets them.
    fn rebuilds(&self) -> Vec<RebuildInfo>;

    /// Starts a rebuild of the read model `name` beside the live one.
    fn rebuild(&self, name: &str) -> Result<(), ActionError>;

    /// Starts the failed runner `name` again from its checkpoint
    /// ([`RunnerHandle::restart`](tessera_projections::RunnerHandle::restart)).
    fn restart(&self, name: &str) -> Result<(), ActionError>;
}

/// Why an action was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionError {
    /// Nothing by that name (404).
    Unknown(String),
    /// Not now: a rebuild is running, the runner is not failed... (409).
    Conflict(String),
}

/// One runner or inbox as the projections page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RunnerInfo {
    /// Its name.
    pub name: String,
    /// What it drives (`projection`, `saga`, `relay`, `inbox`, `worker`...).
    pub kind: String,
    /// The context or store whose log it reads.
    pub context: String,
    /// `starting`, `catching_up`, `live`, `rebuilding`, `stopped`, `failed`...
    pub state: String,
    /// Last position applied (or the consumer's position).
    pub checkpoint: String,
    /// Events behind.
    pub lag_events: u64,
    /// Age of the oldest unapplied event, in milliseconds.
    pub lag_ms: u64,
    /// Committed events its store does not show readers yet.
    pub held_back_events: u64,
    /// Events applied since the service started.
    pub applied: u64,
    /// The last error, retried or final.
    pub last_error: Option<String>,
    /// The event it stopped on, when failed.
    pub failed_event: Option<FailedEvent>,
    /// For a process manager: commands waiting to be dispatched.
    pub backlog: Option<BacklogInfo>,
    /// Whether the console offers to rebuild it.
    pub rebuildable: bool,
    /// Whether [`Operations::restart`] can start it again when it failed (a runner's
    /// row from [`RunnerInfo::from_status`] can; an inbox the service cannot restart
    /// should say no, so the page offers no button that cannot work).
    pub restartable: bool,
}

/// The event a runner stopped on.
#[derive(Debug, Clone, Serialize)]
pub struct FailedEvent {
    /// Its position.
    pub position: String,
    /// Its stream.
    pub stream_id: String,
    /// Its version in the stream.
    pub version: u64,
    /// Its type (`None`: the store could not decode it).
    pub event_type: Option<String>,
    /// Why.
    pub error: String,
    /// Attempts made.
    pub attempts: u32,
}

/// A process manager's commands waiting to be dispatched.
#[derive(Debug, Clone, Serialize)]
pub struct BacklogInfo {
    /// Waiting.
    pub waiting: u64,
    /// Of those, waiting for a retry.
    pub retrying: u64,
    /// How long the oldest has waited, in milliseconds.
    pub oldest_ms: u64,
}

impl From<Backlog> for BacklogInfo {
    fn from(b: Backlog) -> Self {
        Self {
            waiting: b.waiting,
            retrying: b.retrying,
            oldest_ms: millis(b.oldest_age(SystemTime::now())),
        }
    }
}

pub(crate) fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl RunnerInfo {
    /// A runner's row from its [`Status`].
    pub fn from_status(kind: &str, context: &str, status: &Status) -> Self {
        Self {
            name: status.name.clone(),
            kind: kind.to_owned(),
            context: context.to_owned(),
            state: status.state.as_str().to_owned(),
            checkpoint: status.checkpoint.to_string(),
            lag_events: status.lag_events,
            lag_ms: millis(status.lag),
            held_back_events: status.held_back.events_behind,
            applied: status.applied,
            last_error: status.last_error.clone(),
            failed_event: status.failure.as_ref().map(|f| FailedEvent {
                position: f.position.to_string(),
                stream_id: f.stream_id.clone(),
                version: f.version,
                event_type: f.event_type.clone(),
                error: f.error.clone(),
                attempts: f.attempts,
            }),
            backlog: status.backlog.map(BacklogInfo::from),
            rebuildable: false,
            restartable: true,
        }
    }

    /// Offers the rebuild button for it.
    #[must_use]
    pub fn rebuildable(mut self) -> Self {
        self.rebuildable = true;
        self
    }
}

/// A rebuild and how far it got.
#[derive(Debug, Clone, Serialize)]
pub struct RebuildInfo {
    /// The read model.
    pub name: String,
    /// Events applied so far.
    pub done: u64,
    /// Events it expects to apply in all (an estimate while it runs).
    pub total: u64,
    /// Whether it finished and took over.
    pub finished: bool,
    /// Why it failed.
    pub error: Option<String>,
}
