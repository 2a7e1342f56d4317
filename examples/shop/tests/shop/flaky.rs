//! A store double that can be switched to failing: unavailable, or always in conflict.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use tessera_core::{
    AppendOutcome, EventAppender, EventFilter, EventId, EventReader, ExpectedVersion, MemoryStore,
    NewEvent, Position, ReadAll, ReadStream, RecordedEvent, Snapshot, SnapshotStore, StoreError,
    StreamId, Subscription, Version,
};

pub const OK: u8 = 0;
pub const DOWN: u8 = 1;
pub const CONFLICT: u8 = 2;

/// A [`MemoryStore`] whose commands fail while the switch says so (subscriptions still
/// work, so runners keep going).
#[derive(Clone, Debug, Default)]
pub struct FlakyStore {
    inner: MemoryStore,
    pub mode: Arc<AtomicU8>,
}

impl FlakyStore {
    fn check(&self) -> Result<(), StoreError> {
        match self.mode.load(Ordering::SeqCst) {
            DOWN => Err(StoreError::Unavailable {
                message: "switched off by the test".into(),
                source: None,
            }),
            _ => Ok(()),
        }
    }
}

impl EventReader for FlakyStore {
    async fn read_stream(
        &self,
        stream: &StreamId,
        read: ReadStream,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.check()?;
        self.inner.read_stream(stream, read).await
    }
    async fn read_all(&self, read: ReadAll) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_all(read).await
    }
    async fn stream_version(&self, stream: &StreamId) -> Result<Option<Version>, StoreError> {
        self.check()?;
        self.inner.stream_version(stream).await
    }
    async fn head(&self) -> Result<Option<Position>, StoreError> {
        self.check()?;
        self.inner.head().await
    }
    async fn find_event(
        &self,
        stream: &StreamId,
        id: EventId,
    ) -> Result<Option<RecordedEvent>, StoreError> {
        self.check()?;
        self.inner.find_event(stream, id).await
    }
    fn subscribe(&self, after: Position, filter: EventFilter) -> Subscription {
        self.inner.subscribe(after, filter)
    }
}

impl EventAppender for FlakyStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        self.check()?;
        if self.mode.load(Ordering::SeqCst) == CONFLICT {
            return Err(StoreError::WrongExpectedVersion {
                stream: stream.clone(),
                expected,
                actual: Some(Version(999)),
            });
        }
        self.inner.append(stream, expected, events).await
    }
}

impl SnapshotStore for FlakyStore {
    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        self.inner.load_snapshot(stream).await
    }
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        self.inner.save_snapshot(snapshot).await
    }
}
