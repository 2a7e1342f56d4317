//! Bad input: unknown or malformed stored events, unserializable events, invalid ids.

use serde_json::json;
use tessera_core::{
    CodecError, CommandError, CommandHandler, EventAppender, EventReader, ExpectedVersion,
    MemoryStore, StoreError,
};

use crate::tally::{events, raw, stream, Cmd, Tally, TallyError};

fn decode_error(err: CommandError<TallyError>) -> tessera_core::DecodeError {
    match err {
        CommandError::Decode(e) => e,
        other => panic!("expected a decode error, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unknown_event_type_is_a_decode_error_naming_stream_and_version() {
    let store = MemoryStore::new();
    let tally = CommandHandler::<Tally, _>::new(store.clone(), ());
    tally.handle("b1", &Cmd::Add(1)).await.unwrap();
    let alien = raw("Exploded", 1, json!({"why": "?"}));
    store
        .append(&stream("b1"), ExpectedVersion::Any, vec![alien])
        .await
        .unwrap();

    let err = decode_error(tally.load("b1").await.unwrap_err());
    assert_eq!((err.stream.as_str(), err.version), ("tally-b1", 1));
    assert!(
        matches!(&err.source, CodecError::UnknownEventType { event_type } if event_type == "Exploded"),
        "{err:?}"
    );
    let err = decode_error(tally.handle("b1", &Cmd::Add(1)).await.unwrap_err());
    assert_eq!(err.version, 1);
    assert_eq!(events(&store, "b1").await.len(), 2, "nothing written");
}

#[tokio::test]
async fn malformed_data_of_a_known_type_is_a_decode_error() {
    let store = MemoryStore::new();
    let bad = raw("Added", 2, json!({"amount": "five"}));
    store
        .append(&stream("b2"), ExpectedVersion::NoStream, vec![bad])
        .await
        .unwrap();
    let tally = CommandHandler::<Tally, _>::new(store, ());
    let err = decode_error(tally.load("b2").await.unwrap_err());
    assert_eq!((err.stream.as_str(), err.version), ("tally-b2", 0));
    assert!(
        matches!(&err.source, CodecError::Decode { event_type, schema_version: 2, .. } if event_type == "Added"),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_event_that_cannot_be_serialized_is_an_encode_error_and_nothing_is_stored() {
    let store = MemoryStore::new();
    let tally = CommandHandler::<Tally, _>::new(store.clone(), ());
    let err = tally.handle("b3", &Cmd::Poison).await.unwrap_err();
    assert!(
        matches!(err, CommandError::Encode(CodecError::Encode(_))),
        "{err:?}"
    );
    assert_eq!(store.stream_version(&stream("b3")).await.unwrap(), None);

    tally.handle("b3", &Cmd::Add(1)).await.unwrap();
    let err = tally.handle("b3", &Cmd::Poison).await.unwrap_err();
    assert!(matches!(err, CommandError::Encode(_)), "{err:?}");
    assert_eq!(
        events(&store, "b3").await.len(),
        1,
        "the whole command was dropped"
    );
    assert!(store.len() == 1);
}

#[tokio::test]
async fn invalid_aggregate_ids_are_typed_errors() {
    let store = MemoryStore::new();
    let tally = CommandHandler::<Tally, _>::new(store.clone(), ());
    let too_long = "x".repeat(250);
    for id in ["", "a\nb", "\0", "tab\there", too_long.as_str()] {
        for err in [
            tally.handle(id, &Cmd::Add(1)).await.unwrap_err(),
            tally.load(id).await.unwrap_err(),
        ] {
            match err {
                CommandError::Store(StoreError::InvalidStreamId(e)) => {
                    let expected: String = format!("tally-{id}").chars().take(300).collect();
                    assert_eq!(e.value, expected);
                }
                other => panic!("{id:?}: expected InvalidStreamId, got {other:?}"),
            }
        }
        assert!(CommandHandler::<Tally, MemoryStore>::stream_id(id).is_err());
    }
    assert!(store.is_empty());
}

#[tokio::test]
async fn the_largest_expected_version_is_a_conflict_not_a_panic() {
    use tessera_core::{
        EventAppender, ExpectedVersion, MemoryStore, NewEvent, StoreError, StreamId, Version,
    };
    let store = MemoryStore::new();
    let stream = StreamId::new("order-max").expect("valid");
    let event = NewEvent::json("A", &serde_json::json!({})).expect("json");
    let err = store
        .append(
            &stream,
            ExpectedVersion::Exact(Version(u64::MAX)),
            vec![event],
        )
        .await
        .expect_err("no such version");
    assert!(
        matches!(err, StoreError::WrongExpectedVersion { actual: None, .. }),
        "{err:?}"
    );
    assert!(store.is_empty());
}
