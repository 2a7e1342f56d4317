//! An instance of a process manager: its state, status and saga steps, and the pure
//! state machine that applies reactions and dispatch outcomes to it.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::issued::{command_id, deadline_id};
use super::reaction::{End, Planned};
use super::{
    CommandKind, DeadlineRequest, Effects, Input, InstanceId, Issued, ProcessManager, Reaction,
    Status, Step, StepState, Trigger,
};

/// An instance: the process manager's state plus what the framework keeps for it.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Instance<P: ProcessManager> {
    /// Its id.
    pub id: InstanceId,
    /// The process manager's state.
    pub state: P::State,
    /// Its status.
    pub status: Status,
    /// Why it compensated or failed.
    pub reason: Option<String>,
    /// Completed steps, oldest first.
    pub steps: Vec<Step<P::Command>>,
    /// How many changes were recorded (0 for a new instance): the stored row's version.
    pub version: u64,
}

impl<P: ProcessManager> Clone for Instance<P> {
    fn clone(&self) -> Self {
        Self {
            id: self.id.clone(),
            state: self.state.clone(),
            status: self.status,
            reason: self.reason.clone(),
            steps: self.steps.clone(),
            version: self.version,
        }
    }
}

impl<P: ProcessManager> fmt::Debug for Instance<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instance")
            .field("id", &self.id)
            .field("state", &self.state)
            .field("status", &self.status)
            .field("reason", &self.reason)
            .field("steps", &self.steps)
            .field("version", &self.version)
            .finish()
    }
}

impl<P: ProcessManager> Instance<P> {
    /// A new instance with the default state.
    pub fn new(id: InstanceId) -> Self {
        Self {
            id,
            state: P::State::default(),
            status: Status::Pending,
            reason: None,
            steps: Vec::new(),
            version: 0,
        }
    }

    /// Lets `process` react to `input` (triggered by `trigger`) and applies the reaction.
    pub fn handle(&mut self, process: &P, input: Input<'_, P>, trigger: Trigger) -> Effects<P> {
        let reaction = process.react(self, input);
        self.apply(reaction, trigger)
    }

    /// Records that `issued` (a command of this instance) was dispatched.
    pub fn dispatched(&mut self, issued: &Issued<P::Command>) -> Effects<P> {
        let mut effects = Effects::default();
        if let CommandKind::Compensation { step } = issued.kind {
            if let Some(s) = self.steps.get_mut(step) {
                if s.state == StepState::Compensating {
                    s.state = StepState::Compensated;
                    self.version += 1;
                }
            }
            self.settle(&mut effects);
        }
        effects
    }

    /// Records that `issued` could not be dispatched. A compensation ends the instance
    /// [`Status::Failed`] (and discards its other pending commands); any other command
    /// is handed to the process manager as [`Input::CommandFailed`].
    pub fn failed(&mut self, process: &P, issued: &Issued<P::Command>, reason: &str) -> Effects<P> {
        let CommandKind::Compensation { step } = issued.kind else {
            let input = Input::CommandFailed {
                command: &issued.command,
                reason,
            };
            return self.handle(process, input, Trigger::failure(issued.id));
        };
        let name = self
            .steps
            .get(step)
            .map_or("?", |s| s.name.as_str())
            .to_owned();
        for (i, s) in self.steps.iter_mut().enumerate() {
            if i == step {
                s.state = StepState::CompensationFailed(reason.to_owned());
            } else if s.state == StepState::Compensating {
                s.state = StepState::Done;
            }
        }
        self.status = Status::Failed;
        self.reason = Some(format!("compensation of step {name:?} failed: {reason}"));
        self.version += 1;
        Effects {
            cancel_all: true,
            discard_pending: true,
            ..Effects::default()
        }
    }

    fn apply(&mut self, reaction: Reaction<P>, trigger: Trigger) -> Effects<P> {
        let mut effects = Effects::default();
        if let Some(state) = reaction.state {
            self.state = state;
        }
        for planned in reaction.plan {
            match planned {
                Planned::Issue(command) => {
                    self.issue(&mut effects, trigger, command, CommandKind::Forward)
                }
                Planned::Step { name, compensation } => self.steps.push(Step {
                    name,
                    compensation,
                    state: StepState::Done,
                }),
                Planned::Compensate { reason } => {
                    self.start_compensating(&mut effects, trigger, reason)
                }
            }
        }
        match reaction.end {
            Some(End::Complete) if self.status != Status::Compensating => {
                self.status = Status::Completed;
            }
            Some(End::Fail(reason)) => {
                self.status = Status::Failed;
                self.reason = Some(reason);
            }
            _ => {}
        }
        for (key, after, timeout) in reaction.schedule {
            let id = deadline_id(P::NAME, &self.id, &key, trigger);
            effects.schedule.push(DeadlineRequest {
                id,
                key,
                after,
                timeout,
                trace: None,
            });
        }
        effects.cancel = reaction.cancel;
        self.version += 1;
        self.settle(&mut effects);
        effects
    }

    fn start_compensating(&mut self, effects: &mut Effects<P>, trigger: Trigger, reason: String) {
        if self.status == Status::Compensating {
            return;
        }
        self.status = Status::Compensating;
        self.reason = Some(reason);
        let mut undo = Vec::new();
        for (i, step) in self.steps.iter_mut().enumerate().rev() {
            if step.state != StepState::Done {
                continue;
            }
            match &step.compensation {
                Some(c) => {
                    step.state = StepState::Compensating;
                    undo.push((i, c.clone()));
                }
                None => step.state = StepState::Compensated,
            }
        }
        for (step, command) in undo {
            self.issue(
                effects,
                trigger,
                command,
                CommandKind::Compensation { step },
            );
        }
    }

    fn issue(
        &self,
        effects: &mut Effects<P>,
        trigger: Trigger,
        command: P::Command,
        kind: CommandKind,
    ) {
        let index = u32::try_from(effects.commands.len()).unwrap_or(u32::MAX);
        effects.commands.push(Issued {
            id: command_id(P::NAME, &self.id, trigger, index),
            process: P::NAME.to_owned(),
            instance: self.id.clone(),
            trigger,
            index,
            kind,
            command,
            trace: None,
            trace_linked: false,
        });
    }

    /// A compensating instance with nothing left to compensate is completed; an ended
    /// instance has no deadlines.
    fn settle(&mut self, effects: &mut Effects<P>) {
        let open = self
            .steps
            .iter()
            .any(|s| s.state == StepState::Compensating);
        if self.status == Status::Compensating && !open {
            self.status = Status::Completed;
        }
        if self.status.is_ended() {
            effects.schedule.clear();
            effects.cancel_all = true;
        }
    }
}
