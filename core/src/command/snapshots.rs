//! Snapshots on the command path: read one to start a load from, save one when due.
//! Never an error: any trouble with a snapshot falls back to the full stream, and a
//! failed save leaves commands working.

use std::sync::Arc;
use std::time::SystemTime;

use crate::snapshot::DynSnapshots;
use crate::{Aggregate, EventData, Snapshot, SnapshotPolicy, StreamId, Version};

/// Where a handler keeps snapshots, and when it takes one.
#[derive(Clone)]
pub(super) struct Snapshotting {
    store: Arc<dyn DynSnapshots>,
    policy: SnapshotPolicy,
}

impl Snapshotting {
    pub(super) fn new(store: Arc<dyn DynSnapshots>, policy: SnapshotPolicy) -> Self {
        Self { store, policy }
    }

    /// A usable snapshot of `stream`: its state and version, if any.
    pub(super) async fn load<A: Aggregate>(&self, stream: &StreamId) -> Option<(A, Version)> {
        match self.store.load(stream).await {
            Ok(Some(s)) if s.schema_version == A::SNAPSHOT_VERSION => match s.data.decode::<A>() {
                Ok(state) => return Some((state, s.version)),
                Err(e) => tracing::warn!(%stream, error = %e, "unreadable snapshot ignored"),
            },
            Ok(Some(s)) => tracing::debug!(
                %stream, stored = s.schema_version, "snapshot of another state version ignored"
            ),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(%stream, error = %e, "snapshot load failed; reading the full stream")
            }
        }
        None
    }

    /// Saves a snapshot of `state` at `version` if the policy says one is due after
    /// `since` events; `true` if one was saved.
    pub(super) async fn save_if_due<A: Aggregate>(
        &self,
        stream: &StreamId,
        state: &A,
        version: Version,
        since: u64,
    ) -> bool {
        if !self.policy.is_due(since) {
            return false;
        }
        let data = match EventData::to_json(state) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(%stream, error = %e, "state not serializable; no snapshot");
                return false;
            }
        };
        let snapshot = Snapshot {
            stream_id: stream.clone(),
            version,
            schema_version: A::SNAPSHOT_VERSION,
            data,
            taken_at: SystemTime::now(),
        };
        match self.store.save(snapshot).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(%stream, error = %e, "snapshot save failed; commands still work");
                false
            }
        }
    }
}
