//! The state cache: the newest state of recently used aggregates, kept between commands.
//!
//! An entry is *taken* out while a command works on it and put back only after the
//! command's append committed (or the command changed nothing), so two concurrent
//! commands on one aggregate never share a state: the second finds no entry and loads
//! from the store. A state that is stale because another process appended is caught by
//! the append's expected version (the cached version), and the retry loads from the
//! store. The cache never decides what is stored; it only saves the read.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use crate::{StreamId, Version};

/// An aggregate's state as of `version`.
pub(crate) struct Cached<A> {
    pub(crate) state: A,
    pub(crate) version: Option<Version>,
    /// Events folded since the last snapshot (drives the snapshot policy).
    pub(crate) since_snapshot: u64,
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

    /// Puts the state of `stream` back (replacing any), evicting the oldest entry when
    /// full.
    pub(crate) fn put(&self, stream: StreamId, cached: Cached<A>) {
        let mut slots = self.lock();
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

    fn entry(v: u64) -> Cached<u64> {
        Cached {
            state: v,
            version: Some(Version(v)),
            since_snapshot: 0,
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
        assert_eq!(cache.take(&id(1)).map(|c| c.state), Some(2));
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
        assert_eq!(cache.take(&id(1)).map(|c| c.state), Some(11));
        assert_eq!(cache.take(&id(3)).map(|c| c.state), Some(3));
    }
}
