//! Given/when/then tests for process managers, without a store or a runtime.

mod outcome;

pub use outcome::ProcessOutcome;

use std::collections::BTreeMap;

use uuid::Uuid;

use super::{Correlation, Effects, Input, Instance, InstanceId, Issued, ProcessManager, Trigger};

/// A test of one reaction: given past events (their commands all dispatched), when an
/// event or a timeout, then commands, deadlines and status. See the
/// [module docs](super) for an example.
pub struct ProcessTest<P: ProcessManager> {
    pub(super) process: P,
    pub(super) instances: BTreeMap<InstanceId, Instance<P>>,
    inputs: u128,
}

impl<P: ProcessManager> ProcessTest<P> {
    /// A test of `process` with no instance yet.
    pub fn new(process: P) -> Self {
        Self {
            process,
            instances: BTreeMap::new(),
            inputs: 0,
        }
    }

    /// Events already handled; every command they issued counts as dispatched.
    #[must_use]
    pub fn given(mut self, events: impl IntoIterator<Item = P::Event>) -> Self {
        for event in events {
            let (id, effects) = self.deliver(&event);
            if let Some(id) = id {
                self.dispatch_all(&id, &effects.commands);
            }
        }
        self
    }

    /// Delivers `event` as the log would.
    pub fn when(mut self, event: P::Event) -> ProcessOutcome<P> {
        let (instance, effects) = self.deliver(&event);
        ProcessOutcome {
            test: self,
            instance,
            effects,
        }
    }

    /// Fires a deadline of `instance` with `timeout`.
    ///
    /// # Panics
    /// When the instance does not exist.
    pub fn when_timeout(
        mut self,
        instance: impl Into<InstanceId>,
        timeout: P::Timeout,
    ) -> ProcessOutcome<P> {
        let id = instance.into();
        let trigger = self.next_trigger();
        let Some(saga) = self.instances.get_mut(&id) else {
            panic!("no instance {id} to deliver a timeout to");
        };
        let effects = saga.handle(&self.process, Input::Timeout(&timeout), trigger);
        ProcessOutcome {
            test: self,
            instance: Some(id),
            effects,
        }
    }

    /// The instance `id`, if it exists.
    pub fn instance(&self, id: impl Into<InstanceId>) -> Option<&Instance<P>> {
        self.instances.get(&id.into())
    }

    fn next_trigger(&mut self) -> Trigger {
        self.inputs += 1;
        Trigger(Uuid::from_u128(self.inputs))
    }

    fn deliver(&mut self, event: &P::Event) -> (Option<InstanceId>, Effects<P>) {
        let trigger = self.next_trigger();
        let (id, start) = match self.process.correlate(event) {
            Correlation::Start(id) => (id, true),
            Correlation::Continue(id) => (id, false),
            Correlation::Ignore => return (None, Effects::default()),
        };
        if !start && !self.instances.contains_key(&id) {
            return (None, Effects::default());
        }
        let saga = self
            .instances
            .entry(id.clone())
            .or_insert_with(|| Instance::new(id.clone()));
        (
            Some(id),
            saga.handle(&self.process, Input::Event(event), trigger),
        )
    }

    pub(super) fn dispatch_all(
        &mut self,
        id: &InstanceId,
        commands: &[Issued<P::Command>],
    ) -> Effects<P> {
        let mut last = Effects::default();
        if let Some(saga) = self.instances.get_mut(id) {
            for issued in commands {
                last = saga.dispatched(issued);
            }
        }
        last
    }
}
