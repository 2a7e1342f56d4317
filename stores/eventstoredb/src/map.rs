//! Pure mappings between Tessera's contract and the `eventstore` client's types.
//! Every one is unit-tested without a server.

use std::collections::BTreeMap;
use std::time::SystemTime;

use eventstore::{CurrentRevision, ExpectedRevision};
use serde::{Deserialize, Serialize};
use tessera_core::{
    EventData, EventId, ExpectedVersion, Metadata, Position, RecordedEvent, StoreError, StreamId,
    Version,
};
use uuid::Uuid;

/// Tessera's expected version as EventStoreDB's expected revision (one to one: both
/// number stream events from 0).
pub fn expected_revision(expected: ExpectedVersion) -> ExpectedRevision {
    match expected {
        ExpectedVersion::Any => ExpectedRevision::Any,
        ExpectedVersion::NoStream => ExpectedRevision::NoStream,
        ExpectedVersion::StreamExists => ExpectedRevision::StreamExists,
        ExpectedVersion::Exact(v) => ExpectedRevision::Exact(v.0),
    }
}

/// EventStoreDB's current revision as the stream's version.
pub fn current_version(current: CurrentRevision) -> Option<Version> {
    match current {
        CurrentRevision::Current(v) => Some(Version(v)),
        CurrentRevision::NoStream => None,
    }
}

/// EventStoreDB's `$all` position as a Tessera position (same two parts, same order).
pub fn position(p: eventstore::Position) -> Position {
    Position::new(p.commit, p.prepare)
}

/// A Tessera position as a point to read `$all` from.
pub fn esdb_position(p: Position) -> eventstore::Position {
    eventstore::Position {
        commit: p.commit,
        prepare: p.prepare,
    }
}

/// Maps a client error. `stream` and `expected` name the append it came from, if any.
pub fn error(e: eventstore::Error, append: Option<(&StreamId, ExpectedVersion)>) -> StoreError {
    use eventstore::Error as E;
    match e {
        E::WrongExpectedVersion { current, .. } => match append {
            Some((stream, expected)) => StoreError::WrongExpectedVersion {
                stream: stream.clone(),
                expected,
                actual: current_version(current),
            },
            None => StoreError::backend(
                "unexpected wrong-expected-version outside an append",
                E::WrongExpectedVersion {
                    expected: ExpectedRevision::Any,
                    current,
                },
            ),
        },
        E::ConnectionClosed
        | E::GrpcConnectionError(_)
        | E::DeadlineExceeded
        | E::NotLeaderException(_) => {
            StoreError::unavailable("EventStoreDB unreachable or not leader", e)
        }
        // The client's name for statuses Unavailable, Internal, DataLoss and Unknown;
        // it reconnects (node selection) after one, and so may a retry.
        E::ServerError(_) => StoreError::unavailable("EventStoreDB server error", e),
        E::Grpc {
            code: tonic::Code::Unavailable | tonic::Code::DeadlineExceeded,
            ..
        } => StoreError::unavailable("EventStoreDB unavailable", e),
        other => StoreError::backend("EventStoreDB request failed", other),
    }
}

/// The custom metadata Tessera writes on each event. Correlation and causation use the
/// field names EventStoreDB itself uses (`$correlationId`, `$causationId`), so its
/// system projections (`$bc-`, `$by_correlation_id`) see them.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct EsdbMetadata {
    /// Correlation id.
    #[serde(
        rename = "$correlationId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub correlation_id: Option<Uuid>,
    /// Causation id.
    #[serde(
        rename = "$causationId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub causation_id: Option<Uuid>,
    /// Tessera's schema version of the data.
    #[serde(rename = "tesseraSchemaVersion", default = "one")]
    pub schema_version: u32,
    /// Free-form headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

fn one() -> u32 {
    1
}

/// Metadata and schema version to EventStoreDB custom metadata.
pub fn to_esdb_metadata(m: &Metadata, schema_version: u32) -> EsdbMetadata {
    EsdbMetadata {
        correlation_id: m.correlation_id,
        causation_id: m.causation_id,
        schema_version,
        headers: m.headers.clone(),
    }
}

/// A new event as the client's `EventData`, with its id passed through (so the
/// server's own idempotency applies).
pub fn event_data(e: &tessera_core::NewEvent) -> Result<eventstore::EventData, StoreError> {
    let meta = serde_json::to_vec(&to_esdb_metadata(&e.metadata, e.schema_version))
        .map_err(|err| StoreError::backend("metadata did not serialize", err))?;
    let raw: Box<serde_json::value::RawValue> = serde_json::from_slice(e.data.as_bytes())
        .map_err(|err| StoreError::InvalidInput(format!("event data is not JSON: {err}")))?;
    let data = eventstore::EventData::json(&e.event_type, &raw)
        .map_err(|err| StoreError::backend("event data did not serialize", err))?
        .id(e.id.0)
        .metadata(meta.into());
    Ok(data)
}

/// A recorded event from the client, mapped. Non-JSON payloads (written by another
/// client) and unreadable metadata are `Corrupt`, naming stream and revision.
pub fn recorded(e: &eventstore::RecordedEvent) -> Result<RecordedEvent, StoreError> {
    recorded_as(e, &e.stream_id)
}

/// The same, under another stream name (the name with a store prefix removed).
pub fn recorded_as(
    e: &eventstore::RecordedEvent,
    stream: &str,
) -> Result<RecordedEvent, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        stream: stream.to_owned(),
        version: e.revision,
        reason,
    };
    let stream_id = StreamId::new(stream).map_err(|err| corrupt(err.to_string()))?;
    let data = EventData::from_json_bytes(e.data.clone())
        .map_err(|err| corrupt(format!("payload is not JSON: {err}")))?;
    let meta: EsdbMetadata = if e.custom_metadata.is_empty() {
        EsdbMetadata {
            schema_version: 1,
            ..EsdbMetadata::default()
        }
    } else {
        serde_json::from_slice(&e.custom_metadata)
            .map_err(|err| corrupt(format!("metadata is not Tessera's: {err}")))?
    };
    Ok(RecordedEvent {
        id: EventId(e.id),
        stream_id,
        version: Version(e.revision),
        position: position(e.position),
        event_type: e.event_type.clone(),
        schema_version: meta.schema_version,
        data,
        metadata: Metadata {
            correlation_id: meta.correlation_id,
            causation_id: meta.causation_id,
            headers: meta.headers,
        },
        recorded_at: SystemTime::from(e.created),
    })
}

/// Whether a stream or event type belongs to EventStoreDB itself (`$`-prefixed).
pub fn is_system(stream: &str, event_type: &str) -> bool {
    stream.starts_with('$') || event_type.starts_with('$')
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::UNIX_EPOCH;

    use super::*;

    fn raw(stream: &str, data: &[u8], custom: &[u8]) -> eventstore::RecordedEvent {
        eventstore::RecordedEvent {
            stream_id: stream.to_owned(),
            id: Uuid::from_u128(7),
            revision: 41,
            event_type: "OrderPlaced".to_owned(),
            data: bytes::Bytes::copy_from_slice(data),
            metadata: HashMap::new(),
            custom_metadata: bytes::Bytes::copy_from_slice(custom),
            is_json: true,
            position: eventstore::Position {
                commit: 900,
                prepare: 880,
            },
            created: Default::default(),
        }
    }

    #[test]
    fn expected_versions_map_one_to_one() {
        assert_eq!(
            expected_revision(ExpectedVersion::Any),
            ExpectedRevision::Any
        );
        assert_eq!(
            expected_revision(ExpectedVersion::NoStream),
            ExpectedRevision::NoStream
        );
        assert_eq!(
            expected_revision(ExpectedVersion::StreamExists),
            ExpectedRevision::StreamExists
        );
        assert_eq!(
            expected_revision(ExpectedVersion::Exact(Version(5))),
            ExpectedRevision::Exact(5)
        );
        assert_eq!(
            current_version(CurrentRevision::Current(3)),
            Some(Version(3))
        );
        assert_eq!(current_version(CurrentRevision::NoStream), None);
    }

    #[test]
    fn positions_keep_both_parts_and_order() {
        let p = position(eventstore::Position {
            commit: 10,
            prepare: 9,
        });
        assert_eq!(p, Position::new(10, 9));
        let back = esdb_position(p);
        assert_eq!((back.commit, back.prepare), (10, 9));
        assert!(
            position(eventstore::Position {
                commit: 10,
                prepare: 9
            }) < position(eventstore::Position {
                commit: 11,
                prepare: 0
            })
        );
    }

    #[test]
    fn errors_map_to_typed_store_errors() {
        let stream = StreamId::new("order-1").expect("valid");
        let wev = eventstore::Error::WrongExpectedVersion {
            expected: ExpectedRevision::Exact(1),
            current: CurrentRevision::Current(4),
        };
        match error(wev, Some((&stream, ExpectedVersion::Exact(Version(1))))) {
            StoreError::WrongExpectedVersion {
                stream: s,
                expected,
                actual,
            } => {
                assert_eq!(s, stream);
                assert_eq!(expected, ExpectedVersion::Exact(Version(1)));
                assert_eq!(actual, Some(Version(4)));
            }
            other => panic!("not a typed conflict: {other:?}"),
        }
        let no_stream = eventstore::Error::WrongExpectedVersion {
            expected: ExpectedRevision::StreamExists,
            current: CurrentRevision::NoStream,
        };
        assert!(matches!(
            error(no_stream, Some((&stream, ExpectedVersion::StreamExists))),
            StoreError::WrongExpectedVersion { actual: None, .. }
        ));
        for transient in [
            // What the client makes of status Unavailable (see `Error::from_grpc`).
            eventstore::Error::ServerError("status: Unavailable".into()),
            eventstore::Error::ConnectionClosed,
            eventstore::Error::DeadlineExceeded,
            eventstore::Error::Grpc {
                code: tonic::Code::Unavailable,
                message: "down".into(),
            },
        ] {
            assert!(error(transient, None).is_transient());
        }
        assert!(matches!(
            error(eventstore::Error::AccessDenied, None),
            StoreError::Backend { .. }
        ));
    }

    #[test]
    fn metadata_uses_eventstoredb_field_names_and_round_trips() {
        let m = Metadata::correlated(Uuid::from_u128(1))
            .caused_by(Uuid::from_u128(2))
            .with_header("tenant", "é");
        let json = serde_json::to_value(to_esdb_metadata(&m, 3)).expect("json");
        assert_eq!(json["$correlationId"], Uuid::from_u128(1).to_string());
        assert_eq!(json["$causationId"], Uuid::from_u128(2).to_string());
        assert_eq!(json["tesseraSchemaVersion"], 3);
        let bytes = serde_json::to_vec(&json).expect("bytes");
        let r = recorded(&raw("order-1", br#"{"a":1}"#, &bytes)).expect("maps");
        assert_eq!(r.metadata, m);
        assert_eq!(r.schema_version, 3);
    }

    #[test]
    fn recorded_events_map_every_field() {
        let r = recorded(&raw("order-1", br#"{"total":5}"#, b"")).expect("maps");
        assert_eq!(r.stream_id.as_str(), "order-1");
        assert_eq!(r.id, EventId(Uuid::from_u128(7)));
        assert_eq!(r.version, Version(41));
        assert_eq!(r.position, Position::new(900, 880));
        assert_eq!(r.event_type, "OrderPlaced");
        assert_eq!(r.schema_version, 1);
        assert_eq!(r.data.to_value().expect("json")["total"], 5);
        assert!(r.metadata.is_empty());
        assert_eq!(r.recorded_at, UNIX_EPOCH);
        let stripped = recorded_as(&raw("t1_order-1", b"{}", b""), "order-1").expect("maps");
        assert_eq!(stripped.stream_id.as_str(), "order-1");
    }

    #[test]
    fn foreign_events_are_corrupt_naming_stream_and_revision() {
        for bad in [
            raw("order-1", b"\x00\x01binary", b""),
            raw("order-1", b"{}", b"not json"),
            raw("", b"{}", b""),
        ] {
            match recorded(&bad) {
                Err(StoreError::Corrupt {
                    stream, version, ..
                }) => {
                    assert_eq!(stream, bad.stream_id);
                    assert_eq!(version, 41);
                }
                other => panic!("expected Corrupt, got {other:?}"),
            }
        }
        assert!(is_system("$stats-1", "x") && is_system("order-1", "$metadata"));
        assert!(!is_system("order-1", "OrderPlaced"));
    }
}
