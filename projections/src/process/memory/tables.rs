//! The in-memory tables of a process store, how a reaction is recorded in them, and how
//! the records of ended instances are pruned.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::time::SystemTime;

use tessera_core::process::{
    Effects, Input, Instance, InstanceId, Issued, ProcessManager, Status, Trigger,
};
use tessera_core::trace::TraceContext;
use tessera_core::Position;

use super::deadlines::Deadlines;
use super::outbox::Outbox;
use crate::process::{CommandState, HandledInput, InstanceCounts, InstanceRecord, Pruned};

/// An instance and when it last changed.
struct Kept<P: ProcessManager> {
    instance: Instance<P>,
    changed_at: SystemTime,
}

/// Everything a memory process store holds; one lock guards it all.
pub(super) struct Tables<P: ProcessManager> {
    pub(super) checkpoint: Position,
    instances: BTreeMap<InstanceId, Kept<P>>,
    /// The ids of the instances in each status, in order: what a page of one status and
    /// the counts by status read.
    by_status: HashMap<Status, BTreeSet<InstanceId>>,
    /// Ended instances that may still have records to prune, by when they ended.
    ended: BTreeSet<(SystemTime, InstanceId)>,
    /// Each instance's handled triggers, with when each was handled.
    handled: HashMap<InstanceId, HashMap<Trigger, SystemTime>>,
    pub(super) outbox: Outbox<P::Command>,
    /// Each deadline's timeout and the trace context of its scheduling.
    pub(super) deadlines: Deadlines<(P::Timeout, Option<TraceContext>)>,
}

impl<P: ProcessManager> Default for Tables<P> {
    fn default() -> Self {
        Self {
            checkpoint: Position::START,
            instances: BTreeMap::new(),
            by_status: HashMap::new(),
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
        let n = |s| self.by_status.get(&s).map_or(0, |ids| ids.len() as u64);
        backlog.instances = InstanceCounts {
            pending: n(Status::Pending),
            compensating: n(Status::Compensating),
            completed: n(Status::Completed),
            failed: n(Status::Failed),
        };
        (backlog.deadlines_scheduled, backlog.deadlines_due) = self.deadlines.counts(now);
        backlog
    }

    /// Instance `id`.
    pub(super) fn instance(&self, id: &InstanceId) -> Option<&Instance<P>> {
        self.instances.get(id).map(|k| &k.instance)
    }

    /// The instances (of `status`, if given) with ids after `after`, by id, at most
    /// `limit`: read from the ids in order, never from the instances before the page.
    pub(super) fn page(
        &self,
        status: Option<Status>,
        after: Option<&InstanceId>,
        limit: usize,
    ) -> Vec<Instance<P>> {
        let range = (
            after.map_or(Bound::Unbounded, Bound::Excluded),
            Bound::Unbounded,
        );
        match status {
            None => self
                .instances
                .range::<InstanceId, _>(range)
                .take(limit)
                .map(|(_, k)| k.instance.clone())
                .collect(),
            Some(s) => self
                .by_status
                .get(&s)
                .into_iter()
                .flat_map(|ids| ids.range::<InstanceId, _>(range))
                .take(limit)
                .filter_map(|id| self.instance(id).cloned())
                .collect(),
        }
    }

    /// What is kept of instance `id` beside its state: its commands, deadlines and
    /// handled inputs.
    pub(super) fn record_of(&self, id: &InstanceId) -> Option<InstanceRecord<P::Command>> {
        self.instances.get(id)?;
        let mut handled: Vec<HandledInput> = self
            .handled
            .get(id)
            .into_iter()
            .flatten()
            .map(|(trigger, &handled_at)| HandledInput {
                trigger_id: trigger.0,
                handled_at,
            })
            .collect();
        handled.sort_by_key(|h| (h.handled_at, h.trigger_id));
        Some(InstanceRecord {
            commands: self.outbox.of_instance(id),
            deadlines: self.deadlines.of_instance(id),
            handled,
        })
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
        if self
            .handled
            .get(id)
            .is_some_and(|h| h.contains_key(&trigger))
        {
            return;
        }
        let mut instance = match self.instance(id) {
            Some(i) => i.clone(),
            None if start => Instance::new(id.clone()),
            None => return,
        };
        let mut effects = instance.handle(process, input, trigger);
        effects.traced(trace.map(|t| &t.0), trace.is_some_and(|t| t.1));
        let handled = self.handled.entry(id.clone()).or_default();
        handled.insert(trigger, now);
        self.record(instance, effects, now);
    }

    /// Marks `issued` dispatched, if still pending (clearing the error of an earlier
    /// attempt, as PostgreSQL does), and lets its instance know.
    pub(super) fn dispatched(&mut self, issued: &Issued<P::Command>, now: SystemTime) {
        let Some(entry) = self.outbox.pending_mut(issued.id) else {
            return;
        };
        entry.attempts += 1;
        entry.last_error = None;
        self.outbox.settle(issued.id, CommandState::Dispatched, now);
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
        let old_status = old.map(|k| k.instance.status);
        if old_status != Some(instance.status) {
            if let Some(ids) = old_status.and_then(|s| self.by_status.get_mut(&s)) {
                ids.remove(&id);
            }
            let ids = self.by_status.entry(instance.status).or_default();
            ids.insert(id.clone());
        }
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
