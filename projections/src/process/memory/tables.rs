//! The in-memory tables of a process store, how a reaction is recorded in them, and how
//! the records of ended instances are pruned.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::SystemTime;

use tessera_core::process::{
    Effects, Input, Instance, InstanceId, Issued, ProcessManager, Trigger,
};
use tessera_core::trace::TraceContext;
use tessera_core::Position;

use super::deadlines::Deadlines;
use super::outbox::{EntryState, Outbox};
use crate::process::Pruned;

/// An instance and when it last changed.
struct Kept<P: ProcessManager> {
    instance: Instance<P>,
    changed_at: SystemTime,
}

/// Everything a memory process store holds; one lock guards it all.
pub(super) struct Tables<P: ProcessManager> {
    pub(super) checkpoint: Position,
    instances: BTreeMap<InstanceId, Kept<P>>,
    /// Ended instances that may still have records to prune, by when they ended.
    ended: BTreeSet<(SystemTime, InstanceId)>,
    handled: HashMap<InstanceId, HashSet<Trigger>>,
    pub(super) outbox: Outbox<P::Command>,
    /// Each deadline's timeout and the trace context of its scheduling.
    pub(super) deadlines: Deadlines<(P::Timeout, Option<TraceContext>)>,
}

impl<P: ProcessManager> Default for Tables<P> {
    fn default() -> Self {
        Self {
            checkpoint: Position::START,
            instances: BTreeMap::new(),
            ended: BTreeSet::new(),
            handled: HashMap::new(),
            outbox: Outbox::default(),
            deadlines: Deadlines::default(),
        }
    }
}

impl<P: ProcessManager> Tables<P> {
    /// The outbox's backlog, the instances by status and the deadlines scheduled and
    /// due at `now`.
    pub(super) fn backlog(&self, now: SystemTime) -> crate::process::Backlog {
        let mut backlog = self.outbox.backlog();
        for kept in self.instances.values() {
            backlog.instances.add(kept.instance.status);
        }
        (backlog.deadlines_scheduled, backlog.deadlines_due) = self.deadlines.counts(now);
        backlog
    }

    /// Instance `id`.
    pub(super) fn instance(&self, id: &InstanceId) -> Option<&Instance<P>> {
        self.instances.get(id).map(|k| &k.instance)
    }

    /// Every instance, by id.
    pub(super) fn instances(&self) -> impl Iterator<Item = &Instance<P>> {
        self.instances.values().map(|k| &k.instance)
    }

    /// Lets instance `id` react to `input` once per `trigger`, creating it if `start`.
    pub(super) fn react(
        &mut self,
        process: &P,
        (id, start): (&InstanceId, bool),
        input: Input<'_, P>,
        (trigger, trace): (Trigger, Option<&crate::process::Traced>),
        now: SystemTime,
    ) {
        if self.handled.get(id).is_some_and(|h| h.contains(&trigger)) {
            return;
        }
        let mut instance = match self.instance(id) {
            Some(i) => i.clone(),
            None if start => Instance::new(id.clone()),
            None => return,
        };
        let mut effects = instance.handle(process, input, trigger);
        effects.traced(trace.map(|t| &t.0), trace.is_some_and(|t| t.1));
        self.handled.entry(id.clone()).or_default().insert(trigger);
        self.record(instance, effects, now);
    }

    /// Marks `issued` dispatched, if still pending, and lets its instance know.
    pub(super) fn dispatched(&mut self, issued: &Issued<P::Command>, now: SystemTime) {
        let Some(entry) = self.outbox.pending_mut(issued.id) else {
            return;
        };
        entry.attempts += 1;
        self.outbox.settle(issued.id, EntryState::Dispatched, now);
        if let Some(mut instance) = self.instance(&issued.instance).cloned() {
            let effects = instance.dispatched(issued);
            self.record(instance, effects, now);
        }
    }

    /// Stores the instance and the effects of its change.
    pub(super) fn record(&mut self, instance: Instance<P>, effects: Effects<P>, now: SystemTime) {
        let id = instance.id.clone();
        if effects.discard_pending {
            self.outbox.discard_pending(&id, now);
        }
        for issued in effects.commands {
            self.outbox.enqueue(issued, now);
        }
        for key in &effects.cancel {
            self.deadlines.cancel(&id, Some(key), now);
        }
        if effects.cancel_all {
            self.deadlines.cancel(&id, None, now);
        }
        for request in effects.schedule {
            let due_at = crate::process::due_at(now, request.after);
            let what = (request.id, &id, request.key);
            let stored = (request.timeout, request.trace);
            self.deadlines.schedule(what, due_at, stored, now);
        }
        self.store(instance, now);
    }

    /// Keeps the instance, noting when it changed and, once ended, when it ended.
    fn store(&mut self, instance: Instance<P>, now: SystemTime) {
        let id = instance.id.clone();
        let old = self.instances.get(&id);
        let same = old.is_some_and(|k| {
            (k.instance.version, k.instance.status) == (instance.version, instance.status)
        });
        let changed_at = match old {
            Some(k) if same => k.changed_at,
            Some(k) => {
                self.ended.remove(&(k.changed_at, id.clone()));
                now
            }
            None => now,
        };
        if instance.status.is_ended() && !same {
            self.ended.insert((changed_at, id.clone()));
        }
        let kept = Kept {
            instance,
            changed_at,
        };
        self.instances.insert(id, kept);
    }

    /// Prunes the records of instances ended before `before`, oldest ended first: their
    /// handled triggers, and their commands and deadlines settled before `before`. An
    /// instance with nothing left leaves the `ended` index; one with a pending command
    /// or a record settled since stays for a later round. Stops once a table gave
    /// `limit` rows or `limit` instances were visited.
    pub(super) fn prune(&mut self, before: SystemTime, limit: usize) -> Pruned {
        let limit = limit.max(1);
        let oldest: Vec<(SystemTime, InstanceId)> = self
            .ended
            .range(..(before, InstanceId::from("")))
            .take(limit)
            .cloned()
            .collect();
        let mut pruned = Pruned::default();
        for (ended_at, id) in oldest {
            if pruned.reached(limit) {
                break;
            }
            pruned.handled += self.handled.remove(&id).map_or(0, |h| h.len());
            let (outbox, commands_left) = self.outbox.prune(&id, before);
            let (deadlines, deadlines_left) = self.deadlines.prune(&id, before);
            pruned.outbox += outbox;
            pruned.deadlines += deadlines;
            if !commands_left && !deadlines_left {
                self.ended.remove(&(ended_at, id));
            }
        }
        pruned
    }
}
