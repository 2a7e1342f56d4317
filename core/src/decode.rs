//! Decoding recorded events into domain events, with upcasting.

use crate::{CodecError, DomainEvent, EventData, RecordedEvent, Upcasters};

/// Decodes a recorded event into `E`, upcasting older schema versions first.
///
/// The error names the stream and version of the offending event.
pub fn decode_recorded<E: DomainEvent>(
    event: &RecordedEvent,
    upcasters: &Upcasters,
) -> Result<E, DecodeError> {
    decode_parts(
        &event.event_type,
        event.schema_version,
        &event.data,
        upcasters,
    )
    .map_err(|source| DecodeError {
        stream: event.stream_id.to_string(),
        version: event.version.0,
        source,
    })
}

fn decode_parts<E: DomainEvent>(
    event_type: &str,
    stored: u32,
    data: &EventData,
    upcasters: &Upcasters,
) -> Result<E, CodecError> {
    let current = E::schema_version(event_type);
    if stored == current {
        return E::decode(event_type, data.as_bytes());
    }
    if stored > current {
        return Err(CodecError::FutureSchema {
            event_type: event_type.to_owned(),
            stored,
            current,
        });
    }
    let value = data.to_value().map_err(|source| CodecError::Decode {
        event_type: event_type.to_owned(),
        schema_version: stored,
        source,
    })?;
    let (ty, value) = upcasters.upcast_with(event_type, stored, E::schema_version, value)?;
    let bytes = serde_json::to_vec(&value).map_err(CodecError::Encode)?;
    E::decode(&ty, &bytes)
}

/// A recorded event that could not be decoded, naming where it is stored.
#[derive(Debug, thiserror::Error)]
#[error("event {stream}@{version} cannot be decoded: {source}")]
pub struct DecodeError {
    /// The stream holding the event.
    pub stream: String,
    /// The event's version in it.
    pub version: u64,
    /// Why.
    #[source]
    pub source: CodecError,
}
