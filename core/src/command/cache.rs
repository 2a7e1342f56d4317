//! The state cache: the newest state of recently used aggregates, kept between commands.
//!
//! An entry is *taken* out while a command works on it and put back only after the
//! command's append committed (or the command changed nothing), so two concurrent
//! commands on one aggregate never share a state: the second finds no entry and loads
//! from the store. A state that is stale because another process appended is caught by
//! the append's expected version (the cached version), and the retry loads from the
//! store. The cache never decides what is stored; it only saves the read.
//!
//! With a state it keeps the last keyed commands this process saw land on it, so a retry
//! of one of them here is answered without a read (what landed stays landed).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use super::replay::KeyedRuns;
use crate::{Loaded, StreamId};

/// A cached state, and the last keyed commands this process saw land on it.
pub(crate) struct Cached<A> {
    pub(crate) loaded: Loaded<A>,
    pub(crate) runs: KeyedRuns,
}

/// A bounded map from stream to state, evicting the least recently put entry.
pub(crate) struct StateCache<A> {
    inner: Mutex<Slots<A>>,
    capacity: usize,
}

struct Slots<A> {
    entries: HashMap<StreamId, (Cached<A>, u64), foldhash::fast::RandomState>,
    /// Put order: tick → stream, oldest first.
    order: BTreeMap<u64, StreamId>,
    tick: u64,
}

impl<A> StateCache<A> {
    /// A cache holding at most `capacity` states (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Slots {
                entries: HashMap::default(),
                order: BTreeMap::new(),
                tick: 0,
            }),
            capacity: capacity.max(1),
        }
    }

    /// Takes the state of `stream` out, if cached.
    pub(crate) fn take(&self, stream: &StreamId) -> Option<Cached<A>> {
        let mut slots = self.lock();
        let (cached, tick) = slots.entries.remove(stream)?;
        slots.order.remove(&tick);
        Some(cached)
    }

    /// Reads the state of `stream` with `read`, if cached, leaving it in place.
    pub(crate) fn read<R>(&self, stream: &StreamId, read: impl FnOnce(&A) -> R) -> Option<R> {
        let slots = self.lock();
        slots
            .entries
            .get(stream)
            .map(|(cached, _)| read(&cached.loaded.state))
    }

    /// Puts a state read outside a command in, unless the cache holds one at least as
    /// new (a command may have put it meanwhile).
    pub(crate) fn offer(&self, stream: StreamId, loaded: Loaded<A>) {
        let mut slots = self.lock();
        if let Some((cached, _)) = slots.entries.get(&stream) {
            if cached.loaded.version >= loaded.version {
                return;
            }
        }
        let runs = KeyedRuns::default();
        let cached = Cached { loaded, runs };
        self.insert(&mut slots, stream, cached);
    }

    /// Puts the state of `stream` back (replacing any), evicting the oldest entry when
    /// full.
    pub(crate) fn put(&self, stream: StreamId, cached: Cached<A>) {
        let mut slots = self.lock();
        self.insert(&mut slots, stream, cached);
    }

    fn insert(&self, slots: &mut Slots<A>, stream: StreamId, cached: Cached<A>) {
        slots.tick += 1;
        let tick = slots.tick;
        if let Some((_, old)) = slots.entries.insert(stream.clone(), (cached, tick)) {
            slots.order.remove(&old);
        }
        slots.order.insert(tick, stream);
        while slots.entries.len() > self.capacity {
            let Some((_, oldest)) = slots.order.pop_first() else {
                break;
            };
            slots.entries.remove(&oldest);
        }
    }

    /// How many states are cached.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().entries.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slots<A>> {
        // A panic while holding the lock cannot leave the maps inconsistent with each
        // other in a way that matters: at worst an entry is missing, i.e. a cache miss.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Version;

    fn loaded(v: u64) -> Loaded<u64> {
        Loaded {
            state: v,
            version: Some(Version(v)),
            events_since_snapshot: 0,
        }
    }

    fn entry(v: u64) -> Cached<u64> {
        Cached {
            loaded: loaded(v),
            runs: KeyedRuns::default(),
        }
    }

    fn id(n: u32) -> StreamId {
        StreamId::new(format!("order-{n}")).expect("valid")
    }

    #[test]
    fn take_removes_and_put_replaces() {
        let cache = StateCache::new(4);
        cache.put(id(1), entry(1));
        cache.put(id(1), entry(2));
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.take(&id(1)).map(|c| c.loaded.state), Some(2));
        assert!(cache.take(&id(1)).is_none(), "taken entries are gone");
    }

    #[test]
    fn the_least_recently_put_entry_is_evicted() {
        let cache = StateCache::new(2);
        cache.put(id(1), entry(1));
        cache.put(id(2), entry(2));
        cache.put(id(1), entry(11)); // 1 is now newer than 2
        cache.put(id(3), entry(3));
        assert_eq!(cache.len(), 2);
        assert!(cache.take(&id(2)).is_none(), "oldest evicted");
        assert_eq!(cache.take(&id(1)).map(|c| c.loaded.state), Some(11));
        assert_eq!(cache.take(&id(3)).map(|c| c.loaded.state), Some(3));
    }

    #[test]
    fn reads_leave_entries_and_offers_never_replace_newer_states() {
        let cache = StateCache::new(4);
        cache.offer(id(1), loaded(5));
        assert_eq!(cache.read(&id(1), |s| *s), Some(5));
        cache.offer(id(1), loaded(4));
        assert_eq!(
            cache.read(&id(1), |s| *s),
            Some(5),
            "an older state is not put in"
        );
        cache.offer(id(1), loaded(6));
        assert_eq!(cache.take(&id(1)).map(|c| c.loaded.state), Some(6));
        assert_eq!(cache.read(&id(1), |s| *s), None);
    }
}
