//! The memory store's outbox: commands by issue order, with an index of the pending ones
//! (what the worker claims) and of each instance's (what discarding and pruning touch),
//! so neither walks every command ever issued.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::SystemTime;

use tessera_core::process::{InstanceId, Issued};
use tessera_core::EventId;

use crate::process::{Backlog, CommandRecord, CommandState, Due, OutboxEntry};

struct Entry<C> {
    view: OutboxEntry<C>,
    state: CommandState,
    /// When it left [`CommandState::Pending`].
    settled_at: Option<SystemTime>,
    /// When it was queued.
    issued_at: SystemTime,
}

pub(super) struct Outbox<C> {
    entries: BTreeMap<u64, Entry<C>>,
    ids: HashMap<EventId, u64>,
    /// Pending entries, oldest first.
    pending: BTreeSet<u64>,
    /// Each instance's entries, in any state.
    of_instance: HashMap<InstanceId, BTreeSet<u64>>,
    next: u64,
}

impl<C> Default for Outbox<C> {
    fn default() -> Self {
        Self {
            entries: BTreeMap::new(),
            ids: HashMap::new(),
            pending: BTreeSet::new(),
            of_instance: HashMap::new(),
            next: 1,
        }
    }
}

impl<C: Clone> Outbox<C> {
    /// Queues `issued`, once per command id.
    pub(super) fn enqueue(&mut self, issued: Issued<C>, now: SystemTime) {
        if self.ids.contains_key(&issued.id) {
            return;
        }
        let seq = self.next;
        self.next += 1;
        self.ids.insert(issued.id, seq);
        self.pending.insert(seq);
        let instance = issued.instance.clone();
        self.of_instance.entry(instance).or_default().insert(seq);
        let view = OutboxEntry {
            issued,
            attempts: 0,
            not_before: now,
            last_error: None,
        };
        let (state, settled_at) = (CommandState::Pending, None);
        self.entries.insert(
            seq,
            Entry {
                view,
                state,
                settled_at,
                issued_at: now,
            },
        );
    }

    fn views(&self) -> impl Iterator<Item = &OutboxEntry<C>> {
        self.pending
            .iter()
            .filter_map(|s| self.entries.get(s))
            .map(|e| &e.view)
    }

    /// How many commands are pending, how many of them were retried, and when the
    /// oldest was queued.
    pub(super) fn backlog(&self) -> Backlog {
        let oldest = self
            .pending
            .first()
            .and_then(|s| self.entries.get(s))
            .map(|e| e.issued_at);
        Backlog {
            waiting: self.waiting(),
            retrying: self.views().filter(|e| e.attempts > 0).count() as u64,
            oldest,
            ..Backlog::default()
        }
    }

    /// How many commands are pending.
    pub(super) fn waiting(&self) -> u64 {
        self.pending.len() as u64
    }

    /// Pending commands, oldest first, at most `limit`.
    pub(super) fn pending(&self, limit: usize) -> Vec<OutboxEntry<C>> {
        self.views().take(limit).cloned().collect()
    }

    /// The oldest pending command of each instance not in `busy`, if due at `now`; and
    /// whether any pending command was left.
    pub(super) fn due(&self, now: SystemTime, limit: usize, busy: &[InstanceId]) -> Due<C> {
        // A set, not the slice: the scan may pass thousands of pending commands, and a
        // worker has up to its dispatch bound of instances busy. Both sets are rebuilt on
        // every call, so they hash with foldhash, not SipHash (a tenth of the in-process
        // pipeline's samples were this scan, most of them hashing instance ids), and the
        // heads' set is sized once for the commands it may meet.
        let busy: foldhash::HashSet<&InstanceId> = busy.iter().collect();
        let mut heads = foldhash::HashSet::with_capacity_and_hasher(
            self.pending.len().min(limit.saturating_add(busy.len())),
            foldhash::fast::RandomState::default(),
        );
        let entries: Vec<OutboxEntry<C>> = self
            .views()
            .filter(|e| heads.insert(&e.issued.instance))
            .filter(|e| e.not_before <= now && !busy.contains(&e.issued.instance))
            .take(limit)
            .cloned()
            .collect();
        let more = self.pending.len() > entries.len();
        Due { entries, more }
    }

    /// Command `id`, if it is pending.
    pub(super) fn pending_mut(&mut self, id: EventId) -> Option<&mut OutboxEntry<C>> {
        let entry = self.entries.get_mut(self.ids.get(&id)?)?;
        (entry.state == CommandState::Pending).then_some(&mut entry.view)
    }

    /// Settles pending command `id` as `state` at `now`.
    pub(super) fn settle(&mut self, id: EventId, state: CommandState, now: SystemTime) {
        if let Some(&seq) = self.ids.get(&id) {
            self.settle_seq(seq, state, now);
        }
    }

    fn settle_seq(&mut self, seq: u64, state: CommandState, now: SystemTime) {
        let Some(entry) = self.entries.get_mut(&seq) else {
            return;
        };
        if entry.state == CommandState::Pending && state != CommandState::Pending {
            entry.state = state;
            entry.settled_at = Some(now);
            self.pending.remove(&seq);
        }
    }

    /// Every command of the instance, in any state, in issue order.
    pub(super) fn of_instance(&self, instance: &InstanceId) -> Vec<CommandRecord<C>> {
        let seqs = self.of_instance.get(instance).into_iter().flatten();
        seqs.filter_map(|s| self.entries.get(s))
            .map(|e| CommandRecord {
                entry: e.view.clone(),
                state: e.state,
            })
            .collect()
    }

    /// Discards the instance's pending commands.
    pub(super) fn discard_pending(&mut self, instance: &InstanceId, now: SystemTime) {
        let seqs: Vec<u64> = self
            .of_instance
            .get(instance)
            .into_iter()
            .flatten()
            .copied()
            .collect();
        for seq in seqs {
            self.settle_seq(seq, CommandState::Discarded, now);
        }
    }

    /// Removes the instance's commands settled before `before`: how many, and whether
    /// any command of it is left (pending, or settled since).
    pub(super) fn prune(&mut self, instance: &InstanceId, before: SystemTime) -> (usize, bool) {
        let Some(seqs) = self.of_instance.get_mut(instance) else {
            return (0, false);
        };
        let old = |seq: &u64| {
            self.entries
                .get(seq)
                .and_then(|e| e.settled_at)
                .is_some_and(|at| at < before)
        };
        let gone: Vec<u64> = seqs.iter().copied().filter(old).collect();
        for seq in &gone {
            seqs.remove(seq);
            if let Some(e) = self.entries.remove(seq) {
                self.ids.remove(&e.view.issued.id);
            }
        }
        let left = !seqs.is_empty();
        if !left {
            self.of_instance.remove(instance);
        }
        (gone.len(), left)
    }
}
