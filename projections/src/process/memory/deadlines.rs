//! The memory store's deadlines, with the indexes that keep every operation off the full
//! list: scheduled ones by (due time, id) for firing, by instance and key for cancelling,
//! and settled ones by instance for pruning. The due index holds exactly the scheduled
//! deadlines: scheduling adds to it, firing and cancelling take out.

use std::collections::{BTreeSet, HashMap};
use std::time::SystemTime;

use tessera_core::process::InstanceId;
use uuid::Uuid;

use crate::process::{Deadline, DeadlineState};

struct Stored<T> {
    view: Deadline,
    timeout: T,
    /// When it fired or was cancelled.
    settled_at: Option<SystemTime>,
}

pub(super) struct Deadlines<T> {
    all: HashMap<Uuid, Stored<T>>,
    /// Scheduled deadlines by due time: what firing reads.
    due: BTreeSet<(SystemTime, Uuid)>,
    /// Each instance's scheduled deadline of each key: what cancelling reads.
    scheduled: HashMap<InstanceId, HashMap<String, Uuid>>,
    /// Each instance's fired and cancelled deadlines: what pruning reads.
    settled: HashMap<InstanceId, Vec<Uuid>>,
}

impl<T> Default for Deadlines<T> {
    fn default() -> Self {
        Self {
            all: HashMap::new(),
            due: BTreeSet::new(),
            scheduled: HashMap::new(),
            settled: HashMap::new(),
        }
    }
}

impl<T: Clone> Deadlines<T> {
    /// Schedules deadline `id` of `instance`, replacing its scheduled one of the same key
    /// (cancelled at `now`). A deadline id stored already is ignored.
    pub(super) fn schedule(
        &mut self,
        (id, instance, key): (Uuid, &InstanceId, String),
        due_at: SystemTime,
        timeout: T,
        now: SystemTime,
    ) {
        if self.all.contains_key(&id) {
            return;
        }
        self.cancel(instance, Some(&key), now);
        self.due.insert((due_at, id));
        let of = self.scheduled.entry(instance.clone()).or_default();
        of.insert(key.clone(), id);
        let view = Deadline {
            id,
            instance: instance.clone(),
            key,
            due_at,
            state: DeadlineState::Scheduled,
        };
        let settled_at = None;
        self.all.insert(
            id,
            Stored {
                view,
                timeout,
                settled_at,
            },
        );
    }

    /// Cancels the instance's scheduled deadline `key` (`None`: all of them).
    pub(super) fn cancel(&mut self, instance: &InstanceId, key: Option<&str>, now: SystemTime) {
        let Some(of) = self.scheduled.get_mut(instance) else {
            return;
        };
        let ids: Vec<Uuid> = match key {
            Some(k) => of.remove(k).into_iter().collect(),
            None => of.drain().map(|(_, id)| id).collect(),
        };
        if of.is_empty() {
            self.scheduled.remove(instance);
        }
        for id in ids {
            self.settle(id, DeadlineState::Cancelled, now);
        }
    }

    /// The scheduled deadlines due at `now`, earliest first, at most `limit`: read from
    /// the due index, never from the deadlines not due.
    pub(super) fn due(&self, now: SystemTime, limit: usize) -> Vec<Uuid> {
        let due = self.due.range(..=(now, Uuid::from_u128(u128::MAX)));
        due.take(limit).map(|&(_, id)| id).collect()
    }

    /// How many are scheduled, and how many of those are due at `now`.
    pub(super) fn counts(&self, now: SystemTime) -> (u64, u64) {
        let due = self.due.range(..=(now, Uuid::from_u128(u128::MAX))).count();
        (self.due.len() as u64, due as u64)
    }

    /// Fires deadline `id` at `now`, if it is still scheduled: its instance and timeout.
    pub(super) fn fire(&mut self, id: Uuid, now: SystemTime) -> Option<(InstanceId, T)> {
        let d = self.all.get(&id)?;
        if d.view.state != DeadlineState::Scheduled {
            return None;
        }
        let (instance, key) = (d.view.instance.clone(), d.view.key.clone());
        if let Some(of) = self.scheduled.get_mut(&instance) {
            of.remove(&key);
            if of.is_empty() {
                self.scheduled.remove(&instance);
            }
        }
        let timeout = self.all.get(&id)?.timeout.clone();
        self.settle(id, DeadlineState::Fired, now);
        Some((instance, timeout))
    }

    /// Takes scheduled deadline `id` out of the due index as `state`. The caller has taken
    /// it out of `scheduled`.
    fn settle(&mut self, id: Uuid, state: DeadlineState, now: SystemTime) {
        let Some(d) = self.all.get_mut(&id) else {
            return;
        };
        self.due.remove(&(d.view.due_at, id));
        d.view.state = state;
        d.settled_at = Some(now);
        let instance = d.view.instance.clone();
        self.settled.entry(instance).or_default().push(id);
    }

    /// Removes the instance's deadlines settled before `before`: how many, and whether
    /// any deadline of it is left (scheduled, or settled since).
    pub(super) fn prune(&mut self, instance: &InstanceId, before: SystemTime) -> (usize, bool) {
        let mut gone = 0;
        if let Some(ids) = self.settled.get_mut(instance) {
            let all = &mut self.all;
            ids.retain(|id| {
                let old = all
                    .get(id)
                    .and_then(|d| d.settled_at)
                    .is_some_and(|at| at < before);
                if old {
                    all.remove(id);
                    gone += 1;
                }
                !old
            });
            if ids.is_empty() {
                self.settled.remove(instance);
            }
        }
        let left = self.settled.contains_key(instance) || self.scheduled.contains_key(instance);
        (gone, left)
    }

    /// The instance's deadlines, scheduled or settled, by due time.
    pub(super) fn of_instance(&self, instance: &InstanceId) -> Vec<Deadline> {
        let scheduled = self
            .scheduled
            .get(instance)
            .into_iter()
            .flat_map(|of| of.values());
        let settled = self.settled.get(instance).into_iter().flatten();
        let mut of: Vec<Deadline> = scheduled
            .chain(settled)
            .filter_map(|id| self.all.get(id))
            .map(|d| d.view.clone())
            .collect();
        of.sort_by_key(|d| (d.due_at, d.id));
        of
    }

    /// Every deadline stored, by due time.
    pub(super) fn list(&self) -> Vec<Deadline> {
        let mut all: Vec<Deadline> = self.all.values().map(|d| d.view.clone()).collect();
        all.sort_by_key(|d| (d.due_at, d.id));
        all
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use tessera_core::process::InstanceId;
    use uuid::Uuid;

    use super::Deadlines;
    use crate::process::DeadlineState;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    /// The due index holds exactly the scheduled deadlines, whatever was scheduled,
    /// replaced, cancelled, fired and pruned.
    fn check(d: &Deadlines<u32>) {
        let scheduled: Vec<(SystemTime, Uuid)> = d
            .list()
            .iter()
            .filter(|x| x.state == DeadlineState::Scheduled)
            .map(|x| (x.due_at, x.id))
            .collect();
        let index: Vec<(SystemTime, Uuid)> = d.due.iter().copied().collect();
        assert_eq!(index, scheduled);
        let by_key: usize = d.scheduled.values().map(|of| of.len()).sum();
        assert_eq!(by_key, scheduled.len());
    }

    #[test]
    fn the_due_index_follows_schedule_cancel_fire_and_prune() {
        let mut d = Deadlines::default();
        let (a, b): (InstanceId, InstanceId) = ("a".into(), "b".into());
        let ids: Vec<Uuid> = (0..6).map(|_| Uuid::new_v4()).collect();
        d.schedule((ids[0], &a, "pay".into()), at(30), 0, at(0));
        d.schedule((ids[1], &a, "ship".into()), at(10), 1, at(0));
        d.schedule((ids[2], &b, "pay".into()), at(20), 2, at(0));
        check(&d);
        // Same key again: the first is replaced (cancelled).
        d.schedule((ids[3], &a, "pay".into()), at(40), 3, at(1));
        check(&d);
        assert_eq!(d.due(at(25), 10), [ids[1], ids[2]], "earliest first");
        assert_eq!(d.due(at(25), 1), [ids[1]]);
        assert!(d.due(at(5), 10).is_empty());
        assert_eq!(d.fire(ids[1], at(25)), Some((a.clone(), 1)));
        assert_eq!(d.fire(ids[1], at(26)), None, "fires once");
        assert_eq!(d.fire(ids[0], at(26)), None, "a cancelled one never fires");
        check(&d);
        d.cancel(&b, None, at(27));
        check(&d);
        assert!(d.due(at(100), 10) == [ids[3]]);
        // Pruning takes what settled before the cutoff, and only that.
        assert_eq!(d.prune(&a, at(2)), (1, true), "the replaced one");
        assert_eq!(d.prune(&a, at(100)), (1, true), "a still has one scheduled");
        assert_eq!(
            d.prune(&b, at(27)),
            (0, true),
            "cancelled at the cutoff: kept"
        );
        assert_eq!(d.prune(&b, at(28)), (1, false));
        check(&d);
        assert_eq!(d.list().len(), 1);
        // A stored id is not scheduled twice.
        d.schedule((ids[3], &a, "other".into()), at(50), 9, at(2));
        check(&d);
        assert_eq!(d.list().len(), 1);
    }

    #[test]
    fn due_deadlines_among_many_come_from_the_index() {
        let mut d = Deadlines::default();
        let ids: Vec<Uuid> = (0..10_000u64)
            .map(|i| {
                let id = Uuid::new_v4();
                let instance = InstanceId(format!("i{i}"));
                // Every hundredth is due at 50 s; the rest far later.
                let due = if i % 100 == 0 { at(50) } else { at(10_000 + i) };
                d.schedule((id, &instance, "k".into()), due, 0, at(0));
                id
            })
            .collect();
        let mut due = d.due(at(60), 1000);
        due.sort();
        let mut expected: Vec<Uuid> = ids.iter().step_by(100).copied().collect();
        expected.sort();
        assert_eq!(due, expected);
        for id in &due {
            assert!(d.fire(*id, at(60)).is_some());
        }
        check(&d);
        assert_eq!(d.due.len(), 9_900, "fired ones left the index");
        assert!(d.due(at(60), 1000).is_empty());
    }
}
