//! A store double that can be switched to failing: unavailable, or always in conflict.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use tessera_core::testkit::{Call, Forward};
use tessera_core::{
    AppendOutcome, EventAppender, ExpectedVersion, MemoryStore, NewEvent, StoreError, StreamId,
    Version,
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

/// Reads of a stream and appends fail while switched; reads of the log, subscriptions
/// and snapshots always reach the memory store.
impl Forward for FlakyStore {
    type Inner = MemoryStore;

    fn inner(&self) -> &MemoryStore {
        &self.inner
    }

    fn before(&self, call: Call) -> Result<(), StoreError> {
        match call {
            Call::ReadStream | Call::StreamVersion | Call::Head | Call::FindEvent => self.check(),
            _ => Ok(()),
        }
    }

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
