//! Snapshots kept in EventStoreDB, one stream per aggregate stream.
//!
//! The snapshot of `order-1` is the last event of stream `tessera-snapshot:order-1`
//! (under the store's prefix). Those streams are hidden from every read of the log.

use std::time::{Duration, UNIX_EPOCH};

use eventstore::{AppendToStreamOptions, ExpectedRevision, ReadStreamOptions, StreamPosition};
use serde::{Deserialize, Serialize};
use tessera_core::{EventData, Snapshot, SnapshotStore, StoreError, StreamId, Version};

use crate::{map, EventStoreDbStore};

/// Stream-name marker of snapshot streams.
pub(crate) const SNAPSHOT_STREAM: &str = "tessera-snapshot:";

#[derive(Serialize, Deserialize)]
struct Stored {
    version: u64,
    schema_version: u32,
    state: Box<serde_json::value::RawValue>,
    taken_at_ms: u64,
}

/// The stream holding `stream`'s snapshots in `store`.
fn snapshot_stream(store: &EventStoreDbStore, stream: &StreamId) -> String {
    format!("{}{SNAPSHOT_STREAM}{stream}", store.prefix())
}

impl SnapshotStore for EventStoreDbStore {
    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        let options = ReadStreamOptions::default()
            .backwards()
            .position(StreamPosition::End)
            .max_count(1);
        let mut events = match self
            .client()
            .read_stream(snapshot_stream(self, stream), &options)
            .await
        {
            Ok(events) => events,
            Err(eventstore::Error::ResourceNotFound) => return Ok(None),
            Err(e) => return Err(map::error(e, None)),
        };
        let event = match events.next().await {
            Ok(Some(e)) => e,
            Ok(None) | Err(eventstore::Error::ResourceNotFound) => return Ok(None),
            Err(e) => return Err(map::error(e, None)),
        };
        let raw = event.get_original_event();
        // An unreadable snapshot is no snapshot: the handler reads the full stream.
        let Ok(stored) = serde_json::from_slice::<Stored>(&raw.data) else {
            return Ok(None);
        };
        Ok(Some(Snapshot {
            stream_id: stream.clone(),
            version: Version(stored.version),
            schema_version: stored.schema_version,
            data: EventData::from_trusted_json(stored.state.get().as_bytes().to_vec()),
            taken_at: UNIX_EPOCH + Duration::from_millis(stored.taken_at_ms),
        }))
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        if let Some(current) = self.load_snapshot(&snapshot.stream_id).await? {
            if current.version > snapshot.version {
                return Ok(());
            }
        }
        let state = serde_json::from_slice(snapshot.data.as_bytes())
            .map_err(|e| StoreError::InvalidInput(format!("snapshot is not JSON: {e}")))?;
        let stored = Stored {
            version: snapshot.version.0,
            schema_version: snapshot.schema_version,
            state,
            taken_at_ms: snapshot
                .taken_at
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        };
        let event = eventstore::EventData::json("TesseraSnapshot", &stored)
            .map_err(|e| StoreError::backend("snapshot did not serialize", e))?;
        let options = AppendToStreamOptions::default().expected_revision(ExpectedRevision::Any);
        self.client()
            .append_to_stream(snapshot_stream(self, &snapshot.stream_id), &options, event)
            .await
            .map_err(|e| map::error(e, None))?;
        Ok(())
    }
}
