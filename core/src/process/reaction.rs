//! What a process manager decides: the [`Reaction`] builder.

use std::time::Duration;

use super::ProcessManager;

/// What one input makes an instance do. Built fluently; every part is optional.
///
/// Commands are issued in the order the calls are made; [`Reaction::compensate`] puts
/// the compensations of the completed steps, newest first, where it is called.
#[derive(Debug)]
pub struct Reaction<P: ProcessManager> {
    pub(super) state: Option<P::State>,
    pub(super) plan: Vec<Planned<P::Command>>,
    pub(super) schedule: Vec<(String, Duration, P::Timeout)>,
    pub(super) cancel: Vec<String>,
    pub(super) end: Option<End>,
}

/// One planned effect, in call order.
#[derive(Debug)]
pub(super) enum Planned<C> {
    Issue(C),
    Step {
        name: String,
        compensation: Option<C>,
    },
    Compensate {
        reason: String,
    },
}

/// How the reaction ends the instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum End {
    Complete,
    Fail(String),
}

impl<P: ProcessManager> Default for Reaction<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: ProcessManager> Reaction<P> {
    /// Nothing: the state stays, no command, no deadline.
    pub fn new() -> Self {
        Self {
            state: None,
            plan: Vec::new(),
            schedule: Vec::new(),
            cancel: Vec::new(),
            end: None,
        }
    }

    /// Replaces the instance's state.
    #[must_use]
    pub fn state(mut self, state: P::State) -> Self {
        self.state = Some(state);
        self
    }

    /// Issues a command.
    #[must_use]
    pub fn issue(mut self, command: P::Command) -> Self {
        self.plan.push(Planned::Issue(command));
        self
    }

    /// Records that saga step `name` has completed, with the command that undoes it
    /// (`None`: nothing to undo). [`Reaction::compensate`] issues the compensations of
    /// completed steps in reverse order of completion.
    #[must_use]
    pub fn completed_step(
        mut self,
        name: impl Into<String>,
        compensation: Option<P::Command>,
    ) -> Self {
        self.plan.push(Planned::Step {
            name: name.into(),
            compensation,
        });
        self
    }

    /// Starts compensating: the instance turns [`Compensating`](super::Status::Compensating)
    /// and the compensations of its completed steps (those not yet compensated) are
    /// issued here, newest step first. The instance is
    /// [`Completed`](super::Status::Completed) once all were dispatched, or
    /// [`Failed`](super::Status::Failed) if one could not be. `reason` is kept in its
    /// status. Has no effect on an instance that is already compensating.
    #[must_use]
    pub fn compensate(mut self, reason: impl Into<String>) -> Self {
        self.plan.push(Planned::Compensate {
            reason: reason.into(),
        });
        self
    }

    /// Schedules deadline `key`: if it is not cancelled within `after`, the instance
    /// receives [`Input::Timeout`](super::Input::Timeout) with `timeout`. Scheduling a
    /// key that is already scheduled replaces it.
    #[must_use]
    pub fn schedule(
        mut self,
        key: impl Into<String>,
        after: Duration,
        timeout: P::Timeout,
    ) -> Self {
        self.schedule.push((key.into(), after, timeout));
        self
    }

    /// Cancels deadline `key` (nothing happens if it is not scheduled).
    #[must_use]
    pub fn cancel(mut self, key: impl Into<String>) -> Self {
        self.cancel.push(key.into());
        self
    }

    /// Ends the instance as [`Completed`](super::Status::Completed) (unless compensations
    /// are still being dispatched: then it completes when they are).
    #[must_use]
    pub fn complete(mut self) -> Self {
        self.end = Some(End::Complete);
        self
    }

    /// Ends the instance as [`Failed`](super::Status::Failed) with `reason`.
    #[must_use]
    pub fn fail(mut self, reason: impl Into<String>) -> Self {
        self.end = Some(End::Fail(reason.into()));
        self
    }
}
