//! Upcasting on load: old schema versions are mapped to the current shape, and a gap in
//! the chain is a typed decode error naming the stream and version.

use serde_json::json;
use tessera_core::{
    CodecError, CommandError, CommandHandler, DecodeError, EventAppender, ExpectedVersion,
    MemoryStore, Upcasters,
};

use crate::tally::{events, raw, stream, Cmd, Tally, TallyError};

/// `Added` v1 stored `{"n": amount}`; v2 stores `{"amount": amount}`.
fn added_v1_to_v2() -> Upcasters {
    Upcasters::new().register("Added", 1, |v| {
        let n = v["n"].as_i64().ok_or("field n missing")?;
        Ok(json!({ "amount": n }))
    })
}

async fn store_with(id: &str, events: Vec<tessera_core::NewEvent>) -> MemoryStore {
    let store = MemoryStore::new();
    store
        .append(&stream(id), ExpectedVersion::Any, events)
        .await
        .unwrap();
    store
}

fn decode_error(err: CommandError<TallyError>) -> DecodeError {
    match err {
        CommandError::Decode(e) => e,
        other => panic!("expected a decode error, got {other:?}"),
    }
}

#[tokio::test]
async fn an_old_event_is_upcast_on_load() {
    let store = store_with("u1", vec![raw("Added", 1, json!({"n": 5}))]).await;
    let tally = CommandHandler::<Tally, _>::new(store.clone(), ()).with_upcasters(added_v1_to_v2());
    assert_eq!(tally.load("u1").await.unwrap().state.total, 5);
    tally.handle("u1", &Cmd::Add(1)).await.unwrap();
    let stored = events(&store, "u1").await;
    assert_eq!(
        stored[1].schema_version, 2,
        "new events are written at the current version"
    );
    assert_eq!(stored[0].schema_version, 1, "old events are not rewritten");
    assert_eq!(tally.load("u1").await.unwrap().state.total, 6);
}

#[tokio::test]
async fn a_retired_type_name_is_upcast_and_renamed() {
    let store = store_with("u2", vec![raw("Increased", 1, json!({"by": 4}))]).await;
    let upcasters = Upcasters::new().register_renaming("Increased", 1, "Added", |v| {
        Ok(json!({ "amount": v["by"] }))
    });
    let tally = CommandHandler::<Tally, _>::new(store, ()).with_upcasters(upcasters);
    assert_eq!(tally.load("u2").await.unwrap().state.total, 4);
}

#[tokio::test]
async fn a_missing_upcaster_is_a_decode_error_naming_stream_and_version() {
    let store = MemoryStore::new();
    let tally = CommandHandler::<Tally, _>::new(store.clone(), ());
    tally.handle("u3", &Cmd::Add(1)).await.unwrap();
    store
        .append(
            &stream("u3"),
            ExpectedVersion::Any,
            vec![raw("Added", 1, json!({"n": 5}))],
        )
        .await
        .unwrap();
    let err = decode_error(tally.load("u3").await.unwrap_err());
    assert_eq!((err.stream.as_str(), err.version), ("tally-u3", 1));
    assert!(
        matches!(&err.source, CodecError::Upcast { event_type, from: 1, .. } if event_type == "Added"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("tally-u3@1"),
        "the message names it: {err}"
    );

    // A command on the aggregate fails the same way and writes nothing.
    let err = decode_error(tally.handle("u3", &Cmd::Add(1)).await.unwrap_err());
    assert_eq!(err.version, 1);
    assert_eq!(events(&store, "u3").await.len(), 2);
}

#[tokio::test]
async fn a_failing_upcaster_is_a_decode_error() {
    let store = store_with("u4", vec![raw("Added", 1, json!({"m": 5}))]).await;
    let tally = CommandHandler::<Tally, _>::new(store, ()).with_upcasters(added_v1_to_v2());
    let err = decode_error(tally.load("u4").await.unwrap_err());
    assert_eq!((err.stream.as_str(), err.version), ("tally-u4", 0));
    assert!(
        matches!(&err.source, CodecError::Upcast { reason, .. } if reason == "field n missing"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_newer_schema_than_the_code_knows_is_a_decode_error() {
    let store = store_with("u5", vec![raw("Added", 3, json!({"amount": 1}))]).await;
    let tally = CommandHandler::<Tally, _>::new(store, ()).with_upcasters(added_v1_to_v2());
    let err = decode_error(tally.load("u5").await.unwrap_err());
    assert_eq!(err.version, 0);
    assert!(
        matches!(
            err.source,
            CodecError::FutureSchema {
                stored: 3,
                current: 2,
                ..
            }
        ),
        "{err:?}"
    );
}
