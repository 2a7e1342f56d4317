//! Snapshots of aggregate state: an optimisation, never a source of truth.

use std::future::Future;
use std::time::SystemTime;

use crate::{EventData, StoreError, StreamId, Version};

/// Serialized aggregate state as of one stream version.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The aggregate's stream.
    pub stream_id: StreamId,
    /// The version of the last event folded into `data`.
    pub version: Version,
    /// The aggregate's `SNAPSHOT_VERSION` when it was taken.
    pub schema_version: u32,
    /// The state as JSON.
    pub data: EventData,
    /// When it was taken.
    pub taken_at: SystemTime,
}

/// Where snapshots are kept. A store keeps at most one per stream: the newest.
pub trait SnapshotStore: Clone + Send + Sync + 'static {
    /// The newest snapshot of `stream`, if any.
    fn load_snapshot(
        &self,
        stream: &StreamId,
    ) -> impl Future<Output = Result<Option<Snapshot>, StoreError>> + Send;

    /// Saves `snapshot` unless a snapshot of a later version is already stored.
    fn save_snapshot(
        &self,
        snapshot: Snapshot,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// When the command handler takes a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SnapshotPolicy {
    /// Never.
    #[default]
    Never,
    /// After a command, once this many events were read or written since the last one.
    EveryNEvents(u64),
}

impl SnapshotPolicy {
    /// Whether `events_since` events past the last snapshot call for a new one.
    pub fn is_due(self, events_since: u64) -> bool {
        match self {
            SnapshotPolicy::Never => false,
            SnapshotPolicy::EveryNEvents(n) => n > 0 && events_since >= n,
        }
    }
}

/// Object-safe form of [`SnapshotStore`], so a command handler can hold any of them.
#[async_trait::async_trait]
pub(crate) trait DynSnapshots: Send + Sync {
    async fn load(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError>;
    async fn save(&self, snapshot: Snapshot) -> Result<(), StoreError>;
}

#[async_trait::async_trait]
impl<T: SnapshotStore> DynSnapshots for T {
    async fn load(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        self.load_snapshot(stream).await
    }
    async fn save(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        self.save_snapshot(snapshot).await
    }
}

fn _object_safe(_: Box<dyn DynSnapshots>) {}
