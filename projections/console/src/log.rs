//! A store's log behind one object type, so the console holds stores of any type.

use async_trait::async_trait;
use serde::Serialize;
use tessera_core::{
    EventReader, ListStreams, Position, ReadAll, ReadStream, RecordedEvent, StoreError, StreamId,
    StreamInfo, Version,
};
use uuid::Uuid;

/// What the console reads from a store.
#[async_trait]
pub(crate) trait Log: Send + Sync {
    async fn categories(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<Option<Vec<String>>, StoreError>;
    async fn streams(&self, list: ListStreams) -> Result<Option<Vec<StreamInfo>>, StoreError>;
    async fn read_stream(
        &self,
        stream: StreamId,
        read: ReadStream,
    ) -> Result<Vec<RecordedEvent>, StoreError>;
    async fn stream_version(&self, stream: StreamId) -> Result<Option<Version>, StoreError>;
    async fn read_all(&self, read: ReadAll) -> Result<Vec<RecordedEvent>, StoreError>;
    async fn head(&self) -> Result<Option<Position>, StoreError>;
    async fn correlated(
        &self,
        id: Uuid,
        after: Position,
        limit: usize,
    ) -> Result<Option<Vec<RecordedEvent>>, StoreError>;
}

pub(crate) struct Logged<S>(pub(crate) S);

#[async_trait]
impl<S: EventReader> Log for Logged<S> {
    async fn categories(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<Option<Vec<String>>, StoreError> {
        self.0.categories(after.as_deref(), limit).await
    }

    async fn streams(&self, list: ListStreams) -> Result<Option<Vec<StreamInfo>>, StoreError> {
        self.0.streams(list).await
    }

    async fn read_stream(
        &self,
        stream: StreamId,
        read: ReadStream,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.0.read_stream(&stream, read).await
    }

    async fn stream_version(&self, stream: StreamId) -> Result<Option<Version>, StoreError> {
        self.0.stream_version(&stream).await
    }

    async fn read_all(&self, read: ReadAll) -> Result<Vec<RecordedEvent>, StoreError> {
        self.0.read_all(read).await
    }

    async fn head(&self) -> Result<Option<Position>, StoreError> {
        self.0.head().await
    }

    async fn correlated(
        &self,
        id: Uuid,
        after: Position,
        limit: usize,
    ) -> Result<Option<Vec<RecordedEvent>>, StoreError> {
        self.0.correlated(id, after, limit).await
    }
}

/// An event as the pages show it.
#[derive(Debug, Serialize)]
pub(crate) struct EventBody {
    id: Uuid,
    stream_id: String,
    category: String,
    version: u64,
    position: String,
    #[serde(rename = "type")]
    event_type: String,
    schema_version: u32,
    recorded_at_ms: u64,
    correlation_id: Option<Uuid>,
    causation_id: Option<Uuid>,
    headers: std::collections::BTreeMap<String, String>,
    /// The payload as JSON (stored payloads are JSON documents).
    data: serde_json::Value,
}

impl From<RecordedEvent> for EventBody {
    fn from(e: RecordedEvent) -> Self {
        let data = e
            .data
            .to_value()
            .unwrap_or_else(|err| serde_json::Value::String(format!("(not JSON: {err})")));
        let recorded_at_ms = e
            .recorded_at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, crate::operate::millis);
        Self {
            id: e.id.0,
            category: e.stream_id.category().to_owned(),
            stream_id: e.stream_id.to_string(),
            version: e.version.0,
            position: e.position.to_string(),
            event_type: e.event_type,
            schema_version: e.schema_version,
            recorded_at_ms,
            correlation_id: e.metadata.correlation_id,
            causation_id: e.metadata.causation_id,
            headers: e.metadata.headers,
            data,
        }
    }
}
