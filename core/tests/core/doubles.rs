//! Test doubles: an event store that interferes with appends, snapshots that fail.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use tessera_core::testkit::{Call, Forward};
use tessera_core::{
    AppendOutcome, DomainEvent, EventAppender, ExpectedVersion, MemoryStore, NewEvent, Snapshot,
    SnapshotStore, StoreError, StreamId,
};

use crate::tally::TallyEvent;

/// Takes one from `counter` if it is above zero.
fn take(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

/// A memory store that can get in the way of appends.
#[derive(Clone, Default)]
pub struct Meddler {
    pub inner: MemoryStore,
    /// This many appends first see another writer's `Added { amount: 100 }` land.
    pub interfere: Arc<AtomicU32>,
    /// This many successful appends report `Unavailable` (outcome unknown) instead...
    pub lose_reply: Arc<AtomicU32>,
    /// ...and this many of those also see another writer append right after them.
    pub interfere_after: Arc<AtomicU32>,
    /// Appends received.
    pub appends: Arc<AtomicU32>,
    /// Stream reads received.
    pub reads: Arc<AtomicU32>,
    /// Event lookups by id received.
    pub finds: Arc<AtomicU32>,
}

impl Meddler {
    pub fn interfering(times: u32) -> Self {
        let m = Self::default();
        m.interfere.store(times, Ordering::SeqCst);
        m
    }

    pub fn appends(&self) -> u32 {
        self.appends.load(Ordering::SeqCst)
    }

    pub fn reads(&self) -> u32 {
        self.reads.load(Ordering::SeqCst)
    }

    pub fn finds(&self) -> u32 {
        self.finds.load(Ordering::SeqCst)
    }
}

/// Another writer's event.
pub fn foreign() -> NewEvent {
    let (ty, data) = TallyEvent::Added { amount: 100 }.encode().expect("encodes");
    NewEvent::new(ty, data).with_schema_version(2)
}

/// Counts stream reads and lookups by id, and meddles with appends as its fields say;
/// the rest goes to the memory store.
impl Forward for Meddler {
    type Inner = MemoryStore;

    fn inner(&self) -> &MemoryStore {
        &self.inner
    }

    fn before(&self, call: Call) -> Result<(), StoreError> {
        match call {
            Call::ReadStream => self.reads.fetch_add(1, Ordering::SeqCst),
            Call::FindEvent => self.finds.fetch_add(1, Ordering::SeqCst),
            _ => 0,
        };
        Ok(())
    }

    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        self.appends.fetch_add(1, Ordering::SeqCst);
        if take(&self.interfere) {
            let any = ExpectedVersion::Any;
            self.inner.append(stream, any, vec![foreign()]).await?;
        }
        let result = self.inner.append(stream, expected, events).await;
        if result.is_ok() && take(&self.lose_reply) {
            if take(&self.interfere_after) {
                let any = ExpectedVersion::Any;
                self.inner.append(stream, any, vec![foreign()]).await?;
            }
            return Err(StoreError::Unavailable {
                message: "connection lost at COMMIT".into(),
                source: None,
            });
        }
        result
    }
}

/// A snapshot store that is always down, counting the calls it fails.
#[derive(Clone, Default)]
pub struct BrokenSnapshots {
    pub calls: Arc<AtomicU32>,
}

impl BrokenSnapshots {
    fn fail(&self) -> StoreError {
        self.calls.fetch_add(1, Ordering::SeqCst);
        StoreError::Unavailable {
            message: "snapshot store down".into(),
            source: None,
        }
    }
}

impl SnapshotStore for BrokenSnapshots {
    async fn load_snapshot(&self, _: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        Err(self.fail())
    }

    async fn save_snapshot(&self, _: Snapshot) -> Result<(), StoreError> {
        Err(self.fail())
    }
}
