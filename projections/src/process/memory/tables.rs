//! The in-memory tables of a process store, and how a reaction is recorded in them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::SystemTime;

use tessera_core::process::{
    Effects, Input, Instance, InstanceId, Issued, ProcessManager, Trigger,
};
use tessera_core::{EventId, Position};

use crate::process::{Deadline, DeadlineState, OutboxEntry};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum EntryState {
    Pending,
    Dispatched,
    Failed,
    Discarded,
}

pub(super) struct Entry<C> {
    pub(super) view: OutboxEntry<C>,
    pub(super) state: EntryState,
}

pub(super) struct StoredDeadline<T> {
    pub(super) view: Deadline,
    pub(super) timeout: T,
}

/// Everything a memory process store holds; one lock guards it all.
pub(super) struct Tables<P: ProcessManager> {
    pub(super) checkpoint: Position,
    pub(super) instances: BTreeMap<InstanceId, Instance<P>>,
    handled: HashSet<(InstanceId, Trigger)>,
    pub(super) outbox: BTreeMap<u64, Entry<P::Command>>,
    outbox_ids: HashMap<EventId, u64>,
    pub(super) deadlines: Vec<StoredDeadline<P::Timeout>>,
}

impl<P: ProcessManager> Default for Tables<P> {
    fn default() -> Self {
        Self {
            checkpoint: Position::START,
            instances: BTreeMap::new(),
            handled: HashSet::new(),
            outbox: BTreeMap::new(),
            outbox_ids: HashMap::new(),
            deadlines: Vec::new(),
        }
    }
}

impl<P: ProcessManager> Tables<P> {
    /// Lets instance `id` react to `input` once per `trigger`, creating it if `start`.
    pub(super) fn react(
        &mut self,
        process: &P,
        (id, start): (&InstanceId, bool),
        input: Input<'_, P>,
        trigger: Trigger,
        now: SystemTime,
    ) {
        if self.handled.contains(&(id.clone(), trigger)) {
            return;
        }
        let mut instance = match self.instances.get(id) {
            Some(i) => i.clone(),
            None if start => Instance::new(id.clone()),
            None => return,
        };
        let effects = instance.handle(process, input, trigger);
        self.handled.insert((id.clone(), trigger));
        self.record(instance, effects, now);
    }

    /// The oldest pending command of each instance not in `busy`, if due at `now`.
    pub(super) fn due(
        &self,
        now: SystemTime,
        limit: usize,
        busy: &[InstanceId],
    ) -> Vec<OutboxEntry<P::Command>> {
        let mut heads = HashSet::new();
        let pending = self
            .outbox
            .values()
            .filter(|e| e.state == EntryState::Pending);
        pending
            .filter(|e| heads.insert(&e.view.issued.instance))
            .filter(|e| e.view.not_before <= now && !busy.contains(&e.view.issued.instance))
            .take(limit)
            .map(|e| e.view.clone())
            .collect()
    }

    pub(super) fn entry_mut(&mut self, id: EventId) -> Option<&mut Entry<P::Command>> {
        let seq = self.outbox_ids.get(&id)?;
        self.outbox.get_mut(seq)
    }

    /// Stores the instance and the effects of its change.
    pub(super) fn record(&mut self, instance: Instance<P>, effects: Effects<P>, now: SystemTime) {
        let id = instance.id.clone();
        if effects.discard_pending {
            for e in self.outbox.values_mut() {
                if e.view.issued.instance == id && e.state == EntryState::Pending {
                    e.state = EntryState::Discarded;
                }
            }
        }
        for issued in effects.commands {
            self.enqueue(issued, now);
        }
        for key in &effects.cancel {
            self.cancel(&id, Some(key));
        }
        if effects.cancel_all {
            self.cancel(&id, None);
        }
        for request in effects.schedule {
            self.cancel(&id, Some(&request.key));
            self.deadlines.push(StoredDeadline {
                view: Deadline {
                    id: request.id,
                    instance: id.clone(),
                    key: request.key,
                    due_at: crate::process::due_at(now, request.after),
                    state: DeadlineState::Scheduled,
                },
                timeout: request.timeout,
            });
        }
        self.instances.insert(id, instance);
    }

    fn enqueue(&mut self, issued: Issued<P::Command>, now: SystemTime) {
        if self.outbox_ids.contains_key(&issued.id) {
            return;
        }
        let seq = self.outbox.last_key_value().map_or(1, |(k, _)| k + 1);
        self.outbox_ids.insert(issued.id, seq);
        let view = OutboxEntry {
            issued,
            attempts: 0,
            not_before: now,
            last_error: None,
        };
        let state = EntryState::Pending;
        self.outbox.insert(seq, Entry { view, state });
    }

    /// Cancels the instance's scheduled deadline `key` (`None`: all of them).
    fn cancel(&mut self, id: &InstanceId, key: Option<&str>) {
        for d in &mut self.deadlines {
            let v = &mut d.view;
            if &v.instance == id
                && v.state == DeadlineState::Scheduled
                && key.is_none_or(|k| k == v.key)
            {
                v.state = DeadlineState::Cancelled;
            }
        }
    }
}
