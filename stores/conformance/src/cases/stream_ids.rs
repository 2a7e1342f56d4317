//! Stream ids: validation happens in `StreamId::new`; every valid id works in a store.

use std::str::FromStr;

use tessera_core::{
    EventFilter, EventStore, ExpectedVersion, InvalidStreamId, Position, ReadAll, StoreError,
    StreamId, Version, MAX_STREAM_ID_LEN,
};

use crate::support::{
    append_ok, assert_empty_store, assert_same_event, evs, ok, read_all, read_stream, sid,
    version_of, wait_visible,
};

/// Panics unless every way of making a stream id from `value` fails with a typed
/// [`InvalidStreamId`] naming it.
fn assert_rejected(value: &str, what: &str) {
    let err: InvalidStreamId = match StreamId::new(value) {
        Ok(id) => panic!("{what}: {id:?} was accepted"),
        Err(e) => e,
    };
    let shown: String = value.chars().take(300).collect();
    assert_eq!(err.value, shown, "{what}: InvalidStreamId.value");
    assert!(
        !err.reason.is_empty(),
        "{what}: InvalidStreamId.reason is empty"
    );
    assert_eq!(
        StreamId::try_from(value).err(),
        Some(err.clone()),
        "{what}: TryFrom<&str>"
    );
    assert_eq!(
        StreamId::try_from(value.to_owned()).err(),
        Some(err.clone()),
        "{what}: TryFrom<String>"
    );
    assert_eq!(
        StreamId::from_str(value).err(),
        Some(err.clone()),
        "{what}: FromStr"
    );
    let json = serde_json::to_string(value).expect("a string serializes");
    assert!(
        serde_json::from_str::<StreamId>(&json).is_err(),
        "{what}: deserializing accepted it"
    );
    match StoreError::from(err.clone()) {
        StoreError::InvalidStreamId(e) => assert_eq!(e, err, "{what}: StoreError::InvalidStreamId"),
        other => panic!("{what}: InvalidStreamId converts to {other:?}"),
    }
}

/// Empty ids, ids over 255 bytes (counted in bytes, not characters) and ids with control
/// characters are rejected with a typed `InvalidStreamId`; the store stays untouched.
pub async fn invalid_stream_ids<S: EventStore>(store: S) {
    assert_empty_store(&store).await;
    assert_rejected("", "an empty id");
    assert_rejected(&"x".repeat(MAX_STREAM_ID_LEN + 1), "256 ASCII bytes");
    assert_rejected(&"é".repeat(128), "128 two-byte characters (256 bytes)");
    assert_rejected(
        &format!("{}🎉", "x".repeat(252)),
        "252 bytes plus a 4-byte emoji",
    );
    assert_rejected(&"y".repeat(10_000), "10 000 bytes");
    for c in [
        '\n', '\r', '\t', '\0', '\u{1b}', '\u{7f}', '\u{85}', '\u{9f}',
    ] {
        assert_rejected(
            &format!("order-{c}1"),
            &format!("an id with control character {c:?}"),
        );
        assert_rejected(&c.to_string(), &format!("control character {c:?} alone"));
    }
    assert!(
        StreamId::from_parts("order", "a\nb").is_err(),
        "from_parts validates the joined id"
    );
    for ok_id in [
        "x".repeat(255),
        format!("{}x", "é".repeat(127)),
        format!("{}🎉", "x".repeat(251)),
    ] {
        let id = StreamId::new(&ok_id).unwrap_or_else(|e| panic!("{ok_id:?} is valid: {e}"));
        assert_eq!(id.as_str(), ok_id);
    }
    assert_empty_store(&store).await;
}

/// Valid but unusual ids (255 bytes, multi-byte, unicode categories, spaces, quotes,
/// backslashes, leading or doubled dashes, different case) are distinct streams that
/// round-trip through append, read and category filters.
pub async fn unusual_stream_ids_round_trip<S: EventStore>(store: S) {
    assert_empty_store(&store).await;
    let ids = [
        "x".repeat(255),
        format!("{}x", "é".repeat(127)),
        "заказ-1".to_owned(),
        "注文-🎉-2".to_owned(),
        "with space-1 ".to_owned(),
        "quote'\"-1".to_owned(),
        "semi;colon--1".to_owned(),
        "back\\slash-1".to_owned(),
        "-leading".to_owned(),
        "trailing-".to_owned(),
        "UPPER-1".to_owned(),
        "upper-1".to_owned(),
    ];
    let mut last = Position::START;
    let mut sent = Vec::new();
    for id in &ids {
        let stream = sid(id);
        let batch = evs("Unusual", 0, 2);
        last = append_ok(&store, &stream, ExpectedVersion::NoStream, batch.clone())
            .await
            .position;
        sent.push((stream, batch));
    }
    wait_visible(&store, last).await;
    for (stream, batch) in &sent {
        let what = format!("stream {stream:?}");
        let stored = read_stream(&store, stream).await;
        assert_eq!(stored.len(), 2, "{what}: events");
        for (i, (r, s)) in stored.iter().zip(batch).enumerate() {
            assert_eq!(&r.stream_id, stream, "{what}: recorded stream id");
            assert_eq!(r.version, Version(i as u64), "{what}: version");
            assert_same_event(r, s, &what);
        }
        assert_eq!(
            version_of(&store, stream).await,
            Some(Version(1)),
            "{what}: stream_version"
        );
        let found = ok("find_event", store.find_event(stream, batch[1].id).await);
        assert_eq!(found.as_ref(), Some(&stored[1]), "{what}: find_event");

        let category = stream.category();
        let same_category = sent
            .iter()
            .filter(|(s, _)| s.category() == category)
            .count();
        let got = read_all(
            &store,
            ReadAll::after(Position::START, 100).filter(EventFilter::category(category)),
        )
        .await;
        assert_eq!(
            got.len(),
            2 * same_category,
            "{what}: read_all with its category {category:?}"
        );
        assert!(got.iter().all(|e| e.stream_id.category() == category));
    }
    let all = read_all(&store, ReadAll::after(Position::START, 1000)).await;
    assert_eq!(all.len(), 2 * ids.len(), "every stream is distinct");
}
