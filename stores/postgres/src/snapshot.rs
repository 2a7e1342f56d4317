//! Snapshots in `<schema>.snapshots`: one per stream, never replaced by an older one.

use std::time::SystemTime;

use tessera_core::{EventData, Snapshot, SnapshotStore, StoreError, StreamId, Version};

use crate::codec::{self, get, Jsonb};
use crate::PostgresStore;

impl SnapshotStore for PostgresStore {
    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        let inner = self.inner();
        let rows = inner
            .query(
                "loading a snapshot",
                &inner.sql.snapshot_load,
                &[&stream.as_str()],
            )
            .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let decode = || -> Result<Snapshot, String> {
            let schema_version: i64 = get(row, "schema_version")?;
            let Jsonb(data) = get(row, "data")?;
            Ok(Snapshot {
                stream_id: stream.clone(),
                version: Version(codec::unsigned(get(row, "version")?, "version")?),
                schema_version: u32::try_from(schema_version)
                    .map_err(|_| format!("schema_version {schema_version} out of range"))?,
                data: EventData::from_trusted_json(data),
                taken_at: get::<SystemTime>(row, "taken_at")?,
            })
        };
        decode().map(Some).map_err(|reason| StoreError::Corrupt {
            stream: stream.to_string(),
            version: row
                .try_get::<_, i64>("version")
                .ok()
                .and_then(|v| u64::try_from(v).ok())
                .unwrap_or(0),
            reason: format!("snapshot: {reason}"),
        })
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        let inner = self.inner();
        let version = i64::try_from(snapshot.version.0).map_err(|_| {
            StoreError::InvalidInput(format!(
                "snapshot version {} out of range",
                snapshot.version
            ))
        })?;
        let schema_version = i64::from(snapshot.schema_version);
        let data = Jsonb(snapshot.data.bytes().clone());
        inner
            .query(
                "saving a snapshot",
                &inner.sql.snapshot_save,
                &[
                    &snapshot.stream_id.as_str(),
                    &version,
                    &schema_version,
                    &data,
                    &snapshot.taken_at,
                ],
            )
            .await?;
        Ok(())
    }
}
