//! The outcome of a process-manager test, with assertions that chain.

use std::time::Duration;

use super::ProcessTest;
use crate::process::{
    DeadlineRequest, Effects, Instance, InstanceId, Issued, ProcessManager, Status,
};

/// The reaction under test, with assertions that chain.
pub struct ProcessOutcome<P: ProcessManager> {
    pub(super) test: ProcessTest<P>,
    pub(super) instance: Option<InstanceId>,
    pub(super) effects: Effects<P>,
}

impl<P: ProcessManager> ProcessOutcome<P> {
    /// The commands issued, with their ids.
    pub fn issued(&self) -> &[Issued<P::Command>] {
        &self.effects.commands
    }

    /// The deadlines scheduled.
    pub fn scheduled(&self) -> &[DeadlineRequest<P::Timeout>] {
        &self.effects.schedule
    }

    /// The instance reacted (`None`: the event reached no instance).
    pub fn instance(&self) -> Option<&Instance<P>> {
        self.test.instances.get(self.instance.as_ref()?)
    }

    /// Asserts that exactly these commands were issued, in this order.
    ///
    /// # Panics
    /// When they differ.
    pub fn then_commands(self, expected: impl IntoIterator<Item = P::Command>) -> Self {
        let expected: Vec<P::Command> = expected.into_iter().collect();
        let issued: Vec<P::Command> = self
            .effects
            .commands
            .iter()
            .map(|i| i.command.clone())
            .collect();
        assert_eq!(issued, expected, "issued commands differ from the expected");
        self
    }

    /// Asserts that exactly these deadlines (key, delay) were scheduled, in this order.
    ///
    /// # Panics
    /// When they differ.
    pub fn then_scheduled<'k>(
        self,
        expected: impl IntoIterator<Item = (&'k str, Duration)>,
    ) -> Self {
        let expected: Vec<(String, Duration)> = expected
            .into_iter()
            .map(|(k, d)| (k.to_owned(), d))
            .collect();
        let scheduled: Vec<(String, Duration)> = self
            .effects
            .schedule
            .iter()
            .map(|d| (d.key.clone(), d.after))
            .collect();
        assert_eq!(
            scheduled, expected,
            "scheduled deadlines differ from the expected"
        );
        self
    }

    /// Asserts that exactly these deadline keys were cancelled (the instance ending
    /// cancels all of them: check that with [`then_status`](Self::then_status)).
    ///
    /// # Panics
    /// When they differ.
    pub fn then_cancelled<'k>(self, expected: impl IntoIterator<Item = &'k str>) -> Self {
        let expected: Vec<&str> = expected.into_iter().collect();
        assert_eq!(
            self.effects.cancel, expected,
            "cancelled deadlines differ from the expected"
        );
        self
    }

    /// Asserts the instance's status.
    ///
    /// # Panics
    /// When it differs, or no instance reacted.
    pub fn then_status(self, expected: Status) -> Self {
        let instance = self.instance().expect("the input reached no instance");
        assert_eq!(
            instance.status, expected,
            "status of instance {}",
            instance.id
        );
        self
    }

    /// Asserts the instance's reason (why it compensated or failed).
    ///
    /// # Panics
    /// When it differs, or no instance reacted.
    pub fn then_reason(self, expected: &str) -> Self {
        let instance = self.instance().expect("the input reached no instance");
        assert_eq!(
            instance.reason.as_deref(),
            Some(expected),
            "reason of instance {}",
            instance.id
        );
        self
    }

    /// Every issued command is dispatched successfully; the outcome is then what that
    /// did (compensations done complete a compensating instance).
    #[must_use]
    pub fn dispatched(mut self) -> Self {
        let commands = std::mem::take(&mut self.effects.commands);
        if let Some(id) = &self.instance {
            self.effects = self.test.dispatch_all(id, &commands);
        }
        self
    }

    /// The commands issued before `command` are dispatched, and `command` fails for
    /// good with `reason` (after the runtime's retries); the outcome is what that did.
    ///
    /// # Panics
    /// When `command` was not issued.
    #[must_use]
    pub fn dispatch_fails(mut self, command: &P::Command, reason: &str) -> Self {
        let commands = std::mem::take(&mut self.effects.commands);
        let at = commands
            .iter()
            .position(|i| &i.command == command)
            .unwrap_or_else(|| panic!("{command:?} was not issued"));
        let id = self
            .instance
            .clone()
            .expect("the input reached no instance");
        self.test.dispatch_all(&id, &commands[..at]);
        let saga = self.test.instances.get_mut(&id).expect("instance exists");
        self.effects = saga.failed(&self.test.process, &commands[at], reason);
        self
    }

    /// Continues the test from here.
    pub fn and(self) -> ProcessTest<P> {
        self.test
    }
}
