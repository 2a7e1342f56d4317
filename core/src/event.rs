//! Events as stores see them: new (to append) and recorded (read back).

use std::fmt;
use std::time::SystemTime;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Metadata, Position, StreamId, Version};

/// The unique id of an event (a UUID). Within a stream it is the idempotency key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(pub Uuid);

impl EventId {
    /// A new random id (UUID v4).
    pub fn random() -> Self {
        Self(Uuid::new_v4())
    }

    /// A deterministic id derived from a name (UUID v5 in Tessera's namespace), used for
    /// idempotent commands and process-manager commands.
    pub fn derived(name: &[u8]) -> Self {
        Self(Uuid::new_v5(&crate::idempotency::NAMESPACE, name))
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A JSON document, kept as its UTF-8 text. Valid JSON by construction.
#[derive(Clone, PartialEq, Eq)]
pub struct EventData(Bytes);

/// Bytes that are not a JSON document.
#[derive(Debug, thiserror::Error)]
#[error("event data is not valid JSON: {0}")]
pub struct InvalidJson(#[from] serde_json::Error);

impl EventData {
    /// Checks that `bytes` hold one JSON document and wraps them.
    pub fn from_json_bytes(bytes: impl Into<Bytes>) -> Result<Self, InvalidJson> {
        let bytes = bytes.into();
        serde_json::from_slice::<serde::de::IgnoredAny>(&bytes)?;
        Ok(Self(bytes))
    }

    /// Serializes a value to JSON.
    pub fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        serde_json::to_vec(value).map(|v| Self(Bytes::from(v)))
    }

    /// Wraps bytes that the caller produced with a JSON serializer. Stores use this for
    /// data they read back from a JSON column.
    pub fn from_trusted_json(bytes: impl Into<Bytes>) -> Self {
        Self(bytes.into())
    }

    /// The JSON text's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The shared buffer holding the JSON text.
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    /// Parses the JSON into a value.
    pub fn to_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_slice(&self.0)
    }

    /// Deserializes the JSON into `T`.
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.0)
    }
}

impl fmt::Debug for EventData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = String::from_utf8_lossy(&self.0);
        if text.len() > 200 {
            let cut = (0..=200)
                .rev()
                .find(|&i| text.is_char_boundary(i))
                .unwrap_or(0);
            write!(f, "EventData({}… {} bytes)", &text[..cut], self.0.len())
        } else {
            write!(f, "EventData({text})")
        }
    }
}

/// An event to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Unique id; appending the same id again to the same stream is idempotent.
    pub id: EventId,
    /// Stable event-type name (never a Rust type path).
    pub event_type: String,
    /// Schema version of `data`, for upcasting.
    pub schema_version: u32,
    /// The payload.
    pub data: EventData,
    /// Correlation, causation, headers.
    pub metadata: Metadata,
}

impl NewEvent {
    /// An event with a random id, schema version 1 and empty metadata.
    pub fn new(event_type: impl Into<String>, data: EventData) -> Self {
        Self {
            id: EventId::random(),
            event_type: event_type.into(),
            schema_version: 1,
            data,
            metadata: Metadata::default(),
        }
    }

    /// An event whose data is `value` serialized as JSON.
    ///
    /// ```
    /// use tessera_core::NewEvent;
    /// let e = NewEvent::json("OrderPlaced", &serde_json::json!({"total": 10})).unwrap();
    /// assert_eq!(e.event_type, "OrderPlaced");
    /// ```
    pub fn json<T: Serialize + ?Sized>(
        event_type: impl Into<String>,
        value: &T,
    ) -> Result<Self, serde_json::Error> {
        Ok(Self::new(event_type, EventData::to_json(value)?))
    }

    /// Sets the id.
    #[must_use]
    pub fn with_id(mut self, id: EventId) -> Self {
        self.id = id;
        self
    }

    /// Sets the metadata.
    #[must_use]
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// Sets the schema version.
    #[must_use]
    pub fn with_schema_version(mut self, schema_version: u32) -> Self {
        self.schema_version = schema_version;
        self
    }
}

/// An event as stored: everything appended plus where and when it landed.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    /// Unique id within the stream.
    pub id: EventId,
    /// The stream it belongs to.
    pub stream_id: StreamId,
    /// Its version within the stream (0-based, no holes).
    pub version: Version,
    /// Its position in the global log.
    pub position: Position,
    /// Stable event-type name.
    pub event_type: String,
    /// Schema version of `data`.
    pub schema_version: u32,
    /// The payload.
    pub data: EventData,
    /// Correlation, causation, headers.
    pub metadata: Metadata,
    /// When the store recorded it.
    pub recorded_at: SystemTime,
}
